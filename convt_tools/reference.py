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

__all__ = ["conv_transpose", "conv_transpose_nhwc", "keras_conv2d_transpose",
           "output_length"]

# Up to this many GEMM output elements, all taps go through one GEMM (see _scatter_group).
_SINGLE_GEMM_MAX = 1 << 16
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


def _pair(name: str, value: Sequence[int], *, minimum: int) -> tuple[int, int]:
    vals = tuple(int(v) for v in value)
    if len(vals) != 2 or min(vals) < minimum:
        raise fail(name, tuple(value), f"expected two integers >= {minimum}")
    return vals  # type: ignore[return-value]


def _compute_dtype(*arrays: np.ndarray | None) -> tuple[np.dtype, np.dtype]:
    """``(result dtype, accumulation dtype)``; float16 accumulates in float32."""
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
    geo = _geometry(x.shape, w.shape, None if b is None else b.shape, tuple(strides),
                    tuple(dilations), tuple(pads), tuple(output_padding), group)
    if not x.size or not math.prod(geo.out_shape):
        y = np.zeros(geo.out_shape, dtype=acc)
    else:
        y = np.empty(geo.out_shape, dtype=acc)
        for g in range(group):
            _scatter_group(x, w, y, geo, g, acc)
    if b is not None:
        y += b.astype(acc, copy=False)
    return y.astype(out_dtype, copy=False)


@functools.lru_cache(maxsize=256)
def _geometry(*args: object) -> "_Geometry":
    """Cached :meth:`_Geometry.build` (pure function of shapes and attributes)."""
    return _Geometry.build(*args)  # type: ignore[arg-type]


@dataclass(frozen=True)
class _Geometry:
    """Validated shapes, the per-axis tap slices and the scatter order (resolved once)."""

    out_shape: tuple[int, int, int, int]
    cin_g: int
    cout_g: int
    strides: tuple[int, int]
    taps: list[tuple[int, int, _TapSlice, _TapSlice, bool]]   # (i, j, rows, cols, assign)
    zero_phases: list[tuple[int, int]]                        # (phase_h, phase_w) to zero

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
        p = tuple(int(v) for v in pads)
        if len(p) != 4 or min(p) < 0:
            raise fail("pads", tuple(pads), "expected 4 non-negative integers "
                       "[h_begin, w_begin, h_end, w_end]")
        n, h, wd, cin = x_shape
        if isinstance(group, bool) or int(group) < 1 or cin % group:
            raise fail("group", group, f"expected a positive divisor of C_in = {cin}")
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
        rows = _tap_slices(h, ho, kh, s[0], d[0], p[0])
        cols = _tap_slices(wd, wo, kw, s[1], d[1], p[1])
        taps, zero = _scatter_order(rows, cols, s, (ho, wo))
        return _Geometry(out_shape=(n, ho, wo, cout), cin_g=cin // group, cout_g=w_shape[1],
                         strides=s, taps=taps, zero_phases=zero)


def _covers_phase(t: _TapSlice, s: int, out_length: int) -> bool:
    """True when the tap writes every output position of its phase ``dst.start % s``."""
    last = t.dst.start + (t.src.stop - t.src.start - 1) * s
    return t.dst.start < s and last + s >= out_length


def _scatter_order(rows: list[_TapSlice | None], cols: list[_TapSlice | None],
                   s: tuple[int, int], out_hw: tuple[int, int]
                   ) -> tuple[list[tuple[int, int, _TapSlice, _TapSlice, bool]],
                              list[tuple[int, int]]]:
    """Taps in scatter order, and the output phases that need zeroing first.

    Output positions split into ``s_h * s_w`` phases (``o % s``). The first tap
    that writes all of a phase is *assigned* (no zero fill, no read of the
    output); phases no tap covers fully are zero-filled; every other tap is
    added. Assigned taps come first, so every add finds initialised values.
    """
    assigned: set[tuple[int, int]] = set()
    first: list[tuple[int, int, _TapSlice, _TapSlice, bool]] = []
    rest: list[tuple[int, int, _TapSlice, _TapSlice, bool]] = []
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            if r is None or c is None:
                continue
            phase = (r.dst.start % s[0], c.dst.start % s[1])
            if (phase not in assigned and _covers_phase(r, s[0], out_hw[0])
                    and _covers_phase(c, s[1], out_hw[1])):
                assigned.add(phase)
                first.append((i, j, r, c, True))
            else:
                rest.append((i, j, r, c, False))
    phases = [(ph, pw) for ph in range(min(s[0], out_hw[0])) for pw in range(min(s[1], out_hw[1]))]
    return first + rest, [ph for ph in phases if ph not in assigned]


def _tap_matrices(w: np.ndarray, acc: np.dtype) -> np.ndarray:
    """``(C_in/g, C_out/g, kh, kw)`` -> ``(kh, kw, C_in/g, C_out/g)``, one BLAS-ready matrix per tap.

    A Keras kernel seen as ``W = kernel.transpose(3, 2, 0, 1)`` already has
    a unit stride along ``C_in``, so its per-tap matrices go to BLAS as
    transposed operands without a copy; other layouts are copied once.
    """
    taps = w.transpose(2, 3, 0, 1).astype(acc, copy=False)
    unit = taps.itemsize
    if unit not in (taps.strides[2], taps.strides[3]) or 0 in taps.shape:
        taps = np.ascontiguousarray(taps)
    return taps


def _scatter_group(x: np.ndarray, w: np.ndarray, y: np.ndarray, geo: _Geometry,
                   g: int, acc: np.dtype) -> None:
    """Group ``g``: per kernel tap one BLAS matmul into a reused buffer, then a strided add.

    ``buf = x (N*H*W, C_in/g) @ W[:, :, i, j] (C_in/g, C_out/g)`` lands in the
    output slice ``y[:, rows.dst, cols.dst]`` (the first tap of a phase is
    assigned, the rest added). Memory: the output plus one tap buffer.
    """
    n, h, wd, _ = x.shape
    ci = slice(g * geo.cin_g, (g + 1) * geo.cin_g)
    target = y[..., g * geo.cout_g:(g + 1) * geo.cout_g]
    sh, sw = geo.strides
    for ph, pw in geo.zero_phases:
        target[:, ph::sh, pw::sw] = 0
    x2d = np.ascontiguousarray(x[..., ci], dtype=acc).reshape(n * h * wd, geo.cin_g)
    taps = _tap_matrices(w[ci], acc)
    kh, kw = taps.shape[:2]
    if x2d.shape[0] * kh * kw * geo.cout_g <= _SINGLE_GEMM_MAX:
        # Small problem: one GEMM for all taps (fewer calls; the result stays in cache).
        wmat = taps.transpose(2, 0, 1, 3).reshape(geo.cin_g, kh * kw * geo.cout_g)
        all_planes = (x2d @ wmat).reshape(n, h, wd, kh, kw, geo.cout_g)
        plane = lambda i, j: all_planes[:, :, :, i, j]  # noqa: E731
    else:
        buf = np.empty((n * h * wd, geo.cout_g), dtype=acc)
        planes = buf.reshape(n, h, wd, geo.cout_g)

        def plane(i: int, j: int) -> np.ndarray:
            np.matmul(x2d, taps[i, j], out=buf)
            return planes
    for i, j, r, c, assign in geo.taps:
        src = plane(i, j)[:, r.src, c.src]
        if assign:
            target[:, r.dst, c.dst] = src
        else:
            target[:, r.dst, c.dst] += src


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


def keras_conv2d_transpose(spec: "Conv2DTransposeSpec", x: np.ndarray, kernel: np.ndarray,  # noqa: F821
                           bias: np.ndarray | None = None) -> np.ndarray:
    """Keras 3 ``Conv2DTranspose(spec)`` applied to ``x`` in the spec's data format.

    ``kernel (kh, kw, filters, in_channels)`` (Keras layout), ``bias (filters,)``
    (ignored as absent when ``spec.use_bias`` is False). Crop and extension
    come from ``spec.crop_plan()``: ``pads`` = crop begin/end,
    ``output_padding`` = extend, ``W = kernel.transpose(3, 2, 0, 1)``; then
    ``ACTIVATIONS[spec.activation].numpy`` on the output in the Keras layout
    (axis -1 is width for ``channels_first``).
    """
    x = np.asarray(x)
    kernel = np.asarray(kernel)
    if kernel.ndim != 4 or kernel.shape[:3] != spec.kernel_shape(0)[:3]:
        kh, kw, f, _ = spec.kernel_shape(0)
        raise fail("kernel", kernel.shape, f"expected (kh, kw, filters, in_channels) = "
                   f"({kh}, {kw}, {f}, in_channels)")
    spec.check_input_shape(x.shape, kernel.shape[3])
    if not spec.use_bias:
        bias = None
    elif bias is not None and np.shape(bias) != (spec.filters,):
        raise fail("bias", np.shape(bias), f"expected ({spec.filters},)")
    ch, cw = spec.crop_plan()
    w = kernel.transpose(3, 2, 0, 1)
    x_cl = x if spec.data_format == "channels_last" else x.transpose(0, 2, 3, 1)
    y = conv_transpose_nhwc(x_cl, w, bias, strides=spec.strides, dilations=spec.dilation_rate,
                            pads=(ch.begin, cw.begin, ch.end, cw.end),
                            output_padding=(ch.extend, cw.extend))
    if spec.data_format == "channels_first":
        y = np.ascontiguousarray(y.transpose(0, 3, 1, 2))
    return ACTIVATIONS[canonical_activation(spec.activation)].numpy(y)
