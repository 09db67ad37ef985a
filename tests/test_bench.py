"""``convt bench`` (issue 23): structure, the ratio/fastest rules and the exactness check.

No timed assertions: the stopping rule of the adaptive measurement is driven
by a scripted clock, the ratio rules by constructed results, and the real
cells are checked for their structure and for ``exact`` only (a runtime
computing a wrong answer is marked not exact, whatever its speed). The
runtimes used for real cells are the base install's (onnxruntime and
``onnx-reference``); a wrong or unstable engine is an adapter written here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pytest

from convt_tools import bench as bench_lib
from convt_tools.bench import (BenchResult, measure, median_interval, parse_forms, parse_threads,
                               rank_results)
from convt_tools.errors import ConvtError
from convt_tools.exporter import export_spec
from convt_tools.runtimes import LoadedModel, Runtime, get_runtime
from convt_tools.sources import resolve_sources
from convt_tools.spec import make_spec
from support.cli import invoke, run_convt
from support.optional import runtime_or_skip

ROOT = Path(__file__).resolve().parent.parent
KERAS_CONFIG = ROOT / "fixtures" / "examples" / "same_odd_crop_k3x5_s2.json"
SAVED_MODEL = ROOT / "fixtures" / "models" / "seq_decoder.keras"
# A depthwise torch module (groups = C_in = C_out): onnx.reference 1.23 gives every channel
# the bias B[0] (REFERENCE.md), so its output is wrong.
DEPTHWISE = {"framework": "torch", "module": "ConvTranspose2d", "in_channels": 4,
             "out_channels": 4, "kernel_size": 3, "stride": 2, "groups": 4}
FIELDS = {"layer", "runtime", "form", "threads", "median_ms", "spread_ms", "first_run_ms",
          "ratio_to_fastest", "exact"}
FAST = ("--budget", "0.02", "--precision", "0.5")   # few runs: the figures are not checked


class ScriptedClock:
    """A clock that moves only when a scripted call runs: ``tick()`` is one call's duration."""

    def __init__(self, durations: Sequence[float]) -> None:
        self.now = 0.0
        self._durations = list(durations)
        self.calls = 0

    def __call__(self) -> float:
        return self.now

    def tick(self) -> None:
        self.now += self._durations[self.calls % len(self._durations)]
        self.calls += 1


# ------------------------------------------------------------------ the measurement rule

def test_constant_durations_stop_at_min_runs_converged():
    clock = ScriptedClock([0.002])
    timing = measure(clock.tick, budget_s=10.0, precision=0.01, min_runs=7, clock=clock)
    assert (timing.runs, timing.converged) == (7, True)


def test_constant_durations_median_is_the_duration():
    clock = ScriptedClock([0.002])
    timing = measure(clock.tick, budget_s=10.0, precision=0.01, min_runs=7, clock=clock)
    assert timing.median_s == pytest.approx(0.002)


def test_noisy_durations_stop_at_the_budget_unconverged():
    clock = ScriptedClock([0.001, 0.003])   # the median's interval stays as wide as the data
    timing = measure(clock.tick, budget_s=0.0995, precision=0.01, min_runs=7, clock=clock)
    assert (timing.runs, timing.converged) == (50, False)


def test_a_call_slower_than_the_budget_runs_twice():
    clock = ScriptedClock([5.0])
    timing = measure(clock.tick, budget_s=1.0, precision=0.01, min_runs=7, clock=clock)
    assert timing.runs == 2


def test_max_runs_bounds_the_count():
    clock = ScriptedClock([0.001, 0.003])
    timing = measure(clock.tick, budget_s=1e9, precision=0.0, min_runs=3, max_runs=11,
                     clock=clock)
    assert timing.runs == 11


def test_spread_is_the_interquartile_range():
    clock = ScriptedClock([1.0, 2.0, 3.0, 4.0, 5.0])
    timing = measure(clock.tick, budget_s=1e9, precision=0.0, min_runs=5, max_runs=5,
                     clock=clock)
    assert timing.spread_s == pytest.approx(2.0)   # inclusive quartiles 2 and 4


def test_cpu_time_is_the_median_cpu_time_per_call():
    wall, cpu = ScriptedClock([0.002]), ScriptedClock([0.001, 0.0015, 0.001])

    def run() -> None:
        wall.tick()
        cpu.tick()

    timing = measure(run, budget_s=10.0, precision=0.01, min_runs=7, clock=wall, cpu_clock=cpu)
    assert timing.cpu_median_s == pytest.approx(0.001)


def test_median_interval_brackets_the_median_by_order_statistics():
    # n = 100: ranks floor(50 - 9.8) = 40 and ceil(50 + 9.8) = 60 of 0..99
    assert median_interval([float(i) for i in range(100)]) == (40.0, 60.0)


# ------------------------------------------------------------------ ratio and fastest

def _cell(runtime: str, median: float | None, exact: bool, threads: int = 1,
          layer: str = "L", form: str = "portable") -> BenchResult:
    return BenchResult(layer=layer, runtime=runtime, form=form, threads=threads,
                       median_ms=median, spread_ms=0.0, first_run_ms=1.0, exact=exact)


def test_ratio_is_over_the_fastest_exact_median():
    cells = [_cell("a", 2.0, True), _cell("b", 3.0, True)]
    rank_results(cells)
    assert [c.ratio_to_fastest for c in cells] == [1.0, 1.5]


def test_a_fast_wrong_cell_has_no_ratio():
    cells = [_cell("wrong", 0.5, False), _cell("a", 2.0, True)]
    rank_results(cells)
    assert cells[0].ratio_to_fastest is None


def test_a_fast_wrong_cell_is_never_the_fastest():
    cells = [_cell("wrong", 0.5, False), _cell("a", 2.0, True)]
    rank_results(cells)
    assert cells[1].ratio_to_fastest == 1.0


def test_thread_counts_are_ranked_apart():
    cells = [_cell("a", 1.0, True, threads=2), _cell("a", 2.0, True, threads=1)]
    rank_results(cells)
    assert [c.ratio_to_fastest for c in cells] == [1.0, 1.0]


def test_layers_are_ranked_apart():
    cells = [_cell("a", 1.0, True, layer="x"), _cell("a", 4.0, True, layer="y")]
    rank_results(cells)
    assert [c.ratio_to_fastest for c in cells] == [1.0, 1.0]


def test_report_fastest_names_one_cell_per_layer_and_threads():
    cells = [_cell("a", 2.0, True), _cell("b", 1.0, True, form="compact"),
             _cell("a", 5.0, True, threads=2)]
    rank_results(cells)
    report = bench_lib.BenchReport(cells, [])
    assert [(r.runtime, r.form, r.threads) for r in report.fastest()] == \
        [("b", "compact", 1), ("a", "portable", 2)]


def test_ties_are_the_exact_cells_whose_interval_overlaps_the_fastest():
    cells = [_cell("a", 1.0, True), _cell("b", 1.1, True), _cell("c", 3.0, True),
             _cell("d", 1.05, False)]
    for c, iv in zip(cells, ([0.9, 1.2], [1.0, 1.3], [2.5, 3.5], [1.0, 1.1])):
        c.interval_ms = iv
    rank_results(cells)
    report = bench_lib.BenchReport(cells, [])
    assert [t.runtime for t in report.ties(report.fastest()[0])] == ["b"]


def test_the_measured_interval_holds_the_median():
    clock = ScriptedClock([0.001, 0.002, 0.003])
    timing = measure(clock.tick, budget_s=0.05, precision=0.0, min_runs=3, clock=clock)
    assert timing.low_s <= timing.median_s <= timing.high_s


# ------------------------------------------------------------------ parsing

@pytest.mark.parametrize("text, expected", [("portable", ["portable"]),
                                            ("compact, portable,compact", ["compact", "portable"]),
                                            ("target,portable", ["target", "portable"])])
def test_parse_forms(text, expected):
    assert parse_forms(text) == expected


@pytest.mark.parametrize("text", ["", "fast", "portable,", "PORTABLE"])
def test_parse_forms_refuses(text):
    with pytest.raises(ConvtError,
                       match=r"^form: got .*expected one of portable, compact, target"):
        parse_forms(text)


@pytest.mark.parametrize("text, expected", [("1", [1]), ("2, 1,2", [2, 1])])
def test_parse_threads(text, expected):
    assert parse_threads(text) == expected


@pytest.mark.parametrize("text", ["0", "-1", "1.5", "N", "", "1,"])
def test_parse_threads_refuses(text):
    with pytest.raises(ConvtError, match=r"^threads: got .*integers >= 1"):
        parse_threads(text)


# ------------------------------------------------------------------ real cells

@pytest.fixture(scope="module")
def depthwise(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("bench") / "depthwise.json"
    path.write_text(json.dumps(DEPTHWISE))
    return path


def _report(cli, *args: Any) -> dict:
    res = cli("bench", *args, *FAST, "--json")
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


@pytest.fixture(scope="module")
def depthwise_report(depthwise) -> dict:
    return _report(invoke, depthwise, "--runtime", "onnxruntime,onnx-reference")


def _by_runtime(report: dict) -> dict[str, dict]:
    return {r["runtime"]: r for r in report["results"]}


def test_results_carry_the_issue_fields(depthwise_report):
    assert all(set(r) >= FIELDS for r in depthwise_report["results"])


def test_onnx_reference_on_a_depthwise_torch_layer_is_not_exact(depthwise_report):
    assert _by_runtime(depthwise_report)["onnx-reference"]["exact"] is False


def test_the_wrong_cell_is_still_timed(depthwise_report):
    assert _by_runtime(depthwise_report)["onnx-reference"]["median_ms"] > 0


def test_the_wrong_cell_has_no_ratio(depthwise_report):
    assert _by_runtime(depthwise_report)["onnx-reference"]["ratio_to_fastest"] is None


def test_the_wrong_cell_says_what_is_wrong(depthwise_report):
    assert "exceeds the tolerance" in _by_runtime(depthwise_report)["onnx-reference"]["error"]


def test_onnxruntime_on_the_depthwise_layer_is_exact(depthwise_report):
    assert _by_runtime(depthwise_report)["onnxruntime"]["exact"] is True


def test_the_fastest_is_the_exact_runtime(depthwise_report):
    assert [(f["runtime"], f["form"]) for f in depthwise_report["fastest"]] == \
        [("onnxruntime", "portable")]


def test_a_torch_layer_skips_the_compact_form(depthwise_report):
    assert [s["form"] for s in depthwise_report["skipped"]] == ["compact"]


def test_first_run_is_measured(depthwise_report):
    assert all(r["first_run_ms"] > 0 for r in depthwise_report["results"])


@pytest.fixture(scope="module")
def keras_report() -> dict:
    return _report(invoke, KERAS_CONFIG, "--runtime", "onnxruntime", "--threads", "1,2")


def test_one_cell_per_form_and_thread_count(keras_report):
    assert sorted((r["form"], r["threads"]) for r in keras_report["results"]) == \
        [("compact", 1), ("compact", 2), ("portable", 1), ("portable", 2)]


def test_each_thread_count_has_one_fastest(keras_report):
    assert sorted(f["threads"] for f in keras_report["fastest"]) == [1, 2]


def test_every_ratio_is_at_least_one(keras_report):
    assert min(r["ratio_to_fastest"] for r in keras_report["results"]) == 1.0


def test_the_input_is_the_configs_recorded_shape(keras_report):
    # same_odd_crop_k3x5_s2.json records no batch: validate fills batch 2
    assert {tuple(r["input_shape"]) for r in keras_report["results"]} == {(2, 9, 6, 16)}


def test_a_saved_model_gives_one_layer_per_transposed_conv(cli):
    report = _report(cli, SAVED_MODEL, "--runtime", "onnxruntime", "--form", "compact")
    labels = [s.label for s in resolve_sources(str(SAVED_MODEL), skip_unsupported=True)]
    assert [r["layer"] for r in report["results"]] == labels


def test_input_shape_option_sets_the_input(cli):
    report = _report(cli, KERAS_CONFIG, "--runtime", "onnxruntime", "--form", "compact",
                     "--input-shape", "1,4,4,16")
    assert report["results"][0]["input_shape"] == [1, 4, 4, 16]


def test_benchmark_cases_are_written_as_configs_bench_reads(cli, tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_reference.py"),
                           "--write-configs", str(tmp_path), "--cases", "f"],
                          capture_output=True, text=True, check=False, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    report = _report(cli, tmp_path / "f.json", "--runtime", "onnxruntime", "--form", "compact")
    assert report["results"][0]["input_shape"] == [1, 4, 4, 3]   # case f's input


def test_the_table_names_the_fastest(cli, depthwise):
    res = cli("bench", depthwise, "--runtime", "onnxruntime,onnx-reference", *FAST)
    assert f"fastest for {depthwise} at 1 thread(s): onnxruntime, portable form" in res.stdout


def test_the_table_marks_the_wrong_cell(cli, depthwise):
    res = cli("bench", depthwise, "--runtime", "onnxruntime,onnx-reference", *FAST)
    assert f"{depthwise} [onnx-reference, portable]: WRONG: max abs error" in res.stdout


@pytest.mark.runtimes
@pytest.mark.parametrize("name", ["openvino", "tract", "torch"])
def test_an_optional_runtime_is_measured_and_exact_on_the_portable_form(cli, name):
    runtime_or_skip(name)
    report = _report(cli, KERAS_CONFIG, "--runtime", name, "--form", "portable")
    cell = report["results"][0]
    assert (cell["runtime"], cell["exact"], cell["median_ms"] > 0, cell["first_run_ms"] > 0) \
        == (name, True, True, True), cell["error"]


@pytest.mark.runtimes
def test_litert_runs_the_tflite_export_once_per_layer(cli):
    """litert loads the layer's .tflite export (its model_kind), not an ONNX form: one
    exact cell per layer and thread count, labelled "tflite", beside both ONNX forms."""
    runtime_or_skip("litert")
    report = _report(cli, KERAS_CONFIG, "--runtime", "onnxruntime,litert",
                     "--form", "portable,compact")
    cells = [(r["runtime"], r["form"]) for r in report["results"]]
    assert sorted(cells) == [("litert", "tflite"), ("onnxruntime", "compact"),
                             ("onnxruntime", "portable")]
    litert = _by_runtime(report)["litert"]
    assert (litert["exact"], litert["median_ms"] > 0) == (True, True), litert["error"]


class _TfliteEngine(Runtime):
    name = "fake-tflite"
    model_kind = "tflite"
    extra = None
    packages = ()
    install = None
    run_overhead = "each run starts a child process"

    def _import(self) -> Any:
        return np

    def _load(self, module: Any, model: Any) -> LoadedModel:
        raise AssertionError("not loaded here")


def test_the_recording_wrapper_keeps_the_model_kind():
    """The wrapper is what validate sees: it must say which model the engine loads."""
    assert bench_lib.recording(_TfliteEngine(threads=1)).model_kind == "tflite"
    assert bench_lib.recording(get_runtime("onnxruntime", threads=1)).model_kind == "onnx"


def test_the_recording_wrapper_keeps_what_a_run_time_includes():
    assert bench_lib.recording(_TfliteEngine(threads=1)).run_overhead == \
        "each run starts a child process"
    assert bench_lib.recording(get_runtime("onnxruntime", threads=1)).run_overhead is None


def test_a_cell_carries_its_runtimes_note_into_the_json():
    """What the recording wrapper says a run includes (Runtime.run_overhead) reaches the
    cell and its JSON (``note``), refused cells included."""
    from types import SimpleNamespace

    from convt_tools.bench._run import _cell

    rec = bench_lib.recording(_TfliteEngine(threads=1))
    result = SimpleNamespace(max_abs_error=None, input_shape=(1, 4, 3), runtime_version="x",
                             error="refused", message=None)
    cell = _cell(SimpleNamespace(label="L"), "tflite", 1, result, rec)
    assert cell.to_dict()["note"] == "each run starts a child process"


def test_the_table_says_what_a_runtimes_time_includes(capsys):
    from convt_tools.cli.bench_cmd import print_bench_table

    cells = [_cell("a", 2.0, True), _cell("slow", 300.0, True)]
    cells[1].note = "each run starts a child process"
    cells[1].input_shape = [1, 4, 3]
    cells[0].input_shape = [1, 4, 3]
    rank_results(cells)
    print_bench_table(bench_lib.BenchReport(cells, []))
    assert "note: slow: each run starts a child process" in capsys.readouterr().out


def _engine(name: str, kind: str = "onnx") -> Runtime:
    cls = type(f"Fake_{name}", (_TfliteEngine,), {"name": name, "model_kind": kind})
    return cls(threads=1)


def test_the_target_form_validates_each_runtime_that_needs_a_rewrite_alone():
    """mnn and onnx-reference each get their own rewritten export; onnxruntime needs no
    rewrite (the reading table), so its target form is the portable one and is left out;
    a .tflite runtime keeps its one group."""
    from convt_tools.bench._run import _validation_groups

    engines = [_engine("onnxruntime"), _engine("mnn"), _engine("onnx-reference"),
               _engine("litert", "tflite")]
    groups, unchanged = _validation_groups(engines, "target")
    assert [[rt.name for rt in g] for g in groups] == [["mnn"], ["onnx-reference"], ["litert"]]
    assert unchanged == ["onnxruntime"]


def test_the_plain_forms_validate_every_runtime_on_one_export():
    from convt_tools.bench._run import _validation_groups

    engines = [_engine("onnxruntime"), _engine("mnn")]
    groups, unchanged = _validation_groups(engines, "portable")
    assert ([[rt.name for rt in g] for g in groups], unchanged) == \
        ([["onnxruntime", "mnn"]], [])


@pytest.fixture(scope="module")
def target_report(depthwise) -> dict:
    return _report(invoke, depthwise, "--runtime", "onnxruntime,onnx-reference",
                   "--form", "portable,target")


def test_the_target_form_makes_onnx_reference_exact_on_a_depthwise_layer(target_report):
    """onnx.reference's grouped ConvTranspose is wrong; its target form splits the groups
    (what 'convt export --target onnx-reference' writes), and that export is exact."""
    cells = {(r["runtime"], r["form"]): r for r in target_report["results"]}
    assert (cells[("onnx-reference", "portable")]["exact"],
            cells[("onnx-reference", "target")]["exact"]) == (False, True)


def test_the_target_form_skips_a_runtime_that_needs_no_rewrite(target_report):
    assert [(s["form"], s["reason"]) for s in target_report["skipped"]
            if s["form"] == "target"] == \
        [("target", "onnxruntime needs no rewrite: its target form is the portable form")]


def _recorded_run(timer):
    spec = make_spec(filters=2, rank=1, kernel_size=3, strides=2)
    kernel = np.ones(spec.kernel_shape(3), np.float32)
    model = export_spec(spec, kernel, np.zeros(2, np.float32), input_shape=(1, 4, 3))
    rec = bench_lib.recording(get_runtime("onnxruntime", threads=1), timer=timer)
    rec.load(model).run({"input": np.ones((1, 4, 3), np.float32)})
    return rec.loaded


def test_the_engines_model_is_released_after_the_timed_runs():
    loaded = _recorded_run(lambda run: measure(run, budget_s=0.01, precision=0.5))
    assert loaded.inner is None


def test_the_timed_runs_follow_the_first_run():
    loaded = _recorded_run(lambda run: measure(run, budget_s=0.01, precision=0.5, min_runs=3))
    assert loaded.timing.runs >= 2


# ------------------------------------------------------------------ engines written here

class _OrtBased(Runtime):
    """onnxruntime's adapter, with its output changed by :meth:`_change` (a wrong engine)."""

    name = "onnxruntime"
    extra = None
    packages = ("onnxruntime",)

    def _import(self) -> Any:
        return get_runtime("onnxruntime").module()

    def _version(self, module: Any) -> str:
        return module.__version__

    def _load(self, module: Any, model: Any) -> LoadedModel:
        return _Changed(get_runtime("onnxruntime", threads=1).load(model), self)

    def change(self, out: np.ndarray, call: int) -> np.ndarray:
        raise NotImplementedError


class _Changed(LoadedModel):
    def __init__(self, inner: LoadedModel, owner: _OrtBased) -> None:
        self.runtime = owner.name
        self.inner, self.owner, self.calls = inner, owner, 0
        self.cached: np.ndarray | None = None

    def _run(self, inputs: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        if self.cached is None:
            self.cached = self.inner.run(inputs)[0]
        self.calls += 1
        return [self.owner.change(self.cached, self.calls)]


class _FastWrong(_OrtBased):
    """Instant (a cached output) and wrong by 1 everywhere."""

    name = "fast-wrong"

    def change(self, out: np.ndarray, call: int) -> np.ndarray:
        return out + 1.0


class _Unstable(_OrtBased):
    """Right on the first (validated) call, wrong on every later one."""

    name = "unstable"

    def change(self, out: np.ndarray, call: int) -> np.ndarray:
        return out if call == 1 else out + 1.0


THREADS_ASKED: list[int | None] = []


@pytest.fixture
def engines(monkeypatch) -> list[str]:
    """``require_runtimes`` of the bench returns the real onnxruntime plus the two above
    (the thread counts it is asked for are kept in :data:`THREADS_ASKED`)."""
    THREADS_ASKED.clear()

    def require(names, providers=None, *, threads=None):
        THREADS_ASKED.append(threads)
        return [get_runtime("onnxruntime", threads=threads), _FastWrong(threads=threads),
                _Unstable(threads=threads)]

    monkeypatch.setattr("convt_tools.bench._run.require_runtimes", require)
    return ["onnxruntime", "fast-wrong", "unstable"]


@pytest.fixture
def source():
    return resolve_sources(str(KERAS_CONFIG))[0]


def _cells(source, engines, **kwargs) -> dict[str, BenchResult]:
    report = bench_lib.bench_layers([source], engines, forms=["compact"], budget_s=0.02,
                                    precision=0.5, **kwargs)
    return {r.runtime: r for r in report.results}


def test_a_fast_wrong_engine_is_not_exact(source, engines):
    assert _cells(source, engines)["fast-wrong"].exact is False


def test_a_fast_wrong_engine_is_not_the_fastest(source, engines):
    assert _cells(source, engines)["onnxruntime"].ratio_to_fastest == 1.0


def test_an_engine_whose_later_output_changes_is_not_exact(source, engines):
    assert _cells(source, engines)["unstable"].error == \
        "the output of a later run differs from the first (validated) one"


def test_progress_counts_every_cell_including_skipped_forms(depthwise, engines):
    seen: list[int] = []
    src = resolve_sources(str(depthwise))[0]
    bench_lib.bench_layers([src], engines, forms=["portable", "compact"], threads=[1, 2],
                           budget_s=0.01, precision=0.5, progress=seen.append)
    assert sum(seen) == 2 * 2 * len(engines)


def test_each_thread_count_reaches_the_registry(source, engines):
    bench_lib.bench_layers([source], engines, forms=["compact"], threads=[2, 1], budget_s=0.01,
                           precision=0.5)
    assert sorted(set(THREADS_ASKED)) == [1, 2]


def test_cells_record_their_thread_count(source, engines):
    report = bench_lib.bench_layers([source], engines, forms=["compact"], threads=[2, 1],
                                    budget_s=0.01, precision=0.5)
    assert [r.threads for r in report.results] == [2] * 3 + [1] * 3


# ------------------------------------------------------------------ bad input

@pytest.mark.parametrize("args, field", [
    (("--threads", "0"), "threads"), (("--threads", "two"), "threads"),
    (("--form", "fast"), "form"), (("--runtime", "nope"), "runtime"),
    (("--runtime", ""), "runtime"),
])
def test_bad_options_are_one_line_exit_2(cli, args, field):
    res = cli("bench", KERAS_CONFIG, *args)
    assert (res.exit_code, res.stderr.count("\n"), res.stderr.startswith(f"Error: {field}:")) \
        == (2, 1, True), res.stderr


def test_layer_on_a_layer_config_is_refused(cli):
    res = cli("bench", KERAS_CONFIG, "--layer", "0", "--runtime", "onnxruntime")
    assert (res.exit_code, res.stderr.startswith("Error: layer:")) == (2, True), res.stderr


@pytest.mark.slow
def test_bench_as_a_real_subprocess(depthwise):
    proc = run_convt("bench", depthwise, "--runtime", "onnxruntime", *FAST, "--json")
    assert (proc.returncode, [r["exact"] for r in json.loads(proc.stdout)["results"]]) == \
        (0, [True]), proc.stderr
