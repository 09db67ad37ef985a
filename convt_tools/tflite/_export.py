"""``.tflite`` export of a layer: a Keras spec, or any framework's compact op plus ONNX weights.

Fixed shapes by default: an unknown batch becomes 1 (as TF's converter does);
unknown spatial dims are refused (give them in ``--input-shape``).
``dynamic=True`` (``--input-shape`` with ``None``/``?`` spatial dims) keeps the
unknown dims unknown: the model computes ``output_shape`` from
``SHAPE(input)`` and runs after ``resize_tensor_input``. The
model's input and output are float32 in the layer's own layout; a float16
layer (``float16`` / ``mixed_float16`` policy: both compute with float16
weights) gets float16 weight constants and ``DEQUANTIZE`` as TF's float16
form, and is judged with float16's tolerance.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..errors import ConvtError
from ..initializers import initialize_weights
from ..layer import input_shape as layer_input_shape
from ..op import ConvTransposeOp
from ..spec import Conv2DTransposeSpec, format_shape
from ..weights import check_weights
from ._graph import TfliteModel, build_tflite

__all__ = ["export_keras_tflite", "export_op_tflite", "fixed_shape"]

_FLOAT16 = ("float16",)


def fixed_shape(shape: Sequence[int | None], rank: int, channels_axis: int,
                dynamic: bool = False) -> tuple[int | None, ...]:
    """``shape`` with an unknown batch as 1 and no other unknown dim (``dynamic`` and an
    unknown spatial dim: unknown batch and spatial dims kept, a resizable model); an unknown
    channel count is always refused."""
    dims = list(shape)
    if len(dims) != rank + 2:
        raise ConvtError(f"input_shape: got {format_shape(tuple(shape))}; expected a batched "
                         f"shape of {rank + 2} dims for the tflite export.", field="input_shape")
    if dims[channels_axis] is None:
        raise ConvtError(f"input_shape: got {format_shape(tuple(shape))}; the channel count "
                         f"must be known.", field="input_shape")
    spatial_unknown = any(d is None for i, d in enumerate(dims)
                          if i != 0 and i != channels_axis % len(dims))
    if dynamic and spatial_unknown:
        return tuple(dims)
    if dims[0] is None:
        dims[0] = 1
    if any(d is None for d in dims):
        raise ConvtError(
            f"input_shape: got {format_shape(tuple(shape))}; the tflite export has fixed shapes "
            f"by default, so give every spatial dim in --input-shape (an unknown batch becomes "
            f"1), or give unknown ones there as ? for a model that resizes.",
            field="input_shape")
    return tuple(dims)


def export_op_tflite(op: ConvTransposeOp, w: np.ndarray, b: np.ndarray | None,
                     input_shape: Sequence[int | None], *, float16_weights: bool = False,
                     description: str = "convt-tools", notes: Sequence[str] = (),
                     prefer: str = "VALID", dynamic: bool = False,
                     dilation_field: str = "dilation_rate") -> TfliteModel:
    """The ``.tflite`` of a compact ``op`` with ONNX-layout ``W``/``B`` (:func:`build_tflite`;
    ``dynamic``: see the module docstring)."""
    shape = fixed_shape(input_shape, op.rank, op.layout.channels_axis, dynamic)
    model = build_tflite(op, np.asarray(w, np.float32),
                         None if b is None else np.asarray(b, np.float32), shape,
                         float16_weights=float16_weights, description=description,
                         prefer=prefer, dilation_field=dilation_field)
    if 0 in shape or 0 in model.output_shape:
        raise ConvtError(
            f"input_shape: got {format_shape(shape)}, for which the output is "
            f"{format_shape(model.output_shape)}; LiteRT's TRANSPOSE_CONV and CONV_3D_TRANSPOSE "
            f"refuse zero-size tensors (measured: 'SizeOfDimension(input, 2) > 0 was not true'), "
            f"so use a non-empty input.", field="input_shape")
    model.notes.extend(notes)
    if float16_weights:
        model.dtype = "float16"
        model.notes.append("float16 weights (DEQUANTIZE to float32, as TF's float16 form); "
                           "float32 input and output.")
    return model


def export_keras_tflite(spec: Conv2DTransposeSpec, kernel: Any = None, bias: Any = None, *,
                        input_shape: Sequence[int | None] | None = None,
                        seed: int = 0, dynamic: bool = False) -> TfliteModel:
    """A Keras layer as ``.tflite``: its real weights, or its initializers drawn with ``seed``."""
    channels = None if kernel is None else int(np.shape(kernel)[-1])
    shape = spec.check_input_shape(layer_input_shape(spec, input_shape, channels))
    notes: list[str] = []
    in_ch = shape[spec.channels_axis]
    if kernel is None:
        if in_ch is None:
            raise ConvtError("input_shape: the number of input channels is unknown; give "
                             "--input-shape or --weights.", field="input_shape")
        kernel, bias = initialize_weights(spec, int(in_ch), seed)
        notes.append(f"weights initialised with seed {seed} (not trained weights).")
    kernel, bias = check_weights(spec, kernel, bias, None if in_ch is None else int(in_ch))
    op = ConvTransposeOp.from_keras(spec, "compact")
    w = spec.weights_to_onnx(kernel, bias)[0]
    return export_op_tflite(op, w, bias, shape, float16_weights=spec.dtype in _FLOAT16,
                            description=f"convt-tools: Keras {spec.class_name} "
                                        f"{spec.name or ''}".strip(), notes=notes,
                            prefer=spec.padding.upper(), dynamic=dynamic)
