"""``convt conformance`` (issue 19): the corpus, the judging, the committed table, --target.

* The corpus: seeded random weights (no two equal), every form the issue lists.
* Judging: a refusal, another window of the full output (named), garbage (max abs
  error) are told apart on constructed outputs.
* The committed table (docs/conformance.md) agrees, cell by cell, with what check's
  documented table predicts (:func:`convt_tools.conformance.predict`), and live, on a
  sample of cases, with each installed CI runtime's own output.
* ``repair --target`` / ``export --target``: the forms built for a target are exact on
  it (real output); a grouped node on onnx-reference is exact only after the split.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest

from support.assertions import assert_nothing_written, assert_one_line_error
from support.cli import run_convt
from support.conformance_table import CI_RUNTIMES, cell_key, committed_table
from support.optional import runtime_installed, runtime_params
from support.tiers import fast_sample
from convt_tools.check.readings import TABLE, rules_for
from convt_tools.check.runners import Refusal, run_calls
from convt_tools.check.windows import apply_window, full_output
from convt_tools.conformance import (
    CASES, FORMS, build_case, predict, reference_output, run_conformance, select_cases,
)
from convt_tools.conformance.judge import Unrepeatable, judge_output, not_repeatable
from convt_tools.errors import ConvtError
from convt_tools.geometry import Window
from convt_tools.repair import RepairRefused, repair_model
from convt_tools.repair.targets import (
    BIAS_ADD, GROUP_SPLIT, TargetsNotExact, bias_as_add, retarget, split_groups,
    target_rewrites,
)

BY_ID = {c.id: c for c in CASES}
NODE_CASES = [c.id for c in CASES if c.form == "node"]
GROUPED = [c.id for c in CASES if c.form == "node" and c.group > 1]
# onnx-reference 1.23 runs depthwise with one output channel per group exactly without a bias
# (measured); every other grouped node it refuses or gets wrong.
MISREAD_GROUPED = [i for i in GROUPED if not (
    BY_ID[i].c_in == BY_ID[i].group == BY_ID[i].c_out and not BY_ID[i].bias)]
WITH_BIAS = [c.id for c in CASES if c.form == "node" and c.bias]
COLUMNS, COMMITTED = committed_table()


# ---------------------------------------------------------------- the corpus

@pytest.mark.parametrize("case_id", [c.id for c in CASES])
def test_weights_are_random_never_constant(case_id: str) -> None:
    built = build_case(BY_ID[case_id])
    assert np.unique(built.w).size == built.w.size


def test_a_case_builds_the_same_numbers_every_time() -> None:
    a, b = build_case(BY_ID["2d-group"]), build_case(BY_ID["2d-group"])
    assert np.array_equal(a.w, b.w) and np.array_equal(a.x, b.x)


def test_a_derived_form_uses_its_one_node_cases_numbers() -> None:
    assert np.array_equal(build_case(BY_ID["group-split/2d-group"]).w,
                          build_case(BY_ID["2d-group"]).w)


@pytest.mark.parametrize("rank", [1, 2, 3])
def test_every_rank_is_covered(rank: int) -> None:
    assert any(c.rank == rank for c in CASES)


@pytest.mark.parametrize("form", FORMS)
def test_every_form_is_covered(form: str) -> None:
    assert select_cases(forms=[form])


@pytest.mark.parametrize("what", [
    ("asymmetric pads", lambda a, c: "pads" in a and a["pads"][:c.rank] != a["pads"][c.rank:]),
    ("output_padding with stride 3", lambda a, c: 3 in a.get("strides", [])
     and any(a.get("output_padding", [0]))),
    ("dilation", lambda a, c: max(a.get("dilations", [1])) > 1),
    ("depthwise multiplier 1", lambda a, c: c.group > 1 and c.c_in == c.group == c.c_out),
    ("groups", lambda a, c: c.group > 1 and c.c_in > c.group),
    ("SAME_UPPER odd total", lambda a, c: a.get("auto_pad") == "SAME_UPPER"
     and c.kernel[0] % 2 == 1 and "output_shape" not in a),
    ("SAME_UPPER even total", lambda a, c: a.get("auto_pad") == "SAME_UPPER"
     and c.kernel[0] % 2 == 0 and "output_shape" not in a),
    ("SAME_LOWER odd total", lambda a, c: a.get("auto_pad") == "SAME_LOWER"
     and c.kernel[0] % 2 == 1),
    ("SAME_LOWER even total", lambda a, c: a.get("auto_pad") == "SAME_LOWER"
     and c.kernel[0] % 2 == 0),
    ("output_shape fixed", lambda a, c: "output_shape" in a and c.static),
    ("output_shape symbolic", lambda a, c: "output_shape" in a and not c.static),
    ("output_shape with N, C", lambda a, c: len(a.get("output_shape", [])) == c.rank + 2),
    ("output_shape with output_padding", lambda a, c: "output_shape" in a
     and any(a.get("output_padding", [0]))),
    ("bias", lambda a, c: c.bias),
], ids=lambda w: w[0])
def test_the_corpus_has_the_form(what) -> None:
    _, test = what
    assert any(test(dict(c.attrs), c) for c in CASES if c.form == "node")


def test_an_unknown_case_id_is_refused() -> None:
    with pytest.raises(ConvtError, match="case: got nope"):
        select_cases(["nope"])


# ---------------------------------------------------------------- judging

def test_a_refusal_is_refused_with_its_reason() -> None:
    out = judge_output(build_case(BY_ID["1d-pads-sym"]), Refusal("no such kernel"))
    assert (out.outcome, out.reason) == ("refused", "no such kernel")


def test_the_spec_output_is_exact() -> None:
    built = build_case(BY_ID["1d-oshape-odd"])
    assert judge_output(built, [reference_output(built)[1].astype(np.float32)]).outcome == "exact"


def test_another_window_is_a_wrong_window_naming_it() -> None:
    built = build_case(BY_ID["1d-oshape-odd"])     # spec: begin 1, length 10
    other = apply_window(full_output(built.x, built.w, BY_ID["1d-oshape-odd"].conv_attrs()),
                         None, (Window(0, 10),)).astype(np.float32)
    out = judge_output(built, [other])
    assert (out.outcome, out.window) == ("wrong window", ((0, 10),))


def test_garbage_is_wrong_values_with_its_error() -> None:
    built = build_case(BY_ID["2d-pads-asym"])
    want = reference_output(built)[1]
    out = judge_output(built, [(want + 0.5 * np.sign(want)).astype(np.float32)])
    assert out.outcome == "wrong values" and out.max_abs_error == pytest.approx(0.5, abs=1e-5)


def test_another_shape_is_wrong_values_naming_the_shapes() -> None:
    built = build_case(BY_ID["1d-pads-sym"])
    out = judge_output(built, [np.zeros((1, 3, 9, 1), np.float32)])
    assert out.outcome == "wrong values" and "expected [1, 3, 9]" in out.reason


# Two loads of one model (conformance on a runtime whose loads_repeatable is False).

def test_two_loads_that_agree_bitwise_are_judged_as_one() -> None:
    built = build_case(BY_ID["1d-oshape-odd"])
    y = reference_output(built)[1].astype(np.float32)
    assert judge_output(built, not_repeatable([y], [y.copy()])).outcome == "exact"


def test_two_exact_loads_that_differ_in_the_last_bit_are_not_repeatable() -> None:
    built = build_case(BY_ID["1d-oshape-odd"])
    y = reference_output(built)[1].astype(np.float32)
    out = judge_output(built, not_repeatable([y], [np.nextafter(y, np.inf)]))
    assert (out.outcome, out.reason.startswith("not repeatable")) == ("wrong values", True)


def test_an_unrepeatable_pair_reports_the_worse_loads_error() -> None:
    built = build_case(BY_ID["2d-pads-asym"])
    want = reference_output(built)[1]
    out = judge_output(built, not_repeatable([want.astype(np.float32)],
                                             [(want + 3.0).astype(np.float32)]))
    assert out.max_abs_error == pytest.approx(3.0, abs=1e-5)


def test_nan_in_the_same_place_on_both_loads_is_repeatable() -> None:
    y = np.array([1.0, np.nan], np.float32)
    assert not_repeatable([y], [y.copy()]) is not None and not isinstance(
        not_repeatable([y], [y.copy()]), Unrepeatable)


def test_refused_on_one_load_only_is_not_repeatable() -> None:
    built = build_case(BY_ID["1d-pads-sym"])
    y = reference_output(built)[1].astype(np.float32)
    out = judge_output(built, not_repeatable([y], Refusal("out of memory")))
    assert "refused on one load" in out.reason


def test_refused_on_both_loads_is_refused() -> None:
    built = build_case(BY_ID["1d-pads-sym"])
    out = judge_output(built, not_repeatable(Refusal("no kernel"), Refusal("no kernel")))
    assert (out.outcome, out.reason) == ("refused", "no kernel")


def test_a_not_repeatable_cell_is_committed_as_wrong_values() -> None:
    assert {COMMITTED[i][rt] for i, rt in NOT_REPEATABLE} == {"wrong values"}


def test_a_not_repeatable_cell_still_fails_on_a_wrong_window() -> None:
    assert _live_agrees("mnn", {"bias-add/3d-group": ("wrong window", ((0, 1),))}) != {}


def test_only_runtimes_measured_unrepeatable_load_twice() -> None:
    assert [n for n in TABLE if not rules_for(n).loads_repeatable] == ["mnn"]


# Cells a runtime does not compute the same way twice (measured): MNN's 3-D grouped
# ConvTranspose without a bias is exact on a fresh process's first load and wrong on a
# later one. Conformance loads it twice (loads_repeatable) and is committed as wrong values,
# but two loads can both meet fresh memory (seen once in pytest, never in 6 CLI runs): a
# live run may measure either.
NOT_REPEATABLE = {("bias-add/3d-group", "mnn")}


def _live_agrees(runtime: str, got: dict[str, tuple]) -> dict[str, tuple]:
    """The cells of ``got`` that differ from the committed table (NOT_REPEATABLE cells may
    be exact or wrong values)."""
    return {i: (k, cell_key(COMMITTED[i][runtime])) for i, k in got.items()
            if k != cell_key(COMMITTED[i][runtime]) and not (
                (i, runtime) in NOT_REPEATABLE and k[0] in ("exact", "wrong values"))}


# ---------------------------------------------------------------- the committed table

def test_the_committed_table_has_the_ci_runtimes() -> None:
    assert tuple(COLUMNS) == CI_RUNTIMES


def test_the_committed_table_has_every_case_once() -> None:
    assert list(COMMITTED) == [c.id for c in CASES]


# Cells check's table documents as unknown: MNN reads an output_shape listing N and C by its
# first entries, so its window depends on N and C, which check's node attributes do not keep
# (measured window (4, 1) (4, 3) for [1, 3, 8, 10]; the 1-D one is wrong values by its rank).
# MNN's 3-D groups: wrong values with several channels per group in fixtures/runtimes/mnn.json
# (not repeatable there); this table's run measured them exact without a bias.
UNDOCUMENTED = {("2d-oshape-nc", "mnn"), ("3d-group", "mnn"), ("3d-depthwise", "mnn"),
                ("bias-add/3d-group", "mnn")}


@pytest.mark.parametrize("case_id,runtime", sorted(UNDOCUMENTED))
def test_an_undocumented_cell_is_unknown_in_checks_table(case_id: str, runtime: str) -> None:
    assert predict(build_case(BY_ID[case_id]), runtime).outcome == "unknown"


@pytest.mark.parametrize("runtime", CI_RUNTIMES)
def test_the_committed_table_agrees_with_checks_documented_table(runtime: str) -> None:
    wrong = {}
    for case in CASES:
        if (case.id, runtime) in UNDOCUMENTED:
            continue
        predicted = predict(build_case(case), runtime)
        if predicted.key() != cell_key(COMMITTED[case.id][runtime]):
            wrong[case.id] = (COMMITTED[case.id][runtime], predicted.cell(), predicted.reason)
    assert wrong == {}


# Live in the fast tier: every third case (the whole corpus in the slow tier below).
LIVE_SAMPLE = list(CASES)[::3]
# TVM and IREE compile every model (2-5 s each, and a repair's proof compiles it again): CI
# runs them on every 12th one-node case (4 cases) and on a third of the live sample; the
# whole corpus on them is `convt conformance --runtime tvm,iree` (by hand).
COMPILING = ("tvm", "iree")


@pytest.mark.parametrize("runtime", runtime_params(CI_RUNTIMES))
def test_the_committed_table_is_what_the_runtime_computes(runtime: str) -> None:
    if not runtime_installed(runtime):
        pytest.skip(f"runtime {runtime} not installed")
    sample = LIVE_SAMPLE[::3] if runtime in COMPILING else LIVE_SAMPLE
    report = run_conformance([runtime], sample)
    got = {r.case.id: r.measured[runtime].key() for r in report.cases}
    assert _live_agrees(runtime, got) == {}


@pytest.mark.slow
@pytest.mark.parametrize("runtime", runtime_params(CI_RUNTIMES))
def test_the_whole_committed_table_is_what_the_runtime_computes(runtime: str) -> None:
    if not runtime_installed(runtime):
        pytest.skip(f"runtime {runtime} not installed")
    report = run_conformance([runtime])
    got = {r.case.id: r.measured[runtime].key() for r in report.cases}
    assert _live_agrees(runtime, got) == {}


def test_progress_counts_every_run() -> None:
    seen: list[int] = []
    run_conformance(["onnxruntime", "onnx-reference"], select_cases(NODE_CASES[:5]), seen.append)
    assert sum(seen) == 10


# ---------------------------------------------------------------- the CLI

def test_cli_json_has_cases_with_an_outcome_per_runtime(cli) -> None:
    result = cli("conformance", "--runtime", "onnxruntime", "--case", "1d-oshape-nc", "--json")
    data = json.loads(result.output)
    assert data["cases"][0]["runtimes"]["onnxruntime"]["outcome"] == "refused"


def test_cli_json_case_has_the_fields(cli) -> None:
    result = cli("conformance", "--runtime", "onnx-reference", "--case", "2d-depthwise", "--json")
    entry = json.loads(result.output)["cases"][0]
    assert (entry["id"], entry["form"], sorted(entry["runtimes"]["onnx-reference"])) == (
        "2d-depthwise", "node", ["max_abs_error", "outcome", "reason", "window"])


def test_cli_markdown_is_the_committed_format(cli) -> None:
    result = cli("conformance", "--runtime", "onnxruntime,onnx-reference", "--form",
                 "group-split", "--markdown")
    rows = [line for line in result.output.splitlines() if line.startswith("| `group-split/")]
    assert all(line.endswith("| exact | exact |") for line in rows) and rows


def test_cli_unknown_runtime_is_a_one_line_error(cli) -> None:
    assert_one_line_error(cli("conformance", "--runtime", "nope"), "runtime")


def test_cli_subprocess_lists_the_cases() -> None:
    done = run_convt("conformance", "--list")
    assert done.returncode == 0 and done.stdout.split() == [c.id for c in CASES]


# ---------------------------------------------------------------- targets

def test_onnx_reference_needs_the_group_split() -> None:
    assert target_rewrites(["onnx-reference"]) == (GROUP_SPLIT,)


def test_onnxruntime_needs_nothing_beyond_the_portable_form() -> None:
    assert target_rewrites(["onnxruntime", "openvino", "tract", "torch"]) == ()


def test_a_runtime_the_table_does_not_name_needs_nothing() -> None:
    assert (rules_for("some-new-engine").needs_group_split,
            rules_for("some-new-engine").needs_bias_add) == (False, False)


@pytest.mark.parametrize("name", sorted(TABLE))
def test_the_flags_are_booleans_or_ranks_on_every_table_entry(name: str) -> None:
    flags = (TABLE[name].needs_group_split, TABLE[name].needs_bias_add)
    assert all(isinstance(f, bool) or set(f) <= {1, 2, 3} for f in flags)


def test_a_runtime_flagged_needs_bias_add_gets_the_add(monkeypatch) -> None:
    monkeypatch.setattr(type(TABLE["tract"]), "needs_bias_add", True)
    assert target_rewrites(["tract", "onnx-reference"]) == (BIAS_ADD, GROUP_SPLIT)


@pytest.mark.parametrize("case_id", GROUPED)
def test_split_leaves_no_grouped_node(case_id: str) -> None:
    model = build_case(BY_ID[case_id]).model
    split_groups(model)
    groups = [a.i for n in model.graph.node for a in n.attribute if a.name == "group"]
    assert all(g == 1 for g in groups)


@pytest.mark.parametrize("case_id", WITH_BIAS)
def test_bias_as_add_leaves_no_bias_input(case_id: str) -> None:
    model = build_case(BY_ID[case_id]).model
    bias_as_add(model)
    assert all(len(n.input) == 2 for n in model.graph.node if n.op_type == "ConvTranspose")


def _on(runtime: str, model: onnx.ModelProto, x: np.ndarray):
    return run_calls(runtime, [(model.SerializeToString(), {"x": x})])[0]


@pytest.mark.parametrize("case_id", MISREAD_GROUPED)
def test_grouped_on_onnx_reference_is_not_exact_before_the_split(case_id: str) -> None:
    built = build_case(BY_ID[case_id])
    assert judge_output(built, _on("onnx-reference", built.model, built.x)).outcome != "exact"


@pytest.mark.parametrize("case_id", GROUPED)
def test_grouped_on_onnx_reference_is_exact_after_the_split(case_id: str) -> None:
    built = build_case(BY_ID[case_id])
    built.model, _, _ = retarget(built.model, ["onnx-reference"])
    assert judge_output(built, _on("onnx-reference", built.model, built.x)).outcome == "exact"


def test_2d_depthwise_with_bias_is_wrong_values_on_onnx_reference_before_the_split() -> None:
    built = build_case(BY_ID["2d-depthwise"])
    assert judge_output(built, _on("onnx-reference", built.model, built.x)).outcome == \
        "wrong values"


def test_retarget_refuses_a_target_that_is_not_exact() -> None:
    model = build_case(BY_ID["1d-pads-asym"]).model   # asymmetric pads: torch refuses them
    if not runtime_installed("torch"):
        pytest.skip("runtime torch not installed")
    with pytest.raises(TargetsNotExact, match="not exact on torch"):
        retarget(model, ["torch"])


def _repair_for(case_id: str, targets: list[str]):
    case = BY_ID[case_id]
    return repair_model(build_case(case).model, "onnx-spec",
                        {"x": [1, case.c_in, *case.sizes]}, form="portable", targets=targets)


def _repair_params() -> list:
    out = []
    for rt in runtime_params(CI_RUNTIMES, slow_compiled=True):
        name = rt.values[0]
        cases = fast_sample(NODE_CASES[::12], 1) if name in COMPILING else fast_sample(
            NODE_CASES, 4)
        out += [pytest.param(c.values[0], name, marks=(*rt.marks, *c.marks),
                             id=f"{c.values[0]}-{name}") for c in cases]
    return out


# Every one-node form, repaired for every CI runtime: proven exact on each installed one
# (the in-process runtimes in the fast tier on a sample, every case and runtime slow).
@pytest.mark.parametrize("case_id,runtime", _repair_params())
def test_repair_for_a_target_is_exact_on_it(case_id: str, runtime: str) -> None:
    if not runtime_installed(runtime):
        pytest.skip(f"runtime {runtime} not installed")
    _, report = _repair_for(case_id, [runtime])
    assert list(report.targets["proven"]) == [runtime]


def test_repair_target_cli_writes_the_split_model(cli, tmp_path: Path) -> None:
    src, out = tmp_path / "g.onnx", tmp_path / "fixed.onnx"
    onnx.save(build_case(BY_ID["2d-group"]).model, src)
    result = cli("repair", src, "-o", out, "--target", "onnx-reference", "--json")
    report = json.loads(result.output)
    assert (report["intent"], list(report["targets"]["proven"])) == ("onnx-spec",
                                                                       ["onnx-reference"])


def test_repair_target_cli_output_has_a_concat(cli, tmp_path: Path) -> None:
    src, out = tmp_path / "g.onnx", tmp_path / "fixed.onnx"
    onnx.save(build_case(BY_ID["3d-group"]).model, src)
    cli("repair", src, "-o", out, "--target", "onnx-reference")
    assert [n.op_type for n in onnx.load(out).graph.node].count("ConvTranspose") == 2


def test_repair_unknown_target_is_a_one_line_error(cli, tmp_path: Path) -> None:
    src = tmp_path / "g.onnx"
    onnx.save(build_case(BY_ID["2d-group"]).model, src)
    assert_one_line_error(cli("repair", src, "-o", tmp_path / "o.onnx", "--target", "nope"),
                          "target")


def test_export_target_proves_the_split_torch_layer(cli, tmp_path: Path) -> None:
    config = tmp_path / "t.json"
    config.write_text(json.dumps({"in_channels": 4, "out_channels": 6, "kernel_size": 3,
                                  "stride": 2, "padding": 1, "output_padding": 1, "groups": 2,
                                  "bias": True}))
    result = cli("export", config, "--framework", "torch", "-o", tmp_path / "g.onnx",
                 "--input-shape", "1,4,5,5", "--target", "onnx-reference", "--json")
    assert json.loads(result.output)["target"]["proven"].keys() == {"onnx-reference"}


def test_export_target_not_exact_writes_nothing(cli, tmp_path: Path) -> None:
    if not runtime_installed("torch"):
        pytest.skip("runtime torch not installed")
    result = cli("export", "--filters", "2", "--kernel-size", "3", "--strides", "2",
                 "--padding", "same", "--input-shape", "None,5,5,3", "--form", "compact",
                 "-o", tmp_path / "k.onnx", "--target", "torch")
    assert_one_line_error(result, "target")
    assert_nothing_written(tmp_path)


def test_repair_refusal_for_a_target_is_a_repair_refusal(monkeypatch) -> None:
    # A table entry that claims nothing is needed while the runtime misreads groups: the
    # proof on the real runtime catches it.
    monkeypatch.setattr(type(TABLE["onnx-reference"]), "needs_group_split", False)
    with pytest.raises(RepairRefused, match="not exact on onnx-reference"):
        _repair_for("1d-group", ["onnx-reference"])
