"""The layer protocol: what every framework's transposed-conv layer description offers.

Keras and PyTorch layers both implement :class:`LayerSpec`, in two symmetric
parts: the description (:class:`~convt_tools.spec.ConvTransposeSpec`, also
the layers of saved models; :class:`~convt_tools.torchconv.TorchConvTransposeSpec`;
standard library only: shapes, layouts, explain) and the framework layer
around it (:func:`convt_tools.frameworks.as_layer`: :class:`~convt_tools.frameworks.keras.KerasConvT`,
:class:`~convt_tools.frameworks.torch.TorchConvT`), which adds what needs the
layers below (weights, the NumPy reference, the exporter). The commands
(shape, export, run, validate, translate) ask the layer instead of branching
on its framework:

==========================  ===============================================
``framework``               ``"keras"`` or ``"torch"``
``rank``, ``class_name``    spatial rank; ``Conv2DTranspose`` / ``ConvTranspose2d``
``output_shape(shape)``     the framework's own output shape (its own layout)
``default_input_shape(c)``  the input shape when none is given (see
                            :func:`input_shape`), or None
``onnx_op(...)``            the rank-generic :class:`~convt_tools.op.ConvTransposeOp`
``weights_to_onnx(k, b)``   the framework's weights as ONNX ``(W, B)``
``weights_from_onnx(W, B)`` ONNX ``(W, B)`` back in the framework's layout
``kernel_in_channels(k)``   the input channels a kernel/weight holds
``explain(shape)``          the per-axis derivation in words
``load_weights(path)``,     the framework's ``.npz`` weights, its own init,
``init_weights(c, seed)``   both in its own layout
``reference(x, k, b)``      the NumPy forward (the truth)
``export_onnx(k, b, ...)``  the ONNX model (:mod:`convt_tools.exporter`)
==========================  ===============================================

:func:`input_shape` is the one input-shape resolver: ``--input-shape``, else
the layer's recorded shape (Keras ``build_config``, a saved model's inbound
shape) with a dynamic batch, else unknown dims around the kernel's channels.
Standard library only (``convt shape`` stays fast).
"""

from __future__ import annotations

from typing import Any, Literal, Protocol, Sequence, overload, runtime_checkable

from .errors import ConvtError

__all__ = ["FRAMEWORKS", "LayerSpec", "input_shape"]

FRAMEWORKS = ("keras", "torch")


@runtime_checkable
class LayerSpec(Protocol):
    """A validated transposed-conv layer of one framework (module docstring)."""

    framework: str

    @property
    def rank(self) -> int: ...

    @property
    def class_name(self) -> str: ...

    def check_input_shape(self, input_shape: Sequence[int | None]) -> tuple[int | None, ...]: ...

    def output_shape(self, input_shape: Sequence[int | None]) -> tuple[int | None, ...]: ...

    def default_input_shape(self, in_channels: int | None = None, *,
                            dynamic_batch: bool = True) -> tuple[int | None, ...] | None: ...

    def onnx_op(self, *args: Any, **kwargs: Any) -> Any: ...

    def weights_to_onnx(self, kernel: Any, bias: Any) -> tuple[Any, Any]: ...

    def weights_from_onnx(self, w: Any, b: Any) -> tuple[Any, Any]: ...

    def kernel_in_channels(self, kernel: Any) -> int: ...

    def explain(self, input_shape: Sequence[int | None]) -> str: ...

    def to_config(self) -> dict[str, Any]: ...

    def load_weights(self, path: str, in_channels: int | None = None) -> tuple[Any, Any]: ...

    def init_weights(self, in_channels: int, seed: int) -> tuple[Any, Any, str]: ...

    def reference(self, x: Any, kernel: Any, bias: Any) -> Any: ...

    def export_onnx(self, kernel: Any, bias: Any, *, input_shape: Any, opset: int,
                    seed: int) -> Any: ...


@overload
def input_shape(spec: Any, given: Sequence[int | None] | None = None,
                in_channels: int | None = None, *, dynamic_batch: bool = True,
                required: Literal[True] = True) -> tuple[int | None, ...]: ...
@overload
def input_shape(spec: Any, given: Sequence[int | None] | None = None,
                in_channels: int | None = None, *, dynamic_batch: bool = True,
                required: bool) -> tuple[int | None, ...] | None: ...
def input_shape(spec: Any, given: Sequence[int | None] | None = None,
                in_channels: int | None = None, *, dynamic_batch: bool = True,
                required: bool = True) -> tuple[int | None, ...] | None:
    """The input shape of ``spec``: ``given`` (as is), else :meth:`LayerSpec.default_input_shape`.

    ``in_channels``: from the kernel, when known. Where neither gives the
    channel count, ``required`` raises a :class:`ConvtError` naming
    ``input_shape`` (with an example in the layer's layout), else None.
    """
    if given is not None:
        return tuple(given)
    shape = spec.default_input_shape(in_channels, dynamic_batch=dynamic_batch)
    if shape is not None or not required:
        return shape
    layout = spec.layout
    example = ",".join(layout.shape("None", "3", ("?",) * layout.rank))
    raise ConvtError(
        f"input_shape: missing, and neither the config (build_config) nor --weights gives the "
        f"number of input channels; give --input-shape {layout.letters()}, with None or ? for "
        f"unknown dims (e.g. --input-shape {example}).", field="input_shape")
