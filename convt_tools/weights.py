"""Loading and validating Conv1D/2D/3DTranspose weights in Keras's layout.

Keras stores ``kernel`` as ``(*kernel_size, filters, in_channels)`` (2-D:
``(kh, kw, filters, in_channels)``) and ``bias`` as
``(filters,)``. A weights file is an ``.npz`` archive with exactly those keys
(``bias`` only when the layer has ``use_bias=True``), loaded without
unpickling. Every problem is a one-sentence :class:`ConvtError`.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from .errors import ConvtError
from .io import load_npz
from .spec import Conv2DTransposeSpec

__all__ = ["FLOAT_DTYPES", "check_weights", "load_weights"]

# Float dtypes a weights array may have (bfloat16 arrives as ml_dtypes.bfloat16).
FLOAT_DTYPES = ("float16", "float32", "float64", "bfloat16")


def _shape_text(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


def _as_float_array(name: str, value: Any) -> np.ndarray:
    """``value`` as an ndarray of a float dtype (never converts ints or objects)."""
    arr = value if isinstance(value, np.ndarray) else np.asarray(value)
    if arr.dtype.name not in FLOAT_DTYPES:
        raise ConvtError(
            f"{name}: got an array of dtype {arr.dtype.name}; expected a float array "
            f"({', '.join(FLOAT_DTYPES)}).", field=name)
    return arr


def _check_finite(name: str, arr: np.ndarray) -> None:
    finite = np.isfinite(arr.astype(np.float32) if arr.dtype.name == "bfloat16" else arr)
    if not finite.all():
        bad = np.argwhere(~finite)[0]
        value = arr[tuple(bad)]
        raise ConvtError(
            f"{name}: got {value} at index {tuple(int(i) for i in bad)} "
            f"({int((~finite).sum())} non-finite value(s)); weights must be finite numbers.",
            field=name)


def check_weights(spec: Conv2DTransposeSpec, kernel: Any, bias: Any,
                  in_channels: int | None = None, *, allow_zero_channels: bool = False
                  ) -> tuple[np.ndarray, np.ndarray | None]:
    """Validate Keras-layout weights against ``spec``; return them as arrays.

    Contract: ``kernel.shape == (*kernel_size, filters, C)`` (``spec.layout.kernel_layout``)
    with ``C >= 1`` (``C >= 0`` with ``allow_zero_channels``: legal in Keras,
    the output is then pure bias, but no ONNX runtime runs a zero-size
    tensor) and ``C == in_channels`` when given; ``bias.shape == (filters,)``
    when ``spec.use_bias``, and ``bias is None`` otherwise; float dtypes only;
    every value finite. Arrays are returned unchanged in dtype (the exporter
    casts them to the model dtype).
    """
    want = (*spec.kernel_size, spec.filters)
    k = _as_float_array("kernel", kernel)
    if k.ndim != len(want) + 1 or k.shape[:-1] != want or \
            k.shape[-1] < (0 if allow_zero_channels else 1):
        raise ConvtError(
            f"kernel: got shape {_shape_text(k.shape)}; expected "
            f"{spec.layout.kernel_layout} = {_shape_text(want)[:-1]}, in_channels) "
            f"for this layer.", field="kernel")
    if in_channels is not None and k.shape[-1] != in_channels:
        raise ConvtError(
            f"kernel: got {k.shape[-1]} input channels in shape {_shape_text(k.shape)}; "
            f"expected {in_channels} to match the input.", field="kernel")
    _check_finite("kernel", k)
    if not spec.use_bias:
        if bias is not None:
            raise ConvtError(
                f"bias: got an array of shape {_shape_text(np.shape(bias))}, but the layer has "
                f"use_bias=False; give no bias (or set use_bias to true).", field="bias")
        return k, None
    if bias is None:
        raise ConvtError(
            f"bias: missing; the layer has use_bias=True, so a bias of shape "
            f"({spec.filters},) is required.", field="bias")
    b = _as_float_array("bias", bias)
    if b.shape != (spec.filters,):
        raise ConvtError(
            f"bias: got shape {_shape_text(b.shape)}; expected (filters,) = ({spec.filters},).",
            field="bias")
    _check_finite("bias", b)
    return k, b


def load_weights(path: str | os.PathLike[str], spec: Conv2DTransposeSpec,
                 in_channels: int | None = None, *, allow_zero_channels: bool = False
                 ) -> tuple[np.ndarray, np.ndarray | None]:
    """Load an ``.npz`` with ``kernel`` (and ``bias`` iff ``use_bias``) and validate it.

    Keys other than ``kernel`` and ``bias`` are an error (a typo would
    otherwise be silently ignored). Loaded with ``allow_pickle=False``.
    """
    arrays = load_npz(path, field="weights")
    allowed = ["kernel", "bias"] if spec.use_bias else ["kernel"]
    extra = sorted(set(arrays) - set(allowed))
    if extra:
        hint = " (the layer has use_bias=False, so no bias)" if extra == ["bias"] else ""
        raise ConvtError(
            f"weights: got unknown key(s) {', '.join(map(repr, extra))} in {str(path)!r}; "
            f"expected exactly {', '.join(map(repr, allowed))}{hint}.", field="weights")
    missing = [key for key in allowed if key not in arrays]
    if missing:
        raise ConvtError(
            f"weights: {str(path)!r} has no {', '.join(map(repr, missing))} array "
            f"(it has {sorted(arrays) or 'none'}); expected keys {', '.join(map(repr, allowed))}.",
            field="weights")
    return check_weights(spec, arrays["kernel"], arrays.get("bias"), in_channels,
                         allow_zero_channels=allow_zero_channels)
