"""Size-independent reasoning: does a node's verdict depend on the input size?

For an ``output_shape`` node the crop total on axis ``i`` is a function of the
input length ``n``::

    T(n) = (n - 1) * s + K + op - O          (slope s: its parity is fixed when s is even)

and for ``auto_pad`` SAME_* (``O = n * s``) it is ``K - s + op``, the same at
every size. What each runtime computes (:mod:`.readings`) depends on ``T``
only through its sign, its small values and its parity: beyond
``T >= T_hi`` (a bound above every pad and stride of the node) two readings
agree either at every ``T`` of a parity or at none. So the classes of
lengths ``n`` on which the same runtimes agree are found exactly by
evaluating the readings at ``n = 1 .. n_hi`` and then once per parity
(:func:`axis_classes`).

A node's verdict at a size is the *partition* of the chosen runtimes into
groups that compute the same output (:func:`partition`); two runtimes agree
on the node iff they agree on every axis, so the node is size-independent
iff every axis's partition is the same for every length of that axis.
Lengths the model fixes are a single class.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from .attrs import ConvTAttrs
from .readings import Reading

__all__ = ["AxisClass", "SizeVerdict", "axis_classes", "crop_total", "describe_lengths",
           "partition", "size_verdict"]


def crop_total(a: ConvTAttrs, i: int, n: int) -> int:
    """``T = L + op - O`` on axis ``i`` at input length ``n`` (``O = n*s`` for SAME)."""
    target = a.output_shape[i] if a.output_shape is not None else n * a.strides[i]
    return a.natural_length(i, n) + a.output_padding[i] - target


Groups = tuple[tuple[str, ...], ...]


def partition(readings: dict[str, Reading]) -> Groups:
    """Runtimes grouped by identical computation (``unknown`` ones left out), in order."""
    groups: dict[object, list[str]] = {}
    for name, r in readings.items():
        if r.status == "unknown":
            continue
        groups.setdefault(r.key(), []).append(name)
    return tuple(tuple(g) for g in groups.values())


def _unknown(readings: dict[str, Reading]) -> tuple[str, ...]:
    return tuple(n for n, r in readings.items() if r.status == "unknown")


@dataclass(frozen=True)
class AxisClass:
    """Input lengths of one axis on which the runtimes split into the same ``groups``.

    ``lengths``: the explicit lengths; ``tail``: ``(start, parity)`` for every
    length ``>= start`` of that parity (``None`` = both parities), or None.
    """

    groups: tuple[tuple[str, ...], ...]
    lengths: tuple[int, ...]
    tail: tuple[int, int | None] | None
    unknown: tuple[str, ...] = ()   # runtimes with no documented reading at these lengths

    @property
    def state(self) -> str:
        """``differ`` (two groups), ``agree`` (one group, nothing unknown) or ``unknown``."""
        if len(self.groups) > 1:
            return "differ"
        return "unknown" if self.unknown else "agree"


def describe_lengths(c: AxisClass) -> str:
    """``"1, 3, 5 and every odd length >= 7"``."""
    parts = []
    runs: list[list[int]] = []
    for n in c.lengths:
        if runs and n == runs[-1][-1] + 1:
            runs[-1].append(n)
        else:
            runs.append([n])
    for r in runs:
        parts.append(str(r[0]) if len(r) == 1 else f"{r[0]}..{r[-1]}")
    if c.tail is not None:
        start, parity = c.tail
        kind = "" if parity is None else ("even " if parity == 0 else "odd ")
        parts.append(f"every {kind}length >= {start}")
    return ", ".join(parts) if parts else "none"


def axis_classes(a: ConvTAttrs, i: int, length: int | None,
                 groups_at: Callable[[int], tuple[Groups, tuple[str, ...]]]) -> list[AxisClass]:
    """The classes of input lengths of axis ``i`` (one class per distinct partition).

    ``groups_at(n)`` is the partition of the runtimes on this axis alone at
    length ``n``, and the runtimes with no documented reading there. A known ``length`` is
    the only class. Otherwise lengths
    ``1 .. n_hi`` are evaluated, ``n_hi`` the first length with
    ``T(n_hi) >= T_hi`` plus two; beyond it the partition repeats with the
    parity of ``n`` (checked at ``n_hi + 1`` and ``n_hi + 2``).
    """
    if length is not None:
        return [AxisClass(*groups_at(length)[:1], (length,), None, groups_at(length)[1])]
    s = a.strides[i]
    pads = sum(a.pads_pair(i)) if a.pads is not None else 0
    t_hi = 2 * s + 4 + abs(pads) + a.output_padding[i]
    n_hi = 1
    if a.output_shape is not None:  # T grows by s per length; SAME's T does not depend on n
        while crop_total(a, i, n_hi) < t_hi:
            n_hi += 1
    n_hi += 2
    seen: dict[tuple[Groups, tuple[str, ...]], list[int]] = {}
    for n in range(1, n_hi + 1):
        seen.setdefault(groups_at(n), []).append(n)
    tails: dict[int, tuple[Groups, tuple[str, ...]]] = {}
    for n in (n_hi - 1, n_hi):
        tails[n % 2] = groups_at(n)
        if groups_at(n + 2) != tails[n % 2]:  # the periodicity the module doc states
            raise AssertionError(f"axis {i}: partition not periodic beyond length {n_hi}")
    out = []
    for groups, lengths in seen.items():
        parities = [p for p, g in tails.items() if g == groups]
        tail: tuple[int, int | None] | None = None
        if len(parities) == 2:
            tail = (n_hi + 1, None)
        elif parities:
            p = parities[0]
            tail = (n_hi + 1 if (n_hi + 1) % 2 == p else n_hi + 2, p)
        out.append(AxisClass(groups[0], tuple(lengths), tail, groups[1]))
    return out


@dataclass(frozen=True)
class SizeVerdict:
    """The runtimes' agreement over all input sizes of a node.

    ``axes[i]`` lists axis ``i``'s classes; ``independent`` is True when every
    axis has one class (the verdict is the same at every size); ``agree_always``
    / ``agree_never``: all chosen runtimes (that the table knows) compute the
    same at every size / differ at every size.
    """

    axes: tuple[tuple[AxisClass, ...], ...]

    @property
    def independent(self) -> bool:
        return all(len(c) == 1 for c in self.axes)

    @property
    def agree_always(self) -> bool:
        """No class of any axis has runtimes that differ (lengths where some runtime has no
        documented reading count as agreement among the others; the text names them)."""
        return all(c.state != "differ" for cls in self.axes for c in cls)

    @property
    def agree_never(self) -> bool:
        """Some axis never has the runtimes agree: they differ wherever documented."""
        return any(all(c.state != "agree" for c in cls) and any(c.state == "differ" for c in cls)
                   for cls in self.axes)


def size_verdict(a: ConvTAttrs, sizes: Sequence[int | None] | None,
                 reading_at: Callable[[Sequence[int]], dict[str, Reading]]) -> SizeVerdict:
    """Classes of input lengths per axis; ``reading_at(sizes)`` gives each runtime's reading.

    Axes are separated by evaluating at sizes where every other axis stays at
    a reference length (its known length, else 5) and comparing runtimes on
    this axis's window only; a reading refused (or unknown) at those sizes
    is compared by status.
    """
    ref = [int(n) if n is not None else 5 for n in (sizes or (None,) * a.rank)]
    lengths = list(sizes or (None,) * a.rank)
    # runtimes the table knows nothing about for this node (at the reference sizes and a
    # large one) are left out of the judgement altogether: they are listed as not judged
    big = [int(n) if n is not None else 64 for n in lengths]
    never = set(_unknown(reading_at(ref))) & set(_unknown(reading_at(big)))
    axes = []
    for i in range(a.rank):
        def groups_at(n: int, i: int = i) -> tuple[Groups, tuple[str, ...]]:
            at = list(ref)
            at[i] = n
            readings = reading_at(at)
            per_axis = {k: (Reading("window", (r.windows[i],)) if r.status == "window" and
                            r.windows is not None else r) for k, r in readings.items()}
            return partition(per_axis), tuple(n for n in _unknown(per_axis) if n not in never)
        axes.append(tuple(axis_classes(a, i, lengths[i], groups_at)))
    return SizeVerdict(tuple(axes))
