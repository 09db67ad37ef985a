"""Quantize a ConvTranspose's float ``W``/``B`` into one of the weight forms of :mod:`._forms`.

:func:`quantize_weights` returns :class:`QuantizedWeights`: one
:class:`WeightPart` per ConvTranspose node the form needs (``split``: one per
group, each group 1; every other form: one). Integers and scales follow
:mod:`._quantize`: symmetric int8 weights in ``[-127, 127]``, zero point 0,
int32 bias at ``float32(x_scale * w_scale)`` of its output channel.

Every per-output-channel form (``axis1``, ``axis0_out``, ``blocked``,
``split``) stores the same integers and the same per-output-channel scales
``s_co = max|W_co| / 127``: they dequantize to identical values and differ
only in how the scales are laid out. ``axis0_in`` (TensorRT) scales per input
channel; its bias scale is ``x_scale`` times the largest input-channel scale
of the output channel's group (integers made with that scale).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._params import QParams
from ._quantize import (
    INT32, WEIGHT_QMAX, bias_int32, bias_scales, weight_scales,
)
from ._reference import dequantize, quantize

__all__ = ["QuantizedWeights", "WeightPart", "quantize_weights", "relayout"]


@dataclass(frozen=True)
class WeightPart:
    """One ConvTranspose node's quantized weights (``group`` is that node's attribute)."""

    q: np.ndarray                  # int8, ONNX layout (C_in_part, C_out_part/group, *k)
    scale: np.ndarray              # float32 DequantizeLinear scale (shape per form)
    zero_point: np.ndarray         # int8, the shape of ``scale``
    axis: int | None               # DequantizeLinear axis (None: per tensor)
    block_size: int | None         # DequantizeLinear block_size (blocked form)
    bias_q: np.ndarray | None      # int32 (C_out_part,)
    bias_scale: np.ndarray | None  # float32 (C_out_part,), or () per tensor
    group: int
    in_channels: tuple[int, int]   # [start, stop) of the input channels this node reads
    out_channels: tuple[int, int]  # [start, stop) of the output channels it writes

    @property
    def params(self) -> QParams:
        """This part's W DequantizeLinear parameters."""
        return QParams("W", self.scale, self.zero_point, 1 if self.axis is None else self.axis,
                       self.block_size or 0, "int8")

    def dequantized(self) -> np.ndarray:
        """The float64 weights this part's DequantizeLinear produces."""
        return dequantize(self.q, self.params)


@dataclass(frozen=True)
class QuantizedWeights:
    """A layer's weights in one form: the parts, and the scale per output channel."""

    form: str
    parts: tuple[WeightPart, ...]
    group: int

    def dequantized(self) -> np.ndarray:
        """The whole ``W (C_in, C_out/group, *k)`` as the parts dequantize it (float64)."""
        if self.form != "split":
            return self.parts[0].dequantized()
        return np.concatenate([p.dequantized() for p in self.parts], axis=0)


def _int8(w: np.ndarray, scale: np.ndarray, axis: int | None, block: int | None = None
          ) -> np.ndarray:
    """Symmetric int8 integers of ``w`` at ``scale`` (laid out for ``axis``/``block``)."""
    params = QParams("W", np.asarray(scale, np.float32), None,
                     1 if axis is None else axis, block or 0, "int8")
    q = quantize(w, params)[0]
    return np.clip(q, -WEIGHT_QMAX, WEIGHT_QMAX).astype(np.int8)


def _blocked_scale(s_co: np.ndarray, group: int, shape: tuple[int, ...]) -> np.ndarray:
    """``s_co (C_out,)`` as a blocked scale ``(group, C_out/group, *k)`` (axis 0,
    block_size C_in/group)."""
    per_out = shape[1]
    return np.ascontiguousarray(np.broadcast_to(
        s_co.reshape(group, per_out, *(1,) * (len(shape) - 2)), (group, per_out, *shape[2:])))


def _bias(b: np.ndarray | None, scale: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
    if b is None:
        return None, None
    return bias_int32(b, scale), scale


def quantize_weights(w: np.ndarray, b: np.ndarray | None, group: int, x_scale: np.float32,
                     form: str) -> QuantizedWeights:
    """``W (C_in, C_out/group, *k)`` and ``B (C_out,)`` quantized in ``form`` (module docstring).

    ``x_scale``: the input activation scale (the bias scale is
    ``x_scale * w_scale``; weight scales are raised where the bias would not
    fit int32).
    """
    w = np.asarray(w, np.float64)
    c_in, per_out = w.shape[0], w.shape[1]
    c_out, per_in = per_out * group, c_in // group
    zeros = (0, c_in), (0, c_out)
    if form == "per_tensor":
        s = weight_scales(w, group, per_channel=False, x_scale=x_scale, bias=b)
        q = _int8(w, s, None)
        bq, bs = _bias(b, np.float32(np.float32(x_scale) * s).reshape(()))
        return QuantizedWeights(form, (WeightPart(q, s.reshape(()), np.zeros((), np.int8), None,
                                                  None, bq, bs, group, *zeros),), group)
    if form == "axis0_in":
        s_ci = np.maximum(np.abs(w).reshape(c_in, -1).max(axis=1), 1e-8) / WEIGHT_QMAX
        s_ci = s_ci.astype(np.float32)
        q = _int8(w, s_ci, 0)
        widest = np.repeat(s_ci.reshape(group, per_in).max(axis=1), per_out)
        bs = bias_scales(x_scale, widest, c_out)
        if b is not None:
            bs = np.maximum(bs, (np.abs(np.asarray(b, np.float64)) / INT32.qmax)).astype(np.float32)
        bq, bs_ = _bias(b, bs)
        return QuantizedWeights(form, (WeightPart(q, s_ci, np.zeros(c_in, np.int8), 0, None,
                                                  bq, bs_, group, *zeros),), group)
    s_co = weight_scales(w, group, per_channel=True, x_scale=x_scale, bias=b)
    q = _int8(w, _blocked_scale(s_co, group, w.shape), 0, per_in)   # per output channel
    bq, bs = _bias(b, bias_scales(x_scale, s_co, c_out))
    return relayout(q, s_co, bq, bs, group, form)


def relayout(q: np.ndarray, s_co: np.ndarray, bias_q: np.ndarray | None,
             bias_scale: np.ndarray | None, group: int, form: str) -> QuantizedWeights:
    """Integers ``q (C_in, C_out/group, *k)`` made per output channel with scales
    ``s_co (C_out,)`` (zero point 0), and an int32 bias, laid out in per-output-channel
    ``form`` (``axis1``, ``axis0_out``, ``blocked`` or ``split``): same integers, same
    dequantized values, only the scale layout differs."""
    c_in, per_out = q.shape[0], q.shape[1]
    c_out, per_in = per_out * group, c_in // group
    zeros = (0, c_in), (0, c_out)
    s_co = np.asarray(s_co, np.float32)
    if form == "axis1":
        part = WeightPart(q, s_co, np.zeros(c_out, np.int8), 1, None, bias_q, bias_scale, group,
                          *zeros)
    elif form == "axis0_out":
        part = WeightPart(q, s_co, np.zeros(c_out, np.int8), 0, None, bias_q, bias_scale, group,
                          *zeros)
    elif form == "blocked":
        blocked = _blocked_scale(s_co, group, q.shape)
        part = WeightPart(q, blocked, np.zeros(blocked.shape, np.int8), 0, per_in, bias_q,
                          bias_scale, group, *zeros)
    elif form == "split":
        parts = []
        for g in range(group):
            i0, o0 = g * per_in, g * per_out
            sl = slice(o0, o0 + per_out)
            parts.append(WeightPart(
                np.ascontiguousarray(q[i0:i0 + per_in]), s_co[sl].copy(),
                np.zeros(per_out, np.int8), 1, None,
                None if bias_q is None else bias_q[sl].copy(),
                None if bias_scale is None else bias_scale[sl].copy(), 1, (i0, i0 + per_in),
                (o0, o0 + per_out)))
        return QuantizedWeights(form, tuple(parts), group)
    else:
        raise ValueError(f"relayout: {form!r} is not a per-output-channel form")
    return QuantizedWeights(form, (part,), group)
