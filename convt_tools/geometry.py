"""Per-axis geometry of a transposed convolution: the one source of these facts.

Every module that needs a length, a crop or a pads list gets it here: the
spec's crop plan, the exporter's ``pads``, the reference's crop, ``check``'s
windows and ``repair``'s plan. None of them re-derives ``K``, ``L``, a crop
total or a pads list. Standard library only (``convt shape`` stays fast), and
rank-free: everything is per spatial axis; an N-d operation is a tuple of axes.

Notation, per spatial axis: ``in`` input length, ``k`` kernel size, ``s``
stride, ``d`` dilation, ``op`` Keras ``output_padding`` (``None`` = not given).

Lengths (functions)::

    effective_kernel(k, d)              K = (k - 1) * d + 1
    natural_length(in, k, s, d)         L = (in - 1) * s + K        (uncropped output)
    keras_output_length(in, k, s, d, padding, op)   Keras 3's O:
        valid, op None : in * s + max(K - s, 0)
        valid, op      : (in - 1) * s + K + op
        same,  op None : in * s
        same,  op      : (in - 1) * s + K % 2 + op
    onnx_output_length(in, k, s, d, pb, pe, op)     ONNX ConvTranspose, explicit pads:
        L + op - pb - pe

Concepts (one frozen dataclass each):

* :class:`AxisCrop` ``(begin, end, extend)``: how Keras turns ``L`` into ``O``
  on one axis. ``total = L - O = begin + end - extend`` never depends on
  ``in``. :func:`tf_split` is THE TensorFlow split of a total:
  ``total >= 0`` -> ``begin = total // 2``, ``end = total - begin`` (the odd
  extra row cropped at the END); ``total < 0`` -> ``extend = -total`` zero
  rows appended at the END (bias and activation then apply to them).
  :func:`keras_crop` ``(k, s, d, padding, op)`` is the crop of a Keras layer's
  axis (``crop_for_axis`` is its historical name). For Keras ``extend`` is
  always ``<= s - 1``.
* :class:`Window` ``(begin, length)``: the part of the natural output an axis
  keeps: output row ``o`` is natural row ``o + begin`` (rows outside
  ``[0, L)`` are zeros, before bias). ``begin < 0`` or ``begin + length > L``
  mean zero rows added at the start / end. ``AxisCrop.window(L)`` is Keras's
  window; :func:`explicit_window` ``(L, pb, pe, op)`` an ONNX node's with
  explicit pads.
* :class:`OnnxAxis` ``(pad_begin, pad_end, output_padding, taps_before,
  taps_after)``: a window expressed as ONNX ConvTranspose attributes
  (explicit non-negative pads, ``auto_pad`` NOTSET, no ``output_shape``),
  with zero kernel taps prepended/appended where pads alone cannot express it
  (a negative ``begin``, or an extension beyond ``s - 1``). Zero taps add exact
  zeros, so a kernel padded with them reproduces the window exactly.
  :func:`express` ``(window, L, s, d)`` is the general rule (used by repair)::

      zb = ceil(max(-begin, 0) / d)       taps_before
      pb = begin + zb * d                 >= 0
      E  = L + zb*d - pb - length
      E >= 0          -> pad_end = E, output_padding = 0
      0 < -E <= s-1   -> pad_end = 0, output_padding = -E
      -E > s-1        -> taps_after ze = ceil((-E - (s-1)) / d), then E += ze*d

  ``AxisCrop.onnx()`` is the Keras special case (``pads = (begin, end)``,
  ``output_padding = extend``, no taps); the single-source claim, tested by
  ``tests/test_geometry.py``, is ``express(c.window(L), L, s, d) == c.onnx()``
  for every Keras crop ``c``.

N-d attribute lists (functions over a sequence of :class:`OnnxAxis`, axis
order = spatial order): :func:`onnx_pads` gives ONNX ``pads``
``[b_0, ..., b_{n-1}, e_0, ..., e_{n-1}]``; :func:`onnx_output_padding` the
``output_padding`` list, or ``None`` when every entry is 0 (the attribute is
then omitted); :func:`padded_kernel_shape` the kernel shape after zero taps.

* :class:`PortableAxis` ``(pad, output_padding, slice_begin, slice_end)``:
  the portable export form of an :class:`AxisCrop`, for consumers that
  refuse asymmetric pads (onnxruntime's CUDA EP falls back to CPU, onnx2torch
  refuses, older TensorRT / OpenCV dnn). :func:`portable_split` ``(crop)``::

      pad = min(begin, end)            symmetric ConvTranspose pads
      output_padding = extend          only where Keras extends
      slice_begin = begin - pad        rows then cut at the start ...
      slice_end   = end - pad          ... and at the end by ONE constant Slice

  The node's length is ``L + extend - 2*pad``; the Slice keeps
  ``[slice_begin, length - slice_end)``, i.e. Slice ``starts = slice_begin``,
  ``ends = -slice_end`` (``INT64_MAX`` when 0): constants that do not depend on
  ``in``, so symbolic lengths stay exact. The kept window is
  ``(pad + slice_begin, L + extend - begin - end)`` = ``crop.window(L)``
  (tested). For Keras crops ``end - begin`` is 0 or 1 (the odd extra at the
  END), so ``slice_begin`` is 0 and a Slice exists only on odd-total axes.
  :func:`portable_slice` gives the Slice's ``(starts, ends, axes)`` over the
  axes that need it, or ``None`` (a single ConvTranspose).

Validation: :func:`keras_output_length` and :func:`keras_crop` check their
arguments as Keras does and raise :class:`~convt_tools.errors.ConvtError`
naming the field; the other functions take already-validated integers.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any, Sequence, overload

from .errors import fail

__all__ = [
    "PADDINGS", "AxisCrop", "OnnxAxis", "Window", "crop_for_axis", "effective_kernel",
    "explicit_window", "express", "keras_crop", "keras_output_length", "natural_length",
    "onnx_output_length", "onnx_spec_begin", "onnx_output_padding", "onnx_pads", "padded_kernel_shape",
    "PortableAxis", "ceil_div", "keras_crops", "keras_total_exists", "portable_slice", "portable_split",
    "tf_split",
    "torch_express", "torch_output_length", "zero_taps",
]

PADDINGS = ("valid", "same")


def _is_int(value: Any) -> bool:
    """An integer (Python or NumPy), not a bool."""
    if type(value) is int:
        return True
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


# --------------------------------------------------------------------- lengths

def effective_kernel(k: int, d: int) -> int:
    """``K = (k - 1) * d + 1``."""
    return (k - 1) * d + 1


def natural_length(length: int, k: int, s: int, d: int) -> int:
    """``L = (in - 1) * s + K``: the uncropped transposed-convolution length."""
    return (length - 1) * s + effective_kernel(k, d)


def torch_output_length(length: int, k: int, s: int, d: int, p: int, op: int) -> int:
    """torch's ``O = L - 2p + op`` (symmetric ``padding`` p)."""
    return natural_length(length, k, s, d) - 2 * p + op


def onnx_output_length(length: int, k: int, s: int, d: int, pad_begin: int, pad_end: int,
                       output_padding: int) -> int:
    """ONNX ConvTranspose with explicit pads: ``L + op - pb - pe``."""
    return natural_length(length, k, s, d) + output_padding - pad_begin - pad_end


def _check_axis(k: int, s: int, d: int, padding: str, op: int | None) -> None:
    """The per-axis arguments Keras accepts (public helpers validate, never guess)."""
    for name, v in (("kernel_size", k), ("strides", s), ("dilation_rate", d)):
        if not _is_int(v) or v < 1:
            raise fail(name, v, "expected an integer >= 1")
    if padding not in PADDINGS:
        raise fail("padding", padding, "expected 'valid' or 'same'")
    if op is not None and (not _is_int(op) or not 0 <= op < s):
        raise fail("output_padding", op, f"expected None or an integer from 0 to stride-1 = {s - 1}")


@overload
def keras_output_length(length: int, k: int, s: int, d: int,
                        padding: str, op: int | None) -> int: ...
@overload
def keras_output_length(length: int | None, k: int, s: int, d: int,
                        padding: str, op: int | None) -> int | None: ...
def keras_output_length(length: int | None, k: int, s: int, d: int,
                        padding: str, op: int | None) -> int | None:
    """Keras 3's output length for one spatial axis (``None`` stays ``None``).

    ``valid``: ``in*s + max(K-s, 0)`` if ``op`` is None, else ``(in-1)*s + K + op``;
    ``same``: ``in*s`` if ``op`` is None, else ``(in-1)*s + K%2 + op``.

    ``in = 0`` is legal (Keras's ``compute_output_shape`` and the TensorFlow
    backend follow these formulas there); the result can then be negative,
    a shape Keras cannot build (callers refuse it).
    """
    _check_axis(k, s, d, padding, op)
    if length is None:
        return None
    if not _is_int(length) or length < 0:
        raise fail("input length", length, "expected an integer >= 0 or None")
    K = effective_kernel(k, d)
    if padding == "valid":
        return length * s + max(K - s, 0) if op is None else (length - 1) * s + K + op
    return length * s if op is None else (length - 1) * s + K % 2 + op


# --------------------------------------------------------------------- windows

@dataclass(frozen=True)
class Window:
    """Output row ``o`` is natural row ``o + begin``; ``length`` output rows."""

    begin: int
    length: int

    def crop_end(self, natural: int) -> int:
        """Rows of ``[0, L)`` cut at the end (negative: zero rows appended)."""
        return natural - self.begin - self.length


def explicit_window(natural: int, pad_begin: int, pad_end: int, output_padding: int) -> Window:
    """The window of an ONNX node with explicit pads: ``(pb, L + op - pb - pe)``."""
    return Window(pad_begin, natural + output_padding - pad_begin - pad_end)


def onnx_spec_begin(total: int, *, upper: bool) -> int:
    """``begin`` the ONNX spec text gives ``auto_pad`` SAME_* for ``T = L + op - O``.

    SAME_UPPER: ``T // 2`` (odd extra at the end); SAME_LOWER (and NOTSET with
    ``output_shape``): ``T - T // 2`` (odd extra at the start). Floor division,
    as ``onnx.reference`` (it matters for ``T < 0``).
    """
    return total // 2 if upper else total - total // 2


# ------------------------------------------------------------------ Keras crop

@dataclass(frozen=True)
class AxisCrop:
    """Where one spatial axis is cropped or extended, relative to ``L``.

    ``begin``/``end``: rows cropped from the natural full-length output at
    the start/end (ONNX ``pads``); ``extend``: zero rows appended at the end
    before bias and activation (ONNX ``output_padding``). At most one of
    ``begin + end`` and ``extend`` is non-zero.
    """

    begin: int
    end: int
    extend: int

    @property
    def total(self) -> int:
        """``L - O``: positive when cropping, negative when extending."""
        return self.begin + self.end - self.extend

    def window(self, natural: int) -> Window:
        """The window kept on an axis of natural length ``L``: ``(begin, L - total)``."""
        return Window(self.begin, natural - self.total)

    def onnx(self) -> OnnxAxis:
        """As ONNX attributes: ``pads = (begin, end)``, ``output_padding = extend``."""
        return OnnxAxis(self.begin, self.end, self.extend, 0, 0)


def tf_split(total: int) -> AxisCrop:
    """TensorFlow's split of a crop total ``T = L - O``.

    ``T >= 0``: ``begin = T // 2``, ``end = T - begin`` (odd extra at the END);
    ``T < 0``: nothing cropped, ``extend = -T`` zero rows at the END.
    """
    if total >= 0:
        return AxisCrop(total // 2, total - total // 2, 0)
    return AxisCrop(0, 0, -total)


def keras_crop(k: int, s: int, d: int, padding: str, op: int | None) -> AxisCrop:
    """The crop of one Keras axis: ``tf_split(L - O)``; ``L - O`` does not depend on ``in``."""
    # L - O evaluated at in = 1 (the in-terms cancel for every case).
    out = keras_output_length(1, k, s, d, padding, op)
    assert out is not None
    return tf_split(effective_kernel(k, d) - out)


crop_for_axis = keras_crop


def keras_total_exists(k: int, s: int, d: int, total: int) -> bool:
    """Whether some Keras ``padding`` (valid/same) and ``output_padding`` (None, 0..s-1)
    crop an axis by ``total = L - O``. Keras's totals (``K`` effective kernel):
    ``min(K - s, 0)`` (valid), ``-op`` (valid, op), ``K - s`` (same) and
    ``K - K % 2 - op`` (same, op); :func:`keras_crop` over every choice, in closed form."""
    K = effective_kernel(k, d)
    return (total == min(K - s, 0) or -(s - 1) <= total <= 0 or total == K - s
            or K - K % 2 - (s - 1) <= total <= K - K % 2)


def keras_crops(kernel_size: Sequence[int], strides: Sequence[int], dilations: Sequence[int],
                padding: str, output_padding: Sequence[int | None] | None) -> tuple[AxisCrop, ...]:
    """:func:`keras_crop` on every spatial axis (``output_padding`` None: None on each)."""
    ops = output_padding or (None,) * len(kernel_size)
    return tuple(keras_crop(k, s, d, padding, o)
                 for k, s, d, o in zip(kernel_size, strides, dilations, ops))


# ------------------------------------------------------------ ONNX expression

@dataclass(frozen=True)
class OnnxAxis:
    """One axis as explicit ONNX ConvTranspose attributes, plus zero kernel taps."""

    pad_begin: int
    pad_end: int
    output_padding: int
    taps_before: int
    taps_after: int


def express(window: Window, natural: int, s: int, d: int) -> OnnxAxis:
    """Express ``window`` on an axis of natural length ``natural`` (module doc rule)."""
    zb = -(-max(-window.begin, 0) // d)
    pb = window.begin + zb * d
    e = natural + zb * d - pb - window.length
    ze = 0
    if -e > s - 1:
        ze = -(-(-e - (s - 1)) // d)
        e += ze * d
    return OnnxAxis(pb, max(e, 0), max(-e, 0), zb, ze)


def torch_express(k: int, s: int, d: int, p: int, op: int) -> OnnxAxis:
    """torch's window ``(p, L - 2p + op)`` through :func:`express`, at ``in = 1``
    (``L = K``; the expression does not depend on ``in``)."""
    nat = effective_kernel(k, d)
    return express(explicit_window(nat, p, p, op), nat, s, d)


def ceil_div(a: int, b: int) -> int:
    """``ceil(a / b)`` in integers (``b > 0``)."""
    return -(-a // b)


def zero_taps(rows: int, d: int) -> int:
    """Zero kernel taps that cover ``rows`` zero rows at dilation ``d``: ``ceil(max(rows, 0) / d)``."""
    return ceil_div(max(rows, 0), d)


def onnx_pads(axes: Sequence[OnnxAxis]) -> list[int]:
    """ONNX ``pads``: all begins, then all ends (spatial axis order)."""
    return [a.pad_begin for a in axes] + [a.pad_end for a in axes]


def onnx_output_padding(axes: Sequence[OnnxAxis]) -> list[int] | None:
    """ONNX ``output_padding`` per axis, or ``None`` when all are 0 (attribute omitted)."""
    op = [a.output_padding for a in axes]
    return op if any(op) else None


def padded_kernel_shape(kernel: Sequence[int], axes: Sequence[OnnxAxis]) -> list[int]:
    """Spatial kernel shape after the zero taps: ``k + taps_before + taps_after``."""
    return [int(k) + a.taps_before + a.taps_after for k, a in zip(kernel, axes)]


# ------------------------------------------------------------- portable form

INT64_MAX = 2**63 - 1


@dataclass(frozen=True)
class PortableAxis:
    """One axis in the portable form: symmetric pads, then a constant one-sided Slice."""

    pad: int
    output_padding: int
    slice_begin: int
    slice_end: int

    def onnx(self) -> OnnxAxis:
        """The ConvTranspose part: ``pads = (pad, pad)``, ``output_padding``, no taps."""
        return OnnxAxis(self.pad, self.pad, self.output_padding, 0, 0)

    @property
    def sliced(self) -> bool:
        """Whether the Slice cuts this axis."""
        return bool(self.slice_begin or self.slice_end)


def portable_split(crop: AxisCrop) -> PortableAxis:
    """``pad = min(begin, end)``; the rest of the crop goes to the Slice (module doc)."""
    pad = min(crop.begin, crop.end)
    return PortableAxis(pad, crop.extend, crop.begin - pad, crop.end - pad)


def portable_slice(axes: Sequence[PortableAxis], first_axis: int
                   ) -> tuple[list[int], list[int], list[int]] | None:
    """ONNX ``Slice`` ``(starts, ends, axes)`` over the sliced spatial axes, or ``None``.

    Spatial axis ``i`` is tensor axis ``first_axis + i`` (2 for NC...).
    ``ends = -slice_end`` (``INT64_MAX`` for no cut at the end): constants,
    independent of the input length.
    """
    picked = [(i, a) for i, a in enumerate(axes) if a.sliced]
    if not picked:
        return None
    return ([a.slice_begin for _, a in picked],
            [-a.slice_end if a.slice_end else INT64_MAX for _, a in picked],
            [first_axis + i for i, _ in picked])
