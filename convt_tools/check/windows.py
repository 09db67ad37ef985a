"""Crop windows: what a ConvTranspose computes, per intent.

Every ConvTranspose result is a *window* on the natural full output. Per
spatial axis, with ``in`` the input length, ``K = (k-1)*d + 1``::

    L = (in - 1) * s + K                 natural full length
    F[p], 0 <= p < L                     the full transposed convolution (no bias)
    F[p] = 0 for p < 0 or p >= L         zero rows outside (bias still added)
    y[o] = F[o + begin] + bias,  0 <= o < length

so a node is fully described by ``(begin, length)`` per axis
(:class:`Window`). Explicit pads give ``begin = pb``,
``length = L + op - pb - pe`` (VALID: ``pb = pe = 0``); ``auto_pad`` SAME_*
and ``output_shape`` fix the length ``O`` (SAME: ``O = in * s``) and leave
``begin`` to the implementation, which is where runtimes disagree. The
interpretations (:func:`intent_windows`):

* ``tf`` (TensorFlow/Keras): ``T = L - O``; ``begin = T // 2`` if ``T >= 0``
  (odd extra cropped at the END) else ``0`` (zero rows appended at the end).
  For SAME this *is* a Keras ``padding="same"`` layer with
  ``output_padding=None`` (``O = in * s``, whatever the node's
  ``output_padding``), so both ``O`` and ``begin`` come from
  :func:`convt_tools.geometry.keras_output_length` and
  :func:`convt_tools.geometry.keras_crop`, the one source of that rule. For
  ``output_shape`` ``O`` is whatever the file says, usually not a length any
  Keras layer produces, so ``keras_crop`` (which derives the total from
  the layer's kernel, stride, dilation, padding and output_padding) cannot
  give it; there TensorFlow's split (:func:`convt_tools.geometry.tf_split`,
  which ``keras_crop`` uses too) is applied to ``T = L - O`` directly. The
  two agree where ``O = in * s``.
* ``onnx-spec`` (ONNX Operators.md ConvTranspose, opset 11/22 text as
  shipped in onnx 1.23): ``T = L + op - O``; SAME_UPPER: ``begin = T // 2``
  (extra at the end); NOTSET/SAME_LOWER: ``begin = T - T // 2`` (extra at the
  start). ``//`` is floor division, as in ``onnx.reference`` (it matters for
  ``T < 0``, e.g. SAME with ``K < s``).
* ``swapped``: onnx-spec with SAME_UPPER and SAME_LOWER exchanged
  (onnxruntime <= 1.12), or for output_shape the odd extra at the end
  (onnxruntime <= 1.13, TensorRT's parser).
* ``ort`` (a repair intent, :data:`INTENTS`): what the installed onnxruntime
  computes, measured by :mod:`convt_tools.check.probe`, not a formula.

Also here: the same windows in NumPy (:func:`full_output` computes ``F``,
:func:`apply_window` the ``y`` of any rank) and their description in words.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .. import geometry
from ..errors import ConvtError
from ..geometry import Window, explicit_window, tf_split
from .attrs import SAME, ConvTAttrs

__all__ = [
    "INTENTS", "Window", "apply_window", "axis_name", "describe_windows", "full_output", "intent_windows",
    "interpretation_words", "interpretations", "odd_extra_side",
]

INTENTS = ("tf", "onnx-spec", "ort")
_DIM_NAMES = {1: ("W",), 2: ("H", "W"), 3: ("D", "H", "W")}


def axis_name(i: int, rank: int) -> str:
    """``H``/``W`` (2-D), ``W`` (1-D), ``D``/``H``/``W`` (3-D), else ``axis<i>``."""
    names = _DIM_NAMES.get(rank)
    return names[i] if names is not None else f"axis{i}"


def _target_length(attrs: ConvTAttrs, i: int, n: int) -> int | None:
    """The length fixed by output_shape or SAME (``in * s``); None for explicit pads/VALID."""
    if attrs.output_shape is not None:
        return attrs.output_shape[i]
    if attrs.auto_pad in SAME:
        return n * attrs.strides[i]
    return None


def intent_windows(attrs: ConvTAttrs, sizes: Sequence[int], intent: str) -> tuple[Window, ...]:
    """Per-axis windows of the node under ``intent`` (``tf``, ``onnx-spec`` or ``swapped``).

    Explicit pads (any sign) and VALID are unambiguous: ``begin = pb`` (0 for
    VALID), ``length = L + op - pb - pe``. Otherwise ``O`` is fixed and:
    ``tf``: ``T = L - O``, ``begin = T // 2`` if ``T >= 0`` else 0;
    ``onnx-spec``: ``T = L + op - O``, SAME_UPPER ``T // 2``, else ``T - T // 2``;
    ``swapped``: onnx-spec with SAME_UPPER and SAME_LOWER exchanged
    (onnxruntime <= 1.12), or for output_shape the odd extra at the end
    (onnxruntime <= 1.13, TensorRT's parser).
    """
    out = []
    for i, n in enumerate(sizes):
        nat = attrs.natural_length(i, n)
        op = attrs.output_padding[i]
        target = _target_length(attrs, i, n)
        if target is None:
            pb, pe = (0, 0) if attrs.auto_pad == "VALID" else attrs.pads_pair(i)
            out.append(explicit_window(nat, pb, pe, op))
            continue
        if intent == "tf":
            out.append(_tf_window(attrs, i, n, nat, target))
            continue
        t = nat + op - target
        upper = attrs.auto_pad == "SAME_UPPER"
        if intent == "swapped":
            upper = not upper if attrs.auto_pad in SAME else True
        elif intent != "onnx-spec":
            raise ConvtError(f"intent: got {intent!r}; expected one of tf, onnx-spec, ort.",
                             field="intent")
        out.append(Window(geometry.onnx_spec_begin(t, upper=upper), target))
    return tuple(out)


def _tf_window(attrs: ConvTAttrs, i: int, n: int, natural: int, target: int) -> Window:
    """The ``tf`` window on axis ``i``: Keras's own rule for SAME, its split for output_shape."""
    if attrs.output_shape is None:  # SAME: Keras "same" with output_padding None
        k, s, d = attrs.kernel[i], attrs.strides[i], attrs.dilations[i]
        length = geometry.keras_output_length(n, k, s, d, "same", None)
        assert length is not None
        return Window(geometry.keras_crop(k, s, d, "same", None).begin, length)
    return Window(tf_split(natural - target).begin, target)


def interpretations(attrs: ConvTAttrs, sizes: Sequence[int]) -> dict[str, tuple[Window, ...]]:
    """Named windows a runtime might compute for this node at these input sizes."""
    if attrs.output_shape is None and attrs.auto_pad not in SAME:
        return {"onnx-spec": intent_windows(attrs, sizes, "onnx-spec")}
    return {
        "tf": intent_windows(attrs, sizes, "tf"),
        "onnx-spec": intent_windows(attrs, sizes, "onnx-spec"),
        "swapped": intent_windows(attrs, sizes, "swapped"),
    }


def interpretation_words(name: str, attrs: ConvTAttrs) -> str:
    """Who computes the named interpretation, in words."""
    if name == "tf":
        return "TensorFlow/Keras"
    if name == "onnx-spec":
        return "the ONNX spec text (onnx 1.23, opset 22)"
    if attrs.output_shape is not None:
        return "onnxruntime<=1.13 and TensorRT's parser (odd extra at the end)"
    return "onnxruntime<=1.12 (SAME sides swapped)"


def odd_extra_side(windows: Sequence[Window], naturals: Sequence[int]) -> str:
    """``" crops the odd extra at the START (H, W)"`` or ``""`` when no axis has an odd crop."""
    sides: dict[str, list[str]] = {}
    for i, (w, nat) in enumerate(zip(windows, naturals)):
        end = w.crop_end(nat)
        if w.begin >= 0 and end >= 0 and (w.begin + end) % 2:
            sides.setdefault("START" if w.begin > end else "END", []).append(axis_name(i, len(windows)))
    return "; ".join(f"crops the odd extra at the {side} ({', '.join(axes)})"
                     for side, axes in sides.items())


def describe_windows(windows: Sequence[Window], naturals: Sequence[int]) -> str:
    """``"H: crop 1 at start, 0 at end; W: ..."`` (negative crops are zero rows added)."""
    parts = []
    for i, (w, nat) in enumerate(zip(windows, naturals)):
        end = w.crop_end(nat)
        words = []
        words.append(f"crop {w.begin} at start" if w.begin >= 0
                     else f"add {-w.begin} zero row(s) at start")
        words.append(f"crop {end} at end" if end >= 0 else f"add {-end} zero row(s) at end")
        parts.append(f"{axis_name(i, len(windows))} (L={nat}, out={w.length}): " + ", ".join(words))
    return "; ".join(parts)


def full_output(x: np.ndarray, w: np.ndarray, attrs: ConvTAttrs) -> np.ndarray:
    """The natural full output ``F`` (no crop, no bias), float64, any spatial rank.

    ``F[n, g*Cg + o, p] += x[n, g*Ci + c, q] * w[g*Ci + c, o, t]`` at
    ``p = q*s + t*d`` per axis (one tensordot per kernel tap); only used at
    probe sizes.
    """
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    r = x.ndim - 2
    group = attrs.group
    cpg, cog = x.shape[1] // group, w.shape[1]
    lengths = [attrs.natural_length(i, int(x.shape[2 + i])) for i in range(r)]
    full = np.zeros((x.shape[0], cog * group, *lengths))
    for g in range(group):
        xs = x[:, g * cpg:(g + 1) * cpg]
        ws = w[g * cpg:(g + 1) * cpg]
        for tap in np.ndindex(*w.shape[2:]):
            contrib = np.moveaxis(np.tensordot(xs, ws[(slice(None), slice(None)) + tap],
                                               axes=([1], [0])), -1, 1)
            where = tuple(slice(t * attrs.dilations[i],
                                t * attrs.dilations[i] + (x.shape[2 + i] - 1)
                                * attrs.strides[i] + 1, attrs.strides[i])
                          for i, t in enumerate(tap))
            full[(slice(None), slice(g * cog, (g + 1) * cog)) + where] += contrib
    return full


def apply_window(full: np.ndarray, b: np.ndarray | None,
                 windows: Sequence[Window]) -> np.ndarray:
    """``y[..., o] = F[..., o + begin]`` per axis (zero outside ``F``) plus bias; any rank."""
    n, c = full.shape[:2]
    y = np.zeros((n, c, *(w.length for w in windows)), dtype=full.dtype)
    src: list[slice] = []
    dst: list[slice] = []
    for w, natural in zip(windows, full.shape[2:]):
        lo, hi = max(w.begin, 0), min(w.begin + w.length, natural)
        if lo >= hi:
            src = []
            break
        src.append(slice(lo, hi))
        dst.append(slice(lo - w.begin, hi - w.begin))
    if src or not windows:
        y[(slice(None), slice(None)) + tuple(dst)] = full[(slice(None), slice(None)) + tuple(src)]
    if b is not None:
        y = y + np.asarray(b, np.float64).reshape((1, -1) + (1,) * len(windows))
    return y
