"""``convt solve``: every transposed convolution that maps an input size to a target size.

Per spatial axis the output length follows each framework's own rule
(:mod:`convt_tools.geometry`), with ``K = (k-1)*d + 1``:

* Keras: :func:`geometry.keras_output_length` (``valid``/``same``,
  ``output_padding`` None or ``< stride``); layer-wide ``padding`` and
  ``output_padding`` None-or-not; stride > 1 together with dilation > 1 on any
  axes is refused.
* torch: ``O = (in-1)*s + K - 2p + op`` with ``0 <= op < max(s, d)``; here
  ``0 <= p <= K - 1`` (a larger padding crops rows no input reaches).

Search space: kernel ``1..max_kernel``, stride ``1..max_stride``
(default: the largest stride that can still reach the target), dilation
``1..max_dilation``; ``--kernel-size``/``--strides`` fix them. Solutions are
ranked by a key, in order:

1. simplest: no dilation, no kernel smaller than its stride (zero rows between
   taps), fewest axes with an ``output_padding``, the same kernel and stride
   on every axis;
2. portable: the ONNX export has symmetric pads (begin == end on every axis);
3. agreeing: the other framework has a single exact layer for it (the crop
   total is even, so Keras and torch agree; see :mod:`convt_tools.translate.plan`);
4. then smaller kernels, smaller strides, smaller padding.

``mirror`` gives the forward convolution's output size (Keras ``Conv{n}D``
``valid``/``same``, torch ``Conv{n}d`` padding ``p``) so that the solutions
restore its input size; solutions with the forward kernel and stride rank first.
Standard library only.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

from .errors import ConvtError, fail
from .geometry import (ceil_div, effective_kernel, keras_crop, keras_output_length,
                       keras_total_exists, natural_length)

__all__ = ["Search", "Solution", "forward_output_length", "forward_padding", "search", "solve",
           "solve_sizes"]

FRAMEWORKS = ("keras", "torch")
_STRIDE_CAP = 16


@dataclass(frozen=True)
class Solution:
    """One configuration; per-axis tuples. ``padding`` is ``valid``/``same`` (Keras) or ints (torch)."""

    framework: str
    kernel_size: tuple[int, ...]
    strides: tuple[int, ...]
    dilation: tuple[int, ...]
    padding: Any
    output_padding: tuple[int, ...] | None
    symmetric: bool
    agrees: bool
    key: tuple[Any, ...]

    def config(self) -> dict[str, Any]:
        """The arguments with the framework's own names."""
        if self.framework == "keras":
            return {"kernel_size": list(self.kernel_size), "strides": list(self.strides),
                    "padding": self.padding, "output_padding": None if self.output_padding is None
                    else list(self.output_padding), "dilation_rate": list(self.dilation)}
        return {"kernel_size": list(self.kernel_size), "stride": list(self.strides),
                "padding": list(self.padding), "output_padding": list(self.output_padding or ()),
                "dilation": list(self.dilation)}

    def text(self) -> str:
        """Python-ish one line, e.g. ``kernel_size=(4, 4), strides=(2, 2), padding='same'``."""
        def v(t: Sequence[int]) -> str:
            return str(t[0]) if len(set(t)) == 1 else str(tuple(t))
        if self.framework == "keras":
            parts = [f"kernel_size={v(self.kernel_size)}", f"strides={v(self.strides)}",
                     f"padding={self.padding!r}"]
            if self.output_padding is not None:
                parts.append(f"output_padding={v(self.output_padding)}")
            if any(d > 1 for d in self.dilation):
                parts.append(f"dilation_rate={v(self.dilation)}")
        else:
            parts = [f"kernel_size={v(self.kernel_size)}", f"stride={v(self.strides)}",
                     f"padding={v(self.padding)}"]
            if any(self.output_padding or ()):
                parts.append(f"output_padding={v(self.output_padding or ())}")
            if any(d > 1 for d in self.dilation):
                parts.append(f"dilation={v(self.dilation)}")
        return ", ".join(parts)

    def explain(self, inputs: Sequence[int]) -> list[str]:
        """Per-axis derivation of the output length."""
        lines = []
        for i, (n, k, s, d) in enumerate(zip(inputs, self.kernel_size, self.strides, self.dilation)):
            K = effective_kernel(k, d)
            L = natural_length(n, k, s, d)
            if self.framework == "keras":
                op = None if self.output_padding is None else self.output_padding[i]
                out = keras_output_length(n, k, s, d, self.padding, op)
                c = keras_crop(k, s, d, self.padding, op)
                how = (f"{c.extend} zero row(s) appended at the end" if c.extend else
                       f"crop {c.begin} at the start, {c.end} at the end")
                lines.append(f"axis {i}: K = ({k}-1)*{d}+1 = {K}, L = ({n}-1)*{s}+{K} = {L}, "
                             f"Keras {self.padding} op={op}: O = {out} ({how})")
            else:
                p, op = self.padding[i], (self.output_padding or (0,) * len(inputs))[i]
                lines.append(f"axis {i}: K = ({k}-1)*{d}+1 = {K}, L = ({n}-1)*{s}+{K} = {L}, "
                             f"torch O = L - 2p + op = {L} - {2 * p} + {op} = {L - 2 * p + op}")
        return lines


def forward_padding(text: str | None, framework: str) -> Any:
    """``--padding`` of the forward convolution (``--mirror``): valid, same, or (torch) an integer."""
    if text is None:
        return "valid"
    if text.lower() in ("valid", "same"):
        return text.lower()
    allowed = "expected valid or same" + (" or an integer (torch)" if framework == "torch" else "")
    if framework == "torch" and text.isdigit():
        from .spec.values import parse_int

        return parse_int(text, "padding", allowed)
    raise ConvtError(f"padding: got {text!r}; {allowed}.", field="padding")


def forward_output_length(n: int, k: int, s: int, d: int, padding: Any, framework: str) -> int:
    """A forward convolution's output length.

    Keras ``Conv{n}D``: ``valid`` ``(n - K) // s + 1``, ``same`` ``ceil(n / s)``;
    torch ``Conv{n}d``: ``(n + 2p - K) // s + 1`` (``'same'``/``'valid'`` strings too).
    """
    K = effective_kernel(k, d)
    if padding == "same":
        return ceil_div(n, s) if framework == "keras" else n
    p = 0 if padding == "valid" else padding
    if not isinstance(p, int) or p < 0:
        raise fail("padding", padding, "expected valid, same, or (torch) an integer >= 0")
    out = (n + 2 * p - K) // s + 1
    if out < 1:
        raise ConvtError(f"input: the forward convolution (kernel {k}, stride {s}, dilation {d}, "
                         f"padding {padding}) gives no output for input length {n}.", field="input")
    return out


# Per-axis candidate tuples (generation order: kernel, stride, dilation, then padding/op):
#   keras: (k, s, d, op, symmetric, agrees);  torch: (k, s, d, p, op, symmetric, agrees).


def _keras_axis(n: int, out: int, ks: Sequence[int], ss: Sequence[int], ds: Sequence[int],
                padding: str, op_given: bool, budget: _Budget
                ) -> list[tuple[int, int, int, int | None, bool, bool]]:
    """Every ``(k, s, d)`` whose Keras length is ``out``; with ``op_given`` the one
    ``op`` (the length is ``base + op``, so at most one ``op`` per triple)."""
    found = []
    for k, s, d in itertools.product(ks, ss, ds):
        budget.spend(1)
        op: int | None
        if op_given:
            op = given = out - keras_output_length(n, k, s, d, padding, 0)
            if not 0 <= given < s:
                continue
        elif keras_output_length(n, k, s, d, padding, None) == out:
            op = None
        else:
            continue
        c = keras_crop(k, s, d, padding, op)
        found.append((k, s, d, op, c.begin == c.end, c.extend > 0 or c.total % 2 == 0))
    return found


def _torch_axis(n: int, out: int, ks: Sequence[int], ss: Sequence[int], ds: Sequence[int],
                budget: _Budget) -> list[tuple[int, int, int, int, int, bool, bool]]:
    """``(k, s, d, p, op, symmetric, agrees)`` with ``0 <= p <= K - 1``, ``0 <= op < max(s, d)``:
    ``op = out - L + 2p``, so ``p`` runs over an interval computed directly."""
    found = []
    for k, s, d in itertools.product(ks, ss, ds):
        budget.spend(1)
        K = effective_kernel(k, d)
        L = natural_length(n, k, s, d)
        lo = max(0, ceil_div(L - out, 2))
        hi = min(K - 1, (L - out + max(s, d) - 1) // 2)
        if hi < lo:
            continue
        budget.spend(hi - lo + 1)
        for p in range(lo, hi + 1):
            op = out - L + 2 * p
            found.append((k, s, d, p, op, op < s, _agrees_torch(k, s, d, p, op)))
    return found


def _agrees_torch(k: int, s: int, d: int, p: int, op: int) -> bool:
    """A single Keras layer with this axis's window exists (same kernel): see translate.plan.

    That is a Keras crop (``geometry.keras_crop`` over valid/same and op None/0..s-1)
    with ``begin == p`` and ``total == 2p - op``. Keras's totals are
    ``min(K - s, 0)`` (valid), ``-op'`` (valid, op'), ``K - s`` (same) and
    ``K - K % 2 - op'`` (same, op'); a total ``T >= 0`` begins at ``T // 2``,
    a negative one at 0. So ``op == 0`` needs total ``2p``; ``p == 0 < op`` total ``-op``.
    """
    if op == 0:
        total = 2 * p
    elif p == 0 and op > 0:
        total = -op
    else:
        return False
    return keras_total_exists(k, s, d, total)


def _key(ks: tuple[int, ...], ss: tuple[int, ...], ds: tuple[int, ...], n_op: int,
         symmetric: bool, agrees: bool, pad_sum: int, prefer: tuple[int, int] | None
         ) -> tuple[Any, ...]:
    mirror_miss = 0 if prefer is None or (set(ks) == {prefer[0]} and set(ss) == {prefer[1]}) else 1
    uniform = 0 if len(set(ks)) == 1 and len(set(ss)) == 1 else 1
    gaps = sum(1 for k, s, d in zip(ks, ss, ds) if effective_kernel(k, d) < s)
    return (mirror_miss, sum(d - 1 for d in ds), gaps, n_op, uniform, not symmetric, not agrees,
            sum(ks), sum(ss), pad_sum)


class _Budget:
    """Counts the work of one query (per-axis triples and candidates, combinations
    examined) and refuses, before anything is printed, a per-axis search above the cap."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.axis_work = 0
        self.examined = 0

    def spend(self, n: int) -> None:
        self.need(n)
        self.axis_work += n

    def need(self, n: int) -> None:
        """Refuse when ``n`` more units would pass the cap (checked before any loop)."""
        if self.axis_work + n > self.cap:
            raise ConvtError(f"max_kernel: the per-axis search (kernel x stride x dilation x "
                             f"padding) exceeds {self.cap:,} candidates; lower --max-kernel, "
                             f"--max-stride or --max-dilation, or fix --kernel-size/--strides.",
                             field="max_kernel")


# Per-axis vectors summed by the key (components 1, 2, 3, 7, 8, 9):
# (d - 1, gap, op != 0, k, s, p). The other components are ORs over the axes
# (mirror miss, asymmetric, disagreeing), "same (k, s) on every axis" and, for
# Keras, "stride > 1 with dilation > 1"/"op given but all 0": constant within a
# class of candidates with the same flags, so within a class the key grows with
# the vector (lexicographic order is compatible with addition).

class _Axis:
    """One axis's candidates grouped by flags, each group sorted by (vector, index)."""

    def __init__(self, cands: list[tuple[Any, ...]], torch: bool,
                 prefer: tuple[int, int] | None) -> None:
        self.cands = cands
        self.entries: list[tuple[tuple[int, ...], tuple[Any, ...], tuple[int, int]]] = []
        for c in cands:
            k, s, d = c[0], c[1], c[2]
            op = c[4] if torch else c[3]
            p = c[3] if torch else 0
            opnz = 1 if op else 0
            vec = (d - 1, 1 if effective_kernel(k, d) < s else 0, opnz, k, s, p)
            miss = 0 if prefer is None or (k, s) == prefer else 1
            flags = (miss, 0 if c[-2] else 1, 0 if c[-1] else 1, opnz, s > 1, d > 1)
            self.entries.append((vec, flags, (k, s)))
        self.classes = self._group(range(len(cands)))
        by_pair: dict[tuple[int, int], list[int]] = {}
        for i, e in enumerate(self.entries):
            by_pair.setdefault(e[2], []).append(i)
        self.by_pair = {pair: self._group(idx) for pair, idx in by_pair.items()}
        self.minvec = tuple(min(e[0][j] for e in self.entries) for j in range(6)) \
            if self.entries else (0,) * 6
        self.count_s1 = sum(1 for c in cands if c[1] == 1)
        self.count_d1 = sum(1 for c in cands if c[2] == 1)
        self.count_s1d1 = sum(1 for c in cands if c[1] == 1 and c[2] == 1)

    def _group(self, idx: Any) -> list[tuple[tuple[Any, ...], list[int]]]:
        groups: dict[tuple[Any, ...], list[int]] = {}
        for i in idx:
            groups.setdefault(self.entries[i][1], []).append(i)
        return [(f, sorted(lst, key=lambda i: (self.entries[i][0], i)))
                for f, lst in sorted(groups.items())]


def _ranked(axes: list[_Axis], group: int, pad_const: int, op_given: bool, keras: bool,
            budget: _Budget) -> Iterator[tuple[tuple[Any, ...], tuple[int, ...]]]:
    """``(key, per-axis indices)`` of every combination of one group, in key order, lazily.

    Best-first search over partial assignments (axis by axis). A heap entry is the
    ``t``-th candidate of one class for axis ``j`` under a parent assignment; its
    bound is the key of that partial assignment plus the smallest vector of every
    later axis (a lower bound of every completion, exact on the last axis), then
    the generation indices, so ties keep today's order. Popping an entry pushes its
    next sibling (whose bound is not smaller) and the class heads of the next axis.
    """
    import heapq

    rank = len(axes)
    rem: list[tuple[int, ...]] = [(0,) * 6] * (rank + 1)
    for j in range(rank - 1, -1, -1):
        rem[j] = tuple(a + b for a, b in zip(rem[j + 1], axes[j].minvec))
    heap: list[Any] = []
    seq = itertools.count()
    # state: (sums, miss, asym, dis, pair-or-None (None: not uniform), any_s1, any_d1, all_op0, idx)
    root = ((0,) * 6, 0, 0, 0, "root", False, False, True, ())

    def bound(state: Any, j: int, i: int, mode_uniform: bool) -> tuple[Any, ...]:
        sums, miss, asym, dis, _pair, _s1, _d1, op0, idx = state
        vec, flags = axes[j].entries[i][0], axes[j].entries[i][1]
        r = rem[j + 1]
        tot = [a + b + c for a, b, c in zip(sums, vec, r)]
        n_op = tot[2]
        if j == rank - 1 and keras and op_given and op0 and not flags[3]:
            n_op += 1
        return ((miss or flags[0]), tot[0], tot[1], n_op, 0 if mode_uniform else 1,
                bool(asym or flags[1]), bool(dis or flags[2]), tot[3], tot[4],
                tot[5] + pad_const, group, *idx, i, *([0] * (rank - j - 1)))

    def push_children(state: Any, j: int) -> None:
        _, _, _, _, pair, s1, d1, _, _ = state
        lists: list[tuple[list[int], bool, Any]] = []
        if pair == "root":
            lists = [(lst, True, None) for f, lst in axes[j].classes
                     if not (keras and (s1 or f[4]) and (d1 or f[5]))]
        else:
            if pair is not None:
                same = axes[j].by_pair.get(pair, [])
                lists += [(lst, True, None) for f, lst in same
                          if not (keras and (s1 or f[4]) and (d1 or f[5]))]
            lists += [(lst, False, pair) for f, lst in axes[j].classes
                      if not (keras and (s1 or f[4]) and (d1 or f[5]))]
        for lst, uni, skip in lists:
            push(state, j, lst, 0, uni, skip)

    def push(state: Any, j: int, lst: list[int], t: int, uni: bool, skip: Any) -> None:
        while t < len(lst) and skip is not None and axes[j].entries[lst[t]][2] == skip:
            budget.examined += 1
            t += 1
        if t < len(lst):
            budget.examined += 1
            heapq.heappush(heap, (bound(state, j, lst[t], uni), next(seq), state, j, lst, t,
                                  uni, skip))

    push_children(root, 0)
    while heap:
        lb, _, state, j, lst, t, uni, skip = heapq.heappop(heap)
        push(state, j, lst, t + 1, uni, skip)
        sums, miss, asym, dis, pair, s1, d1, op0, idx = state
        i = lst[t]
        vec, flags, cpair = axes[j].entries[i]
        child = (tuple(a + b for a, b in zip(sums, vec)), miss or flags[0], asym or flags[1],
                 dis or flags[2], (cpair if pair == "root" else pair) if uni else None,
                 s1 or flags[4], d1 or flags[5], op0 and not flags[3], idx + (i,))
        if j == rank - 1:
            yield lb, child[-1]
        else:
            push_children(child, j + 1)


def _count(axes: list[_Axis], keras: bool) -> int:
    """How many combinations exist (Keras: without stride > 1 together with dilation > 1)."""
    total = math.prod(len(a.cands) for a in axes)
    if keras:
        total -= (total - math.prod(a.count_s1 for a in axes) - math.prod(a.count_d1 for a in axes)
                  + math.prod(a.count_s1d1 for a in axes))
    return total


def _groups(framework: str) -> list[tuple[str | None, bool]]:
    return ([("valid", False), ("valid", True), ("same", False), ("same", True)]
            if framework == "keras" else [(None, False)])


def _solution(framework: str, padding: str | None, op_given: bool,
              combo: Sequence[tuple[Any, ...]], prefer: tuple[int, int] | None) -> Solution:
    """The :class:`Solution` of one combination (its key computed by :func:`_key`)."""
    if framework == "keras":
        k, s, d, op = (tuple(c[j] for c in combo) for j in range(4))
        symmetric = all(c[4] for c in combo)
        agrees = all(c[5] for c in combo)
        n_op = sum(1 for o in op if o) if op_given else 0
        return Solution("keras", k, s, d, padding, op if op_given else None, symmetric, agrees,
                        _key(k, s, d, n_op + (1 if op_given and not any(op) else 0), symmetric,
                             agrees, 0 if padding == "valid" else 1, prefer))
    k, s, d, p, op = (tuple(c[j] for c in combo) for j in range(5))
    symmetric = all(c[5] for c in combo)
    agrees = all(c[6] for c in combo)
    return Solution("torch", k, s, d, p, op, symmetric, agrees,
                    _key(k, s, d, sum(1 for o in op if o), symmetric, agrees, sum(p), prefer))


def _sizes(name: str, values: Sequence[int]) -> tuple[int, ...]:
    if not values or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1
                             for v in values):
        raise fail(name, list(values), "expected integers >= 1, one per spatial axis (e.g. 10,8)")
    return tuple(values)


def _per_axis(name: str, value: Sequence[int] | int | None, rank: int,
              default: Sequence[int]) -> list[Sequence[int]]:
    if value is None:
        return [default] * rank
    vals = [value] * rank if isinstance(value, int) else list(value)
    if len(vals) == 1:
        vals = vals * rank
    if len(vals) != rank or not all(isinstance(v, int) and v >= 1 for v in vals):
        raise fail(name, value, f"expected one integer >= 1 or {rank} of them")
    return [(v,) for v in vals]


@dataclass
class Search:
    """A lazy ``solve`` query: ``count`` configurations, produced in rank order by
    :meth:`solutions` (each one pulled does a bounded amount of work);
    ``examined`` counts the per-axis candidates and the combinations looked at so far."""

    start: tuple[int, ...]
    target: tuple[int, ...]
    count: int
    _budget: _Budget
    _streams: list[Any]

    @property
    def examined(self) -> int:
        """Per-axis candidates computed plus combinations pushed on the search heap so far."""
        return self._budget.axis_work + self._budget.examined

    def solutions(self) -> Iterator[Solution]:
        """Every solution, best first (the order of ``sorted(..., key=Solution.key)``)."""
        import heapq

        return heapq.merge(*(self._stream(*st) for st in self._streams), key=lambda x: x.key)

    def _stream(self, framework: str, padding: str | None, op_given: bool, axes: list[_Axis],
                group: int, prefer: tuple[int, int] | None) -> Iterator[Solution]:
        for _, idx in _ranked(axes, group, 0 if padding in (None, "valid") else 1, op_given,
                              framework == "keras", self._budget):
            yield _solution(framework, padding, op_given,
                            [a.cands[i] for a, i in zip(axes, idx)], prefer)


# Per query: at most this many per-axis (kernel, stride, dilation) triples plus
# candidates; a larger search is refused (ConvtError naming max_kernel).
MAX_AXIS_WORK = 1_000_000
# :func:`solve` returns a list: at most this many solutions (else use :func:`search`).
MAX_LISTED = 1_000_000


def search(inputs: Sequence[int], outputs: Sequence[int] | None = None, *,
           framework: str = "keras", kernel_size: Sequence[int] | int | None = None,
           strides: Sequence[int] | int | None = None, max_kernel: int = 8,
           max_stride: int | None = None, max_dilation: int = 2,
           mirror: dict[str, Any] | None = None, max_axis_work: int = MAX_AXIS_WORK) -> Search:
    """Set up a ``solve`` query (same arguments as :func:`solve`) without ranking it.

    Per axis the candidates are enumerated once (strides that cannot reach the
    target skipped: the length is at least ``(in - 1) * s - K + 2``), refusing more
    than ``max_axis_work`` of them; the combinations are produced lazily in rank
    order by :meth:`Search.solutions`, so the first ``N`` cost about ``N`` heap steps
    per axis and class, not the size of the product.
    """
    if framework not in FRAMEWORKS:
        raise fail("framework", framework, "expected keras or torch")
    inputs = _sizes("input", inputs)
    rank = len(inputs)
    for name, v in (("max_kernel", max_kernel), ("max_dilation", max_dilation)):
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise fail(name, v, "expected an integer >= 1")
    prefer = None
    if mirror is not None:
        fk = _per_axis("kernel_size", mirror.get("kernel_size"), rank, (1,))
        fs = _per_axis("strides", mirror.get("strides", 1), rank, (1,))
        fd = _per_axis("dilation", mirror.get("dilation", 1), rank, (1,))
        pad = mirror.get("padding", "valid")
        start = tuple(forward_output_length(n, k[0], s[0], d[0], pad, framework)
                      for n, k, s, d in zip(inputs, fk, fs, fd))
        target = inputs
        if len({k[0] for k in fk}) == 1 and len({s[0] for s in fs}) == 1:
            prefer = (fk[0][0], fs[0][0])
        kernel_size = strides = None
    else:
        if outputs is None:
            raise ConvtError("output: missing; give --output (or --mirror).", field="output")
        start, target = inputs, _sizes("output", outputs)
        if len(target) != rank:
            raise fail("output", list(target), f"expected {rank} sizes, like --input")
    if max_stride is None:
        max_stride = max(1, min(_STRIDE_CAP, max(
            (o + max_kernel) // max(n - 1, 1) for n, o in zip(start, target))))
    if not isinstance(max_stride, int) or isinstance(max_stride, bool) or max_stride < 1:
        raise fail("max_stride", max_stride, "expected an integer >= 1")
    ks = _per_axis("kernel_size", kernel_size, rank, range(1, max_kernel + 1))
    ss = _per_axis("strides", strides, rank, range(1, max_stride + 1))
    ds = range(1, max_dilation + 1)
    budget = _Budget(max_axis_work)
    cache: dict[Any, _Axis] = {}
    streams = []
    count = 0
    for g, (padding, op_given) in enumerate(_groups(framework)):
        axes = []
        for n, o, k_i, s_i in zip(start, target, ks, ss):
            s_i = _reachable_strides(n, o, k_i, s_i, ds)
            tag = (n, o, tuple(k_i) if not isinstance(k_i, range) else k_i,
                   tuple(s_i) if not isinstance(s_i, range) else s_i, padding, op_given)
            if tag not in cache:
                # the size of the triple grid is known before any loop: refuse it up front
                budget.need(len(k_i) * len(s_i) * len(ds))
                cands: list[tuple[Any, ...]]
                if framework == "keras":
                    assert padding is not None   # every Keras group names its padding
                    cands = _keras_axis(n, o, k_i, s_i, ds, padding, op_given, budget)
                else:
                    cands = _torch_axis(n, o, k_i, s_i, ds, budget)
                cache[tag] = _Axis(cands, framework == "torch", prefer)
            axes.append(cache[tag])
        c = _count(axes, framework == "keras")
        if c:
            count += c
            streams.append((framework, padding, op_given, axes, g, prefer))
    return Search(start, target, count, budget, streams)


def _reachable_strides(n: int, out: int, ks: Sequence[int], ss: Sequence[int],
                       ds: Sequence[int]) -> Sequence[int]:
    """``ss`` without the strides no kernel can bring down to ``out``.

    Every rule (Keras valid/same with or without op; torch with ``p <= K - 1``)
    gives a length of at least ``(in - 1) * s - K + 2``, so for ``in >= 2`` a stride
    above ``(out + K_max) // (in - 1)`` never reaches ``out``.
    """
    if n < 2 or not isinstance(ss, range):
        return ss
    top = (out + effective_kernel(_largest(ks), _largest(ds))) // (n - 1)
    return range(ss.start, max(ss.start, min(ss.stop, top + 1)))


def _largest(values: Sequence[int]) -> int:
    """``max(values)`` without walking a range."""
    return values[-1] if isinstance(values, range) else max(values)


def solve(inputs: Sequence[int], outputs: Sequence[int] | None = None, *,
          framework: str = "keras", kernel_size: Sequence[int] | int | None = None,
          strides: Sequence[int] | int | None = None, max_kernel: int = 8,
          max_stride: int | None = None, max_dilation: int = 2,
          mirror: dict[str, Any] | None = None) -> tuple[tuple[int, ...], list[Solution]]:
    """All configurations mapping ``inputs`` to ``outputs`` under ``framework``'s rules, ranked.

    With ``mirror = {"kernel_size", "strides", "padding", "dilation"}`` (a forward
    convolution applied to ``inputs``), the target is ``inputs`` itself and the
    transposed convs start from the forward output; returns ``(start sizes, solutions)``.
    A query with more than :data:`MAX_LISTED` solutions is refused (ConvtError naming
    ``max_kernel``); :func:`search` produces any number of them lazily.
    """
    found = search(inputs, outputs, framework=framework, kernel_size=kernel_size,
                   strides=strides, max_kernel=max_kernel, max_stride=max_stride,
                   max_dilation=max_dilation, mirror=mirror)
    if found.count > MAX_LISTED:
        raise ConvtError(f"max_kernel: {found.count:,} configurations match, more than the "
                         f"{MAX_LISTED:,} a list holds; lower --max-kernel/--max-stride/"
                         f"--max-dilation, or take them lazily with solve.search().",
                         field="max_kernel")
    return found.start, list(found.solutions())


# The package-level name (``convt_tools.solve_sizes``): ``convt_tools.solve`` is this module.
solve_sizes = solve
