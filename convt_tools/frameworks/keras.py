"""Keras ``Conv{1,2,3}DTranspose`` as a :class:`convt_tools.layer.LayerSpec` layer.

What the spec (:mod:`convt_tools.spec`) cannot do without the layers below it:
the rank-generic ONNX op, weights (``.npz``, initializers), the NumPy
reference, the ONNX export, ``--flags`` merged into a config.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from ..errors import ConvtError
from .base import FrameworkLayer

__all__ = ["KerasConvT"]


class KerasConvT(FrameworkLayer):
    """A Keras layer: its :class:`~convt_tools.spec.ConvTransposeSpec` plus operations."""

    @property
    def forms(self) -> tuple[str, ...]:
        """The export forms this layer has (:data:`convt_tools.exporter.FORMS`)."""
        from ..exporter import FORMS

        return FORMS

    def onnx_op(self, form: str = "compact") -> Any:
        """The rank-generic :class:`~convt_tools.op.ConvTransposeOp` of this layer in ``form``."""
        from ..op import ConvTransposeOp

        return ConvTransposeOp.from_keras(self.spec, form)

    def load_weights(self, path: str, in_channels: int | None = None, *,
                     allow_zero_channels: bool = False) -> tuple[Any, Any]:
        """``kernel``/``bias`` from an ``.npz`` (:func:`convt_tools.weights.load_weights`)."""
        from ..weights import load_weights

        return load_weights(path, self.spec, in_channels, allow_zero_channels=allow_zero_channels)

    def check_weights(self, kernel: Any, bias: Any, in_channels: int | None = None
                      ) -> tuple[Any, Any]:
        """Keras-layout weights checked against this layer (:func:`convt_tools.weights.check_weights`)."""
        from ..weights import check_weights

        return check_weights(self.spec, kernel, bias, in_channels)

    def init_weights(self, in_channels: int, seed: int) -> tuple[Any, Any, str]:
        """``(kernel, bias, where from)`` drawn from the config's initializers.

        0 input channels (legal in Keras): an empty kernel; the bias stream does
        not depend on the channel count, so it is the one a 1-channel layer draws.
        """
        from ..initializers import initialize_weights

        kernel, bias = initialize_weights(self.spec, max(in_channels, 1), seed)
        return kernel[..., :in_channels], bias, \
            f"weights initialised from the config's initializers (seed {seed})"

    def run_output_shape(self, input_shape: Sequence[int | None], in_channels: int | None = None,
                         output_size: Sequence[int] | None = None) -> tuple[int | None, ...]:
        """The shape of the tensor a forward call returns (``glu`` halves axis -1)."""
        if output_size is not None:
            raise ConvtError("output_size: applies to torch configs only.", field="output_size")
        return self.spec.activated_output_shape(input_shape, in_channels)

    def reference(self, x: Any, kernel: Any, bias: Any,
                  output_size: Sequence[int] | None = None) -> Any:
        """The NumPy reference forward in the layer's compute dtype (bfloat16: float32)."""
        import numpy as np

        from ..io import cast_checked
        from ..reference import keras_conv_transpose

        dt = np.dtype("float32" if self.spec.dtype == "bfloat16" else self.spec.dtype)
        return keras_conv_transpose(self.spec, cast_checked(x, dt, "input"),
                                    cast_checked(kernel, dt, "kernel"),
                                    None if bias is None else cast_checked(bias, dt, "bias"))

    def runtime_model(self, kernel: Any, bias: Any, input_shape: Sequence[int],
                      output_size: Sequence[int] | None = None, kind: str = "onnx") -> Any:
        """The portable ONNX model a runtime runs for an input of ``input_shape``
        (float32 where the layer's dtype is not float32/float16); ``kind`` ``"tflite"``
        (the runtime's ``model_kind``): the ``.tflite`` export instead."""
        from ..exporter import export_spec

        if kind == "tflite":
            return self.export_tflite(kernel, bias, input_shape=input_shape, seed=0)
        dtype = None if self.spec.dtype in ("float32", "float16") else "float32"
        return export_spec(self.spec, kernel, bias, input_shape=input_shape, dtype=dtype)

    def batched(self, x: Any) -> tuple[Any, bool]:
        """``(x with a batch axis, whether one was added)``: Keras inputs are batched."""
        return x, False

    def apply_flags(self, flags: Mapping[str, Any]) -> KerasConvT:
        """This layer with Keras-named ``--flags`` merged in (flags win; ``rank`` was used
        when the config was read)."""
        given = {k: v for k, v in flags.items() if v is not None and k != "rank"}
        if not given:
            return self
        import dataclasses

        from ..spec import parse_config

        spec = self.spec
        merged = spec.to_config()
        merged.update(given)
        if "data_format" not in given and spec.data_format_source != "config":
            merged["data_format"] = None
        merged.pop("dtype")
        again = parse_config(merged, rank=spec.rank)
        return KerasConvT(dataclasses.replace(again, input_shape=spec.input_shape,
                                              rank_source=spec.rank_source))

    def export_onnx(self, kernel: Any, bias: Any, *, input_shape: Any, opset: int, seed: int,
                    dtype: str | None = None, allow_unsupported_dtype: bool = False,
                    form: str = "portable", output_size: Any = None) -> Any:
        """The ONNX model of this layer (:func:`convt_tools.exporter.export_spec`)."""
        if output_size is not None:
            raise ConvtError("output_size: applies to torch configs only.", field="output_size")
        from ..exporter import export_spec

        return export_spec(self.spec, kernel, bias, input_shape=input_shape, opset=opset,
                           seed=seed, dtype=dtype,
                           allow_unsupported_dtype=allow_unsupported_dtype, form=form)

    def export_tflite(self, kernel: Any, bias: Any, *, input_shape: Any, seed: int,
                      output_size: Any = None, dynamic: bool = False) -> Any:
        """The ``.tflite`` model of this layer (:func:`convt_tools.tflite.export_keras_tflite`)."""
        if output_size is not None:
            raise ConvtError("output_size: applies to torch configs only.", field="output_size")
        from ..tflite import export_keras_tflite

        return export_keras_tflite(self.spec, kernel, bias, input_shape=input_shape, seed=seed,
                                   dynamic=dynamic)

    def export_info(self, seed: int) -> dict[str, Any]:
        """What ``convt export`` reports besides the model's own description."""
        return {"weights": f"initialised (seed {seed})"}

    def validate_on(self, runtimes: Any, *, for_targets: bool = True,
                    **opts: Any) -> list[Any]:
        """The validate verb on ``runtimes`` (:func:`convt_tools.validate.validate_runtimes`;
        ``opts``: its keyword arguments). ``for_targets``: the export is rewritten for the
        named runtimes as ``export --target`` does
        (:func:`convt_tools.repair.targets.apply_target_forms`); ``bench`` times the plain
        export form instead."""
        from ..repair.targets import apply_target_forms
        from ..validate import validate_runtimes

        return validate_runtimes(self.spec, runtimes,
                                 retarget=apply_target_forms if for_targets else None, **opts)
