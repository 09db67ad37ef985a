"""GEMM + blocked col2im for :mod:`convt_tools.reference` (large kernels, long overlaps).

Per axis, kernel tap ``i`` lands on full position ``h*s + i*d = (h + j)*s + p``
with ``j = (i*d) // s`` and ``p = (i*d) % s``. The full output, seen as
``(Q, s)`` per axis (``q = h + j``, phase ``p``), receives from all taps that
share a ``j`` one *block*: a consecutive run of taps ``i`` whose phases are
``p0, p0 + d, ...``. So the whole scatter is, per combination of blocks over
the axes, one NumPy add of a strided view of the GEMM result::

    buf[n, h1 + j1, P1, h2 + j2, P2, ..., c] += cols[n, h1, h2, ..., I1, I2, ..., c]

(``I``: the block's taps, ``P``: their phases) with inner runs of
``len(I_last) * C_out`` contiguous values (a whole phase row when ``d = 1``).
That is ``prod(ceil(K/s))`` adds instead of one per tap. The GEMM
``x (rows, C_in/g) @ W (C_in/g, taps * C_out/g)`` is chunked over input rows
(axis 1, per image) and, for big weights, over the blocks of axis 1 (a
consecutive column range of ``W``), so that each ``cols`` chunk stays near
:data:`COLS_CHUNK` values (in cache while it is scattered). The buffer spans
the cropped output rounded out to whole ``s``-periods, starts zeroed, and is
copied once into the output (with the bias) unless it *is* the output.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ._scratch import scratch

# Values per chunk of GEMM results (float32: 4 MiB): bigger GEMMs, scattered soon after.
COLS_CHUNK = 1 << 20
# A weight matrix above this many values is multiplied one block of axis-1 taps at a time.
WEIGHT_CHUNK = 1 << 18


@dataclass(frozen=True)
class Block:
    """The taps ``i`` in ``[ia, ib)`` of one axis: shift ``j``, phases ``p0::d``."""

    j: int
    ia: int
    ib: int
    phases: slice


@dataclass(frozen=True)
class Col2imPlan:
    """Shapes and blocks of one geometry (cached with it)."""

    q0: tuple[int, ...]              # first period of the buffer, per axis
    periods: tuple[int, ...]         # Q per axis
    strides: tuple[int, ...]
    crop: tuple[slice, ...]          # the output inside the merged (Q*s) axes
    direct: bool                     # the buffer is exactly the output
    blocks: tuple[tuple[Block, ...], ...]
    tap_chunks: tuple[tuple[int, int], ...]   # [ia, ib) ranges of axis-1 taps per GEMM
    rows: int                        # input rows (axis 1) per GEMM


def plan(spatial: Sequence[int], k: Sequence[int], s: Sequence[int], d: Sequence[int],
         pb: Sequence[int], out: Sequence[int], cin_g: int, cout_g: int) -> Col2imPlan:
    """The :class:`Col2imPlan` of one geometry (pure function of shapes)."""
    q0, periods, crop, blocks = [], [], [], []
    for _length, kk, st, dd, p, o in zip(spatial, k, s, d, pb, out):
        first, last = p // st, -(-(p + o) // st)
        q0.append(first)
        periods.append(last - first)
        crop.append(slice(p - first * st, p - first * st + o))
        axis: list[Block] = []
        i = 0
        while i < kk:
            j = i * dd // st
            ib = i + 1
            while ib < kk and ib * dd // st == j:
                ib += 1
            p0 = i * dd - j * st
            axis.append(Block(j, i, ib, slice(p0, p0 + (ib - i - 1) * dd + 1, dd)))
            i = ib
        blocks.append(tuple(axis))
    direct = all(c.start == 0 and c.stop == q * st for c, q, st in zip(crop, periods, s))
    taps, rest_taps = math.prod(k), math.prod(k[1:])
    if cin_g * taps * cout_g <= WEIGHT_CHUNK:
        tap_chunks: tuple[tuple[int, int], ...] = ((0, k[0]),)
    else:
        tap_chunks = tuple((b.ia, b.ib) for b in blocks[0])
    widest = max(ib - ia for ia, ib in tap_chunks)
    per_row = math.prod(spatial[1:]) * widest * rest_taps * cout_g
    rows = max(1, min(spatial[0], COLS_CHUNK // max(per_row, 1)))
    return Col2imPlan(tuple(q0), tuple(periods), tuple(s), tuple(crop), direct,
                      tuple(blocks), tap_chunks, rows)


def adds(pl: Col2imPlan) -> int:
    """NumPy adds per chunk of rows (the cost model's call count)."""
    return math.prod(len(b) for b in pl.blocks)


def run(x2d: np.ndarray, wmat: np.ndarray, pl: Col2imPlan, n: int, spatial: Sequence[int],
        k: Sequence[int], cout: int, acc: np.dtype, *, fresh: bool) -> np.ndarray:
    """The full-period buffer ``(n, Q1, s1, ..., Qr, sr, C_out/g)`` of one group.

    ``x2d (n*prod(spatial), C_in/g)``, ``wmat (C_in/g, prod(k)*C_out/g)``
    (columns ``(*taps, co)``). ``fresh``: a new array (it becomes the
    output), else a zeroed scratch array (copied out by the caller).
    """
    r = len(spatial)
    shape = [n]
    for q, st in zip(pl.periods, pl.strides):
        shape += [q, st]
    if fresh:
        buf = np.zeros((*shape, cout), dtype=acc)
    else:
        buf = scratch("col2im", (*shape, cout), acc)
        buf.fill(0)
    rows_all, rest = spatial[0], math.prod(spatial[1:])
    x4 = x2d.reshape(n, rows_all, rest, x2d.shape[-1])
    rest_taps = math.prod(k[1:])
    perm = [ax for a in range(r) for ax in (a, r + a)] + [2 * r]   # (h1, i1, h2, i2, ..., c)
    width = rest_taps * cout
    for ia, ib in pl.tap_chunks:
        w = wmat if (ia, ib) == (0, k[0]) else wmat[:, ia * width:ib * width]
        axis0 = [b for b in pl.blocks[0] if ia <= b.ia and b.ib <= ib]
        combos = list(itertools.product(axis0, *pl.blocks[1:]))
        for img in range(n):
            bimg = buf[img]
            for c0 in range(0, rows_all, pl.rows):
                c1 = min(rows_all, c0 + pl.rows)
                cols = scratch("cols", ((c1 - c0) * rest, w.shape[1]), acc)
                np.matmul(x4[img, c0:c1].reshape(-1, x4.shape[-1]), w, out=cols)
                cols = cols.reshape(c1 - c0, *spatial[1:], ib - ia, *k[1:], cout)
                for combo in combos:
                    dst: list[slice] = []
                    src_h: list[slice] = []
                    src_i: list[slice] = []
                    empty = False
                    for a, blk in enumerate(combo):
                        lo, hi = (c0, c1) if a == 0 else (0, spatial[a])
                        lo = max(lo, pl.q0[a] - blk.j)
                        hi = min(hi, pl.q0[a] + pl.periods[a] - blk.j)
                        if lo >= hi:
                            empty = True
                            break
                        q = lo + blk.j - pl.q0[a]
                        dst += [slice(q, q + hi - lo), blk.phases]
                        base = c0 if a == 0 else 0
                        src_h.append(slice(lo - base, hi - base))
                        off = ia if a == 0 else 0
                        src_i.append(slice(blk.ia - off, blk.ib - off))
                    if empty:
                        continue
                    src = (*src_h, *src_i)
                    bimg[tuple(dst)] += cols[src].transpose(perm)
    return buf


def output_view(buf: np.ndarray, pl: Col2imPlan) -> np.ndarray:
    """The cropped output ``(n, *out, C)`` inside the buffer (a view)."""
    n, c = buf.shape[0], buf.shape[-1]
    merged = buf.reshape(n, *(q * st for q, st in zip(pl.periods, pl.strides)), c)
    crop = (slice(None), *pl.crop)
    return merged if pl.direct else merged[crop]
