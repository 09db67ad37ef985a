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
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

from .errors import ConvtError, fail
from .geometry import ceil_div, effective_kernel, keras_crop, keras_output_length, natural_length

__all__ = ["Solution", "forward_output_length", "solve", "solve_sizes"]

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


def _axis_candidates_keras(n: int, out: int, ks: Sequence[int], ss: Sequence[int],
                           ds: Sequence[int], padding: str, op_given: bool
                           ) -> list[tuple[int, int, int, int | None, bool, bool]]:
    """``(k, s, d, op, symmetric, agrees)`` per matching axis configuration."""
    found = []
    for k, s, d in itertools.product(ks, ss, ds):
        for op in (range(s) if op_given else (None,)):
            if keras_output_length(n, k, s, d, padding, op) == out:
                c = keras_crop(k, s, d, padding, op)
                found.append((k, s, d, op, c.begin == c.end, c.extend > 0 or c.total % 2 == 0))
    return found


def _axis_candidates_torch(n: int, out: int, ks: Sequence[int], ss: Sequence[int],
                           ds: Sequence[int]) -> list[tuple[int, int, int, int, int, bool, bool]]:
    """``(k, s, d, p, op, symmetric, agrees)``; the export is symmetric when ``op < s``."""
    found = []
    for k, s, d in itertools.product(ks, ss, ds):
        K = effective_kernel(k, d)
        L = natural_length(n, k, s, d)
        for p in range(K):
            op = out - L + 2 * p
            if 0 <= op < max(s, d):
                found.append((k, s, d, p, op, op < s, _agrees_torch(k, s, d, p, op)))
    return found


def _agrees_torch(k: int, s: int, d: int, p: int, op: int) -> bool:
    """A single Keras layer with this axis's window exists (same kernel): see translate.plan."""
    for padding in ("valid", "same"):
        for kop in (None, *range(s)):
            c = keras_crop(k, s, d, padding, kop)
            if c.begin == p and c.total == 2 * p - op:
                return True
    return False


def _key(ks: tuple[int, ...], ss: tuple[int, ...], ds: tuple[int, ...], n_op: int,
         symmetric: bool, agrees: bool, pad_sum: int, prefer: tuple[int, int] | None
         ) -> tuple[Any, ...]:
    mirror_miss = 0 if prefer is None or (set(ks) == {prefer[0]} and set(ss) == {prefer[1]}) else 1
    uniform = 0 if len(set(ks)) == 1 and len(set(ss)) == 1 else 1
    gaps = sum(1 for k, s, d in zip(ks, ss, ds) if effective_kernel(k, d) < s)
    return (mirror_miss, sum(d - 1 for d in ds), gaps, n_op, uniform, not symmetric, not agrees,
            sum(ks), sum(ss), pad_sum)


def _keras_solutions(inputs: Sequence[int], outputs: Sequence[int], ks: list[Sequence[int]],
                     ss: list[Sequence[int]], ds: Sequence[int],
                     prefer: tuple[int, int] | None) -> Iterator[Solution]:
    for padding, op_given in itertools.product(("valid", "same"), (False, True)):
        per_axis = [_axis_candidates_keras(n, o, ks[i], ss[i], ds, padding, op_given)
                    for i, (n, o) in enumerate(zip(inputs, outputs))]
        for combo in itertools.product(*per_axis):
            k, s, d, op = (tuple(c[j] for c in combo) for j in range(4))
            if any(x > 1 for x in s) and any(x > 1 for x in d):
                continue
            symmetric = all(c[4] for c in combo)
            agrees = all(c[5] for c in combo)
            n_op = sum(1 for o in op if o) if op_given else 0
            yield Solution("keras", k, s, d, padding, op if op_given else None, symmetric, agrees,
                           _key(k, s, d, n_op + (1 if op_given and not any(op) else 0), symmetric,
                                agrees, 0 if padding == "valid" else 1, prefer))


def _torch_solutions(inputs: Sequence[int], outputs: Sequence[int], ks: list[Sequence[int]],
                     ss: list[Sequence[int]], ds: Sequence[int],
                     prefer: tuple[int, int] | None) -> Iterator[Solution]:
    per_axis = [_axis_candidates_torch(n, o, ks[i], ss[i], ds)
                for i, (n, o) in enumerate(zip(inputs, outputs))]
    for combo in itertools.product(*per_axis):
        k, s, d, p, op = (tuple(c[j] for c in combo) for j in range(5))
        symmetric = all(c[5] for c in combo)
        agrees = all(c[6] for c in combo)
        yield Solution("torch", k, s, d, p, op, symmetric, agrees,
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


def solve(inputs: Sequence[int], outputs: Sequence[int] | None = None, *,
          framework: str = "keras", kernel_size: Sequence[int] | int | None = None,
          strides: Sequence[int] | int | None = None, max_kernel: int = 8,
          max_stride: int | None = None, max_dilation: int = 2,
          mirror: dict[str, Any] | None = None) -> tuple[tuple[int, ...], list[Solution]]:
    """All configurations mapping ``inputs`` to ``outputs`` under ``framework``'s rules, ranked.

    With ``mirror = {"kernel_size", "strides", "padding", "dilation"}`` (a forward
    convolution applied to ``inputs``), the target is ``inputs`` itself and the
    transposed convs start from the forward output; returns ``(start sizes, solutions)``.
    """
    if framework not in FRAMEWORKS:
        raise fail("framework", framework, "expected keras or torch")
    inputs = _sizes("input", inputs)
    rank = len(inputs)
    for name, v in (("max_kernel", max_kernel), ("max_dilation", max_dilation)):
        if not isinstance(v, int) or v < 1:
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
    if not isinstance(max_stride, int) or max_stride < 1:
        raise fail("max_stride", max_stride, "expected an integer >= 1")
    ks = _per_axis("kernel_size", kernel_size, rank, range(1, max_kernel + 1))
    ss = _per_axis("strides", strides, rank, range(1, max_stride + 1))
    ds = range(1, max_dilation + 1)
    gen = _keras_solutions if framework == "keras" else _torch_solutions
    found = sorted(gen(start, target, ks, ss, ds, prefer), key=lambda sol: sol.key)
    return start, found


# The package-level name (``convt_tools.solve_sizes``): ``convt_tools.solve`` is this module.
solve_sizes = solve
