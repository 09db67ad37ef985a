"""Per-axis plan of a TFLite ``TRANSPOSE_CONV`` / ``CONV_3D_TRANSPOSE`` (standard library only).

Facts of the LiteRT interpreter (ai-edge-litert 2.3.0; fixtures/tflite and
tests/test_tflite_export.py measure them), per spatial axis with input length
``in``, dense kernel ``K`` (dilation already expressed by zero taps, so
``d = 1``), stride ``s``, natural length ``L = (in - 1) * s + K`` and the
requested output length ``n`` (the int32 ``output_shape`` input):

* the kernel's prepare step recomputes ``in`` from ``n`` and refuses a
  mismatch (``computed_input_height != SizeOfDimension(input, 1)``):
  VALID needs ``(n - K) // s + 1 == in``, i.e. ``L <= n <= L + s - 1``;
  SAME needs ``ceil(n / s) == in``, i.e. ``(in - 1) * s < n <= in * s``;
* output row ``o`` is natural row ``o + begin`` with ``begin = 0`` (VALID)
  or ``max(0, (L - n) // 2)`` (SAME: ``floor(total / 2)`` before); rows
  beyond ``L`` are zeros, and the fused bias and activation cover every row.

A Keras/torch window ``(begin, length)`` (:class:`~convt_tools.geometry.Window`
of the dense kernel's natural output) is then, per axis: zero taps before the
kernel for a negative ``begin`` and after it for an end beyond ``L + s - 1``
(exact zeros, as :func:`~convt_tools.geometry.express`), then either SAME
with ``n = length`` when its ``begin`` is the window's on EVERY axis (one
operator), or VALID with ``n = length`` when ``begin = 0`` and ``n >= L``
(one operator; the layer's own padding wins where both are exact), else
VALID with ``n = max(L, begin + length)`` and one constant ``STRIDED_SLICE``
keeping ``[begin, begin + length)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from ..geometry import Window, ceil_div

__all__ = ["AxisPlan", "ConvPlan", "plan_axes", "same_begin"]


@dataclass(frozen=True)
class AxisPlan:
    """One axis: zero taps to add to the dense kernel, the conv's length and the kept window."""

    taps_before: int
    taps_after: int
    valid_length: int       # n under VALID
    same_ok: bool           # SAME with n = window length keeps exactly the window
    valid_ok: bool          # VALID with n = window length keeps exactly the window
    begin: int              # rows cut at the start after a VALID conv
    length: int             # window length (the output length)


@dataclass(frozen=True)
class ConvPlan:
    """All axes: ``padding`` ("SAME"/"VALID"), the conv lengths and the slice (or None)."""

    axes: tuple[AxisPlan, ...]
    padding: str

    @property
    def conv_lengths(self) -> tuple[int, ...]:
        if self.padding == "SAME":
            return tuple(a.length for a in self.axes)
        return tuple(a.valid_length for a in self.axes)

    @property
    def sliced(self) -> bool:
        return self.padding == "VALID" and any(
            a.begin or a.begin + a.length != a.valid_length for a in self.axes)


def same_begin(in_len: int, k: int, s: int, n: int) -> int | None:
    """The first natural row SAME keeps for output length ``n``; None if SAME refuses ``n``."""
    if ceil_div(n, s) != in_len:
        return None
    return max(0, ((in_len - 1) * s + k - n) // 2)


def _axis(in_len: int, k: int, s: int, window: Window) -> AxisPlan:
    zb = max(-window.begin, 0)
    begin = window.begin + zb
    k += zb
    natural = (in_len - 1) * s + k
    end = begin + window.length
    za = max(end - (natural + s - 1), 0)
    k += za
    natural += za
    same = same_begin(in_len, k, s, window.length) == begin
    valid = begin == 0 and natural <= window.length
    return AxisPlan(zb, za, max(natural, end), same, valid, begin, window.length)


def plan_axes(in_lens: Sequence[int], kernel: Sequence[int], strides: Sequence[int],
              windows: Sequence[Window], prefer: str = "VALID") -> ConvPlan:
    """The plan of the module docstring (dense kernel lengths ``kernel``, dilation 1).

    Where both SAME and VALID keep the window with one operator (e.g. a kernel
    smaller than the stride), ``prefer`` decides: the Keras layer's own padding,
    as TF's converter writes it (fixtures/tflite).
    """
    axes = tuple(_axis(i, k, s, w) for i, k, s, w in zip(in_lens, kernel, strides, windows))
    exact = {"SAME": all(a.same_ok for a in axes), "VALID": all(a.valid_ok for a in axes)}
    other = "VALID" if prefer == "SAME" else "SAME"
    for padding in (prefer, other):
        if exact[padding]:
            return ConvPlan(axes, padding)
    return ConvPlan(axes, "VALID")
