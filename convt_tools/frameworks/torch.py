"""PyTorch ``nn.ConvTranspose{1,2,3}d`` as a :class:`convt_tools.layer.LayerSpec` layer.

What the spec (:mod:`convt_tools.torchconv.spec`) cannot do without the
layers below it: weights (``.npz``, torch's default init), the NumPy
forward, the ONNX export.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from ..errors import ConvtError
from .base import FrameworkLayer

__all__ = ["TorchConvT"]


class TorchConvT(FrameworkLayer):
    """A torch module: its :class:`~convt_tools.torchconv.TorchConvTransposeSpec` plus operations."""

    @property
    def forms(self) -> tuple[str, ...]:
        """The export forms this module has: the portable one (see :meth:`export_onnx`)."""
        return ("portable",)

    def onnx_op(self, output_padding: Sequence[int] | None = None) -> Any:
        """The rank-generic :class:`~convt_tools.op.ConvTransposeOp` the exporter builds."""
        return self.spec.onnx_op(output_padding)

    def load_weights(self, path: str, in_channels: int | None = None, *,
                     allow_zero_channels: bool = False) -> tuple[Any, Any]:
        """``weight``/``bias`` from an ``.npz`` keyed by the module's state_dict names."""
        from ..torchconv.compute import load_torch_weights

        return load_torch_weights(path, self.spec)

    def check_weights(self, kernel: Any, bias: Any, in_channels: int | None = None
                      ) -> tuple[Any, Any]:
        """torch-layout ``weight``/``bias`` checked against this module."""
        from ..torchconv.compute import check_torch_weights

        return check_torch_weights(self.spec, kernel, bias), bias

    def init_weights(self, in_channels: int, seed: int) -> tuple[Any, Any, str]:
        """``(weight, bias, where from)``: torch's default init, seeded."""
        from ..torchconv.compute import initialize_torch_weights

        w, b = initialize_torch_weights(self.spec, seed)
        return w, b, f"weights from torch's default init (seed {seed})"

    def run_output_shape(self, input_shape: Sequence[int | None], in_channels: int | None = None,
                         output_size: Sequence[int] | None = None) -> tuple[int | None, ...]:
        """The shape of the tensor a forward call returns."""
        return self.spec.output_shape(input_shape, output_size)

    def reference(self, x: Any, kernel: Any, bias: Any,
                  output_size: Sequence[int] | None = None) -> Any:
        """The NumPy forward in the input's dtype."""
        from ..io import cast_checked
        from ..torchconv.compute import torch_conv_transpose

        return torch_conv_transpose(self.spec, x, cast_checked(kernel, x.dtype, "weight"),
                                    None if bias is None else cast_checked(bias, x.dtype, "bias"),
                                    output_size)

    def runtime_model(self, kernel: Any, bias: Any, input_shape: Sequence[int],
                      output_size: Sequence[int] | None = None, kind: str = "onnx") -> Any:
        """The ONNX model a runtime runs for a batched input of ``input_shape``
        (``kind`` ``"tflite"``: the ``.tflite`` export)."""
        from ..torchconv.export import export_torch

        if kind == "tflite":
            return self.export_tflite(kernel, bias, input_shape=input_shape, seed=0,
                                      output_size=output_size)

        return export_torch(self.spec, kernel, bias, input_shape=input_shape,
                            output_size=output_size)

    def batched(self, x: Any) -> tuple[Any, bool]:
        """``(x with a batch axis, whether one was added)``: torch takes unbatched input."""
        return (x[None], True) if x.ndim == self.spec.rank + 1 else (x, False)

    def apply_flags(self, flags: Mapping[str, Any]) -> TorchConvT:
        """Keras layer flags make no sense with a torch config: say so instead of ignoring them."""
        given = [k for k, v in flags.items() if v is not None]
        if given:
            raise ConvtError(f"{given[0]}: Keras layer flags (--{given[0].replace('_', '-')}) "
                             f"do not apply to a torch config; put torch's arguments in the "
                             f"JSON.", field=given[0])
        return self

    def export_onnx(self, kernel: Any, bias: Any, *, input_shape: Any, opset: int, seed: int,
                    dtype: str | None = None, allow_unsupported_dtype: bool = False,
                    form: str = "portable", output_size: Any = None) -> Any:
        """The ONNX model of this module (:func:`convt_tools.torchconv.export.export_torch`)."""
        if form != "portable":
            raise ConvtError(f"form: got {form!r}; --form compact applies to Keras layers "
                             f"(torch configs export the portable form).", field="form")
        if dtype not in (None, "float32") or allow_unsupported_dtype:
            raise ConvtError("dtype: torch configs export float32 only.", field="dtype")
        from ..torchconv.export import export_torch

        return export_torch(self.spec, kernel, bias, input_shape=input_shape,
                            output_size=output_size, opset=opset, seed=seed)

    def export_tflite(self, kernel: Any, bias: Any, *, input_shape: Any, seed: int,
                      output_size: Any = None, dynamic: bool = False) -> Any:
        """The ``.tflite`` model of this module (:func:`convt_tools.torchconv.export.torch_tflite`)."""
        from ..torchconv.export import torch_tflite

        return torch_tflite(self.spec, kernel, bias, input_shape=input_shape,
                            output_size=output_size, seed=seed, dynamic=dynamic)

    def export_info(self, seed: int) -> dict[str, Any]:
        """What ``convt export`` reports besides the model's own description."""
        return {"framework": "torch", "module": self.spec.module, "group": self.spec.groups,
                "weights": f"torch's default init (seed {seed})"}

    def validate_on(self, runtimes: Any, *, for_targets: bool = True,
                    **opts: Any) -> list[Any]:
        """The validate verb on ``runtimes``
        (:func:`convt_tools.validate.torch_layer.validate_torch_runtimes`;
        ``opts`` as for Keras: ``kernel`` is torch's ``weight``; torch configs export one
        form, and their weights note is the verb's own)."""
        from ..repair.targets import apply_target_forms
        from ..validate.torch_layer import validate_torch_runtimes

        opts.pop("form", None)
        opts.pop("weights_note", None)
        return validate_torch_runtimes(self.spec, runtimes, weight=opts.pop("kernel", None),
                                       retarget=apply_target_forms if for_targets else None,
                                       **opts)
