"""MNN and ncnn: the adapters, the measured fixture, and check's documented readings.

The fixture (``fixtures/runtimes/{mnn,ncnn}.json``, written by
``fixtures/runtimes/generate.py`` on the real runtimes) is the truth: the
documented table (:mod:`convt_tools.check.readings`) must predict each of its
one-node outcomes (runs without the runtimes). With the runtimes installed
(marker ``runtimes``), a small sample of the corpus is measured live and must
reproduce the fixture, the adapters run, refuse in one line and version
themselves, and MNN's conversion is shown to open no socket and start no
process but its own converter child (an audit hook).
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from onnx import helper

from support import models as M
from support.optional import runtime_or_skip, runtime_params
from convt_tools import check_model
from convt_tools.check.attrs import read_attrs
from convt_tools.check.readings import Reading, documented_reading
from convt_tools.geometry import Window
from convt_tools.runtimes import ADAPTERS, ABORTS_PROCESS, get_runtime
from convt_tools.runtimes.ncnn_adapter import INSTALL

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "fixtures" / "runtimes"
RUNTIMES = ("mnn", "ncnn")


def _fixture(runtime: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{runtime}.json").read_text(encoding="utf-8"))


def _cases(runtime: str, variant: str) -> dict[str, dict[str, Any]]:
    return {c["id"]: c for c in _fixture(runtime)["cases"] if c["variant"] == variant}


def _attrs(case: dict[str, Any]) -> Any:
    node = helper.make_node("ConvTranspose", ["x", "w"], ["y"], **case["attrs"])
    a, _ = read_attrs(node, case["w_shape"], len(case["x_shape"]))
    assert a is not None
    return a


def _measured(case: dict[str, Any]) -> object:
    """The fixture's outcome as a reading key: windows, "refused" or "unexplained"."""
    if case["outcome"] == "refused":
        return "refused"
    if case["outcome"] == "exact":
        return tuple(Window(b, n) for b, n in case["spec_window"])
    if case["window"] is not None:   # "window", or "shape" whose unit dims hide a window
        return tuple(Window(b, n) for b, n in case["window"])
    return "unexplained"


def _documented(runtime: str, case: dict[str, Any]) -> Reading:
    a = _attrs(case)
    return documented_reading(runtime, a, case["x_shape"][2:], case["static_input_dims"],
                              a.output_shape_full)


def _bias_dropped(reading: Reading) -> bool:
    return "bias input is dropped" in reading.note


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_documented_table_predicts_every_measured_node(runtime: str) -> None:
    wrong, judged = [], 0
    adds = _cases(runtime, "bias_add")
    for cid, case in _cases(runtime, "node").items():
        doc = _documented(runtime, case)
        if doc.status == "unknown":
            continue
        judged += 1
        if doc.status == "unexplained":   # a wrong output the table does not model
            if case["outcome"] == "exact":
                wrong.append(f"{cid}: table {doc}, measured exact")
            continue
        # with the bias dropped on some slices, the window shows in the bias-free run (an Add)
        got = _measured(adds[cid]) if case["bias"] and _bias_dropped(doc) else _measured(case)
        if got != doc.key():
            wrong.append(f"{cid}: table {doc}, measured {got}")
    assert not wrong, "\n".join(wrong)
    assert judged >= 50


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_unknown_readings_are_the_few_documented_exceptions(runtime: str) -> None:
    unknown = [cid for cid, c in _cases(runtime, "node").items()
               if _documented(runtime, c).status == "unknown"]
    expect = {"mnn": ["r3_group2", "r3_depthwise"], "ncnn": []}[runtime]
    assert unknown == expect


def test_mnn_3d_bias_input_is_wrong_and_a_separate_add_is_not() -> None:
    nodes, adds = _cases("mnn", "node"), _cases("mnn", "bias_add")
    with_bias = [cid for cid, c in nodes.items()
                 if len(c["x_shape"]) == 5 and c["bias"] and "attrs" in c
                 and "kernel_shape" in c["attrs"] and c["attrs"].get("group", 1) == 1]
    assert len(with_bias) >= 5
    assert [cid for cid in with_bias if nodes[cid]["outcome"] == "exact"] == []
    assert [cid for cid in with_bias if _measured(adds[cid]) == "unexplained"] == []


def test_mnn_1d_output_gets_a_trailing_unit_dim() -> None:
    shapes = {cid: c["shape"] for cid, c in _cases("mnn", "node").items()
              if len(c["x_shape"]) == 3 and c["outcome"] == "shape" and c["window"]}
    assert len(shapes) >= 10
    assert {tuple(s[3:]) for s in shapes.values()} == {(1,)}


def test_ncnn_refusals_are_pnnx_own_todo_line() -> None:
    reasons = {c["reason"] for c in _cases("ncnn", "node").values()
               if c["outcome"] == "refused" and "output_shape" not in c["attrs"]}
    assert reasons == {"pnnx: todo ConvTranspose"}


@pytest.mark.parametrize("runtime,variant", [("ncnn", "portable"), ("mnn", "portable_bias_add"),
                                             ("mnn", "group_split_bias_add")])
def test_target_forms_are_exact(runtime: str, variant: str) -> None:
    cases = _cases(runtime, variant)
    assert cases
    assert {cid: c["outcome"] for cid, c in cases.items() if c["outcome"] != "exact"} == {}


def test_ncnn_portable_group_split_needs_symmetric_pads_too() -> None:
    # the group split keeps the node's pads: ncnn refuses it while they are asymmetric
    assert _cases("ncnn", "group_split")["r2_group2_asym"]["outcome"] == "refused"


@pytest.mark.parametrize("name", RUNTIMES)
def test_registered_everywhere_by_name(name: str) -> None:
    assert name in ADAPTERS and name in ABORTS_PROCESS
    rt = get_runtime(name)
    assert rt.extra == name


def test_ncnn_missing_pnnx_names_the_two_step_install(monkeypatch: pytest.MonkeyPatch) -> None:
    from convt_tools.runtimes import RuntimeUnavailable, ncnn_adapter

    monkeypatch.setattr(ncnn_adapter, "pnnx_binary", lambda: None)
    with pytest.raises(RuntimeUnavailable) as err:
        get_runtime("ncnn").module()
    assert INSTALL in str(err.value)
    if importlib.util.find_spec("ncnn") is not None:   # else ncnn's own import error is named
        assert "the pnnx converter binary is missing" in str(err.value)


# ---- check --runtime ncnn / mnn: CT036 on exactly the forms the table says they cannot run

@pytest.mark.parametrize("attrs,flagged", [
    ({"strides": [2, 2], "pads": [0, 1, 1, 0]}, True),
    ({"strides": [2, 2], "auto_pad": "SAME_UPPER"}, True),
    ({"strides": [2, 2], "auto_pad": "VALID"}, True),
    ({"strides": [2, 2], "pads": [1, 1, 1, 1]}, False),
    ({"strides": [2, 2], "output_shape": [8, 10]}, False),
    ({"strides": [2, 2], "output_shape": [1, 3, 8, 10]}, True),
    ({"strides": [2, 2], "pads": [1, 1, 1, 1], "group": 2}, False),
])
def test_check_runtime_ncnn_flags_what_ncnn_cannot_run(attrs: dict[str, Any],
                                                       flagged: bool) -> None:
    report = check_model(M.convt_model(attrs), runtimes="ncnn", numeric=False)
    codes = [f.code for f in report.nodes[0].findings]
    assert ("CT036" in codes) is flagged


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_ct036_on_exactly_the_measured_forms_it_cannot_run(runtime: str) -> None:
    from convt_tools.check.judged import judged_refusals

    cases = _cases(runtime, "node")
    flagged = {cid for cid, c in cases.items()
               if judged_refusals(_attrs(c), c["x_shape"][2:], [runtime])}
    refused = {cid for cid, c in cases.items() if c["outcome"] == "refused"}
    assert refused <= flagged
    assert {cid for cid in flagged if cases[cid]["outcome"] == "exact"} == set()
    # ncnn: exactly its refusals; MNN: its refusal and the output_shape with N and C
    assert flagged - refused == {"ncnn": set(), "mnn": {"r1_output_shape_nc",
                                                        "r2_output_shape_nc"}}[runtime]


def test_check_without_runtime_adds_no_ct036() -> None:
    report = check_model(M.convt_model({"strides": [2, 2], "pads": [0, 1, 1, 0]}),
                         numeric=False)
    assert "CT036" not in [f.code for f in report.nodes[0].findings]


def test_check_runtime_mnn_flags_a_3d_node_without_kernel_shape() -> None:
    model = M.convt_model({"strides": [2, 2, 2], "pads": [1] * 6}, x_shape=(1, 2, 3, 3, 3),
                          k=(3, 3, 3))
    report = check_model(model, runtimes="mnn", numeric=False)
    assert "CT036" in [f.code for f in report.nodes[0].findings]


# ---- live: the runtimes themselves (skipped only when not installed)

SAMPLE = ("r1_pads_asym", "r2_same_lower_odd", "r2_output_shape_odd", "r2_pads_sym_batch2",
          "r3_nobias")


def _generator() -> Any:
    spec = importlib.util.spec_from_file_location("runtimes_generate", FIXTURES / "generate.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("runtime", runtime_params(list(RUNTIMES)))
def test_live_sample_reproduces_the_fixture(runtime: str) -> None:
    runtime_or_skip(runtime)
    gen = _generator()
    committed = {(c["id"], c["variant"]): c for c in _fixture(runtime)["cases"]}
    cases = [c for c in gen.corpus() if c["id"] in SAMPLE and c["variant"] == "node"]
    assert len(cases) == len(SAMPLE)
    from convt_tools.runtimes import run_isolated

    results = run_isolated(runtime, [(c["model"], {"x": c["x"]}) for c in cases])
    for case, result in zip(cases, results):
        got = gen.outcome(result if isinstance(result, str) else result[0], case)
        want = committed[(case["id"], "node")]
        assert (case["id"], got["outcome"], got["window"], got["reason"]) == \
            (case["id"], want["outcome"], want["window"], want["reason"])


@pytest.mark.parametrize("runtime", runtime_params(list(RUNTIMES)))
def test_adapter_runs_a_batch_and_versions_itself(runtime: str) -> None:
    rt = runtime_or_skip(runtime)
    model = M.convt_model({"strides": [2, 2], "pads": [1, 1, 1, 1], "kernel_shape": [3, 3]},
                          x_shape=("N", 2, 4, 5))
    x = np.random.default_rng(3).standard_normal((2, 2, 4, 5)).astype(np.float32)
    from convt_tools.runtimes import get_runtime as _get

    ref = _get("onnxruntime").run(model, {"x": x})[0]
    y = rt.run(model, {"x": x})[0]
    assert y.shape == ref.shape
    assert np.max(np.abs(y - ref)) <= 1e-4 * (1 + np.max(np.abs(ref)))
    assert rt.version().startswith(f"{runtime} ")


@pytest.mark.runtimes
def test_mnn_threads_go_through_a_runtime_manager(monkeypatch: pytest.MonkeyPatch,
                                                  capfd: pytest.CaptureFixture[str]) -> None:
    """MNN 3.6.1 ignores load_module_from_file's thread_num (measured: both cores ran at
    thread_num=1); a runtime manager with numThread holds it. Its banner stays off stdout."""
    rt = get_runtime("mnn", threads=1)
    runtime_or_skip("mnn")
    module = rt.module()
    seen: dict[str, Any] = {}
    original = module.nn.load_module_from_file

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.update(kwargs)
        return original(*args, **kwargs)

    monkeypatch.setattr(module.nn, "load_module_from_file", spy)
    model = M.convt_model({"strides": [2, 2], "pads": [1, 1, 1, 1], "kernel_shape": [3, 3]},
                          x_shape=(1, 2, 4, 5))
    capfd.readouterr()
    y = rt.run(model, {"x": np.ones((1, 2, 4, 5), np.float32)})[0]
    assert y.shape == (1, 3, 7, 9)
    assert seen.get("runtime_manager") is not None
    assert capfd.readouterr().out == ""


REFUSED = {  # runtime -> (attrs, x shape, kernel, the tool's own line)
    "ncnn": ({"strides": [2, 2], "pads": [0, 1, 1, 0], "kernel_shape": [3, 3]}, (1, 2, 4, 5),
             (3, 3), "pnnx: todo ConvTranspose"),
    "mnn": ({"strides": [2, 2, 2], "pads": [1] * 6}, (1, 2, 3, 3, 3), (3, 3, 3),
            "output 0 has shape [1, 3, 5, 5, 0]; MNN: call to readMap meet a error"),
}


@pytest.mark.parametrize("runtime", runtime_params(list(RUNTIMES)))
def test_adapter_refusal_is_one_line_of_the_tool(runtime: str) -> None:
    from convt_tools.runtimes import RuntimeRefused

    rt = runtime_or_skip(runtime)
    attrs, shape, k, line = REFUSED[runtime]
    with pytest.raises(RuntimeRefused) as err:
        rt.run(M.convt_model(attrs, x_shape=shape, k=k), {"x": np.zeros(shape, np.float32)})
    assert err.value.detail == line
    assert "\n" not in err.value.reason


UNKNOWN_OP = {  # runtime -> (stage, the refusal): the converter's own line about the op
    "mnn": ("conversion", "These Op Not Support: ONNX::NoSuchOp"),
    # pnnx 20261020 prints the op it cannot read, then segfaults
    "ncnn": ("conversion", "pnnx crashed (SIGSEGV); canonicalize ...                  "
                           "unexpected op_type NoSuchOp"),
}


@pytest.mark.parametrize("runtime", runtime_params(list(RUNTIMES)))
def test_an_unknown_op_is_refused_by_the_converter_in_one_line(runtime: str) -> None:
    from convt_tools.runtimes import RuntimeRefused

    rt = runtime_or_skip(runtime)
    with pytest.raises(RuntimeRefused) as err:
        rt.run(M.unknown_op_model(), {"x": np.ones((1, 2), np.float32)})
    assert (err.value.stage, err.value.detail) == UNKNOWN_OP[runtime]


@pytest.mark.runtimes
def test_mnn_conversion_opens_no_socket_and_installs_nothing(tmp_path: Path) -> None:
    runtime_or_skip("mnn")
    model = M.save(M.convt_model({"strides": [2, 2], "pads": [1, 1, 1, 1]}), tmp_path / "m.onnx")
    # 1. the conversion child's own work, under an audit hook: no socket, no process, no
    #    import of MNN's logging module (which pip-installs and phones home)
    child = textwrap.dedent(f"""
        import sys
        seen = []
        watched = {{"socket.connect", "socket.getaddrinfo", "subprocess.Popen", "os.system",
                   "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "urllib.Request"}}
        def hook(event, args):
            if event in watched:
                seen.append(event)
        sys.addaudithook(hook)
        from convt_tools.runtimes.mnn_adapter import _convert_child
        status = _convert_child([{str(model)!r}, {str(tmp_path / 'm.mnn')!r}])
        logging = [m for m in sys.modules if m.startswith(("MNN.tools", "aliyun"))]
        print("RESULT", status, seen, logging)
    """)
    out = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("RESULT"))
    assert line == "RESULT 0 [] []"
    assert (tmp_path / "m.mnn").stat().st_size > 0
    # 2. the adapter end to end, under the hook: one child, the converter core's, and no socket
    parent = textwrap.dedent(f"""
        import sys
        import numpy as np
        seen = []
        def hook(event, args):
            if event in ("socket.connect", "socket.getaddrinfo", "os.system", "urllib.Request"):
                seen.append(event)
            if event == "subprocess.Popen":
                seen.append(" ".join(str(a) for a in args[1][1:3]))
        sys.addaudithook(hook)
        from convt_tools.runtimes import get_runtime
        y = get_runtime("mnn").run({str(model)!r}, {{"x": np.zeros((1, 2, 4, 5), np.float32)}})
        print("RESULT", list(y[0].shape), seen)
    """)
    out = subprocess.run([sys.executable, "-c", parent], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("RESULT"))
    assert line == "RESULT [1, 3, 7, 9] ['-m convt_tools.runtimes.mnn_adapter']"
