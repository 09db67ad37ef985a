"""The int8 NumPy reference: Q/DQ simulated exactly around the float reference.

For a :class:`~._parse.QdqConvTranspose` and a float input ``x``::

    xq  = saturate(rne(x / sx) + zx)            # QuantizeLinear (if the model has it)
    xd  = (xq - zx) * sx                        # DequantizeLinear
    Wd  = (Wq - zw) * sw,  Bd = (Bq - zb) * sb  # per tensor / per axis / blocked
    yf  = ConvTranspose(xd, Wd, Bd)             # convt_tools.reference, float64
    yq  = saturate(rne(yf / sy) + zy)           # the output QuantizeLinear
    y   = (yq - zy) * sy                        # the output DequantizeLinear

``rne`` is round half to even (``numpy.round``), ``saturate`` clips to the
integer type (:data:`~._params.INT_RANGES`). Everything is computed in
float64 from the stored float32 parameters; a runtime computes ``v / s`` and
the accumulation in float32 (or in integers), so where ``v / s`` lies within
:data:`TIE_BAND` of a half-integer the two may round to neighbouring integers.
Those elements are *ties*: counted (``x_ties``, ``y_ties``, ``tie_mask``),
never hidden.

:func:`compare_lsb` states a runtime's output in LSB of the output scale
``sy`` (``|y_rt - y_ref| / sy`` per element) and counts the elements more
than ``tolerance`` LSB away, and how many of the 1-LSB differences sit on a
tie.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..reference import conv_transpose
from ._params import QParams, QuantError
from ._parse import QdqConvTranspose

__all__ = ["LsbComparison", "QuantResult", "TIE_BAND", "compare_lsb", "dequantize",
           "int8_reference", "quantize"]

# |v/s - (k + 1/2)| below this (in LSB) is a rounding tie: float32 and float64 may disagree.
TIE_BAND = 1e-3


def quantize(v: np.ndarray, p: QParams) -> tuple[np.ndarray, int]:
    """``(q, ties)``: QuantizeLinear of ``v`` with ``p`` (int64 array, saturated to
    ``p.dtype``), and how many elements lay within :data:`TIE_BAND` of a half step."""
    s, z = p.expand(tuple(np.shape(v)))
    r = np.asarray(v, np.float64) / s
    ties = int(np.count_nonzero(np.abs(r - np.floor(r) - 0.5) < TIE_BAND))
    q = np.clip(np.round(r) + z, p.qmin, p.qmax)
    return q.astype(np.int64), ties


def dequantize(q: np.ndarray, p: QParams) -> np.ndarray:
    """DequantizeLinear of integers ``q`` with ``p``: ``(q - zp) * scale`` in float64."""
    s, z = p.expand(tuple(np.shape(q)))
    return (np.asarray(q, np.float64) - z) * s


@dataclass(frozen=True, eq=False)
class QuantResult:
    """What the int8 reference computed for one input.

    ``y``: the node's graph output (after the output Q/DQ when there is one,
    else ``y_float``); ``y_float``: ConvTranspose's float output; ``y_int``:
    the output integers (None without an output QuantizeLinear);
    ``x_ties``/``y_ties``: rounding ties at the input and output quantization;
    ``tie_mask``: where the output ties are (None without output Q);
    ``dequantized``: ``y`` went through the output DequantizeLinear (else ``y`` is
    the output integers themselves, or the float output).
    """

    y: np.ndarray
    y_float: np.ndarray
    y_int: np.ndarray | None
    x_ties: int
    y_ties: int
    tie_mask: np.ndarray | None
    out_params: QParams | None
    saturated: int
    dequantized: bool = False


def int8_reference(node: QdqConvTranspose, x: np.ndarray) -> QuantResult:
    """The node's output for float input ``x`` under ONNX Q/DQ semantics (module doc).

    Raises :class:`QuantError` when the node's parameters do not fit its
    tensors (the model has no defined meaning then).
    """
    x = np.asarray(x, np.float64)
    x_ties = 0
    if node.x_quantize is not None:
        xq, x_ties = quantize(x, node.x_quantize)
        x = dequantize(xq, node.x) if node.x is not None else xq.astype(np.float64)
    elif node.x is not None:   # X's DequantizeLinear reads integers given to the graph
        x = dequantize(x, node.x)
    w = node.weight
    if w is None:
        raise QuantError(f"{node.name}: W is not a constant (or a DequantizeLinear of one); "
                         f"the reference needs it.", field="model")
    a = node.attrs
    yf = conv_transpose(x, w, node.bias, strides=a.strides, dilations=a.dilations,
                        pads=a.explicit_pads(x.shape[2:]), output_padding=a.output_padding,
                        group=a.group)
    if node.y is None:
        return QuantResult(yf, yf, None, x_ties, 0, None, None, 0)
    s, z = node.y.expand(yf.shape)
    r = yf / s
    tie_mask = np.abs(r - np.floor(r) - 0.5) < TIE_BAND
    raw = np.round(r) + z
    yq = np.clip(raw, node.y.qmin, node.y.qmax)
    saturated = int(np.count_nonzero(raw != yq))
    out = node.y_dequantize if node.y_dequantize is not None else node.y
    y = dequantize(yq, out) if node.y_dequantize is not None else yq
    return QuantResult(y, yf, yq.astype(np.int64), x_ties, int(np.count_nonzero(tie_mask)),
                       tie_mask, out, saturated, node.y_dequantize is not None)


@dataclass(frozen=True)
class LsbComparison:
    """A runtime's output against the int8 reference, in LSB of the output scale.

    ``max_lsb``: the largest ``|y_rt - y_ref| / scale``; ``over``: elements
    more than ``tolerance`` LSB away; ``off_by_one``: elements 0.5-1.5 LSB
    away, ``off_by_one_at_ties`` of them on a reference tie; ``ties``: output
    ties of the reference; ``worst_index``: where ``max_lsb`` is.
    """

    max_lsb: float
    tolerance: float
    over: int
    off_by_one: int
    off_by_one_at_ties: int
    ties: int
    elements: int
    worst_index: tuple[int, ...] | None
    scale: float

    @property
    def passed(self) -> bool:
        return self.over == 0

    def describe(self) -> str:
        """One line: the error and the tie counts, in LSB of the output scale."""
        where = f" at {list(self.worst_index)}" if self.worst_index is not None else ""
        return (f"max {self.max_lsb:.3g} LSB{where} (tolerance {self.tolerance:g} LSB of the "
                f"output scale {self.scale:.6g}); {self.over} of {self.elements} element(s) over; "
                f"{self.off_by_one} off by one LSB ({self.off_by_one_at_ties} on rounding ties); "
                f"{self.ties} reference tie(s)")


def compare_lsb(y_runtime: np.ndarray, ref: QuantResult, tolerance: float = 1.0
                ) -> LsbComparison:
    """``y_runtime`` (the node's graph output: dequantized floats, or the output integers
    when the node ends at its QuantizeLinear) against ``ref`` in LSB (module doc).

    Needs an output QuantizeLinear in the node (``ref.out_params``); raises
    :class:`QuantError` otherwise, or when the shapes differ.
    """
    if ref.out_params is None:
        raise QuantError("comparison in LSB needs an output QuantizeLinear; compare floats "
                         "instead.", field="model")
    y_rt = np.asarray(y_runtime, np.float64)
    if y_rt.shape != ref.y.shape:
        raise QuantError(f"output shape {list(y_rt.shape)} differs from the reference's "
                         f"{list(ref.y.shape)}.", field="model")
    s, _ = ref.out_params.expand(ref.y.shape)
    err = np.abs(y_rt - ref.y) / (s if ref.dequantized else 1.0)
    err = np.where(np.isnan(err), np.inf, err)
    n = int(err.size)
    worst = tuple(int(i) for i in np.unravel_index(int(np.argmax(err)), err.shape)) if n else None
    one = (err > 0.5) & (err < 1.5)
    at_ties = one & ref.tie_mask if ref.tie_mask is not None else np.zeros_like(one)
    return LsbComparison(float(err.max()) if n else 0.0, float(tolerance),
                         int(np.count_nonzero(err > tolerance)), int(np.count_nonzero(one)),
                         int(np.count_nonzero(at_ties)), ref.y_ties, n, worst,
                         float(np.max(s)) if np.size(s) else 0.0)
