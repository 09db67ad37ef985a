"""The reading matrix: what every runtime computes for one risky node.

For each runtime of :data:`~convt_tools.check.readings.RUNTIMES`:

* measured, when it is installed (:mod:`.runners`): the node runs alone
  (its attributes untouched) at the probe sizes, on seeded random ``x``,
  ``W`` and ``B`` (never the model's weights: a zero or symmetric kernel
  would make different crops look alike), with the spatial input dims
  symbolic when the model leaves them free (OpenVINO and tract read some
  forms differently then); the output is matched against the candidate
  windows (every documented reading and every interpretation, then a search
  around them, :func:`~convt_tools.check.probe.identify_window`);
* else from the documented table (:func:`~.readings.documented_reading`).

Probing tells readings apart: the candidate windows are compared on the
probe's own full output first; any two that give the same output (within
:func:`~convt_tools.check.probe.close`) cannot be told apart, and a
measured output matching such a pair is reported ``undetermined`` rather than
claimed for either. A measurement that contradicts the table is kept (real
output wins) and noted.

:func:`judge` groups the chosen runtimes by what they compute at the probe
sizes: one group is agreement.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from ..geometry import Window
from .attrs import ConvTAttrs
from .context import NodeContext
from .readings import DOCUMENTED, RUNTIMES, Reading, documented_reading
from .runners import Refusal, installed, run_many
from .sizes import partition
from .windows import apply_window, describe_windows, full_output, interpretations

__all__ = ["MatrixEntry", "NodeMatrix", "PendingMatrix", "candidate_windows", "finish_matrix",
           "identify_reading", "is_risky", "judge", "node_matrix", "prepare_matrix",
           "probe_sizes", "run_pending"]


@dataclass
class MatrixEntry:
    """One runtime's reading at each probe size, and where it comes from."""

    runtime: str
    source: str                      # "measured <version>" or "documented: <source>"
    readings: list[Reading]          # one per probe size
    note: str = ""

    def to_dict(self, naturals: Sequence[Sequence[int]]) -> dict[str, Any]:
        return {"runtime": self.runtime, "source": self.source, "note": self.note,
                "at": [_reading_dict(r, nat) for r, nat in zip(self.readings, naturals)]}


def _reading_dict(r: Reading, naturals: Sequence[int]) -> dict[str, Any]:
    out: dict[str, Any] = {"status": r.status}
    if r.windows is not None:
        out["windows"] = [[w.begin, w.length] for w in r.windows]
        out["reads"] = describe_windows(r.windows, naturals)
    if r.note:
        out["note"] = r.note
    return out


@dataclass
class NodeMatrix:
    """The matrix for one node: probe sizes, one entry per runtime, the judgement."""

    sizes: list[tuple[int, ...]]
    static: bool
    entries: list[MatrixEntry]
    chosen: tuple[str, ...]
    groups: list[tuple[tuple[str, ...], ...]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def agree(self) -> bool:
        """The chosen runtimes (known readings) compute the same at every probe size."""
        return all(len(g) <= 1 for g in self.groups)

    def to_dict(self, naturals: Sequence[Sequence[int]]) -> dict[str, Any]:
        return {"probe_sizes": [list(s) for s in self.sizes], "static_input_dims": self.static,
                "runtimes": [e.to_dict(naturals) for e in self.entries],
                "judged_on": list(self.chosen), "agree": self.agree,
                "groups": [[list(g) for g in gs] for gs in self.groups], "notes": self.notes}

    def lines(self, naturals: Sequence[Sequence[int]]) -> list[str]:
        """Text rows: ``runtime (source): reading`` at the first probe size (+ others if differ)."""
        out = []
        for e in self.entries:
            shown = []
            for size, r, nat in zip(self.sizes, e.readings, naturals):
                what = (describe_windows(r.windows, nat) if r.status == "window" and r.windows
                        else r.status + (f" ({r.note})" if r.note else ""))
                shown.append(f"at {list(size)}: {what}")
            mark = "" if e.runtime in self.chosen else " [not judged]"
            out.append(f"{e.runtime}{mark} ({e.source}): " + "; ".join(shown)
                       + (f" -- {e.note}" if e.note else ""))
        return out


def is_risky(ctx: NodeContext) -> bool:
    """A node whose reading may differ between runtimes (anything but plain symmetric pads)."""
    a = ctx.attrs
    if a is None:
        return False
    if a.output_shape is not None or (a.auto_pad != "NOTSET" and a.auto_pad != "VALID"):
        return True
    if a.pads is not None and (min(a.pads) < 0 or any(
            a.pads_pair(i)[0] != a.pads_pair(i)[1] for i in range(a.rank))):
        return True
    return a.group > 1 or any(a.output_padding[i] >= a.strides[i] for i in range(a.rank))


def probe_sizes(ctx: NodeContext, stand_ins: Sequence[tuple[int, ...]]) -> list[tuple[int, ...]]:
    """The known sizes, else each stand-in with the known axes kept."""
    a = ctx.attrs
    assert a is not None
    sizes = ctx.sizes or (None,) * a.rank
    if all(n is not None for n in sizes):
        return [tuple(int(n) for n in sizes if n is not None)]
    return [tuple(int(k) if k is not None else s for k, s in zip(sizes, stand)) for stand in stand_ins]


def _single_node(ctx: NodeContext, c_in: int, rank: int, static: bool, w: np.ndarray,
                 b: np.ndarray | None, opset: int, sizes: Sequence[int]) -> bytes:
    from .probe import single_node_model

    dims: list[Any] = [1, c_in] + (list(sizes) if static else [f"d{i}" for i in range(rank)])
    return single_node_model(ctx.ref.node, dims, w, b, opset).SerializeToString()


def _candidates(ctx: NodeContext, size: Sequence[int], static: bool) -> dict[str, tuple[Window, ...]]:
    assert ctx.attrs is not None
    return candidate_windows(ctx.attrs, size, static)


def candidate_windows(a: ConvTAttrs, size: Sequence[int], static: bool
                      ) -> dict[str, tuple[Window, ...]]:
    """The windows a measured output is matched against first: every runtime's documented
    reading of ``a`` at input ``size``, then every named interpretation (onnx-spec first)."""
    named: dict[str, tuple[Window, ...]] = {}
    for rt in RUNTIMES:
        r = documented_reading(rt, a, size, static, a.output_shape_full)
        if r.status == "window" and r.windows is not None:
            named.setdefault(f"as documented for {rt}", r.windows)
    for k, v in interpretations(a, size).items():
        named.setdefault(k, v)
    return named


def _identify(y: np.ndarray, full: np.ndarray, b: np.ndarray | None,
              named: dict[str, tuple[Window, ...]]) -> Reading:
    return identify_reading(y, full, b, named)


def identify_reading(y: np.ndarray, full: np.ndarray, b: np.ndarray | None,
                     named: dict[str, tuple[Window, ...]]) -> Reading:
    """The window ``y`` (float64) shows on the full output ``full`` (+ bias ``b``): a
    ``window`` reading; ``undetermined`` when two different candidates of ``named`` both
    match; ``unexplained`` when no window does (:func:`~.probe.identify_window`)."""
    from .probe import close, identify_window

    hits = {v for v in named.values()
            if tuple(w.length for w in v) == tuple(y.shape[2:])
            and close(y, apply_window(full, b, v))}
    if len(hits) > 1:
        return Reading("undetermined", None, "the probe cannot tell windows "
                       + " and ".join(str([(w.begin, w.length) for w in h]) for h in hits)
                       + " apart")
    if hits:
        return Reading("window", hits.pop())
    found = identify_window(y, full, b, {})
    if found is None:
        return Reading("unexplained", None, f"output {list(y.shape)} matches no window")
    return Reading("window", tuple(found))


@dataclass
class PendingMatrix:
    """A node's matrix before its runs: the jobs (one per probe size) and what finishes it."""

    ctx: NodeContext
    sizes: list[tuple[int, ...]]
    chosen: tuple[str, ...]
    static: bool
    have: dict[str, str]
    b: np.ndarray | None
    fulls: list[np.ndarray]
    jobs: list[tuple[bytes, np.ndarray]]


def prepare_matrix(ctx: NodeContext, opset: int, rng: np.random.Generator,
                   chosen: Sequence[str], sizes: Sequence[tuple[int, ...]], *,
                   measure: bool = True) -> PendingMatrix:
    """Seeded probe inputs and single-node models for every probe size (nothing run yet)."""
    a = ctx.attrs
    assert a is not None and ctx.w_shape is not None
    static = ctx.sizes is not None and all(n is not None for n in ctx.sizes)
    c_in = int(ctx.c_in if ctx.c_in is not None else ctx.w_shape[0])
    w = rng.standard_normal(tuple(ctx.w_shape)).astype(np.float32)
    has_b = len(ctx.ref.node.input) > 2 and bool(ctx.ref.node.input[2])
    b = rng.standard_normal(int(ctx.w_shape[1]) * a.group).astype(np.float32) if has_b else None
    have = installed() if measure else {}
    xs = [rng.standard_normal((1, c_in, *s)).astype(np.float32) for s in sizes] if have else []
    fulls = [full_output(x, w, a) for x in xs]
    jobs = [(_single_node(ctx, c_in, a.rank, static, w, b, opset, s), x)
            for s, x in zip(sizes, xs)] if have else []
    return PendingMatrix(ctx, list(sizes), tuple(chosen), static, have, b, fulls, jobs)


def finish_matrix(p: PendingMatrix, outputs: dict[str, list[np.ndarray | Refusal]]) -> NodeMatrix:
    """The matrix from each installed runtime's outputs (``outputs[rt]``, one per job)."""
    ctx, a = p.ctx, p.ctx.attrs
    assert a is not None
    matrix = NodeMatrix(p.sizes, p.static, [], p.chosen)
    documented = {rt: [documented_reading(rt, a, s, p.static, a.output_shape_full)
                       for s in p.sizes] for rt in RUNTIMES}
    b64 = None if p.b is None else p.b.astype(np.float64)
    for rt in RUNTIMES:
        if rt not in p.have:
            matrix.entries.append(MatrixEntry(rt, f"documented: {DOCUMENTED[rt]}", documented[rt]))
            continue
        measured = []
        for out, size, full in zip(outputs[rt], p.sizes, p.fulls):
            if isinstance(out, str):   # a Refusal
                measured.append(Reading("refused", None, out))
            else:
                measured.append(_identify(np.asarray(out, np.float64), full, b64,
                                          _candidates(ctx, size, p.static)))
        note = ""
        if any(m.key() != d.key() and d.status != "unknown"
               for m, d in zip(measured, documented[rt])):
            note = "differs from the documented table (the measurement is reported)"
        matrix.entries.append(MatrixEntry(rt, f"measured {rt} {p.have[rt]}", measured, note))
    judge(matrix)
    return matrix


def run_pending(pending: Sequence[PendingMatrix]) -> list[NodeMatrix]:
    """Run every pending matrix's jobs with one batch per runtime (one child process each
    for OpenVINO and tract, whatever the number of nodes), then finish them."""
    runtimes = sorted({rt for p in pending for rt in p.have})
    results: dict[str, list[np.ndarray | Refusal]] = {
        rt: run_many(rt, [j for p in pending if rt in p.have for j in p.jobs]) for rt in runtimes}
    out, offset = [], {rt: 0 for rt in runtimes}
    for p in pending:
        mine = {}
        for rt in p.have:
            mine[rt] = results[rt][offset[rt]:offset[rt] + len(p.jobs)]
            offset[rt] += len(p.jobs)
        out.append(finish_matrix(p, mine))
    return out


def node_matrix(ctx: NodeContext, opset: int, rng: np.random.Generator,
                chosen: Sequence[str], sizes: Sequence[tuple[int, ...]], *,
                measure: bool = True) -> NodeMatrix:
    """Measure (installed runtimes) or look up (the rest) every runtime's reading at ``sizes``."""
    return run_pending([prepare_matrix(ctx, opset, rng, chosen, sizes, measure=measure)])[0]


def judge(matrix: NodeMatrix) -> None:
    """Fill ``matrix.groups``: the chosen runtimes grouped by reading, per probe size."""
    by_name = {e.runtime: e for e in matrix.entries}
    matrix.groups = []
    for j in range(len(matrix.sizes)):
        readings = {n: by_name[n].readings[j] for n in matrix.chosen if n in by_name}
        readings = {n: r for n, r in readings.items()
                    if r.status not in ("undetermined", "unexplained")}
        matrix.groups.append(partition(readings))
