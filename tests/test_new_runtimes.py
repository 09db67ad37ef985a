"""OpenCV dnn, TVM and IREE (issue 19): adapters, their refusals, and check's readings of them.

Claims, each against something independent of the code under test:

* the documented table (``convt_tools.check.readings``) predicts every
  measured outcome committed in ``fixtures/runtimes/<runtime>.json`` (the
  runtime's own output on each corpus form, classified against the ONNX spec
  computed in NumPy by ``tests/support/runtime_corpus.py``): exact, refused,
  or which other window. Runs without the runtimes;
* live, where a runtime is installed: a sample of the corpus re-measured now
  gives the committed outcome, and ``check`` measuring the runtime reports no
  difference from its table (marker ``runtimes``);
* each adapter runs real-Keras golden cases (``fixtures/cases*``: Keras's own
  output) from the default (portable) export exactly (tolerance as the
  conformance suite: ``support.tolerance``), refuses with the tool's own
  first line, reports the installed distribution's version;
* the child-process runner (``runtimes._tool``, shared by the TVM, IREE, MNN and ncnn
  adapters) turns a crash, a timeout and an error into one-line refusals (a real child
  process each).
"""

from __future__ import annotations

import json
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from support.cli import invoke
from support.models import unknown_op_model
from support.oracles import keras_conv_transpose
from support.optional import runtime_or_skip, runtime_params
from support.runtime_corpus import (case_input, classify, load_corpus, meaning_node, measured,
                                    same_outcome)
from support.tolerance import assert_close

from convt_tools.check import check_model
from convt_tools.check.attrs import read_attrs
from convt_tools.check.readings import TABLE, documented_reading
from convt_tools.check.runners import RUNNABLE
from convt_tools.check.windows import intent_windows
from convt_tools.runtimes import ABORTS_PROCESS, ADAPTERS, RuntimeRefused, get_runtime
from convt_tools.runtimes._tool import ChildServer, ended, error_line, run_tool

NEW = ("opencv", "tvm", "iree")
DISTRIBUTIONS = {"opencv": "opencv-python-headless", "tvm": "apache-tvm",
                 "iree": "iree-base-runtime"}
ROOT = Path(__file__).resolve().parent.parent
CASES = {c["id"]: c for c in load_corpus()}
NODE_IDS = [cid for cid, c in CASES.items() if c["form"] == "node"]
DERIVED_IDS = [cid for cid, c in CASES.items() if c["form"] != "node"]
# Live samples: a window the runtime gets wrong, a refusal, exact forms, one per rank.
LIVE_SAMPLE = ("r2_output_shape_op_even", "r2_pads_asym", "r1_same_lower_odd",
               "r3_depthwise_m1", "r3_depthwise_m1__group_split")
# Real-Keras golden cases run on the compiling runtimes: 1-D, 2-D (odd crop), 3-D.
KERAS_SAMPLE = ("cases_1d/cf_same_k2_s2_d1_op0_cf_in2x2x3_f3_none_b1",
                "cases/batch_same_k3_s2_d1_opN_cl_in3x3x4x4_f4_none_b1",
                "cases_3d/cf_same_k2_s2_d1_op0_cf_in1x2x2x3x3_f3_none_b1",
                "cases/cf_valid_k3x2_s2x3_d1_op1x2_cf_in2x2x4x3_f3_none_b1")


def _expected_from_table(runtime: str, case: dict[str, Any]) -> tuple[str, Any]:
    """What the table predicts for ``case`` on ``runtime``: ``(outcome, window)``.

    A derived form is predicted from its ConvTranspose nodes: refused if the table
    refuses one, exact if each computes its own spec window.
    """
    model = onnx.load(str(ROOT / "fixtures" / "runtimes" / "models" / case["model"]))
    sizes = case["x_shape"][2:]
    if case["form"] == "node":
        attrs, _, _ = meaning_node(case)
        reading = documented_reading(runtime, attrs, sizes, case["static"],
                                     case["full_output_shape"])
        spec = intent_windows(attrs, sizes, "onnx-spec")
        if reading.status != "window":
            return reading.status, None
        assert reading.windows is not None
        if reading.windows == spec:
            return "exact", [[w.begin, w.length] for w in spec]
        return "window", [[w.begin, w.length] for w in reading.windows]
    inits = {t.name: t.dims for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type != "ConvTranspose":
            continue
        attrs, _ = read_attrs(node, list(inits[node.input[1]]), len(case["x_shape"]))
        assert attrs is not None
        reading = documented_reading(runtime, attrs, sizes, case["static"])
        if reading.status != "window":
            return reading.status, None
        if reading.windows != intent_windows(attrs, sizes, "onnx-spec"):
            return "window", None
    attrs, _, _ = meaning_node(case)
    return "exact", [[w.begin, w.length] for w in intent_windows(attrs, sizes, "onnx-spec")]


# ---- registry --------------------------------------------------------------------------------

@pytest.mark.parametrize("name", NEW)
def test_registered_everywhere_by_name(name):
    assert name in ADAPTERS
    assert get_runtime(name).extra == name
    assert name in ABORTS_PROCESS     # check measures them in a child process
    assert name in RUNNABLE
    assert name in TABLE


def test_convt_runtimes_lists_them_with_their_extra():
    res = invoke("runtimes", "--json")
    assert res.exit_code == 0, res.output
    rows = {r["name"]: r for r in json.loads(res.stdout)["engines"]}
    for name in NEW:
        assert rows[name]["install"] == f'pip install -e ".[{name}]"'


# ---- the documented table against the committed measurements ----------------------------------

@pytest.mark.parametrize("runtime", NEW)
def test_fixture_measures_every_corpus_case(runtime):
    data = measured(runtime)
    assert data["runtime"] == runtime
    assert set(data["outcomes"]) == set(CASES)


@pytest.mark.parametrize("case_id", NODE_IDS)
@pytest.mark.parametrize("runtime", NEW)
def test_table_predicts_the_measured_node_outcome(runtime, case_id):
    got = measured(runtime)["outcomes"][case_id]
    outcome, window = _expected_from_table(runtime, CASES[case_id])
    assert (outcome, window if outcome != "refused" else None) == (
        got["outcome"], got["window"] if got["outcome"] != "refused" else None)


@pytest.mark.parametrize("case_id", DERIVED_IDS)
@pytest.mark.parametrize("runtime", NEW)
def test_table_predicts_the_measured_derived_form(runtime, case_id):
    got = measured(runtime)["outcomes"][case_id]
    outcome, _ = _expected_from_table(runtime, CASES[case_id])
    assert outcome == got["outcome"]


@pytest.mark.parametrize("runtime", NEW)
def test_group_split_portable_form_is_exact_on_each(runtime):
    """The target form (portable pads + group split + bias as Add) is exact on every
    runtime measured, including where the one-node form is not."""
    outcomes = measured(runtime)["outcomes"]
    split = [cid for cid in DERIVED_IDS if CASES[cid]["form"] in ("group_split", "bias_add")]
    assert split
    assert {outcomes[cid]["outcome"] for cid in split} == {"exact"}


# ---- live: the installed runtime, re-measured ---------------------------------------------------

@pytest.mark.parametrize("case_id", LIVE_SAMPLE)
@pytest.mark.parametrize("runtime", runtime_params(list(NEW)))
def test_live_outcome_equals_the_committed_one(runtime, case_id):
    adapter = runtime_or_skip(runtime)
    case = CASES[case_id]
    model = (ROOT / "fixtures" / "runtimes" / "models" / case["model"]).read_bytes()
    try:
        y: np.ndarray | str = adapter.load(model).run({"x": case_input(case)})[0]
    except RuntimeRefused as exc:
        y = exc.detail
    got = classify(case, y)
    assert same_outcome(got, measured(runtime)["outcomes"][case_id]), got


@pytest.mark.parametrize("runtime", runtime_params(list(NEW)))
def test_check_measuring_the_runtime_agrees_with_its_table(runtime, monkeypatch):
    runtime_or_skip(runtime)
    monkeypatch.setenv("CONVT_RUNTIMES_OFF", ",".join(
        r for r in ("openvino", "tract", *NEW) if r != runtime))
    case = CASES["r2_output_shape_op_even"]
    path = ROOT / "fixtures" / "runtimes" / "models" / case["model"]
    report = check_model(str(path), runtimes=runtime).to_dict()
    entries = {e["runtime"]: e for e in report["nodes"][0]["readings"]["runtimes"]}
    assert entries[runtime]["source"].startswith(f"measured {runtime} ")
    assert entries[runtime]["note"] == ""


# ---- adapters on real-Keras output ----------------------------------------------------------

def _keras_case(rel: str) -> tuple[Any, dict[str, np.ndarray], dict[str, Any]]:
    from convt_tools.spec import parse_config

    path = ROOT / "fixtures" / f"{rel}.json"
    meta = json.loads(path.read_text())
    with np.load(path.with_suffix(".npz"), allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    return parse_config(meta["config"]), arrays, meta


@pytest.mark.parametrize("rel", KERAS_SAMPLE)
@pytest.mark.parametrize("symbolic", [False, True], ids=["fixed", "symbolic"])
@pytest.mark.parametrize("runtime", runtime_params(list(NEW)))
def test_portable_export_of_keras_layers_is_exact(runtime, symbolic, rel):
    from convt_tools.exporter import export_spec

    adapter = runtime_or_skip(runtime)
    spec, arrays, meta = _keras_case(rel)
    shape = tuple(meta["input_shape"])
    ch = spec.channels_axis
    in_shape = tuple(d if i == ch else None for i, d in enumerate(shape)) if symbolic else shape
    model = export_spec(spec, arrays["kernel"], arrays.get("bias"), input_shape=in_shape)
    got = adapter.load(model).run({"input": arrays["input"].astype(np.float32)})[0]
    assert_close(np.asarray(got), arrays["output"], runtime, meta)


@pytest.mark.parametrize("runtime", runtime_params(list(NEW)))
def test_version_is_the_installed_distribution(runtime):
    adapter = runtime_or_skip(runtime)
    assert adapter.version() == f"{runtime} {adapter.engine_version()}"
    # opencv-python-headless 5.1.0.95 is OpenCV 5.1.0 (its fourth field is the wheel build)
    assert version(DISTRIBUTIONS[runtime]).startswith(adapter.engine_version())


def _asymmetric_model() -> onnx.ModelProto:
    model = onnx.load(str(ROOT / "fixtures" / "runtimes" / "models" / "r2_pads_asym.onnx"))
    return model


@pytest.mark.runtimes
def test_iree_refusal_is_the_compilers_first_error_line():
    adapter = runtime_or_skip("iree")
    with pytest.raises(RuntimeRefused) as err:
        adapter.load(_asymmetric_model())
    assert err.value.stage == "compile"
    assert err.value.detail.startswith("failed to legalize operation 'torch.operator'")
    assert "/tmp" not in err.value.reason


@pytest.mark.parametrize("runtime", runtime_params(list(NEW)))
def test_an_unknown_op_is_refused_in_one_line_naming_it(runtime):
    adapter = runtime_or_skip(runtime)
    with pytest.raises(RuntimeRefused) as err:
        adapter.load(unknown_op_model()).run({"x": np.ones((1, 2), np.float32)})
    assert "NoSuchOp" in err.value.reason
    assert "\n" not in err.value.reason


@pytest.mark.runtimes
def test_tvm_compile_child_restarts_after_it_dies():
    from convt_tools.runtimes.tvm_adapter import COMPILER

    adapter = runtime_or_skip("tvm")
    case = CASES["r1_pads_sym"]
    model = (ROOT / "fixtures" / "runtimes" / "models" / case["model"]).read_bytes()
    first = adapter.load(model).run({"x": case_input(case)})[0]
    assert COMPILER._proc is not None
    COMPILER._proc.kill()
    COMPILER._proc.wait()   # dead before the next model: that one starts a fresh child
    again = adapter.load(model).run({"x": case_input(case)})[0]
    np.testing.assert_array_equal(first, again)


@pytest.mark.runtimes
def test_ncnn_run_child_crash_is_a_refusal_and_the_next_run_gets_a_fresh_child():
    """pnnx 20261020 turns a GLU's sizeless Split into an ncnn Slice that segfaults: the
    run child dies, the run is refused naming the signal, and a later run of a model that
    works starts a new child (the crash never reaches this process)."""
    from convt_tools.exporter import export_spec
    from convt_tools.spec import make_spec

    adapter = runtime_or_skip("ncnn")
    rng = np.random.default_rng(3)

    def model(activation):
        spec = make_spec(filters=4, rank=2, kernel_size=3, strides=2, padding="same",
                         activation=activation)
        kernel = rng.standard_normal(spec.kernel_shape(3)).astype(np.float32)
        return spec, kernel, export_spec(spec, kernel, np.zeros(4, np.float32),
                                         input_shape=(1, 4, 4, 3))

    x = rng.standard_normal((2, 4, 4, 3)).astype(np.float32)
    _, _, glu = model("glu")
    crashing = adapter.load(glu)
    with pytest.raises(RuntimeRefused) as err:
        crashing.run({"input": x})
    assert (err.value.stage, err.value.detail) == ("run", "ncnn crashed (SIGSEGV)")
    spec, kernel, relu = model("relu")
    working = adapter.load(relu)
    pids = set()
    for _ in range(2):                       # the second run reuses the same child
        got = working.run({"input": x})[0]
        np.testing.assert_allclose(got, keras_conv_transpose(spec, x, kernel, np.zeros(4)),
                                   rtol=1e-4, atol=1e-4)
        pids |= {server._proc.pid for server in working._servers.values()}
    assert len(pids) == 1
    with pytest.raises(RuntimeRefused):      # the crashing model still crashes, not hangs
        crashing.run({"input": x})


# ---- the child-process runner ----------------------------------------------------------------

def test_tool_error_is_its_first_error_line_without_the_temporary_path():
    code = ("import sys; print('warming up', file=sys.stderr); "
            "print('/tmp/x/model.mlir:6:10: error: failed to legalize op', file=sys.stderr); "
            "print('second error: ignored', file=sys.stderr); sys.exit(1)")
    with pytest.raises(RuntimeRefused) as err:
        run_tool("iree", "compile", [sys.executable, "-c", code])
    assert err.value.detail == "failed to legalize op"


def test_tool_traceback_gives_the_exception_line():
    code = "raise ValueError('Field shape is required')"
    with pytest.raises(RuntimeRefused) as err:
        run_tool("iree", "import", [sys.executable, "-c", code])
    assert err.value.detail == "ValueError: Field shape is required"


def test_tool_crash_is_a_refusal_naming_the_signal():
    code = "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"
    with pytest.raises(RuntimeRefused) as err:
        run_tool("tvm", "compile", [sys.executable, "-c", code])
    assert err.value.detail.endswith("crashed (SIGSEGV)")


def test_tool_timeout_is_a_refusal():
    with pytest.raises(RuntimeRefused) as err:
        run_tool("iree", "compile", [sys.executable, "-c", "import time; time.sleep(30)"],
                 timeout_s=0.5)
    assert "timed out after 0.5 s" in err.value.detail


def test_tool_crash_names_the_error_it_printed_first():
    # pnnx 20261020 prints the op it cannot read, then segfaults
    code = ("import os, signal, sys; print('canonicalize ... unexpected op_type NoSuchOp', "
            "file=sys.stderr, flush=True); os.kill(os.getpid(), signal.SIGSEGV)")
    with pytest.raises(RuntimeRefused) as err:
        run_tool("ncnn", "conversion", [sys.executable, "-c", code], tool="pnnx",
                 markers=("expect",))
    assert err.value.detail == "pnnx crashed (SIGSEGV); canonicalize ... unexpected op_type NoSuchOp"


# A child that prints lines of its own before its answer, in one write (TVM's frontend
# printing while it compiles did this: the answer waited in a read buffer until timeout).
_CHATTY = ("import sys\n"
           "for line in sys.stdin:\n"
           "    sys.stdout.write('noise 1\\nnoise 2\\nre: ' + line.strip() + '\\nafter\\n')\n"
           "    sys.stdout.flush()\n")


def test_a_child_answer_after_its_own_lines_is_read_at_once():
    server = ChildServer("tvm", "compile", [sys.executable, "-c", _CHATTY], tool="T",
                         reply="re: ")
    try:
        assert [server.request(f"m{i}", timeout_s=20) for i in range(3)] == ["m0", "m1", "m2"]
    finally:
        server.stop()


def test_a_child_answer_split_over_writes_is_joined() -> None:
    code = ("import sys, time\n"
            "for line in sys.stdin:\n"
            "    sys.stdout.write('re: ab'); sys.stdout.flush(); time.sleep(0.2)\n"
            "    sys.stdout.write('c\\n'); sys.stdout.flush()\n")
    server = ChildServer("tvm", "compile", [sys.executable, "-c", code], tool="T", reply="re: ")
    try:
        assert server.request("x", timeout_s=20) == "abc"
    finally:
        server.stop()


def test_a_silent_child_times_out_as_a_refusal() -> None:
    code = "import sys, time\nfor line in sys.stdin:\n    time.sleep(30)\n"
    server = ChildServer("tvm", "compile", [sys.executable, "-c", code], tool="T", reply="re: ")
    with pytest.raises(RuntimeRefused) as err:
        server.request("x", timeout_s=0.5)
    assert "T timed out after 0.5 s" == err.value.detail


def test_tool_without_an_error_line_says_what_failed():
    code = "import sys; print('Start to Convert'); sys.exit(1)"
    with pytest.raises(RuntimeRefused) as err:
        run_tool("mnn", "conversion", [sys.executable, "-c", code], first_line=False,
                 failure="the converter wrote no model")
    assert err.value.detail == "the converter wrote no model (exit 1)"


def test_tool_exit_status_without_output_is_named():
    with pytest.raises(RuntimeRefused) as err:
        run_tool("ncnn", "run", [sys.executable, "-c", "import sys; sys.exit(3)"], tool="ncnn")
    assert err.value.detail == "ncnn exited with status 3"


def test_tool_error_line_loses_the_log_time_stamp():
    code = "print('[13:31:55] :220: These Op Not Support: ONNX::NoSuchOp'); raise SystemExit(1)"
    with pytest.raises(RuntimeRefused) as err:
        run_tool("mnn", "conversion", [sys.executable, "-c", code],
                 markers=("not support",), first_line=False)
    assert err.value.detail == "These Op Not Support: ONNX::NoSuchOp"


def test_tool_success_returns_its_output_run_in_cwd(tmp_path):
    code = "import os, sys; print(os.getcwd()); print('todo ConvTranspose', file=sys.stderr)"
    out = run_tool("ncnn", "conversion", [sys.executable, "-c", code], cwd=str(tmp_path))
    assert out.splitlines() == [str(tmp_path), "todo ConvTranspose"]


@pytest.mark.parametrize("code, tool, text", [
    (-11, "TVM", "TVM crashed (SIGSEGV)"), (-200, "TVM", "TVM crashed (signal 200)"),
    (2, "pnnx", "pnnx exited with status 2"),
])
def test_ended(code, tool, text):
    assert ended(tool, code) == text


@pytest.mark.parametrize("text, markers, line", [
    ("[INFO] start\n[ERROR] Check failed\n", ("[error]",), "[ERROR] Check failed"),
    ("pnnxparam = a\ntodo ConvTranspose\n", ("todo ",), "todo ConvTranspose"),
    ("pnnxparam = a\n", ("todo ",), ""),
])
def test_error_line_with_markers_only(text, markers, line):
    assert error_line(text, markers, first_line=False) == line


@pytest.mark.parametrize("text, line", [
    ("", ""),
    ("note: a\nplain first line\n", "note: a"),
    ("x\nERROR: boom\n", "ERROR: boom"),
    ("Traceback (most recent call last):\n  File \"e.py\", line 1\n    f()\n"
     "KeyError: 'k'\n", "KeyError: 'k'"),
])
def test_error_line(text, line):
    assert error_line(text) == line


@pytest.mark.parametrize("runtime", runtime_params(list(NEW)))
def test_one_thread_computes_the_same(runtime):
    """``threads=1`` (what a ``validate --jobs`` worker passes) is accepted and exact."""
    runtime_or_skip(runtime)
    case = CASES["r1_pads_sym"]
    model = (ROOT / "fixtures" / "runtimes" / "models" / case["model"]).read_bytes()
    y = get_runtime(runtime, threads=1).load(model).run({"x": case_input(case)})[0]
    assert classify(case, y)["outcome"] == "exact"
