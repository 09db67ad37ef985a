"""``convt conformance``: the built-in ConvTranspose corpus on every installed runtime.

Every case of :data:`~.corpus.CASES` (one-node forms and the derived portable,
group-split and bias-add forms, seeded random weights) runs on each chosen runtime
(default: every runtime of :data:`convt_tools.runtimes.ADAPTERS` installed here;
engines of :data:`~convt_tools.runtimes.ABORTS_PROCESS` in a child process, through
:func:`convt_tools.check.runners.run_calls`) and is judged against the ONNX-spec
reference (:mod:`.judge`): exact, refused (with the reason), wrong window (which one)
or wrong values (max abs error). Alongside each measurement the report keeps what
check's documented table predicts (:func:`.judge.predict`).

:func:`run_conformance` returns a :class:`ConformanceReport`: ``to_dict()`` (JSON:
``cases[]`` with ``id``, ``form``, ``runtimes`` ``{name: {outcome, window, reason,
max_abs_error}}``), ``to_markdown()`` (the capability table committed in
docs/conformance.md) and ``to_text()``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from ..check.readings import rules_for
from ..check.runners import installed_among, run_calls
from ..errors import ConvtError
from ..runtimes import ADAPTERS, get_runtime, parse_runtime_names
from .corpus import CASES, FORMS, Built, Case, build_case, case_ids
from .judge import OUTCOMES, Outcome, judge_output, not_repeatable, predict, reference_output

__all__ = ["CASES", "FORMS", "OUTCOMES", "Built", "Case", "CaseResult", "ConformanceReport",
           "Outcome", "build_case", "case_ids", "predict", "reference_output",
           "resolve_runtimes", "run_conformance", "select_cases"]

# Jobs per child process for the isolated engines (a progress step each).
CHUNK = 12


@dataclass
class CaseResult:
    """One case: each runtime's measured outcome and the documented prediction."""

    case: Case
    measured: dict[str, Outcome] = field(default_factory=dict)
    predicted: dict[str, Outcome] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.case.id, "form": self.case.form, "what": self.case.what,
                "runtimes": {k: v.to_dict() for k, v in self.measured.items()},
                "documented": {k: v.to_dict() for k, v in self.predicted.items()}}


@dataclass
class ConformanceReport:
    """The matrix: one :class:`CaseResult` per case, the runtimes and their versions."""

    runtimes: dict[str, str]
    cases: list[CaseResult]

    def disagreements(self) -> list[tuple[str, str, Outcome, Outcome]]:
        """``(case id, runtime, measured, predicted)`` where the table says otherwise."""
        return [(r.case.id, rt, m, r.predicted[rt]) for r in self.cases
                for rt, m in r.measured.items() if m.key() != r.predicted[rt].key()]

    def counts(self) -> dict[str, dict[str, int]]:
        """Per runtime: how many cases had each outcome."""
        out = {rt: {o: 0 for o in OUTCOMES} for rt in self.runtimes}
        for r in self.cases:
            for rt, m in r.measured.items():
                out[rt][m.outcome] += 1
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"runtimes": self.runtimes, "cases": [c.to_dict() for c in self.cases],
                "counts": self.counts(),
                "disagreements_with_documented_table": [
                    {"id": i, "runtime": rt, "measured": m.to_dict(), "documented": p.to_dict()}
                    for i, rt, m, p in self.disagreements()]}

    def to_markdown(self) -> str:
        """One row per case, one column per runtime (the cell of :meth:`Outcome.cell`)."""
        names = list(self.runtimes)
        head = ["| case | form | what | " + " | ".join(f"`{n}`" for n in names) + " |",
                "|---|---|---|" + "---|" * len(names)]
        rows = [f"| `{r.case.id}` | {r.case.form} | {r.case.what} | "
                + " | ".join(r.measured[n].cell() for n in names) + " |" for r in self.cases]
        versions = ", ".join(f"{k} {v}" for k, v in self.runtimes.items())
        counts = self.counts()
        summary = ["", "| runtime | " + " | ".join(OUTCOMES) + " |",
                   "|---|" + "---|" * len(OUTCOMES)]
        summary += [f"| `{n}` | " + " | ".join(str(counts[n][o]) for o in OUTCOMES) + " |"
                    for n in names]
        return "\n".join([f"Runtimes: {versions}.", "", *head, *rows, *summary]) + "\n"

    def to_text(self) -> str:
        """A plain table, then the counts, then each non-exact cell's reason."""
        names = list(self.runtimes)
        rows = [["case", *names]] + [[r.case.id, *(r.measured[n].cell() for n in names)]
                                      for r in self.cases]
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
        lines.append("")
        for n, c in self.counts().items():
            lines.append(f"{n} {self.runtimes[n]}: " + ", ".join(f"{v} {k}" for k, v in c.items()))
        for i, rt, m, p in self.disagreements():
            lines.append(f"note: {i} on {rt}: measured {m.cell()}, check's documented table "
                         f"says {p.cell()}")
        return "\n".join(lines)


def select_cases(ids: Sequence[str] | None = None,
                 forms: Sequence[str] | None = None) -> list[Case]:
    """The corpus, or the cases named in ``ids`` / of the given ``forms`` (a bad name is a
    ConvtError naming the valid ones)."""
    if forms is not None:
        bad = [f for f in forms if f not in FORMS]
        if bad:
            raise ConvtError(f"form: got {', '.join(bad)}; expected one of {', '.join(FORMS)}.",
                             field="form")
    known = case_ids()
    if ids is not None:
        bad = [i for i in ids if i not in known]
        if bad:
            raise ConvtError(f"case: got {', '.join(bad)}; expected ids of `convt conformance "
                             f"--list` (e.g. {known[0]}).", field="case")
    return [c for c in CASES if (ids is None or c.id in ids)
            and (forms is None or c.form in forms)]


def resolve_runtimes(names: str | Sequence[str] | None) -> dict[str, str]:
    """The chosen runtimes and their versions: each named one must be installed; default
    every installed runtime of the registry."""
    if names is None:
        return installed_among(list(ADAPTERS))
    chosen = parse_runtime_names(names)
    for n in chosen:
        get_runtime(n).module()   # RuntimeUnavailable (names the install) when missing
    have = installed_among(chosen)
    return {n: have[n] for n in chosen if n in have}


def run_conformance(runtimes: str | Sequence[str] | None = None,
                    cases: Sequence[Case] | None = None,
                    progress: Callable[[int], None] | None = None) -> ConformanceReport:
    """Run ``cases`` (default all) on ``runtimes`` (default every installed one).

    ``progress`` is called with the number of (case, runtime) runs finished.
    """
    chosen = resolve_runtimes(runtimes)
    picked = list(CASES) if cases is None else list(cases)
    built = [build_case(c) for c in picked]
    calls = [(b.model.SerializeToString(), {"x": b.x}) for b in built]
    results = [CaseResult(b.case) for b in built]
    for rt in chosen:
        outs = _run_loads(rt, calls, progress)
        for b, res, out in zip(built, results, outs):
            res.measured[rt] = judge_output(b, out)
            res.predicted[rt] = predict(b, rt)
    return ConformanceReport(chosen, results)


def _run_loads(runtime: str, calls: Sequence[tuple[bytes, dict[str, Any]]],
               progress: Callable[[int], None] | None) -> list[Any]:
    """Each call's outputs (or refusal) on ``runtime``, CHUNK calls per child process.

    Where the reading table says a second load of a model can differ
    (``loads_repeatable`` False), each model is loaded and run twice in a row in the same
    process, so the second load meets memory the first one used; a pair whose outputs are
    not bitwise equal (or that runs once and is refused once) gives wrong values, its
    reason saying so (:func:`~.judge.not_repeatable`).
    """
    twice = not rules_for(runtime).loads_repeatable
    outs: list[Any] = []
    for start in range(0, len(calls), CHUNK):
        chunk = calls[start:start + CHUNK]
        if not twice:
            outs += run_calls(runtime, chunk)
        else:
            pairs = run_calls(runtime, [c for c in chunk for _ in range(2)])
            outs += [not_repeatable(a, b) for a, b in zip(pairs[::2], pairs[1::2])]
        if progress is not None:
            progress(len(chunk))
    return outs
