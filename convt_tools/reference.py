"""A fast NumPy reference for transposed convolution, written from the definition.

Definition (per spatial axis, ONNX ``ConvTranspose``): input position ``h``
and kernel tap ``i`` contribute to the *full* output position
``h * s + i * d``; the full length is ``L = (in - 1) * s + K`` with
``K = (k - 1) * d + 1``. The returned output has length
``O = s * (in - 1) + op + K - pb - pe`` and output position ``o`` is full
position ``o + pb``; full positions ``>= L`` (only reachable through
``output_padding``) hold zeros before the bias is added::

    y[n, co, oh, ow] = b[co] + sum over ci (in co's group), i, j, h, w with
                       h*sh + i*dh == oh + pb_h  and  w*sw + j*dw == ow + pb_w
                       of  x[n, ci, h, w] * W[ci, co % (C_out/group), i, j]

How it is computed (no im2col): one BLAS matmul per group,
``x (N*H*W, C_in/g) @ W (C_in/g, kh*kw*C_out/g)``, then a col2im scatter-add
of each of the ``kh*kw`` tap planes into a strided slice of the output. The
output is allocated at its final (cropped or extended) size; taps that fall
into the cropped border are clipped by slice arithmetic, never computed into
a larger buffer. Memory: the output plus one GEMM buffer. Work is done in
channels-last layout, where the GEMM result and the strided adds are
contiguous along channels.

Keras ``Conv2DTranspose`` is this operation with ``pads`` = the crop and
``output_padding`` = the extension of :meth:`Conv2DTransposeSpec.crop_plan`
(resolved there, once), ``W = kernel.transpose(3, 2, 0, 1)`` (no flip), then
the activation from the shared table, in the Keras layout.

dtypes: float32 and float64 compute in their own precision; float16 is
computed with float32 accumulation and the result cast to float16.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .activations import ACTIVATIONS, canonical_activation
from .errors import ConvtError, fail
from .geometry import onnx_pads
from .io import check_allocation
from .spec import Conv2DTransposeSpec

__all__ = ["conv_transpose", "conv_transpose_nhwc", "keras_conv2d_transpose",
           "output_length"]

# Up to this many GEMM output elements, all taps go through one GEMM (see _scatter_group).
_SINGLE_GEMM_MAX = 1 << 16
# Up to this many elements in the cached 0/1 col2im matrix (and in the work it
# costs per output channel), tiny problems use it instead of strided slices.
_SCATTER_MATRIX_MAX = 1 << 16
# Above this many output elements the bias goes in as one tiled output row
# (long inner loops) instead of a per-pixel broadcast of ``C_out`` values.
_TILED_BIAS_MIN = 1 << 14
_FLOATS = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))


def output_length(length: int, k: int, s: int, d: int, pad_begin: int, pad_end: int,
                  op: int) -> int:
    """``O = s * (in - 1) + op + K - pb - pe`` with ``K = (k - 1) * d + 1``."""
    return s * (length - 1) + op + (k - 1) * d + 1 - pad_begin - pad_end


@dataclass(frozen=True)
class _TapSlice:
    """Where one kernel tap of one axis lands: input ``[src]`` -> output ``[dst]``."""

    src: slice
    dst: slice


def _tap_slices(length: int, out_length: int, k: int, s: int, d: int,
                pad_begin: int) -> list[_TapSlice | None]:
    """Per tap ``i``: the input range whose outputs ``h*s + i*d - pb`` lie in ``[0, O)``.

    ``None`` when the tap misses the output entirely (cropped away).
    """
    result: list[_TapSlice | None] = []
    for i in range(k):
        offset = i * d - pad_begin                      # output index of input 0
        lo = max(0, -(offset // s) if offset < 0 else 0)  # ceil(-offset / s)
        hi = min(length, (out_length - 1 - offset) // s + 1) if out_length > offset else 0
        if lo >= hi:
            result.append(None)
            continue
        start = lo * s + offset
        result.append(_TapSlice(slice(lo, hi), slice(start, start + (hi - lo - 1) * s + 1, s)))
    return result


def _pair(name: str, value: int | Sequence[int], *, minimum: int) -> tuple[int, int]:
    """An int (both axes) or two ints, each ``>= minimum``."""
    allowed = f"expected an integer >= {minimum} or two of them"
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        value = (int(value), int(value))
    try:
        vals = tuple(int(v) for v in value)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise fail(name, value, allowed) from None
    if len(vals) != 2 or min(vals) < minimum:
        raise fail(name, value, allowed)
    return vals  # type: ignore[return-value]


def _compute_dtype(*arrays: np.ndarray | None) -> tuple[np.dtype, np.dtype]:
    """``(result dtype, accumulation dtype)``; float16 accumulates in float32."""
    dt = arrays[0].dtype  # type: ignore[union-attr]
    if (dt in _FLOATS[1:]
            and all(a is None or a.dtype == dt for a in arrays)):  # common case: one dtype
        return dt, dt
    dtypes = [a.dtype for a in arrays if a is not None]
    for dt in dtypes:
        if dt not in _FLOATS:
            raise fail("dtype", str(dt), "expected float16, float32 or float64 arrays")
    out = np.result_type(*dtypes)
    return out, (np.dtype(np.float32) if out == np.float16 else out)


def conv_transpose_nhwc(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None, *,
                        strides: Sequence[int] = (1, 1), dilations: Sequence[int] = (1, 1),
                        pads: Sequence[int] = (0, 0, 0, 0),
                        output_padding: Sequence[int] = (0, 0), group: int = 1) -> np.ndarray:
    """:func:`conv_transpose` in channels-last layout: ``x (N, H, W, C_in)`` -> ``(N, Ho, Wo, C_out)``.

    ``w`` keeps the ONNX layout ``(C_in, C_out/group, kh, kw)``; the
    attributes and the formula are those of :func:`conv_transpose`.
    """
    x = np.asarray(x)
    w = np.asarray(w)
    b = None if b is None else np.asarray(b)
    out_dtype, acc = _compute_dtype(x, w, b)
    geo = _geometry(x.shape, w.shape, None if b is None else b.shape, _attr(strides, 2),
                    _attr(dilations, 2), _attr(pads, 4), _attr(output_padding, 2), group)
    return _run(geo, x, w, b, out_dtype, acc)


def _attr(value: object, n: int) -> tuple[object, ...]:
    """An attribute as a hashable tuple; a single int means the same on every axis.

    Anything else that is not a sequence is passed on as a 1-tuple, so that
    the geometry's validation names the attribute and says what is allowed.
    """
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return (int(value),) * n
    if isinstance(value, (list, tuple, np.ndarray)):
        return tuple(value.tolist() if isinstance(value, np.ndarray) else value)
    return (value,)


def _run(geo: "_Geometry", x: np.ndarray, w: np.ndarray, b: np.ndarray | None,
         out_dtype: np.dtype, acc: np.dtype) -> np.ndarray:
    """Evaluate a validated geometry (shared by the NHWC and Keras entry points)."""
    if acc.itemsize > 4:  # the cached geometry checked the output at float32 size
        check_allocation(geo.out_shape, acc, "input_shape", f"the output {geo.out_shape} "
                         f"(N, H, W, C) in {acc.name}")
    if b is not None:
        b = b.astype(acc, copy=False)
    if not x.size or not math.prod(geo.out_shape):
        y = np.zeros(geo.out_shape, dtype=acc)
        if b is not None:
            y += b
    elif geo.tiny is not None:
        with np.errstate(invalid="ignore", over="ignore"):
            y = _scatter_tiny(x, w, b, geo, acc)
        if not np.isfinite(y).all():
            # The 0/1 col2im GEMM computes 0 * inf = NaN, which would spread one
            # non-finite value to every output; the strided path keeps it local.
            y = _scatter_strided(x, w, b, geo, acc)
    else:
        y = _scatter_strided(x, w, b, geo, acc)
    return y.astype(out_dtype, copy=False)


def _scatter_strided(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, geo: "_Geometry",
                     acc: np.dtype) -> np.ndarray:
    """Per group: GEMMs and strided scatter-adds (:func:`_scatter_group`), then the bias."""
    y = np.empty(geo.out_shape, dtype=acc)
    for g in range(geo.group):
        _scatter_group(x, w, y, geo, g, acc)
    if b is not None:
        _add_bias(y, b)
    return y


def _add_bias(y: np.ndarray, b: np.ndarray) -> None:
    """``y += b`` over the channel axis of a C-contiguous NHWC ``y``.

    Large outputs add one tiled output row (``W_out * C_out`` values) per
    output row, so NumPy's inner loop runs over whole rows, not ``C_out``
    values at a time; the sums are the same.
    """
    n, ho, wo, c = y.shape
    if y.size < _TILED_BIAS_MIN:
        y += b
        return
    row = np.empty((wo, c), dtype=y.dtype)
    row[...] = b
    rows = y.reshape(n * ho, wo * c)
    rows += row.reshape(wo * c)


@functools.lru_cache(maxsize=256)
def _geometry(*args: object) -> "_Geometry":
    """Cached :meth:`_Geometry.build` (pure function of shapes and attributes)."""
    return _Geometry.build(*args)  # type: ignore[arg-type]


# One kernel row's plan: (i, row slice, ((j, col slice, assign), ...)).
_RowPlan = tuple[int, _TapSlice, tuple[tuple[int, _TapSlice, bool], ...]]
# Per-axis key of the tiny-path scatter matrix: (in, k, s, d, pad_begin, out).
_AxisKey = tuple[int, int, int, int, int, int]


@dataclass(frozen=True)
class _Geometry:
    """Validated shapes, the per-axis tap slices and the scatter plan (resolved once)."""

    out_shape: tuple[int, int, int, int]
    cin_g: int
    cout_g: int
    group: int
    strides: tuple[int, int]
    plan: tuple[_RowPlan, ...]              # kernel rows in scatter order
    zero_phases: tuple[tuple[int, int], ...]  # (phase_h, phase_w) to zero
    gemm: str                               # "all" taps or one "tap" per GEMM
    tiny: tuple[_AxisKey, _AxisKey] | None  # set: use the cached 0/1 scatter matrix

    @staticmethod
    def build(x_shape: tuple[int, ...], w_shape: tuple[int, ...],
              b_shape: tuple[int, ...] | None, strides: Sequence[int],
              dilations: Sequence[int], pads: Sequence[int], output_padding: Sequence[int],
              group: int) -> "_Geometry":
        if len(x_shape) != 4:
            raise fail("x", x_shape, "expected a rank-4 input")
        if len(w_shape) != 4:
            raise fail("w", w_shape, "expected a rank-4 weight (C_in, C_out/group, kh, kw)")
        s = _pair("strides", strides, minimum=1)
        d = _pair("dilations", dilations, minimum=1)
        op = _pair("output_padding", output_padding, minimum=0)
        try:
            p = tuple(int(v) for v in pads)
        except (TypeError, ValueError):
            p = ()
        if len(p) != 4 or min(p) < 0:
            raise fail("pads", tuple(pads), "expected 4 non-negative integers "
                       "[h_begin, w_begin, h_end, w_end]")
        n, h, wd, cin = x_shape
        if not isinstance(group, (int, np.integer)) or isinstance(group, bool) \
                or group < 1 or cin % group:
            raise fail("group", group, f"expected a positive divisor of C_in = {cin}")
        group = int(group)
        if w_shape[0] != cin:
            raise ConvtError(f"w: got shape {w_shape}; its first dim must equal C_in = {cin} "
                             f"(layout (C_in, C_out/group, kh, kw)).", field="w")
        cout = w_shape[1] * group
        if b_shape is not None and b_shape != (cout,):
            raise fail("b", b_shape, f"expected shape ({cout},)")
        if h < 1 or wd < 1:
            raise fail("x", x_shape, "expected spatial dims >= 1")
        kh, kw = w_shape[2], w_shape[3]
        ho = output_length(h, kh, s[0], d[0], p[0], p[2], op[0])
        wo = output_length(wd, kw, s[1], d[1], p[1], p[3], op[1])
        if ho < 0 or wo < 0:
            raise fail("pads", p, f"they crop more than the {h}x{wd} input produces "
                       f"(output {ho}x{wo})")
        # Memory guard, once per geometry (cached): float32 is the least the output takes.
        check_allocation((n, ho, wo, cout), np.float32, "input_shape",
                         f"the output ({n}, {ho}, {wo}, {cout}) (N, H, W, C) of input "
                         f"({n}, {h}, {wd}, {cin})")
        rows = _tap_slices(h, ho, kh, s[0], d[0], p[0])
        cols = _tap_slices(wd, wo, kw, s[1], d[1], p[1])
        plan, zero = _scatter_order(rows, cols, s, (ho, wo))
        cout_g = w_shape[1]
        m = n * h * wd
        gemm = "all" if m * kh * kw * cout_g <= _SINGLE_GEMM_MAX else "tap"
        s_size = ho * wo * h * wd * kh * kw
        tiny = None
        if s_size <= _SCATTER_MATRIX_MAX and s_size * n * cout <= _SCATTER_MATRIX_MAX * 32:
            tiny = ((h, kh, s[0], d[0], p[0], ho), (wd, kw, s[1], d[1], p[1], wo))
        return _Geometry(out_shape=(n, ho, wo, cout), cin_g=cin // group, cout_g=cout_g,
                         group=group, strides=s, plan=plan, zero_phases=zero, gemm=gemm,
                         tiny=tiny)


def _covers_phase(t: _TapSlice, s: int, out_length: int) -> bool:
    """True when the tap writes every output position of its phase ``dst.start % s``."""
    last = t.dst.start + (t.src.stop - t.src.start - 1) * s
    return t.dst.start < s and last + s >= out_length


def _axis_order(slices: list[_TapSlice | None], s: int, out_length: int
                ) -> list[tuple[int, _TapSlice]]:
    """The live taps of one axis: for each phase its first covering tap, then the rest."""
    first: list[tuple[int, _TapSlice]] = []
    rest: list[tuple[int, _TapSlice]] = []
    seen: set[int] = set()
    for i, t in enumerate(slices):
        if t is None:
            continue
        phase = t.dst.start % s
        if phase not in seen and _covers_phase(t, s, out_length):
            seen.add(phase)
            first.append((i, t))
        else:
            rest.append((i, t))
    return first + rest


def _scatter_order(rows: list[_TapSlice | None], cols: list[_TapSlice | None],
                   s: tuple[int, int], out_hw: tuple[int, int]
                   ) -> tuple[tuple[_RowPlan, ...], tuple[tuple[int, int], ...]]:
    """Taps in scatter order (grouped by kernel row), and the output phases to zero first.

    Output positions split into ``s_h * s_w`` phases (``o % s``). Taps run
    row by row. The first tap to write a
    phase is *assigned* (no zero fill, no read of the output) when it writes
    all of the phase; every other tap is added, and phases whose first
    writer does not cover them (or that nothing writes) are zero-filled.
    Ordering each axis' covering taps first makes a phase assigned whenever
    any of its taps covers it.
    """
    row_order = _axis_order(rows, s[0], out_hw[0])
    col_order = _axis_order(cols, s[1], out_hw[1])
    written: set[tuple[int, int]] = set()
    assigned: set[tuple[int, int]] = set()
    plan: list[_RowPlan] = []
    for i, r in row_order:
        r_covers = _covers_phase(r, s[0], out_hw[0])
        taps = []
        for j, c in col_order:
            phase = (r.dst.start % s[0], c.dst.start % s[1])
            assign = (phase not in written and r_covers
                      and _covers_phase(c, s[1], out_hw[1]))
            written.add(phase)
            if assign:
                assigned.add(phase)
            taps.append((j, c, assign))
        plan.append((i, r, tuple(taps)))
    phases = [(ph, pw) for ph in range(min(s[0], out_hw[0])) for pw in range(min(s[1], out_hw[1]))]
    return tuple(plan), tuple(ph for ph in phases if ph not in assigned)


def _blas_ready(a: np.ndarray) -> bool:
    """True when the 2-D ``a`` goes to BLAS without a copy (a unit stride on one axis)."""
    u = a.itemsize
    s0, s1 = a.strides
    return ((s1 == u and s0 % u == 0 and s0 >= a.shape[1] * u)
            or (s0 == u and s1 % u == 0 and s1 >= a.shape[0] * u))


def _tap_weights(w: np.ndarray, acc: np.dtype) -> np.ndarray:
    """``(C_in/g, C_out/g, kh, kw)`` -> ``(kh, C_in/g, kw, C_out/g)`` (a view when possible).

    A Keras kernel seen as ``W = kernel.transpose(3, 2, 0, 1)`` gives views
    whose per-tap and all-taps matrices go to BLAS as transposed
    operands without a copy; other layouts are copied once.
    """
    return w.transpose(2, 0, 3, 1).astype(acc, copy=False)


def _gemm_weights(wt: np.ndarray, mode: str) -> np.ndarray:
    """BLAS-ready weights for the GEMM ``mode`` (see :meth:`_Geometry.build`).

    ``all``: ``(C_in/g, kh*kw*C_out/g)``; ``tap``: ``(kh, C_in/g, kw, C_out/g)``
    (matrix ``[i, :, j, :]``).
    """
    kh, cin, kw, cout = wt.shape
    if mode == "all":
        mat = wt.transpose(1, 0, 2, 3).reshape(cin, kh * kw * cout)
        return mat if _blas_ready(mat) else np.ascontiguousarray(mat)
    return wt if _blas_ready(wt[0, :, 0, :]) else np.ascontiguousarray(wt)


def _scatter_group(x: np.ndarray, w: np.ndarray, y: np.ndarray, geo: _Geometry,
                   g: int, acc: np.dtype) -> None:
    """Group ``g``: BLAS matmuls into a reused buffer, then one strided add per tap.

    ``x (N*H*W, C_in/g) @ W[:, :, i, j] (C_in/g, C_out/g)`` lands in the
    output slice ``y[:, rows.dst, cols.dst]`` (the first tap of a phase is
    assigned, the rest added). Small problems run all taps as one GEMM,
    others one tap per GEMM. Memory: the output plus one GEMM buffer.

    (Measured and dropped: one GEMM per kernel row for narrow ``C_out/g``.
    The GEMMs get faster, but the strided adds then read a source whose
    pixels are ``kw*C_out/g`` apart, and lose more than the GEMMs gain.)
    """
    n, h, wd, _ = x.shape
    ci = slice(g * geo.cin_g, (g + 1) * geo.cin_g)
    target = y[..., g * geo.cout_g:(g + 1) * geo.cout_g]
    sh, sw = geo.strides
    for ph, pw in geo.zero_phases:
        target[:, ph::sh, pw::sw] = 0
    x2d = np.ascontiguousarray(x[..., ci], dtype=acc).reshape(n * h * wd, geo.cin_g)
    wts = _gemm_weights(_tap_weights(w[ci], acc), geo.gemm)
    cout = geo.cout_g
    kw = w.shape[3]
    if geo.gemm == "all":
        all_planes = (x2d @ wts).reshape(n, h, wd, -1, kw, cout)
        for i, r, taps in geo.plan:
            row = all_planes[:, r.src, :, i]
            for j, c, assign in taps:
                _put(target, r, c, row[:, :, c.src, j], assign)
    else:
        buf = np.empty((n * h * wd, cout), dtype=acc)
        planes = buf.reshape(n, h, wd, cout)
        for i, r, taps in geo.plan:
            for j, c, assign in taps:
                np.matmul(x2d, wts[i, :, j], out=buf)
                _put(target, r, c, planes[:, r.src, c.src], assign)


def _put(target: np.ndarray, r: _TapSlice, c: _TapSlice, src: np.ndarray, assign: bool) -> None:
    if assign:
        target[:, r.dst, c.dst] = src
    else:
        target[:, r.dst, c.dst] += src


@functools.lru_cache(maxsize=32)
def _scatter_matrix(rows: _AxisKey, cols: _AxisKey, dtype: np.dtype,
                    bias_column: bool = False) -> np.ndarray:
    """The col2im of a tiny geometry as a 0/1 matrix ``(Ho*Wo, H*W*kh*kw)``.

    Entry ``[oh*Wo + ow, ((h*W + w)*kh + i)*kw + j]`` is 1 when input pixel
    ``(h, w)`` through tap ``(i, j)`` lands on output ``(oh, ow)``:
    ``oh = h*s_h + i*d_h - pb_h`` (and likewise for the width). With
    ``bias_column`` a last column of ones is appended (it picks up a bias row
    appended to the planes). A pure function of shapes and attributes, never
    of the weights.
    """
    def axis(key: _AxisKey) -> np.ndarray:            # (in, k, out) 0/1
        length, k, s, d, pb, out = key
        pos = np.arange(length)[:, None] * s + np.arange(k)[None, :] * d - pb
        return pos[:, :, None] == np.arange(out)
    ah, aw = axis(rows), axis(cols)
    mat = np.einsum("hiy,wjz->yzhwij", ah.astype(dtype), aw.astype(dtype))
    mat = mat.reshape(rows[5] * cols[5], -1)
    if bias_column:
        mat = np.concatenate([mat, np.ones((mat.shape[0], 1), dtype=dtype)], axis=1)
    mat = np.ascontiguousarray(mat)
    mat.setflags(write=False)
    return mat


def _all_taps_matrix(w: np.ndarray, acc: np.dtype) -> np.ndarray:
    """``(C_in/g, C_out/g, kh, kw)`` -> BLAS-ready ``(C_in/g, kh*kw*C_out/g)`` (columns ``(i, j, co)``)."""
    mat = w.transpose(0, 2, 3, 1).reshape(w.shape[0], -1).astype(acc, copy=False)
    return mat if _blas_ready(mat) else np.ascontiguousarray(mat)


def _scatter_tiny(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, geo: _Geometry,
                  acc: np.dtype) -> np.ndarray:
    """Tiny problems: one GEMM for all taps, then col2im as one GEMM with the 0/1 matrix.

    ``planes[n] (H*W*kh*kw, C_out/g) = x[n] @ W``; ``y[n] = S @ planes[n]``
    with ``S`` from :func:`_scatter_matrix` (sums of the same products, in
    another order; positions no tap reaches get exact zeros). A single image
    without groups takes the bias in the same GEMM: ``[S | 1] @ [planes; b]``.
    """
    n, h, wd, _ = x.shape
    _, ho, wo, cout = geo.out_shape
    kh, kw = w.shape[2:]
    rows, cols = geo.tiny  # type: ignore[misc]
    if geo.group == 1:
        x2d = x.astype(acc, copy=False).reshape(n * h * wd, geo.cin_g)
        wmat = _all_taps_matrix(w, acc)
        k = h * wd * kh * kw
        if n == 1 and b is not None:
            s = _scatter_matrix(rows, cols, acc, True)
            planes = np.empty((k + 1, cout), dtype=acc)
            np.matmul(x2d, wmat, out=planes[:k].reshape(h * wd, kh * kw * cout))
            planes[k] = b
            return (s @ planes).reshape(geo.out_shape)
        s = _scatter_matrix(rows, cols, acc)
        y = (s @ (x2d @ wmat).reshape(n, k, cout)).reshape(geo.out_shape)
        if b is not None:
            y += b
        return y
    s = _scatter_matrix(rows, cols, acc)
    y = np.empty(geo.out_shape, dtype=acc)
    for g in range(geo.group):
        ci = slice(g * geo.cin_g, (g + 1) * geo.cin_g)
        x2d = x[..., ci].astype(acc, copy=False).reshape(n * h * wd, geo.cin_g)
        planes = (x2d @ _all_taps_matrix(w[ci], acc)).reshape(n, h * wd * kh * kw, geo.cout_g)
        y[..., g * geo.cout_g:(g + 1) * geo.cout_g] = (s @ planes).reshape(n, ho, wo, geo.cout_g)
    if b is not None:
        y += b
    return y


def conv_transpose(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None, *,
                   strides: Sequence[int] = (1, 1), dilations: Sequence[int] = (1, 1),
                   pads: Sequence[int] = (0, 0, 0, 0), output_padding: Sequence[int] = (0, 0),
                   group: int = 1) -> np.ndarray:
    """ONNX ``ConvTranspose`` (explicit pads, ``auto_pad`` NOTSET) on NCHW arrays.

    ``x (N, C_in, H, W)``, ``w (C_in, C_out/group, kh, kw)``, ``b (C_out,)``;
    ``pads = [h_begin, w_begin, h_end, w_end]`` (non-negative). Per axis the
    output length is ``s*(in-1) + op + K - pb - pe`` with ``K = (k-1)*d + 1``;
    output position ``o`` is full position ``o + pb``, and full positions
    ``>= (in-1)*s + K`` are zero (plus bias). Returns ``(N, C_out, Ho, Wo)``,
    empty (not an error) when a length is 0.
    """
    x = np.asarray(x)
    if x.ndim != 4:
        raise fail("x", x.shape, "expected a rank-4 NCHW input")
    y = conv_transpose_nhwc(x.transpose(0, 2, 3, 1), w, b, strides=strides,
                            dilations=dilations, pads=pads, output_padding=output_padding,
                            group=group)
    return np.ascontiguousarray(y.transpose(0, 3, 1, 2))


_KERAS_PADS: dict[tuple, tuple[tuple[int, int, int, int], tuple[int, int]]] = {}


def _keras_pads(spec: "Conv2DTransposeSpec") -> tuple[tuple[int, int, int, int], tuple[int, int]]:  # noqa: F821
    """``(pads, output_padding)`` from ``spec.crop_plan()``, cached on the fields it reads.

    (The spec itself is not hashable: it has mapping fields.)
    """
    key = (spec.kernel_size, spec.strides, spec.dilation_rate, spec.padding,
           spec.output_padding)
    try:
        return _KERAS_PADS[key]
    except TypeError:       # unhashable fields (lists): no caching
        key = None
    except KeyError:
        pass
    axes = [c.onnx() for c in spec.crop_plan()]
    plan = tuple(onnx_pads(axes)), tuple(a.output_padding for a in axes)
    if key is not None:
        if len(_KERAS_PADS) >= 256:
            _KERAS_PADS.clear()
        _KERAS_PADS[key] = plan
    return plan


def keras_conv2d_transpose(spec: Conv2DTransposeSpec, x: np.ndarray, kernel: np.ndarray,
                           bias: np.ndarray | None = None) -> np.ndarray:
    """Keras 3 ``Conv2DTranspose(spec)`` applied to ``x`` in the spec's data format.

    ``kernel (kh, kw, filters, in_channels)`` (Keras layout), ``bias (filters,)``
    (ignored as absent when ``spec.use_bias`` is False). Crop and extension
    come from ``spec.crop_plan()``: ``pads`` = crop begin/end,
    ``output_padding`` = extend, ``W = kernel.transpose(3, 2, 0, 1)``; then
    ``ACTIVATIONS[spec.activation].numpy`` on the output in the Keras layout
    (axis -1 is width for ``channels_first``).

    Precision: with a float16 compute dtype (``float16``/``mixed_float16``
    policies) ``x``, ``kernel`` and ``bias`` are cast to float16 as Keras does
    (accumulation in float32, result float16); otherwise the arrays' own
    dtype is used. ``bias`` is required when ``spec.use_bias``.
    """
    if not isinstance(spec, Conv2DTransposeSpec):
        raise fail("spec", type(spec).__name__, "expected a Conv2DTransposeSpec "
                   "(from convt_tools.load_config(path) or parse_config(dict))")
    # A float16 compute dtype (float16 and mixed_float16 policies) casts inputs and
    # weights to float16 as the Keras layer does; otherwise the arrays' own
    # precision is kept, so float64 arrays give a float64 reference.
    cast = "float16" if spec.dtype == "float16" else None
    x = np.asarray(x) if cast is None else np.asarray(x, dtype=cast)
    kernel = np.asarray(kernel) if cast is None else np.asarray(kernel, dtype=cast)
    if bias is not None and cast is not None:
        bias = np.asarray(bias, dtype=cast)
    if kernel.ndim != 4 or kernel.shape[:3] != spec.kernel_shape(0)[:3]:
        kh, kw, f, _ = spec.kernel_shape(0)
        raise fail("kernel", kernel.shape, f"expected (kh, kw, filters, in_channels) = "
                   f"({kh}, {kw}, {f}, in_channels)")
    spec.check_input_shape(x.shape, kernel.shape[3])
    if not spec.use_bias:
        bias = None
    elif bias is None:
        raise ConvtError(f"bias: the layer has use_bias=True but no bias was given; pass the "
                         f"({spec.filters},) bias (zeros if that is what it holds).", field="bias")
    elif np.shape(bias) != (spec.filters,):
        raise fail("bias", np.shape(bias), f"expected ({spec.filters},)")
    pads, output_padding = _keras_pads(spec)
    w = kernel.transpose(3, 2, 0, 1)
    x_cl = x if spec.data_format == "channels_last" else x.transpose(0, 2, 3, 1)
    y = conv_transpose_nhwc(x_cl, w, bias, strides=spec.strides, dilations=spec.dilation_rate,
                            pads=pads, output_padding=output_padding)
    if spec.data_format == "channels_first":
        y = np.ascontiguousarray(y.transpose(0, 3, 1, 2))
    return ACTIVATIONS[canonical_activation(spec.activation)].numpy(y)
