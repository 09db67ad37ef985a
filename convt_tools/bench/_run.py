"""The bench verb: every layer x export form x thread count x runtime, timed and judged.

For one layer, one export form and one thread count, the validate verb
(:meth:`~convt_tools.frameworks.keras.KerasConvT.validate_on`, the same call
``convt validate --runtime ... --form ...`` makes) exports the model once and
runs it on every runtime through a recording wrapper
(:mod:`._recorder`): the first run's output is judged against the NumPy
reference with validate's tolerance (``exact``), its load and first-run
times are kept (``first_run_ms``: load/compile plus the first run), and
right after that first run the same loaded model is timed on the same input
by :func:`._timing.measure` (then released: one engine holds the model at a
time). The last timed output is checked against the first (within the same
tolerance): an engine whose output changes between runs is not exact either.

A runtime that loads another kind of model (``model_kind``; litert runs the
layer's ``.tflite`` export) is measured once per layer and thread count, in
the first ONNX form's validation, and its cell's ``form`` is that kind
(``"tflite"``).

``ratio_to_fastest`` is a cell's median over the fastest *exact* median of
the same layer at the same thread count (across runtimes and forms); cells
that are not exact (wrong values, refused, changing output) get none and are
never the fastest.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Protocol, Sequence

import numpy as np

from ..errors import ConvtError
from ..exporter import FORMS
from ..frameworks import as_layer
from ..repair.targets import target_rewrites
from ..runtimes import ADAPTERS, RuntimeUnavailable, get_runtime, require_runtimes
from ._recorder import Recorded, recording
from ._timing import Timing, measure

__all__ = ["BENCH_FORMS", "TARGET_FORM", "BenchReport", "BenchResult", "LayerSourceLike",
           "Skipped", "bench_layers", "installed_runtime_names", "parse_forms", "parse_threads",
           "rank_results"]


class LayerSourceLike(Protocol):
    """What the bench needs of a layer (a :class:`convt_tools.sources.LayerSource`)."""

    @property
    def label(self) -> str: ...
    @property
    def spec(self) -> Any: ...
    @property
    def kernel(self) -> Any: ...
    @property
    def bias(self) -> Any: ...
    @property
    def weights_note(self) -> str: ...


@dataclass
class BenchResult:
    """One cell: a layer on one runtime, in one export form, at one thread count (ms).

    ``form``: the ONNX export form, or ``"tflite"`` for a runtime that runs the
    layer's ``.tflite`` export (one cell per layer and thread count).
    """

    layer: str
    runtime: str
    form: str
    threads: int
    median_ms: float | None
    spread_ms: float | None          # interquartile range of the timed runs
    first_run_ms: float | None       # load/compile + the first run
    exact: bool
    runs: int = 0
    converged: bool = False          # the median's 95% interval met the precision asked for
    ratio_to_fastest: float | None = None
    interval_ms: list[float] | None = None   # the median's ~95% interval [low, high]
    cpu_ms: float | None = None      # median CPU time of the process per call (all threads)
    max_abs_error: float | None = None
    input_shape: list[int] = field(default_factory=list)
    runtime_version: str = ""
    error: str | None = None         # why it is not exact (refusal, mismatch), else None
    note: str | None = None          # what the time includes beside the engine's compute

    def to_dict(self) -> dict[str, Any]:
        """The cell as JSON-ready values."""
        return asdict(self)


@dataclass(frozen=True)
class Skipped:
    """A layer x form that was not measured, and why (e.g. torch configs export one form)."""

    layer: str
    form: str
    reason: str


@dataclass
class BenchReport:
    """Every cell, in the order measured, plus the cells skipped."""

    results: list[BenchResult]
    skipped: list[Skipped]

    def fastest(self) -> list[BenchResult]:
        """The fastest exact cell of each (layer, threads), in first-seen order."""
        best: dict[tuple[str, int], BenchResult] = {}
        for r in self.results:
            if r.ratio_to_fastest == 1.0 and (r.layer, r.threads) not in best:
                best[(r.layer, r.threads)] = r
        return list(best.values())

    def ties(self, best: BenchResult) -> list[BenchResult]:
        """The other exact cells of ``best``'s (layer, threads) whose median's interval
        overlaps ``best``'s: as fast within the measurement's noise."""
        if best.interval_ms is None:
            return []
        return [r for r in self.results
                if r is not best and r.exact and (r.layer, r.threads) == (best.layer, best.threads)
                and r.interval_ms is not None and r.interval_ms[0] <= best.interval_ms[1]]


def _fail(name: str, got: str, expected: str) -> ConvtError:
    return ConvtError(f"{name}: got {got!r}; expected {expected}.", field=name)


# The export each runtime is deployed with: the portable form rewritten for that runtime
# alone, as ``convt export --target RUNTIME`` writes it.
TARGET_FORM = "target"
BENCH_FORMS = (*FORMS, TARGET_FORM)


def parse_forms(text: str) -> list[str]:
    """``"portable,compact,target"`` -> the forms, in order, without repeats."""
    forms: list[str] = []
    for item in text.split(","):
        item = item.strip()
        if item not in BENCH_FORMS:
            raise _fail("form", item, f"one of {', '.join(BENCH_FORMS)} (comma-separated)")
        if item not in forms:
            forms.append(item)
    return forms


def parse_threads(text: str) -> list[int]:
    """``"1,2"`` -> thread counts (integers >= 1), in order, without repeats."""
    counts: list[int] = []
    for item in text.split(","):
        item = item.strip()
        if not item.isdigit() or int(item) < 1:
            raise _fail("threads", item, "comma-separated integers >= 1 (e.g. 1,2)")
        if int(item) not in counts:
            counts.append(int(item))
    return counts


def installed_runtime_names() -> list[str]:
    """Every runtime of the registry whose engine imports, in registry order."""
    names = []
    for name in ADAPTERS:
        try:
            get_runtime(name).module()
        except RuntimeUnavailable:
            continue
        names.append(name)
    return names


def rank_results(results: Sequence[BenchResult]) -> None:
    """Set ``ratio_to_fastest`` in place: median / fastest exact median of the same
    (layer, threads); None for cells that are not exact or have no median."""
    fastest: dict[tuple[str, int], float] = {}
    for r in results:
        if r.exact and r.median_ms is not None:
            key = (r.layer, r.threads)
            fastest[key] = min(fastest.get(key, r.median_ms), r.median_ms)
    for r in results:
        best = fastest.get((r.layer, r.threads))
        r.ratio_to_fastest = None
        if r.exact and r.median_ms is not None and best is not None:
            r.ratio_to_fastest = r.median_ms / best if best > 0 else 1.0


def _same_output(first: np.ndarray, last: np.ndarray | None, atol: float, rtol: float) -> bool:
    if last is None:
        return False
    a = np.asarray(first, dtype=np.float64)
    b = np.asarray(last, dtype=np.float64)
    return a.shape == b.shape and bool(np.all(np.abs(a - b) <= atol + rtol * np.abs(a)))


def _cell(src: LayerSourceLike, form: str, threads: int, result: Any, rec: Recorded
          ) -> BenchResult:
    """One validated runtime's cell from what its recording wrapper measured."""
    cell = BenchResult(layer=src.label, runtime=rec.name, form=form, threads=threads,
                       median_ms=None, spread_ms=None, first_run_ms=None, exact=False,
                       max_abs_error=result.max_abs_error,
                       input_shape=[int(d) for d in result.input_shape],
                       runtime_version=result.runtime_version, note=rec.run_overhead)
    loaded, rec.loaded = rec.loaded, None
    if loaded is None or loaded.first_run_s is None:
        cell.error = result.error or result.message or "the runtime did not run the model"
        return cell
    cell.first_run_ms = 1e3 * ((rec.load_s or 0.0) + loaded.first_run_s)
    cell.exact = bool(result.passed)
    if not result.passed:
        cell.error = result.message or result.status
    timing = loaded.timing
    if timing is None:
        cell.exact, cell.error = False, loaded.timing_error or "the runtime was not timed"
        return cell
    cell.median_ms, cell.spread_ms = 1e3 * timing.median_s, 1e3 * timing.spread_s
    cell.runs, cell.converged = timing.runs, timing.converged
    cell.interval_ms = [1e3 * timing.low_s, 1e3 * timing.high_s]
    cell.cpu_ms = 1e3 * timing.cpu_median_s
    if cell.exact and loaded.output is not None and not _same_output(
            loaded.output, loaded.last_output, result.tolerance.atol, result.tolerance.rtol):
        cell.exact = False
        cell.error = "the output of a later run differs from the first (validated) one"
    return cell


def bench_layers(sources: Sequence[LayerSourceLike], runtimes: Sequence[str], *,
                 forms: Sequence[str] = FORMS, threads: Sequence[int] = (1,),
                 input_shape: Sequence[int | None] | None = None, seed: int = 0,
                 budget_s: float = 1.0, precision: float = 0.03, min_runs: int = 7,
                 settle_s: float = 0.25,
                 clock: Callable[[], float] = time.perf_counter,
                 cpu_clock: Callable[[], float] = time.process_time,
                 progress: Callable[[int], None] | None = None) -> BenchReport:
    """Measure every layer x form x thread count x runtime (module docstring).

    ``runtimes``: registry names (:data:`convt_tools.runtimes.ADAPTERS`), each
    made by :func:`~convt_tools.runtimes.get_runtime` with ``threads``;
    ``input_shape``: the input when the layer records none (else validate's
    default); ``budget_s``/``precision``/``min_runs``: :func:`._timing.measure`
    per cell; ``settle_s``: a pause before each cell's timed runs, so that threads other
    than the engine's (OpenBLAS's after the NumPy reference, the previous engine's pool)
    stop spinning first: ``cpu_ms`` counts every thread of the process (measured: without
    it, onnxruntime's CPU time on case d read 10.3 ms for a 6.0 ms median at one thread);
    ``progress(n)`` is called as cells finish. A runtime that is not
    installed raises :class:`~convt_tools.runtimes.RuntimeUnavailable` before
    anything runs.
    """
    for t in threads:
        require_runtimes(runtimes, threads=t)

    def timer(run: Callable[[], object]) -> Timing:
        if settle_s > 0:
            time.sleep(settle_s)
        return measure(run, budget_s=budget_s, precision=precision, min_runs=min_runs,
                       clock=clock, cpu_clock=cpu_clock)

    results: list[BenchResult] = []
    skipped: list[Skipped] = []
    per_form = len(threads) * len(runtimes)
    for src in sources:
        layer = as_layer(src.spec)
        first_form = True
        for form in forms:
            exported = "portable" if form == TARGET_FORM else form
            if exported not in layer.forms:
                skipped.append(Skipped(src.label, form, f"{layer.class_name} layers export "
                                       f"the {', '.join(layer.forms)} form only"))
                if progress is not None:
                    progress(per_form)
                continue
            for i, t in enumerate(threads):
                # A runtime that loads another kind of model (litert: the layer's .tflite
                # export) runs it once per layer and thread count, not once per ONNX form.
                engines = [rt for rt in require_runtimes(runtimes, threads=t)
                           if first_form or rt.model_kind == "onnx"]
                groups, unchanged = _validation_groups(engines, form)
                if i == 0:
                    skipped += [Skipped(src.label, form, f"{name} needs no rewrite: its target "
                                        f"form is the portable form") for name in unchanged]
                if progress is not None:
                    progress(len(runtimes) - sum(len(g) for g in groups))
                for group in groups:
                    recs = [recording(rt, clock, timer) for rt in group]
                    validated = layer.validate_on(
                        recs, model=None, kernel=src.kernel, bias=src.bias, x=None,
                        input_shape=input_shape, seed=seed, rtol=None, atol=None, opset=None,
                        name=src.label, weights_note=src.weights_note or None, form=exported,
                        for_targets=form == TARGET_FORM)   # else the export form as it is
                    for result, rec in zip(validated, recs):
                        label = form if rec.model_kind == "onnx" else rec.model_kind
                        results.append(_cell(src, label, t, result, rec))
                        if progress is not None:
                            progress(1)
            first_form = False
    rank_results(results)
    return BenchReport(results, skipped)


def _validation_groups(engines: Sequence[Any], form: str
                       ) -> tuple[list[list[Any]], list[str]]:
    """The runtimes validated together (one export each group), and the ONNX runtimes the
    target form leaves out because no rewrite applies to them (their target form is the
    portable one, measured as such). The target form validates each ONNX runtime alone:
    its export is rewritten for that runtime only (:func:`_target_rewrites`)."""
    if form != TARGET_FORM:
        return ([list(engines)] if engines else []), []
    groups: list[list[Any]] = [[rt] for rt in engines
                               if rt.model_kind == "onnx" and _target_rewrites(rt.name)]
    others = [rt for rt in engines if rt.model_kind != "onnx"]
    if others:
        groups.append(others)
    unchanged = [rt.name for rt in engines
                 if rt.model_kind == "onnx" and not _target_rewrites(rt.name)]
    return groups, unchanged


def _target_rewrites(name: str) -> tuple[str, ...]:
    """What ``export --target NAME`` may rewrite (none for a runtime the reading table
    does not judge, e.g. the NumPy reference)."""
    try:
        return target_rewrites([name])
    except ConvtError:
        return ()
