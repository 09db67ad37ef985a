"""A fast NumPy reference for transposed convolution, written from the definition.

Definition (per spatial axis, ONNX ``ConvTranspose``, any number ``r >= 1``
of spatial axes): input position ``h`` and kernel tap ``i`` contribute to
the *full* output position ``h * s + i * d``; the full length is
``L = (in - 1) * s + K`` with ``K = (k - 1) * d + 1``. The returned output
has length ``O = s * (in - 1) + op + K - pb - pe`` and output position ``o``
is full position ``o + pb``; full positions ``>= L`` (only reachable through
``output_padding``) hold zeros before the bias is added::

    y[n, co, o] = b[co] + sum over ci (in co's group), taps i, inputs h with
                  h*s + i*d == o + pb on every axis
                  of  x[n, ci, h] * W[ci, co % (C_out/group), i]

How it is computed (no im2col), in channels-last layout, per group, by one
of four algorithms chosen per shape by a small cost model (:func:`_costs`:
estimated GEMM time from the GEMM shapes, plus per-call, per-value and
per-inner-loop costs of the adds and copies; fitted to measured times):

* ``phase``: the output is split into its ``prod(s)`` phases ``o = p + q*s``
  (per axis); within a phase each tap is a plain shift of its GEMM result
  ``x (N*prod(in), C_in/g) @ W[:, :, i] (C_in/g, C_out/g)``. One GEMM per tap;
  the taps of a phase are summed in a contiguous accumulator shaped like the
  phase (whole rows per inner loop), and each phase is then copied once into
  its strided slice of the output; a phase with one covering tap is copied
  straight from the GEMM buffer, and with stride 1 (one group) the phase is
  the output itself. Best for small kernels with wide ``C_out`` (and stride 1:
  the shifted accumulation has whole-row inner loops);
* ``col2im`` (:mod:`._col2im`): one GEMM over all taps
  ``x @ W (C_in/g, prod(k)*C_out/g)`` (chunked), then the taps that share a
  shift ``j = (i*d) // s`` are added as one block into a zeroed buffer of whole
  stride periods (``prod(ceil(K/s))`` adds, inner runs of a phase row), which
  is cropped once. Best for large kernels, long overlaps and narrow ``C_out``
  (ISTFT-style layers: ``C_out = 1``, 4096 taps);
* ``small``: one GEMM for all taps and one strided write per tap;
* ``tiny`` (by size, before the cost model): col2im as a GEMM with a cached
  0/1 matrix (shapes only).

Scratch arrays (GEMM results, accumulators) are reused per thread
(:mod:`._scratch`); results are always fresh arrays.

The output is allocated at its final (cropped or extended) size; taps that
fall into the cropped border are clipped by slice arithmetic (col2im: to the
cropped output rounded out to whole stride periods, at most ``s - 1`` extra
positions per side and axis). Non-finite inputs reach exactly the outputs the
definition says (the 0/1 matrix path is left when it would spread them).

Keras ``Conv{1,2,3}DTranspose`` is this operation with ``pads`` = the crop and
``output_padding`` = the extension of :meth:`ConvTransposeSpec.crop_plan`
(resolved there, once), ``W = kernel.transpose(spec.layout.kernel_to_onnx)``
(2-D: ``(3, 2, 0, 1)``; no flip), then the activation from the shared table,
in the Keras layout (:func:`keras_conv_transpose`).

dtypes: float32 and float64 compute in their own precision; float16 is
computed with float32 accumulation and the result cast to float16.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Sequence, overload

import numpy as np

from . import _col2im
from ._scratch import scratch
from .activations import ACTIVATIONS, canonical_activation
from .errors import ConvtError, fail
from .geometry import onnx_output_length, onnx_pads
from .io import check_allocation
from .spec import ConvTransposeSpec

if TYPE_CHECKING:
    from .spec import Layout

__all__ = ["KerasConvTranspose", "conv_transpose", "conv_transpose_channels_last",
           "conv_transpose_nhwc", "keras_conv2d_transpose", "keras_conv_transpose",
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
# Tests only (:func:`_forced`): take this algorithm wherever it applies.
_FORCE: str | None = None


def output_length(length: int, k: int, s: int, d: int, pad_begin: int, pad_end: int,
                  op: int) -> int:
    """``O = s * (in - 1) + op + K - pb - pe`` with ``K = (k - 1) * d + 1`` (one axis).

    :func:`convt_tools.geometry.onnx_output_length` under its historical name.
    """
    return onnx_output_length(length, k, s, d, pad_begin, pad_end, op)


def _layout(rank: int) -> str:
    """The channels-last dims' names, e.g. ``(N, D, H, W, C)`` for rank 3."""
    spatial = {1: "W", 2: "H, W", 3: "D, H, W"}.get(rank, ", ".join(f"S{i}" for i in range(rank)))
    return f"(N, {spatial}, C)"


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


def _ints(name: str, value: Sequence[object], n: int, *, minimum: int,
          allowed: str | None = None) -> tuple[int, ...]:
    """``n`` integers, each ``>= minimum`` (``value`` comes from :func:`_attr`)."""
    allowed = allowed or (f"expected an integer >= {minimum} or {n} of them "
                          "(one per spatial axis)")
    try:
        vals = tuple(int(v) for v in value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        raise fail(name, value, allowed) from None
    if (len(vals) != n or min(vals, default=minimum) < minimum
            or any(isinstance(v, (bool, float)) for v in value)):
        raise fail(name, value, allowed)
    return vals


def _compute_dtype(*arrays: np.ndarray | None) -> tuple[np.dtype, np.dtype]:
    """``(result dtype, accumulation dtype)``; float16 accumulates in float32."""
    dt = arrays[0].dtype  # type: ignore[union-attr]
    if dt is _FLOATS[1] or dt is _FLOATS[2]:     # common case: one float32/float64 dtype
        for a in arrays:
            if a is not None and a.dtype is not dt:
                break
        else:
            return dt, dt
    if (dt in _FLOATS[1:]
            and all(a is None or a.dtype == dt for a in arrays)):
        return dt, dt
    dtypes = [a.dtype for a in arrays if a is not None]
    for dt in dtypes:
        if dt not in _FLOATS:
            raise fail("dtype", str(dt), "expected float16, float32 or float64 arrays")
    out = np.result_type(*dtypes)
    return out, (np.dtype(np.float32) if out == np.float16 else out)


def conv_transpose_channels_last(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None, *,
                                 strides: int | Sequence[int] = 1,
                                 dilations: int | Sequence[int] = 1,
                                 pads: int | Sequence[int] = 0,
                                 output_padding: int | Sequence[int] = 0,
                                 group: int = 1) -> np.ndarray:
    """:func:`conv_transpose` in channels-last layout, any number of spatial axes.

    ``x (N, *spatial, C_in)`` -> ``(N, *out_spatial, C_out)``; ``w`` keeps the
    ONNX layout ``(C_in, C_out/group, *kernel)``; the attributes and the
    formula are those of :func:`conv_transpose` (a single int means the same
    value on every axis).
    """
    x = np.asarray(x)
    w = np.asarray(w)
    b = None if b is None else np.asarray(b)
    out_dtype, acc = _compute_dtype(x, w, b)
    rank = max(x.ndim - 2, 0)
    geo = _geometry(x.shape, w.shape, None if b is None else b.shape, _attr(strides, rank),
                    _attr(dilations, rank), _attr(pads, 2 * rank),
                    _attr(output_padding, rank), group)
    return _run(geo, x, _Weights(w), b, out_dtype, acc)


def conv_transpose_nhwc(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None, *,
                        strides: Sequence[int] = (1, 1), dilations: Sequence[int] = (1, 1),
                        pads: Sequence[int] = (0, 0, 0, 0),
                        output_padding: Sequence[int] = (0, 0), group: int = 1) -> np.ndarray:
    """The 2-D :func:`conv_transpose_channels_last`: ``x (N, H, W, C_in)`` -> ``(N, Ho, Wo, C_out)``.

    ``w`` keeps the ONNX layout ``(C_in, C_out/group, kh, kw)``; the
    attributes and the formula are those of :func:`conv_transpose`.
    """
    x = np.asarray(x)
    if x.ndim != 4:
        raise fail("x", x.shape, "expected a rank-4 input (N, H, W, C) "
                   "(conv_transpose_channels_last takes any rank)")
    return conv_transpose_channels_last(x, w, b, strides=strides, dilations=dilations,
                                        pads=pads, output_padding=output_padding, group=group)


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


def _run(geo: _Geometry, x: np.ndarray, w: _Weights, b: np.ndarray | None,
         out_dtype: np.dtype, acc: np.dtype) -> np.ndarray:
    """Evaluate a validated geometry (shared by the channels-last and Keras entry points)."""
    if acc.itemsize > 4:  # the cached geometry checked the output at float32 size
        check_allocation(geo.out_shape, acc, "input_shape", f"the output {geo.out_shape} "
                         f"{_layout(len(geo.strides))} in {acc.name}")
    if b is not None:
        b = b.astype(acc, copy=False)
    if not x.size or not math.prod(geo.out_shape):
        y = np.zeros(geo.out_shape, dtype=acc)
        if b is not None:
            y += b
    elif geo.tiny is not None:
        with np.errstate(invalid="ignore", over="ignore"):
            y = _scatter_tiny(x, w, b, geo, acc)
            flat = y.reshape(-1)
            finite = math.isfinite(np.dot(flat, flat))  # one cheap pass; inf/NaN (or an
            # overflowing sum of squares, harmlessly) take the strided path below
        if not finite:
            # The 0/1 col2im GEMM computes 0 * inf = NaN, which would spread one
            # non-finite value to every output; the strided path keeps it local.
            with np.errstate(invalid="ignore", over="ignore"):
                y = _scatter_strided(x, w, b, geo, acc)
    else:
        # Finite inputs whose products or sums pass the dtype's range give inf (and
        # inf - inf NaN), IEEE's answer: the reference returns it, and validate/run
        # judge non-finite outputs; NumPy's RuntimeWarning would only reach the user.
        with np.errstate(invalid="ignore", over="ignore"):
            y = _scatter_strided(x, w, b, geo, acc)
    with np.errstate(over="ignore"):
        return y.astype(out_dtype, copy=False)


def _scatter_strided(x: np.ndarray, w: _Weights, b: np.ndarray | None, geo: _Geometry,
                     acc: np.dtype) -> np.ndarray:
    """Per group: GEMMs and strided scatter-adds (:func:`_scatter_group`), and the bias."""
    if geo.gemm == "col2im":
        return _scatter_col2im(x, w, b, geo, acc)
    y = np.empty(geo.out_shape, dtype=acc)
    for g in range(geo.group):
        _scatter_group(x, w, b, y, geo, g, acc)
    if b is not None and geo.gemm == "all":   # the phase path adds it phase by phase
        _add_bias(y, b)
    return y


def _scatter_col2im(x: np.ndarray, w: _Weights, b: np.ndarray | None, geo: _Geometry,
                    acc: np.dtype) -> np.ndarray:
    """Per group: one GEMM over all taps (chunked) and the blocked col2im of :mod:`._col2im`."""
    n, *spatial, _ = x.shape
    k = w.w.shape[2:]
    pl = geo.col2im
    assert pl is not None
    y = None if geo.group == 1 and pl.direct else np.empty(geo.out_shape, dtype=acc)
    for g in range(geo.group):
        ci = slice(g * geo.cin_g, (g + 1) * geo.cin_g)
        x2d = np.ascontiguousarray(x[..., ci], dtype=acc).reshape(-1, geo.cin_g)
        buf = _col2im.run(x2d, w.all_taps(ci, acc), pl, n, spatial, k,
                          geo.cout_g, acc, fresh=y is None)
        view = _col2im.output_view(buf, pl)
        if y is None:
            y = view
            if b is not None:
                _add_bias(y, b)
            return y
        co = slice(g * geo.cout_g, (g + 1) * geo.cout_g)
        if b is None:
            y[..., co] = view
        else:
            np.add(view, b[co], out=y[..., co])
    assert y is not None
    return y


def _add_bias(y: np.ndarray, b: np.ndarray) -> None:
    """``y += b`` over the channel (last) axis of a C-contiguous ``y``.

    Large outputs add one tiled output row (``O_last * C_out`` values) per
    output row, so NumPy's inner loop runs over whole rows, not ``C_out``
    values at a time; the sums are the same.
    """
    if y.size < _TILED_BIAS_MIN or not y.flags.c_contiguous:
        y += b
        return
    wo, c = y.shape[-2:]
    row = np.empty((wo, c), dtype=y.dtype)
    row[...] = b
    rows = y.reshape(-1, wo * c)
    rows += row.reshape(wo * c)


@functools.lru_cache(maxsize=256)
def _geometry(*args: object) -> _Geometry:
    """Cached :meth:`_Geometry.build` (pure function of shapes and attributes)."""
    return _Geometry.build(*args)  # type: ignore[arg-type]


@dataclass(frozen=True)
class _Tap:
    """One live kernel tap in scatter order.

    ``index``: the tap per axis; ``flat``: its row-major number;
    ``src``/``dst``: the input and output index tuples (batch axis first,
    channels left out); ``assign``: the first write of a phase that it covers.
    """

    index: tuple[int, ...]
    flat: int
    src: tuple[slice, ...]
    dst: tuple[slice, ...]
    assign: bool


@dataclass(frozen=True)
class _FlatAdd:
    """``a[dst] += planes[src]`` as one contiguous add (see :func:`_flat_add`).

    For ``a`` and ``planes`` C-contiguous of one shape ``(N, *spatial, C)``:
    ``planes[box] = 0`` for each box of ``outside`` (the values this tap
    clips), then ``a.flat[dst:dst+size] += planes.flat[src:src+size]``.
    """

    src: int
    dst: int
    size: int
    outside: tuple[tuple[slice, ...], ...]


@dataclass(frozen=True)
class _PhaseTap:
    """One live tap of a phase: input box ``src`` -> box ``dst`` of the phase's own grid.

    Phase ``p`` holds the outputs ``o = p + q*s`` (per axis); the tap's input
    ``h`` lands on ``q = h + shift``. ``covers``: ``dst`` is the whole phase;
    ``whole``: also ``src`` is the whole input (its GEMM result *is* the phase).
    ``flat``: the add as one contiguous add, where the phase has the input's
    shape (:func:`_flat_add`); else None.
    """

    index: tuple[int, ...]
    src: tuple[slice, ...]
    dst: tuple[slice, ...]
    covers: bool
    whole: bool
    flat: _FlatAdd | None = None


@dataclass(frozen=True)
class _Phase:
    """The outputs ``y[:, p_1::s_1, ..., p_r::s_r]`` (``view``), ``shape`` per axis, and their taps.

    ``taps`` start with a covering tap when there is one (a whole one first);
    ``single``: one covering tap, copied straight into the output.
    """

    view: tuple[slice, ...]
    shape: tuple[int, ...]
    taps: tuple[_PhaseTap, ...]
    single: bool


def _phase_plan(axes: Sequence[list[_TapSlice | None]], spatial: Sequence[int],
                s: Sequence[int], out: Sequence[int], n: int, cout: int) -> tuple[_Phase, ...]:
    """Group the live taps by output phase (``o % s`` per axis), see :func:`_scatter_phases`."""
    per_axis = []   # per axis: {phase: [(i, src, dst in phase coordinates, covers, whole)]}
    for slices, length, st, o in zip(axes, spatial, s, out):
        by_phase: dict[int, list[tuple[int, slice, slice, bool, bool]]] = {
            p: [] for p in range(min(st, o))}
        for i, t in enumerate(slices):
            if t is None:
                continue
            p, q0 = t.dst.start % st, t.dst.start // st
            count = t.src.stop - t.src.start
            covers = q0 == 0 and count == len(range(p, o, st))
            whole = covers and count == length
            by_phase[p].append((i, t.src, slice(q0, q0 + count), covers, whole))
        per_axis.append(by_phase)
    phases = []
    for phase in itertools.product(*(range(min(st, o)) for st, o in zip(s, out))):
        taps = [_PhaseTap(tuple(c[0] for c in combo), (slice(None), *(c[1] for c in combo)),
                          (slice(None), *(c[2] for c in combo)), all(c[3] for c in combo),
                          all(c[4] for c in combo))
                for combo in itertools.product(*(ax[p] for ax, p in zip(per_axis, phase)))]
        taps.sort(key=lambda t: (not t.whole, not t.covers))   # stable: a covering tap first
        shape = tuple(len(range(p, o, st)) for p, st, o in zip(phase, s, out))
        if shape == tuple(spatial):
            taps = [dataclasses.replace(t, flat=_flat_plan(t, (n, *shape, cout))) for t in taps]
        view = (slice(None), *(slice(p, None, st) for p, st in zip(phase, s)))
        phases.append(_Phase(view, shape, tuple(taps), len(taps) == 1 and taps[0].covers))
    return tuple(phases)


def _flat_plan(tap: _PhaseTap, shape: tuple[int, ...]) -> _FlatAdd:
    """The :class:`_FlatAdd` of ``tap`` for a phase and planes of ``shape`` ``(N, *spatial, C)``."""
    strides = [math.prod(shape[j + 1:]) for j in range(len(shape))]
    spatial = range(1, len(shape) - 1)
    src = sum(tap.src[j].start * strides[j] for j in spatial)
    dst = sum(tap.dst[j].start * strides[j] for j in spatial)
    last = ((shape[0] - 1) * strides[0] + shape[-1] - 1
            + sum((tap.src[j].stop - 1) * strides[j] for j in spatial))
    outside = []
    for j in spatial:
        lead = (slice(None),) * j
        if tap.src[j].start > 0:
            outside.append((*lead, slice(0, tap.src[j].start)))
        if tap.src[j].stop < shape[j]:
            outside.append((*lead, slice(tap.src[j].stop, None)))
    return _FlatAdd(src, dst, last - src + 1, tuple(outside))


def _flat_add(a: np.ndarray, planes: np.ndarray, f: _FlatAdd) -> None:
    """``a[dst] += planes[src]`` (one tap's shifted add) as one contiguous add.

    ``a`` and ``planes`` are C-contiguous of one shape, so the tap's boxes
    map element for element along the flat span from the first to the last
    element of ``src``. The span also holds elements outside the boxes (the
    rows' clipped ends); their planes values are zeroed first (``planes`` is
    this tap's scratch GEMM result, and the tap clips them), so those ``a``
    elements get ``+ 0.0``, which leaves every value as it is except ``-0.0``
    (``+0.0`` after). Why: NumPy 2.4's add over a strided 2-D slice runs
    without its contiguous SIMD loop, ~3x slower per value (case a of
    ``bench_reference.py``: 13.9 us per tap against ~5 us).
    """
    for box in f.outside:
        planes[box] = 0
    af = a.reshape(-1)[f.dst:f.dst + f.size]
    np.add(af, planes.reshape(-1)[f.src:f.src + f.size], out=af)


# Per-axis key of the tiny-path scatter matrix: (in, k, s, d, pad_begin, out).
_AxisKey = tuple[int, int, int, int, int, int]


@dataclass(frozen=True)
class _Geometry:
    """Validated shapes, the per-axis tap slices and the scatter plan (resolved once)."""

    out_shape: tuple[int, ...]                  # (N, *out_spatial, C_out)
    cin_g: int
    cout_g: int
    group: int
    strides: tuple[int, ...]
    plan: tuple[_Tap, ...]                      # "all": live taps in scatter order
    zero_phases: tuple[tuple[int, ...], ...]    # "all": output phases (o % s per axis) to zero
    phases: tuple[_Phase, ...]                  # "tap": the output phases and their taps
    accumulator: int                            # "tap": elements of the phase accumulator
    gemm: str                                   # "all" taps, one "tap" per GEMM, or "col2im"
    tiny: tuple[_AxisKey, ...] | None           # set: use the cached 0/1 scatter matrix
    col2im: _col2im.Col2imPlan | None = None  # "col2im": blocks and buffer
    costs: tuple[tuple[str, float], ...] = ()   # the cost model's estimates (us)

    @property
    def algorithm(self) -> str:
        """The path taken: ``tiny``, ``small``, ``phase`` or ``col2im`` (see :func:`_choose`)."""
        if self.tiny is not None:
            return "tiny"
        return {"all": "small", "tap": "phase"}.get(self.gemm, self.gemm)

    @staticmethod
    def build(x_shape: tuple[int, ...], w_shape: tuple[int, ...],
              b_shape: tuple[int, ...] | None, strides: Sequence[object],
              dilations: Sequence[object], pads: Sequence[object],
              output_padding: Sequence[object], group: int) -> _Geometry:
        rank = len(x_shape) - 2
        if rank < 1:
            raise fail("x", x_shape, "expected (N, *spatial, C_in) with at least one spatial axis")
        if len(w_shape) != rank + 2:
            raise fail("w", w_shape, f"expected a rank-{rank + 2} weight "
                       f"(C_in, C_out/group, {rank} kernel dims) for a rank-{rank + 2} input")
        s = _ints("strides", strides, rank, minimum=1)
        d = _ints("dilations", dilations, rank, minimum=1)
        op = _ints("output_padding", output_padding, rank, minimum=0)
        p = _ints("pads", pads, 2 * rank, minimum=0,
                  allowed=f"expected {2 * rank} non-negative integers "
                  f"[begin per axis..., end per axis...]")
        n, *spatial, cin = x_shape
        if not isinstance(group, (int, np.integer)) or isinstance(group, bool) \
                or group < 1 or cin % group:
            raise fail("group", group, f"expected a positive divisor of C_in = {cin}")
        group = int(group)
        if w_shape[0] != cin:
            raise ConvtError(f"w: got shape {w_shape}; its first dim must equal C_in = {cin} "
                             f"(layout (C_in, C_out/group, *kernel)).", field="w")
        cout = w_shape[1] * group
        if b_shape is not None and b_shape != (cout,):
            raise fail("b", b_shape, f"expected shape ({cout},)")
        if min(spatial) < 1:
            raise fail("x", x_shape, "expected spatial dims >= 1")
        k = tuple(w_shape[2:])
        out = tuple(output_length(spatial[a], k[a], s[a], d[a], p[a], p[rank + a], op[a])
                    for a in range(rank))
        if min(out) < 0:
            raise fail("pads", p, f"they crop more than the {'x'.join(map(str, spatial))} "
                       f"input produces (output {'x'.join(map(str, out))})")
        out_shape = (n, *out, cout)
        # Memory guard, once per geometry (cached): float32 is the least the output takes.
        check_allocation(out_shape, np.float32, "input_shape",
                         f"the output {out_shape} {_layout(rank)} of input {tuple(x_shape)}")
        axes = [_tap_slices(spatial[a], out[a], k[a], s[a], d[a], p[a]) for a in range(rank)]
        cout_g = w_shape[1]
        taps = math.prod(k)
        c2i = _col2im.plan(spatial, k, s, d, p[:rank], out, cin // group, cout_g)
        costs = _costs(n, spatial, k, s, d, out, cin // group, cout_g, group, c2i)
        chosen = _FORCE if _FORCE in ("small", "phase", "col2im") else costs[0][0]
        gemm = {"small": "all", "phase": "tap"}.get(chosen, chosen)
        plan: tuple[_Tap, ...] = ()
        zero: tuple[tuple[int, ...], ...] = ()
        phases: tuple[_Phase, ...] = ()
        accumulator = 0
        if gemm == "all":
            plan, zero = _scatter_order(axes, k, s, out)
        elif gemm == "tap":
            phases = _phase_plan(axes, spatial, s, out, n, cout_g)
            if group > 1 or math.prod(s) > 1:   # else the one phase is the output itself
                accumulator = max((n * math.prod(ph.shape) * cout_g for ph in phases
                                   if not ph.single), default=0)
        s_size = math.prod(out) * math.prod(spatial) * taps
        tiny = None
        if (_FORCE in (None, "tiny") and s_size <= _SCATTER_MATRIX_MAX
                and s_size * n * cout <= _SCATTER_MATRIX_MAX * 32):
            tiny = tuple((spatial[a], k[a], s[a], d[a], p[a], out[a]) for a in range(rank))
        return _Geometry(out_shape=out_shape, cin_g=cin // group, cout_g=cout_g,
                         group=group, strides=s, plan=plan, zero_phases=zero, phases=phases,
                         accumulator=accumulator, gemm=gemm, tiny=tiny,
                         col2im=c2i if gemm == "col2im" else None, costs=costs)


# The cost model of :func:`_costs`, in microseconds, fitted to single-thread CPU
# times of the bench_reference cases (OpenBLAS 0.3.31 SkylakeX kernel, NumPy 2.4):
# a GEMM ``(M, K) @ (K, N)`` runs at ``_GEMM_PEAK * f(M) f(K) f(N)`` flops with
# ``f(x) = x / (x + x0)`` (small dimensions waste the kernel), plus a fixed
# cost per call and the packing of its ``K x N`` operand; moving values costs
# per value and per inner loop (a run of contiguous values).
_GEMM_PEAK = 95e3                   # flops per us
_GEMM_M0, _GEMM_K0, _GEMM_N0 = 24.0, 16.0, 1.0
_COST_CALL = 2.0
_COST_PACK = 0.25e-3
_COST_VALUE = 0.2e-3
_COST_RUN = 5e-3
_COST_VALUE_FAR = 0.5e-3            # added from a GEMM result chunk bigger than the cache
_CACHE_VALUES = 1 << 18             # ~1 MiB of float32: the per-core L2
_SMALL_MAX = _SINGLE_GEMM_MAX       # "small" only up to this many GEMM results
# col2im needs a buffer beside the output unless the buffer is the output; above
# this many values (256 MiB in float64) it is not considered (bounded memory).
_COL2IM_MAX_COPY = 1 << 25


def _gemm_cost(m: int, k: int, n: int) -> float:
    if not m * k * n:
        return _COST_CALL
    rate = _GEMM_PEAK * (m / (m + _GEMM_M0)) * (k / (k + _GEMM_K0)) * (n / (n + _GEMM_N0))
    return 2 * m * k * n / rate + _COST_CALL + k * n * _COST_PACK


def _move_cost(values: int, run: int, per_value: float = _COST_VALUE) -> float:
    """Adding or copying ``values`` in inner loops of ``run`` contiguous values."""
    return values * per_value + values / max(run, 1) * _COST_RUN + _COST_CALL


def _costs(n: int, spatial: Sequence[int], k: Sequence[int], s: Sequence[int],
           d: Sequence[int], out: Sequence[int], cin_g: int, cout_g: int, group: int,
           c2i: _col2im.Col2imPlan) -> tuple[tuple[str, float], ...]:
    """Estimated time (us) of each algorithm for one geometry, cheapest first.

    With ``m = N*prod(in)`` GEMM rows, ``T = prod(k)`` taps, ``P = prod(s)``
    phases and ``Y = N*prod(out)*C_out/g`` output values, per group:

    * ``phase``: ``T`` GEMMs ``(m, C_in/g) @ (C_in/g, C_out/g)``; ``T - P``
      adds of ``m*C_out/g`` values in runs of an input row ``(in_last, C)``,
      plus a first copy into each phase's accumulator (``P > 1``, ``T > P``);
      ``Y`` values copied in runs of ``C_out/g`` (when ``P > 1``);
    * ``col2im``: one GEMM ``(rows, C_in/g) @ (C_in/g, T*C_out/g)`` per chunk
      (:data:`._col2im.COLS_CHUNK`); ``T*m*C_out/g`` values added in runs of
      (the mean taps per block of the last axis) x ``C_out/g`` (``C_out/g``
      when dilated), each value dearer (written by the GEMM and read back)
      when a chunk outgrows the cache, ``prod(ceil(K/s))``
      adds per chunk; the buffer zeroed and (when cropped) copied out; not
      considered when that buffer is a second array above ``_COL2IM_MAX_COPY``
      values (memory stays output + bounded scratch, as on the other paths);
    * ``small`` (up to ``_SMALL_MAX`` GEMM results): one GEMM, then ``T``
      strided writes of ``m*C_out/g`` values in runs of ``C_out/g``.

    So per-tap GEMMs lose where ``C_out/g`` is narrow (ISTFT: ``C_out = 1``)
    or the taps are many, and col2im loses where its scatter runs are short
    (stride 1, or one tap per block: runs of ``C_out/g``) or its chunks are
    thin GEMMs. ``tiny`` (the 0/1 matrix) is chosen by size before this.
    """
    m, taps, phases = n * math.prod(spatial), math.prod(k), math.prod(s)
    y = n * math.prod(out) * cout_g
    tap_values = taps * m * cout_g
    row = spatial[-1] * cout_g          # a phase accumulator's rows are contiguous
    est: dict[str, float] = {}
    est["phase"] = (taps * _gemm_cost(m, cin_g, cout_g)
                    + max(taps - phases, 0) * _move_cost(m * cout_g, row)
                    + (phases * _move_cost(m * cout_g, row) if taps > phases > 1 else 0.0)
                    + (_move_cost(y, cout_g) if phases > 1 or group > 1 else 0.0))
    chunks = max(1, len(c2i.tap_chunks) * n * -(-spatial[0] // c2i.rows))
    rows = min(c2i.rows, spatial[0]) * (m // max(n * spatial[0], 1))
    run = k[-1] * cout_g // len(c2i.blocks[-1]) if d[-1] == 1 else cout_g   # mean run
    buf = n * math.prod(q * st for q, st in zip(c2i.periods, s)) * cout_g
    if buf > _COL2IM_MAX_COPY and not (c2i.direct and group == 1):
        est["col2im"] = math.inf        # a second output-sized buffer: bounded memory first
    else:
        width = taps * cout_g // len(c2i.tap_chunks)
        far = _COST_VALUE_FAR if rows * width > _CACHE_VALUES else _COST_VALUE
        est["col2im"] = (chunks * _gemm_cost(rows, cin_g, width)
                         + tap_values * (far - _COST_VALUE)    # GEMM results written out
                         + _move_cost(tap_values, run, far)
                         + (chunks * _col2im.adds(c2i) - 1) * _COST_CALL
                         + buf * _COST_VALUE / 2
                         + (0.0 if c2i.direct and group == 1 else _move_cost(y, cout_g)))
    if m * taps * cout_g <= _SMALL_MAX:
        est["small"] = (_gemm_cost(m, cin_g, taps * cout_g)
                        + taps * _move_cost(m * cout_g, cout_g))
    return tuple(sorted(((name, cost * group) for name, cost in est.items()),
                        key=lambda item: item[1]))


def _covers_phase(t: _TapSlice, s: int, out_length: int) -> bool:
    """True when the tap writes every output position of its phase ``dst.start % s``."""
    last = t.dst.start + (t.src.stop - t.src.start - 1) * s
    return t.dst.start < s and last + s >= out_length


def _axis_order(slices: list[_TapSlice | None], s: int, out_length: int
                ) -> list[tuple[int, _TapSlice, bool]]:
    """The live taps of one axis, ``(i, slice, covers)``: for each phase its first
    covering tap, then the rest."""
    first: list[tuple[int, _TapSlice, bool]] = []
    rest: list[tuple[int, _TapSlice, bool]] = []
    seen: set[int] = set()
    for i, t in enumerate(slices):
        if t is None:
            continue
        covers = _covers_phase(t, s, out_length)
        phase = t.dst.start % s
        if phase not in seen and covers:
            seen.add(phase)
            first.append((i, t, covers))
        else:
            rest.append((i, t, covers))
    return first + rest


def _scatter_order(axes: Sequence[list[_TapSlice | None]], k: Sequence[int],
                   s: Sequence[int], out: Sequence[int]
                   ) -> tuple[tuple[_Tap, ...], tuple[tuple[int, ...], ...]]:
    """Taps in scatter order, and the output phases to zero first.

    Output positions split into ``prod(s)`` phases (``o % s`` per axis). Taps
    run in row-major order over the per-axis orders of :func:`_axis_order`.
    The first tap to write a phase is *assigned* (no zero fill, no read of
    the output) when it writes all of the phase, i.e. covers its phase on
    every axis; every other tap is added, and phases whose first writer does
    not cover them (or that nothing writes) are zero-filled. Putting each
    axis' covering taps first makes the first writer of a phase a covering
    one whenever the phase has one on every axis, so such a phase is
    always assigned.
    """
    orders = [_axis_order(sl, st, o) for sl, st, o in zip(axes, s, out)]
    written: set[tuple[int, ...]] = set()
    assigned: set[tuple[int, ...]] = set()
    plan: list[_Tap] = []
    for combo in itertools.product(*orders):
        index = tuple(i for i, _, _ in combo)
        phase = tuple(t.dst.start % st for (_, t, _), st in zip(combo, s))
        assign = phase not in written and all(c for _, _, c in combo)
        written.add(phase)
        if assign:
            assigned.add(phase)
        flat = 0
        for i, kk in zip(index, k):
            flat = flat * kk + i
        all_ = slice(None)
        plan.append(_Tap(index, flat, (all_, *(t.src for _, t, _ in combo)),
                         (all_, *(t.dst for _, t, _ in combo)), assign))
    phases = itertools.product(*(range(min(st, o)) for st, o in zip(s, out)))
    return tuple(plan), tuple(ph for ph in phases if ph not in assigned)


def _blas_ready(a: np.ndarray) -> bool:
    """True when the 2-D ``a`` goes to BLAS without a copy (a unit stride on one axis)."""
    u = a.itemsize
    s0, s1 = a.strides
    return ((s1 == u and s0 % u == 0 and s0 >= a.shape[1] * u)
            or (s0 == u and s1 % u == 0 and s1 >= a.shape[0] * u))


class _Weights:
    """A kernel in the ONNX layout ``(C_in, C_out/g, *k)`` and the GEMM operands made from it.

    For the input channels ``ci`` of one group:

    * :meth:`taps`: ``(*k, C_in/g, C_out/g)``, one matrix per tap (per-phase path);
    * :meth:`all_taps`: ``(C_in/g, prod(k)*C_out/g)``, columns ``(*taps, co)``.

    One-shot (``keep=False``, a plain call): views of ``w`` where BLAS takes
    them without a copy (a Keras kernel's per-tap matrices are transposed
    operands), copies made per call otherwise. Prepared (``keep=True``,
    :class:`KerasConvTranspose`): C-contiguous copies, made on first use and kept
    per group and compute dtype, as an onnxruntime session packs its weights
    once. OpenBLAS's GEMM with a transposed operand cost ~7% more CPU per call
    than with a C-contiguous one on case d of ``bench_reference.py``
    (``(256 x 512) @ (512 x 512)`` per tap, called alternately with
    onnxruntime); the transposing copy itself costs more than that GEMM gains,
    so only a kept copy pays.
    """

    __slots__ = ("_made", "keep", "w")

    def __init__(self, w: np.ndarray, keep: bool = False) -> None:
        self.w = w
        self.keep = keep
        self._made: dict[tuple, np.ndarray] = {}

    def taps(self, ci: slice, acc: np.dtype, rows: int) -> np.ndarray:
        """Per-tap matrices of group ``ci`` in ``acc``, for GEMMs of ``rows`` rows."""
        if not self.keep:
            return _tap_weights(self.w[ci], acc, rows)
        key = ("taps", ci.start, ci.stop, acc)
        made = self._made.get(key)
        if made is None:
            w = self.w[ci]
            made = self._made[key] = _frozen(w.transpose(*range(2, w.ndim), 0, 1), acc)
        return made

    def all_taps(self, ci: slice, acc: np.dtype) -> np.ndarray:
        """All taps of group ``ci`` as one BLAS-ready matrix in ``acc``."""
        if not self.keep:
            return _all_taps_matrix(self.w[ci], acc)
        key = ("all", ci.start, ci.stop, acc)
        made = self._made.get(key)
        if made is None:
            made = self._made[key] = _frozen(_all_taps_view(self.w[ci]), acc)
        return made


def _frozen(a: np.ndarray, acc: np.dtype) -> np.ndarray:
    """A read-only C-contiguous copy of ``a`` in ``acc`` (always a copy)."""
    out = np.array(a, dtype=acc, order="C", copy=True)
    out.setflags(write=False)
    return out


# Per-tap GEMMs of fewer rows than this, on per-tap matrices of at most
# _CONTIGUOUS_TAP_MAX values, get their weights copied C-contiguous: OpenBLAS's
# transposed-operand path costs more per call than the (cache-resident) copy on
# many small GEMMs (case g of bench_reference.py, 256 GEMMs of 256 rows: ~12%
# less CPU time); from 1024 rows on the copy gained nothing or lost (a, e, 1d,
# 3d; d's 512x512 blocks lost 30%). Measured at load ~19 (CPU time, A/B).
_CONTIGUOUS_TAP_ROWS = 512
_CONTIGUOUS_TAP_MAX = 1 << 14


def _tap_weights(w: np.ndarray, acc: np.dtype, rows: int = 0) -> np.ndarray:
    """``(C_in/g, C_out/g, *k)`` -> ``(*k, C_in/g, C_out/g)``, per-tap matrices BLAS-ready.

    A Keras kernel seen as ``W = kernel.transpose(r+1, r, 0, ..., r-1)`` gives
    a view whose per-tap matrices go to BLAS as transposed operands without a
    copy; other layouts are copied once, and so are small per-tap matrices
    for GEMMs of few ``rows`` (see :data:`_CONTIGUOUS_TAP_ROWS`).
    """
    r = w.ndim - 2
    wt = w.transpose(*range(2, r + 2), 0, 1).astype(acc, copy=False)
    if 0 < rows < _CONTIGUOUS_TAP_ROWS and w.shape[0] * w.shape[1] <= _CONTIGUOUS_TAP_MAX:
        return np.ascontiguousarray(wt)
    return wt if _blas_ready(wt[(0,) * r]) else np.ascontiguousarray(wt)


def _all_taps_view(w: np.ndarray) -> np.ndarray:
    """``(C_in/g, C_out/g, *k)`` -> ``(C_in/g, prod(k)*C_out/g)``, columns ``(*taps, co)``.

    A view where the layout allows, else a copy (NumPy's reshape).
    """
    return w.transpose(0, *range(2, w.ndim), 1).reshape(w.shape[0], -1)


def _all_taps_matrix(w: np.ndarray, acc: np.dtype) -> np.ndarray:
    """:func:`_all_taps_view` in ``acc``, BLAS-ready (copied only when it is not)."""
    mat = _all_taps_view(w).astype(acc, copy=False)
    return mat if _blas_ready(mat) else np.ascontiguousarray(mat)


def _scatter_group(x: np.ndarray, w: _Weights, b: np.ndarray | None, y: np.ndarray,
                   geo: _Geometry, g: int, acc: np.dtype) -> None:
    """Group ``g`` of a small problem: one GEMM for all taps, then one strided write per tap.

    ``x (N*prod(spatial), C_in/g) @ W (C_in/g, prod(k)*C_out/g)``; tap ``t``'s
    plane lands in the output slice ``y[:, *t.dst]`` (the first tap of a phase
    is assigned, the rest added; phases no tap covers are zeroed first).
    Larger problems go through :func:`_scatter_phases`.
    """
    n, *spatial, _ = x.shape
    m = n * math.prod(spatial)
    ci = slice(g * geo.cin_g, (g + 1) * geo.cin_g)
    target = y[..., g * geo.cout_g:(g + 1) * geo.cout_g]
    x2d = np.ascontiguousarray(x[..., ci], dtype=acc).reshape(m, geo.cin_g)
    if geo.gemm == "tap":
        bg = None if b is None else b[g * geo.cout_g:(g + 1) * geo.cout_g]
        _scatter_phases(x2d, w.taps(ci, acc, m), bg, target, geo, (n, *spatial), acc)
        return
    for phase in geo.zero_phases:
        zero_rows = (slice(None), *(slice(p, None, st) for p, st in zip(phase, geo.strides)))
        target[zero_rows] = 0
    planes = (x2d @ w.all_taps(ci, acc)).reshape(n, *spatial, -1, geo.cout_g)
    for tap in geo.plan:
        at = (*tap.src, tap.flat)
        _put(target, tap, planes[at])


def _scatter_phases(x2d: np.ndarray, wts: np.ndarray, b: np.ndarray | None, target: np.ndarray,
                    geo: _Geometry, in_shape: tuple[int, ...], acc: np.dtype) -> None:
    """One GEMM per tap, summed per output phase with long contiguous adds.

    For stride ``s``, output ``o = p + q*s`` (per axis) is phase ``p``; tap
    ``t`` of phase ``p`` sends input ``h`` to ``q = h + shift_t``, so within a
    phase the taps are plain shifted copies of their GEMM results
    ``x (N*prod(in), C_in/g) @ wts[*t] (C_in/g, C_out/g)`` (``wts``: the
    group's per-tap matrices, :meth:`_Weights.taps`). Per phase:

    * no tap: the phase is zeroed (then gets the bias);
    * one covering tap: its GEMM result is copied straight into the phase;
    * otherwise the taps are summed in a contiguous accumulator shaped like
      the phase (its first whole tap's GEMM writes it directly, a covering
      first tap is copied, else it is zeroed; the other taps are added with
      inner loops over whole rows ``(q_last, C)``), then copied into the
      phase. With stride 1 and one group the phase is the output itself and
      is accumulated in place.

    The bias ``b`` (this group's, or None) is added to each phase's sum while
    it is still in cache (the GEMM buffer or the accumulator, with whole-row
    inner loops); phases no tap reaches get the bias alone. (Adding it on
    the way into the strided output, ``np.add(sum, b, out=phase)``, is one
    pass fewer but slower: NumPy 2.4's add over a strided output runs
    without its contiguous SIMD loop, 17 us against 7 + 7 us on a's phases.)

    The strided writes into the output (inner loops of ``C_out/g`` values)
    are copies, never read-modify-write adds. Memory: the output, one GEMM
    buffer ``(N*prod(in), C_out/g)`` and the accumulator (one phase,
    ``<= output / prod(s)`` per group).
    """
    m = x2d.shape[0]
    cout = geo.cout_g
    buf = scratch("gemm", (m, cout), acc)
    planes = buf.reshape(*in_shape, cout)
    accumulator = scratch("phase", (geo.accumulator,), acc) if geo.accumulator else None
    for ph in geo.phases:
        view = target[ph.view]
        if not ph.taps:
            view[...] = 0 if b is None else b
            continue
        if ph.single:
            tap = ph.taps[0]
            np.matmul(x2d, wts[tap.index], out=buf)
            if b is not None:
                _add_bias(planes, b)
            view[...] = planes[tap.src]
            continue
        if accumulator is None:            # stride 1, one group: the phase is the output
            a = view
        else:
            a = accumulator[:in_shape[0] * math.prod(ph.shape) * cout].reshape(
                in_shape[0], *ph.shape, cout)
        first = ph.taps[0]
        if first.whole and a.flags.c_contiguous:
            np.matmul(x2d, wts[first.index], out=a.reshape(m, cout))
            rest = ph.taps[1:]
        elif first.covers:
            np.matmul(x2d, wts[first.index], out=buf)
            a[...] = planes[first.src]
            rest = ph.taps[1:]
        else:
            a[...] = 0
            rest = ph.taps
        for tap in rest:
            np.matmul(x2d, wts[tap.index], out=buf)
            if tap.flat is None or not a.flags.c_contiguous or a.shape != planes.shape:
                a[tap.dst] += planes[tap.src]
            else:
                _flat_add(a, planes, tap.flat)
        if b is not None:
            _add_bias(a, b)
        if accumulator is not None:
            view[...] = a


def _put(target: np.ndarray, tap: _Tap, src: np.ndarray) -> None:
    if tap.assign:
        target[tap.dst] = src
    else:
        target[tap.dst] += src


@functools.lru_cache(maxsize=32)
def _scatter_matrix(axes: tuple[_AxisKey, ...], dtype: np.dtype,
                    bias_column: bool = False) -> np.ndarray:
    """The col2im of a tiny geometry as a 0/1 matrix ``(prod(out), prod(in) * prod(k))``.

    Row: the output position ``(o_1, ..., o_r)`` (row-major); column: the input
    position and tap ``(h_1, ..., h_r, i_1, ..., i_r)`` (row-major). The entry
    is 1 when input ``h`` through tap ``i`` lands on ``o``: on every axis
    ``o = h*s + i*d - pb``. With ``bias_column`` a last column of ones is
    appended (it picks up a bias row appended to the planes). A pure function
    of shapes and attributes, never of the weights.
    """
    def axis(key: _AxisKey) -> np.ndarray:            # (in, k, out) 0/1
        length, k, s, d, pb, out = key
        pos = np.arange(length)[:, None] * s + np.arange(k)[None, :] * d - pb
        return (pos[:, :, None] == np.arange(out)).astype(dtype)
    letters = iter("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
    names = [(next(letters), next(letters), next(letters)) for _ in axes]
    subscripts = (",".join(h + i + o for h, i, o in names) + "->"
                  + "".join(o for _, _, o in names) + "".join(h for h, _, _ in names)
                  + "".join(i for _, i, _ in names))
    mat = np.einsum(subscripts, *(axis(key) for key in axes))
    mat = mat.reshape(math.prod(key[5] for key in axes), -1)
    if bias_column:
        mat = np.concatenate([mat, np.ones((mat.shape[0], 1), dtype=dtype)], axis=1)
    mat = np.ascontiguousarray(mat)
    mat.setflags(write=False)
    return mat


def _scatter_tiny(x: np.ndarray, w: _Weights, b: np.ndarray | None, geo: _Geometry,
                  acc: np.dtype) -> np.ndarray:
    """Tiny problems: one GEMM for all taps, then col2im as one GEMM with the 0/1 matrix.

    ``planes[n] (prod(in)*prod(k), C_out/g) = x[n] @ W``; ``y[n] = S @ planes[n]``
    with ``S`` from :func:`_scatter_matrix` (sums of the same products, in
    another order; positions no tap reaches get exact zeros). A single image
    without groups takes the bias in the same GEMM: ``[S | 1] @ [planes; b]``.
    """
    n, *spatial, _ = x.shape
    cout = geo.out_shape[-1]
    pixels = math.prod(spatial)
    k = pixels * math.prod(w.w.shape[2:])
    every = slice(0, geo.cin_g * geo.group)
    if geo.group == 1:
        x2d = x.astype(acc, copy=False).reshape(n * pixels, geo.cin_g)
        if n == 1 and b is not None:   # np.dot: less overhead than matmul on tiny operands
            s = _scatter_matrix(geo.tiny, acc, True)
            planes = np.empty((k + 1, cout), dtype=acc)
            np.dot(x2d, w.all_taps(every, acc), out=planes[:k].reshape(pixels, -1))
            planes[k] = b
            return np.dot(s, planes).reshape(geo.out_shape)
        wmat = w.all_taps(every, acc)
        s = _scatter_matrix(geo.tiny, acc)
        y = (s @ (x2d @ wmat).reshape(n, k, cout)).reshape(geo.out_shape)
        if b is not None:
            y += b
        return y
    s = _scatter_matrix(geo.tiny, acc)
    y = np.empty(geo.out_shape, dtype=acc)
    for g in range(geo.group):
        ci = slice(g * geo.cin_g, (g + 1) * geo.cin_g)
        x2d = x[..., ci].astype(acc, copy=False).reshape(n * pixels, geo.cin_g)
        planes = (x2d @ w.all_taps(ci, acc)).reshape(n, k, geo.cout_g)
        y[..., g * geo.cout_g:(g + 1) * geo.cout_g] = (s @ planes).reshape(
            geo.out_shape[:-1] + (geo.cout_g,))
    if b is not None:
        y += b
    return y


class _forced:
    """Tests: ``with _forced("col2im"): ...`` takes that algorithm wherever it applies."""

    def __init__(self, algorithm: str) -> None:
        self.algorithm = algorithm

    def __enter__(self) -> None:
        global _FORCE
        _FORCE = self.algorithm
        _geometry.cache_clear()
        _KERAS_PLANS.clear()

    def __exit__(self, *exc: object) -> None:
        global _FORCE
        _FORCE = None
        _geometry.cache_clear()
        _KERAS_PLANS.clear()


def conv_transpose(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None, *,
                   strides: int | Sequence[int] = 1, dilations: int | Sequence[int] = 1,
                   pads: int | Sequence[int] = 0, output_padding: int | Sequence[int] = 0,
                   group: int = 1) -> np.ndarray:
    """ONNX ``ConvTranspose`` (explicit pads, ``auto_pad`` NOTSET), channels first, any rank.

    ``x (N, C_in, *spatial)`` with ``r >= 1`` spatial axes,
    ``w (C_in, C_out/group, *kernel)``, ``b (C_out,)``; ``strides``,
    ``dilations``, ``output_padding``: ``r`` ints; ``pads``: ``2r`` non-negative
    ints ``[begin_1, ..., begin_r, end_1, ..., end_r]`` (a single int: the same
    on every axis). Per axis the output length is
    ``s*(in-1) + op + K - pb - pe`` with ``K = (k-1)*d + 1``; output position
    ``o`` is full position ``o + pb``, and full positions ``>= (in-1)*s + K``
    are zero (plus bias)::

        y[n, co, o] = b[co] + sum over ci in co's group, taps a, inputs h with
                      h*s + a*d == o + pb on every axis  of  x[n, ci, h] * W[ci, co % (C_out/group), a]

    Returns ``(N, C_out, *out_spatial)``, empty (not an error) when a length is 0.
    """
    x = np.asarray(x)
    if x.ndim < 3:
        raise fail("x", x.shape, "expected (N, C_in, *spatial) with at least one spatial axis")
    y = conv_transpose_channels_last(np.moveaxis(x, 1, -1), w, b, strides=strides,
                                     dilations=dilations, pads=pads,
                                     output_padding=output_padding, group=group)
    return np.ascontiguousarray(np.moveaxis(y, -1, 1))


_KERAS_PADS: dict[tuple, tuple[tuple[int, ...], tuple[int, ...]]] = {}


def _keras_pads(spec: ConvTransposeSpec) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """``(pads, output_padding)`` from ``spec.crop_plan()`` via geometry, cached on the fields it reads.

    (The spec itself is not hashable: it has mapping fields.)
    """
    key: tuple[object, ...] | None
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


def keras_conv_transpose(spec: ConvTransposeSpec, x: np.ndarray, kernel: np.ndarray,
                         bias: np.ndarray | None = None) -> np.ndarray:
    """Keras 3 ``Conv{1,2,3}DTranspose(spec)`` applied to ``x`` in the spec's data format.

    ``kernel (*kernel_size, filters, in_channels)`` (Keras layout), ``bias
    (filters,)`` (ignored as absent when ``spec.use_bias`` is False). Crop and
    extension come from ``spec.crop_plan()`` (:mod:`convt_tools.geometry`):
    ``pads`` = crop begin/end, ``output_padding`` = extend,
    ``W = kernel.transpose(spec.layout.kernel_to_onnx)``; then
    ``ACTIVATIONS[spec.activation].numpy`` on the output in the Keras layout
    (axis -1 is the last spatial axis for ``channels_first``).

    Zero-size dims follow Keras (TensorFlow): batch 0 gives batch 0, 0 input
    channels or a zero-length spatial axis give pure bias (then activation)
    on the output :meth:`~ConvTransposeSpec.output_shape` reports.

    Precision: with a float16 compute dtype (``float16``/``mixed_float16``
    policies) ``x``, ``kernel`` and ``bias`` are cast to float16 as Keras does
    (accumulation in float32, result float16); otherwise the arrays' own
    dtype is used. ``bias`` is required when ``spec.use_bias``.
    """
    _require_spec(spec)
    x, kernel, bias = _keras_cast(spec, x), _keras_cast(spec, kernel), _keras_cast(spec, bias)
    kp = _keras_plan(spec, x.shape, kernel.shape)
    b = _keras_bias(spec, bias)
    return _keras_apply(kp, x, _Weights(kernel.transpose(kp.kernel_to_onnx)), b)


class KerasConvTranspose:
    """A Keras layer's reference with its weights prepared once: ``layer(x)`` is
    ``keras_conv_transpose(spec, x, kernel, bias)`` (same algorithm, same sums).

    The counterpart of an onnxruntime session, for callers that run one layer
    on many inputs (validation sweeps, benchmarks): ``kernel`` and ``bias``
    are validated and copied here (later changes to the caller's arrays do
    not reach the layer; float16-policy layers cast them as
    :func:`keras_conv_transpose` does), and the GEMM operands are laid out
    C-contiguous on first use per compute dtype and kept (:class:`_Weights`).
    Results can differ from :func:`keras_conv_transpose`'s in the last bits
    only where BLAS orders a dot product differently for a contiguous
    operand. Memory: the kernel's copy plus, per compute dtype used (the
    input's dtype decides, as in the function), one copy per matrix layout
    the inputs' shapes ask for (per-tap matrices for the per-phase path, one
    all-taps matrix for the others: at most two). Safe to call from several
    threads (a race can make a layout twice; both copies are equal).
    """

    def __init__(self, spec: ConvTransposeSpec, kernel: np.ndarray,
                 bias: np.ndarray | None = None) -> None:
        _require_spec(spec)
        k = _keras_cast(spec, kernel)
        _check_kernel(spec, k.shape)
        b = _keras_bias(spec, _keras_cast(spec, bias))
        self.spec = spec
        self.kernel = np.array(k, copy=True)
        self.kernel.setflags(write=False)
        self.bias = None if b is None else np.array(b, copy=True)
        if self.bias is not None:
            self.bias.setflags(write=False)
        self._weights = _Weights(self.kernel.transpose(spec.layout.kernel_to_onnx), keep=True)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """The layer applied to ``x`` (the spec's data format), as :func:`keras_conv_transpose`."""
        x = _keras_cast(self.spec, x)
        kp = _keras_plan(self.spec, x.shape, self.kernel.shape)
        return _keras_apply(kp, x, self._weights, self.bias)


def _require_spec(spec: object) -> None:
    if not isinstance(spec, ConvTransposeSpec):
        raise fail("spec", type(spec).__name__, "expected a ConvTransposeSpec "
                   "(from convt_tools.load_config(path) or parse_config(dict))")


@overload
def _keras_cast(spec: ConvTransposeSpec, a: None) -> None: ...
@overload
def _keras_cast(spec: ConvTransposeSpec, a: np.ndarray) -> np.ndarray: ...
def _keras_cast(spec: ConvTransposeSpec, a: np.ndarray | None) -> np.ndarray | None:
    """An array as the layer computes with it: a float16 compute dtype (``float16`` and
    ``mixed_float16`` policies) casts to float16 as the Keras layer does; otherwise the
    array's own precision is kept, so float64 arrays give a float64 reference."""
    if a is None:
        return None
    return np.asarray(a, dtype="float16") if spec.dtype == "float16" else np.asarray(a)


def _keras_bias(spec: ConvTransposeSpec, bias: np.ndarray | None) -> np.ndarray | None:
    """The bias the layer adds: None without ``use_bias``; else ``(filters,)``, required."""
    if not spec.use_bias:
        return None
    if bias is None:
        raise ConvtError(f"bias: the layer has use_bias=True but no bias was given; pass the "
                         f"({spec.filters},) bias (zeros if that is what it holds).", field="bias")
    if bias.shape != (spec.filters,):
        raise fail("bias", bias.shape, f"expected ({spec.filters},)")
    return bias


def _keras_apply(kp: _KerasPlan, x: np.ndarray, w: _Weights,
                 bias: np.ndarray | None) -> np.ndarray:
    """Run a validated plan: channels-last reference, back to the layout, activation."""
    if kp.empty:
        y = _empty_input_output(kp.out_shape, x, w.w, bias, kp.layout)
    else:
        x_cl = x if kp.to_cl is None else x.transpose(kp.to_cl)
        out_dtype, acc = _compute_dtype(x_cl, w.w, bias)
        assert kp.geometry is not None   # planned for every non-empty input
        y = _run(kp.geometry, x_cl, w, bias, out_dtype, acc)
        if kp.from_cl is not None:
            y = np.ascontiguousarray(y.transpose(kp.from_cl))
    return kp.activation(y)


@dataclass(frozen=True)
class _KerasPlan:
    """What :func:`keras_conv_transpose` derives from the spec and the shapes (cached)."""

    layout: Layout
    out_shape: tuple
    empty: bool
    kernel_to_onnx: tuple[int, ...]
    to_cl: tuple[int, ...] | None
    from_cl: tuple[int, ...] | None
    geometry: _Geometry | None
    activation: Callable[[np.ndarray], np.ndarray]


_KERAS_PLANS: dict[tuple, _KerasPlan] = {}


def _keras_plan(spec: ConvTransposeSpec, x_shape: tuple[int, ...],
                kernel_shape: tuple[int, ...]) -> _KerasPlan:
    """Validate the shapes against the spec and plan the call; cached on the fields it reads.

    Only successful validations are cached, so every error is raised (with its
    message) on every call; a validation sweep calling the same layer thousands
    of times pays for the checks once.
    """
    key: tuple | None
    try:
        key = (spec.kernel_size, spec.strides, spec.dilation_rate, spec.padding,
               spec.output_padding, spec.data_format, spec.filters,
               spec.activation, x_shape, kernel_shape)
        found = _KERAS_PLANS.get(key)
    except TypeError:       # unhashable fields (lists): no caching
        key = found = None
    if found is not None:
        return found
    layout = spec.layout
    _check_kernel(spec, kernel_shape)
    want = spec.kernel_shape(0)[:-1]
    out_shape = spec.output_shape(x_shape, kernel_shape[-1])
    activation = ACTIVATIONS[canonical_activation(spec.activation)].numpy
    empty = 0 in x_shape
    geometry = None
    to_cl, from_cl = layout.to_channels_last, layout.from_channels_last
    if not empty:
        pads, output_padding = _keras_pads(spec)
        rank = len(want)
        xs = tuple(x_shape) if to_cl is None else tuple(x_shape[a] for a in to_cl)
        ws = tuple(kernel_shape[a] for a in layout.kernel_to_onnx)
        geometry = _geometry(xs, ws, None, _attr(spec.strides, rank),
                             _attr(spec.dilation_rate, rank), _attr(pads, 2 * rank),
                             _attr(output_padding, rank), 1)
    plan = _KerasPlan(layout, tuple(out_shape), empty, tuple(layout.kernel_to_onnx),
                      None if to_cl is None else tuple(to_cl),
                      None if from_cl is None else tuple(from_cl), geometry, activation)
    if key is not None and _FORCE is None:
        if len(_KERAS_PLANS) >= 256:
            _KERAS_PLANS.clear()
        _KERAS_PLANS[key] = plan
    return plan



def _check_kernel(spec: ConvTransposeSpec, kernel_shape: tuple[int, ...]) -> None:
    """``kernel_shape`` must be the spec's Keras kernel layout with any ``in_channels``."""
    want = spec.kernel_shape(0)[:-1]
    if len(kernel_shape) != len(want) + 1 or kernel_shape[:-1] != want:
        raise fail("kernel", kernel_shape, f"expected {spec.layout.kernel_layout} = "
                   f"({', '.join(map(str, want))}, in_channels)")


def _empty_input_output(out_shape: Sequence[int | None], x: np.ndarray, kernel: np.ndarray,
                        bias: np.ndarray | None, layout: Layout) -> np.ndarray:
    """A zero-size input: no product terms, so the output is the bias broadcast (or zeros)."""
    dtype, _ = _compute_dtype(x, kernel, bias)
    y = np.zeros(tuple(int(d) for d in out_shape), dtype=dtype)  # type: ignore[arg-type]
    if bias is not None and y.size:
        shape = [1] * y.ndim
        shape[layout.channels_axis] = -1
        y += np.asarray(bias, dtype=dtype).reshape(shape)
    return y


keras_conv2d_transpose = keras_conv_transpose


def _keras_algorithm(spec: ConvTransposeSpec, x_shape: Sequence[int],
                     kernel_shape: Sequence[int]) -> str:
    """The algorithm :func:`keras_conv_transpose` uses for these shapes (benchmarks, tests)."""
    geo = _keras_plan(spec, tuple(x_shape), tuple(kernel_shape)).geometry
    return "none" if geo is None else geo.algorithm
