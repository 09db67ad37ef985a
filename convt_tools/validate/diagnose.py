"""Comparison of the model's output with the reference, and diagnosis of a mismatch.

:func:`compare` is the verdict: every element within
``|got - ref| <= atol + rtol * |ref|`` (a NaN where the reference is not NaN
fails), with the max abs/rel error and the index of the worst violation.

On a mismatch the messages say what differs and the hints which known
mistake explains it, most specific first:

- shapes (:func:`shape_message`): the per-axis difference; a height/width
  difference is a crop/extension (pads or ``output_padding``), a channel
  difference swapped kernel channels, a permutation the NCHW/NHWC layout;
- values (:func:`diagnose`): the model equals the reference shifted by
  1 or 2 along height and/or width (the crop on the wrong side), or the
  reference recomputed with a known mistake (kernel flipped spatially,
  kernel in/out channels or height/width swapped, bias missing, activation
  missing); failing those, where the bad elements are (only border
  rows/columns: crop side or ``output_padding``; a constant offset per
  output channel: the bias).
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass

import numpy as np

from ..reference import keras_conv_transpose
from ..spec import Conv2DTransposeSpec, Layout, format_shape
from .tolerance import Tolerance


@dataclass(frozen=True)
class Comparison:
    """Max abs/rel error, the index of the worst violation, and whether all are in tolerance."""

    max_abs: float
    max_rel: float
    worst: tuple[int, ...] | None
    ok: bool


def compare(got: np.ndarray, ref: np.ndarray, tol: Tolerance) -> Comparison:
    """Max abs/rel error, the index of the worst violation, and the verdict.

    Equal values (same-signed infinities included) and NaN against NaN count
    as no difference; NaN against a number, or inf against anything else, as
    an infinite one.
    """
    if not ref.size:
        return Comparison(0.0, 0.0, None, True)
    got64 = got.astype(np.float64)
    same = (got64 == ref) | (np.isnan(got64) & np.isnan(ref))
    with np.errstate(invalid="ignore"):
        diff = np.abs(got64 - ref)
    diff = np.where(same, 0.0, np.where(np.isnan(diff), np.inf, diff))
    excess = diff - (tol.atol + tol.rtol * np.abs(np.nan_to_num(ref)))
    worst = tuple(int(i) for i in np.unravel_index(int(np.argmax(excess)), ref.shape))
    nonzero = ref != 0
    with np.errstate(invalid="ignore"):
        rel = np.nan_to_num(diff[nonzero] / np.abs(ref[nonzero]), nan=np.inf)
    return Comparison(float(diff.max()), float(rel.max()) if rel.size else 0.0, worst,
                      bool(excess.max() <= 0))


def _axis_names(spec: Conv2DTransposeSpec) -> tuple[str, ...]:
    return spec.layout.dim_names()


def shape_message(spec: Conv2DTransposeSpec, got: tuple[int, ...],
                  ref: tuple[int, ...]) -> tuple[str, list[str]]:
    """(message, hints) for output shapes that differ: per axis, and which mistake fits."""
    if len(got) != len(ref):
        return (f"shape differs: model gives rank {len(got)} {format_shape(got)}, Keras "
                f"gives {format_shape(ref)}", ["the model output is not in the Keras layout"])
    parts, hints = [], []
    for name, g, r in zip(_axis_names(spec), got, ref):
        if g != r:
            parts.append(f"{name} {g} vs {r} ({g - r:+d})")
            if name in spec.layout.axis_names:
                hints.append(f"{name}: the crop/extension differs by {abs(g - r)} "
                             f"(pads or output_padding; Keras: {_crop_text(spec, name)})")
            elif name == "channels":
                hints.append("channel count differs: kernel in/out channels swapped?")
    if not spec.layout.channels_first and sorted(got) == sorted(ref) and got != ref:
        hints.append(f"same dims in another order: output layout "
                     f"{_letters(Layout(spec.rank, 'channels_first'))} instead of "
                     f"{_letters(spec.layout)}?")
    return (f"shape differs: model gives {format_shape(got)}, Keras gives {format_shape(ref)} "
            f"({'; '.join(parts)})", hints)


def _crop_text(spec: Conv2DTransposeSpec, axis: str) -> str:
    c = spec.crop_plan()[spec.layout.axis_names.index(axis)]
    if c.extend:
        return f"no crop, {c.extend} zero row(s) appended at the end"
    return f"crop {c.begin} at the start, {c.end} at the end"


def _letters(layout: Layout) -> str:
    """``NHWC`` / ``NCDHW`` / ``NLC``."""
    return layout.letters().replace(",", "")


def _shifted_pair(got: np.ndarray, ref: np.ndarray, axis: int,
                  delta: int) -> tuple[np.ndarray, np.ndarray]:
    """``got[o]`` against ``ref[o + delta]`` along ``axis``, on the overlap."""
    n = ref.shape[axis]
    g = np.take(got, range(max(0, -delta), n - max(0, delta)), axis=axis)
    r = np.take(ref, range(max(0, delta), n - max(0, -delta)), axis=axis)
    return g, r


def _shift_hint(spec: Conv2DTransposeSpec, got: np.ndarray, ref: np.ndarray,
                tol: Tolerance) -> str | None:
    """Does the model equal the reference shifted along some spatial axes (crop side)?"""
    axes, names = spec.spatial_axes, spec.layout.axis_names
    shifts = [d for d in itertools.product((0, 1, -1, 2, -2), repeat=len(axes)) if any(d)]
    for deltas in sorted(shifts, key=lambda d: sum(map(abs, d))):
        if any(ref.shape[a] <= abs(d) + 1 for a, d in zip(axes, deltas)):
            continue
        g, r = got, ref
        for a, d in zip(axes, deltas):
            g, r = _shifted_pair(g, r, a, d)
        if compare(g, r, tol).ok:
            moved = [f"{d:+d} along {name}" for d, name in zip(deltas, names) if d]
            keras = "; ".join(f"{name}: {_crop_text(spec, name)}"
                              for d, name in zip(deltas, names) if d)
            return (f"the model equals the Keras output shifted by {' and '.join(moved)}: "
                    f"the crop is on the wrong side (pads begin/end swapped? Keras {keras})")
    return None


def _alternatives(spec: Conv2DTransposeSpec, kernel: np.ndarray,
                  bias: np.ndarray | None) -> list[tuple[str, Conv2DTransposeSpec, np.ndarray,
                                                         np.ndarray | None]]:
    """Known mistakes as (description, spec, kernel, bias) to reproduce with the reference."""
    r = spec.rank
    perm = ", ".join(map(str, spec.layout.kernel_to_onnx))
    onnx_w = "(C_in, filters, " + spec.layout.kernel_layout[1:].split(", filters")[0] + ")"
    alts = [(f"the kernel is flipped spatially (ConvTranspose takes the Keras kernel unflipped: "
             f"W = kernel.transpose({perm}))", spec, np.flip(kernel, axis=tuple(range(r))), bias)]
    if kernel.shape[-2] == kernel.shape[-1]:
        alts.append((f"the kernel's in/out channel axes are swapped (W must be "
                     f"kernel.transpose({perm}), i.e. {onnx_w})",
                     spec, np.swapaxes(kernel, -1, -2), bias))
    if r == 2 and kernel.shape[0] == kernel.shape[1] and kernel.shape[0] > 1:
        alts.append(("the kernel's height/width axes are swapped", spec,
                     kernel.transpose(1, 0, 2, 3), bias))
    if bias is not None and np.any(bias):
        alts.append(("the bias is missing", dataclasses.replace(spec, use_bias=False),
                     kernel, None))
    if spec.activation != "linear":
        alts.append((f"the activation {spec.activation!r} is missing",
                     dataclasses.replace(spec, activation="linear"), kernel, bias))
    return alts


def diagnose(spec: Conv2DTransposeSpec, x: np.ndarray, kernel: np.ndarray,
             bias: np.ndarray | None, got: np.ndarray, ref: np.ndarray,
             tol: Tolerance) -> list[str]:
    """Likely causes of a value mismatch, most specific first."""
    hints = []
    shifted = _shift_hint(spec, got, ref, tol)
    if shifted:
        hints.append(shifted)
    for text, alt_spec, k, b in _alternatives(spec, kernel, bias):
        alt = keras_conv_transpose(alt_spec, x, k, b)
        if alt.shape == got.shape and compare(got, alt, tol).ok:
            hints.append(f"the model equals the reference when {text}")
    if not hints:
        hints.extend(_where_hints(spec, got, ref, tol))
    return hints


def _where_hints(spec: Conv2DTransposeSpec, got: np.ndarray, ref: np.ndarray,
                 tol: Tolerance) -> list[str]:
    """Where the bad elements are: border rows/columns only, or a per-channel offset."""
    bad = np.abs(got.astype(np.float64) - ref) > tol.atol + tol.rtol * np.abs(ref)
    hints = []
    ndim = ref.ndim
    for axis, name in zip(spec.spatial_axes, spec.layout.axis_names):
        per = bad.any(axis=tuple(a for a in range(ndim) if a != axis))
        idx = np.flatnonzero(per)
        n = per.size
        if idx.size and idx.size <= 2 and all(i < 2 or i >= n - 2 for i in idx):
            hints.append(f"only {name} position(s) {', '.join(map(str, idx))} of {n} differ: "
                         f"first/last rows differ -> crop side or output_padding "
                         f"(Keras: {_crop_text(spec, name)})")
    ch = spec.channels_axis % ndim
    d = got.astype(np.float64) - ref
    spread = d.max(axis=tuple(a for a in range(ndim) if a != ch)) - \
        d.min(axis=tuple(a for a in range(ndim) if a != ch))
    if bad.any() and np.all(spread <= 2 * (tol.atol + tol.rtol * np.abs(ref).max())):
        hints.append("the error is a constant offset per output channel: the bias is wrong "
                     "or missing")
    return hints


def value_message(spec: Conv2DTransposeSpec, cmp: Comparison, got: np.ndarray,
                  ref: np.ndarray) -> str:
    """One line: max abs/rel error and the worst element, model vs Keras."""
    where = cmp.worst
    layout = _letters(spec.layout)
    return (f"values differ: max abs error {cmp.max_abs:.3g} (max rel {cmp.max_rel:.3g}); "
            f"worst at output index {where} ({layout}): model {float(got[where]):.6g}, "
            f"Keras {float(ref[where]):.6g}")
