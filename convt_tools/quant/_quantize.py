"""Quantization arithmetic for int8 QDQ ConvTranspose: scales, zero points, integers.

The formulas (ONNX ``QuantizeLinear``; ``round`` is round half to even, as
numpy's :func:`numpy.round` and ONNX; saturation to the integer type)::

    q = clip(round(v / scale) + zero_point, qmin, qmax)
    v' = (q - zero_point) * scale                       (DequantizeLinear)

- Weights: symmetric, zero point 0, range ``[-127, 127]`` (int8 without -128,
  so ``-q`` is representable and max ``|q|`` of each slice that sets a scale
  is exactly 127): ``scale_c = max|W_c| / 127`` per slice ``c`` (one output
  channel, or the whole tensor). A slice whose bias would not fit int32 at
  ``x_scale * scale_c`` gets the smallest larger scale that fits
  (``|b_c| / (x_scale * (2**31 - 1))``); an all-zero slice (no bias need)
  gets :data:`TINY` / 127.
- Activations (MinMax over calibration data, range widened to include 0):
  int8 symmetric ``scale = max(|lo|, |hi|) / 127``, zero point 0; uint8
  asymmetric ``scale = (hi - lo) / 255``, ``zero_point = clip(round(-lo / scale), 0, 255)``.
  A zero range gets scale 1 (every value quantizes to the zero point exactly).
- Bias: int32 with per-output-channel scale ``float32(x_scale * w_scale_c)``
  (computed in float32 as stored) and zero point 0:
  ``q_b = clip(round(b / scale_b), -2**31, 2**31 - 1)``.

Output channel ``co = g * (C_out/group) + j`` of an ONNX ConvTranspose weight
``W (C_in, C_out/group, *k)`` reads ``W[g*C_in/group : (g+1)*C_in/group, j]``
(:func:`out_channel_view`). Every scale is a float32 as stored in the model;
integers are computed in float64 from the stored float32 scale.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._params import QParams, int_range
from ._reference import quantize

__all__ = ["INT8", "INT32", "QTYPES", "TINY", "UINT8", "WEIGHT_QMAX", "QType",
           "activation_params", "bias_int32", "bias_scales", "from_out_channels",
           "out_channel_view", "weight_scales"]

#: The smallest max |w| a weight scale is made from (an all-zero slice).
TINY = 1e-8


@dataclass(frozen=True)
class QType:
    """An integer type of Q/DQ: its numpy dtype and saturation range."""

    name: str
    dtype: np.dtype
    qmin: int
    qmax: int


def _qtype(name: str) -> QType:
    lo, hi = int_range(name)
    return QType(name, np.dtype(name), lo, hi)


INT8, UINT8, INT32 = _qtype("int8"), _qtype("uint8"), _qtype("int32")
#: Activation types by their ``--activations`` name.
QTYPES = {"int8": INT8, "uint8": UINT8}
#: Symmetric weight range: int8 without -128.
WEIGHT_QMAX = 127


def out_channel_view(w: np.ndarray, group: int) -> np.ndarray:
    """``W (C_in, C_out/group, *k)`` as ``(C_out, C_in/group, *k)``: row ``co`` holds the
    weights of output channel ``co = g * (C_out/group) + j``."""
    c_in, per_out = w.shape[0], w.shape[1]
    per_in = c_in // group
    wg = w.reshape(group, per_in, per_out, *w.shape[2:])
    return np.moveaxis(wg, 2, 1).reshape(group * per_out, per_in, *w.shape[2:])


def from_out_channels(v: np.ndarray, group: int) -> np.ndarray:
    """The inverse of :func:`out_channel_view`: ``(C_out, C_in/group, *k)`` back to ONNX
    ``(C_in, C_out/group, *k)``."""
    c_out, per_in = v.shape[0], v.shape[1]
    per_out = c_out // group
    vg = v.reshape(group, per_out, per_in, *v.shape[2:])
    return np.moveaxis(vg, 2, 1).reshape(group * per_in, per_out, *v.shape[2:])


def _fit_bias(scale: np.ndarray, bias: np.ndarray | None, x_scale: float | np.floating
              ) -> np.ndarray:
    """Raise scales where ``bias / (x_scale * scale)`` would not fit int32."""
    if bias is None:
        return scale
    need = np.abs(np.asarray(bias, np.float64)) / (float(x_scale) * INT32.qmax)
    return np.maximum(scale, need)


def weight_scales(w: np.ndarray, group: int, *, per_channel: bool, x_scale: float | np.floating,
                  bias: np.ndarray | None = None) -> np.ndarray:
    """Symmetric int8 weight scales (float32): ``(C_out,)`` per output channel, else ``()``.

    ``scale = max(max|W_slice|, TINY) / 127``, raised where the bias would not
    fit int32 at ``x_scale * scale`` (module docstring).
    """
    w64 = np.asarray(w, np.float64)
    if per_channel:
        absmax = np.abs(out_channel_view(w64, group)).reshape(w.shape[1] * group, -1).max(axis=1)
        b = bias
    else:
        absmax = np.asarray(np.abs(w64).max() if w64.size else 0.0)
        b = None if bias is None else np.asarray(np.abs(np.asarray(bias, np.float64)).max())
    scale = _fit_bias(np.maximum(absmax, TINY) / WEIGHT_QMAX, b, x_scale)
    out = scale.astype(np.float32)
    # float32 rounding may leave |w| / scale a hair above 127.5: nudge such scales up one ulp.
    limit = np.asarray(absmax) / out.astype(np.float64)
    return np.where(limit > WEIGHT_QMAX + 0.5, np.nextafter(out, np.float32(np.inf)), out
                    ).astype(np.float32)


def bias_scales(x_scale: np.float32, w_scale: np.ndarray, c_out: int) -> np.ndarray:
    """``float32(x_scale * w_scale)`` per output channel ``(C_out,)`` (a per-tensor
    ``w_scale`` repeated)."""
    prod = np.float32(x_scale) * np.asarray(w_scale, np.float32)
    return np.broadcast_to(prod, (c_out,)).astype(np.float32)


def bias_int32(bias: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """``clip(round(b / scale), int32)``: the int32 bias at the stored ``scale`` (one value,
    or one per output channel)."""
    scale = np.asarray(scale, np.float32)
    params = QParams("B", scale, None, 0, 0, "int32")
    return quantize(np.asarray(bias, np.float64), params)[0].astype(np.int32)


def activation_params(lo: float, hi: float, qtype: QType) -> tuple[np.float32, int]:
    """MinMax ``(scale, zero_point)`` of a tensor whose calibration range is ``[lo, hi]``.

    The range is widened to contain 0. int8: symmetric, zero point 0,
    ``scale = max(|lo|, |hi|) / 127``; uint8: ``scale = (hi - lo) / 255``,
    ``zero_point = clip(round(-lo / scale), 0, 255)``. A zero range: scale 1.
    """
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if qtype is INT8:
        span = max(-lo, hi)
        scale = np.float32(span / 127) if span > 0 else np.float32(1.0)
        return scale, 0
    scale = np.float32((hi - lo) / 255) if hi > lo else np.float32(1.0)
    zp = int(np.clip(np.round(-lo / float(scale)), 0, 255))
    return scale, zp
