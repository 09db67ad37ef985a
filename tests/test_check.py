"""``check_model``: legality rules, runtime-dependent forms, portability notes, numerics, untrusted input."""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from support import models as M
from support import oracles
from convt_tools import ConvtError, check_model
from convt_tools.check import (
    Window, apply_window, full_output, intent_windows, load_model, read_attrs,
)

DCGAN = Path(__file__).parent / "data" / "dcgan_generator.onnx"


# Keep these tests fast: OpenVINO/tract (child processes) are measured in test_readings.py.
pytestmark = pytest.mark.usefixtures("runtimes_off")


def codes(report, severity=None):
    return {f.code for n in report.nodes for f in n.findings
            if severity is None or f.severity == severity}


@pytest.mark.parametrize("form", sorted(M.RISKY))
def test_each_risky_form_is_an_error(form: str) -> None:
    report = check_model(M.risky(form))
    assert len(report.nodes) == 1
    expected = M.RISKY_CODES[form]
    found = {f.code: f.severity for f in report.nodes[0].findings}
    assert found.get(expected) == "error", report.to_text()
    assert report.failed("error")
    assert not report.failed("never")


def test_clean_model_passes_and_numeric_check_matches_spec() -> None:
    report = check_model(M.clean_model())
    assert codes(report, "error") == set()
    assert codes(report, "warning") == set()
    (finding,) = report.nodes[0].findings
    assert finding.code == "CT030"
    assert "= the spec formula" in finding.message
    assert not report.failed("error")
    assert not report.failed("warning")
    assert report.failed("info")


def test_real_torch_dcgan_export_is_clean() -> None:
    report = check_model(str(DCGAN))
    assert len(report.nodes) == 4
    assert not report.failed("warning"), report.to_text()
    for node in report.nodes:
        assert [f.code for f in node.findings] == ["CT030"]
        assert node.numeric["matches"] == ["onnx-spec"]


@pytest.mark.parametrize("attrs,kw,code", [
    ({"strides": [2, 2], "kernel_shape": [2, 2]}, {}, "CT003"),
    ({"strides": [2, 2], "group": 3}, {}, "CT004"),
    ({"strides": [2]}, {}, "CT006"),
    ({"strides": [2, 2], "auto_pad": "SAME"}, {}, "CT006"),
    ({"strides": [2, 2], "auto_pad": "VALID", "pads": [0, 0, 0, 0]}, {}, "CT005"),
    ({"strides": [1, 1], "dilations": [2, 2], "output_padding": [1, 1]}, {}, "CT008"),
])
def test_legality_rules(attrs, kw, code) -> None:
    report = check_model(M.convt_model(attrs, **kw))
    assert code in codes(report, "error"), report.to_text()


@pytest.mark.parametrize("attrs,kw,code", [
    ({"strides": [2, 2], "pads": [0, 0, 1, 1]}, {}, "CT020"),
    ({"strides": [2, 2], "pads": [1, 1, 1, 1]}, {"group": 2, "c_out": 4}, "CT021"),
    ({"strides": [2, 2], "pads": [1, 1, 1, 1]}, {"dtype": np.float64}, "CT022"),
])
def test_portability_warnings(attrs, kw, code) -> None:
    report = check_model(M.convt_model(attrs, **kw))
    assert code in codes(report, "warning"), report.to_text()
    assert not report.failed("error")
    assert report.failed("warning")


def test_even_output_shape_agrees_only_on_runtimes_that_split_evenly() -> None:
    # T = 2 at input 4x5: onnxruntime (any version) and TensorRT split it evenly, tract puts
    # the whole crop at the end (measured 0.23.9), onnx2torch ignores output_shape.
    model = M.convt_model({"strides": [2, 2], "output_shape": [7, 9]})
    evenly = check_model(model, runtimes="onnxruntime,onnxruntime<1.14,tensorrt")
    assert "CT015" in codes(evenly, "warning") and not evenly.failed("error"), evenly.to_text()
    everyone = check_model(model)
    assert "CT013" in codes(everyone, "error")


def test_output_shape_needs_input_sizes() -> None:
    model = M.convt_model({"strides": [2, 2], "output_shape": [8, 10]}, x_shape=(1, 2, "h", "w"))
    report = check_model(model)
    # at every input size some runtimes differ (onnxruntime vs OpenVINO with symbolic dims...)
    assert {"CT013", "CT031"} <= codes(report) and "CT014" not in codes(report)
    ort_only = check_model(model, runtimes=["onnxruntime", "tensorrt"])
    (ct013,) = [f for f in ort_only.nodes[0].findings if f.code == "CT013"]
    # they differ wherever TensorRT's reading is documented (T >= 0); below it is unknown
    assert "lengths 4..10, every length >= 11: onnxruntime | tensorrt" in ct013.message
    assert "no documented reading for tensorrt" in ct013.message
    given = check_model(model, {"x": (1, 2, 4, 5)})
    assert "CT013" in codes(given, "error")
    assert "CT014" not in codes(given)
    bare = check_model(model, {"": (1, 2, 4, 5)})
    assert "CT013" in codes(bare)
    with pytest.raises(ConvtError, match="inputs are"):
        check_model(model, {"nope": (1, 2, 4, 5)})
    with pytest.raises(ConvtError, match="fixes"):
        check_model(model, {"x": (1, 3, 4, 5)})


def test_numeric_check_names_the_side_onnxruntime_crops() -> None:
    report = check_model(M.risky("output_shape_odd"))
    msg = [f.message for f in report.nodes[0].findings if f.code == "CT030"][0]
    assert "odd extra at the START" in msg
    assert "TensorFlow/Keras" in msg.split("differs from")[1]
    assert report.nodes[0].numeric["matches"] == ["onnx-spec"]
    same = check_model(M.risky("same_upper_k_lt_s")).nodes[0]
    assert same.numeric["matches"] == []
    assert same.numeric["output_shape"] == [1, 3, 7, 9]


def test_symbolic_same_is_probed_at_a_stand_in_size() -> None:
    report = check_model(M.risky("same_lower", x_shape=(1, 2, "h", "w")))
    node = report.nodes[0]
    assert node.numeric["stand_in"] is True
    assert node.numeric["matches"] == ["onnx-spec"]


def test_subgraph_nodes_are_checked() -> None:
    report = check_model(M.if_model({"strides": [2, 2], "auto_pad": "SAME_LOWER"}))
    by_graph = {n.graph: n for n in report.nodes}
    assert set(by_graph) == {"main/if0.then_branch", "main/if0.else_branch"}
    assert "CT010" in {f.code for f in by_graph["main/if0.then_branch"].findings}
    assert not by_graph["main/if0.else_branch"].fails("warning")


def test_json_and_junit_reports_parse() -> None:
    report = check_model(M.if_model({"strides": [2, 2], "auto_pad": "SAME_UPPER"}))
    data = json.loads(json.dumps(report.to_dict()))
    assert data["failed"] is True
    assert len(data["nodes"]) == 2
    assert data["counts"]["error"] >= 1
    suite = ET.fromstring(report.junit_xml("error"))
    cases = suite.findall("testcase")
    assert len(cases) == 2
    assert suite.get("failures") == "1"
    assert sum(1 for c in cases if c.find("failure") is not None) == 1



def test_junit_xml_survives_control_characters_in_names() -> None:
    model = M.convt_model({"strides": [2, 2], "auto_pad": "SAME_UPPER"},
                          name='<n>&"\x01\x1b]]>')
    model.graph.name = "g\x02\x0c"
    report = check_model(model, name="m\x07.onnx")
    suite = ET.fromstring(report.junit_xml("error"))  # raised ParseError before
    case = suite.find("testcase")
    assert case.get("name").startswith('<n>&"??]]>')
    assert case.find("failure") is not None


@pytest.mark.parametrize("dims,dim", [((1, 2, -4, 5), "dim 2 is -4"), ((1, 0, 4, 5), "dim 1 is 0"),
                                      ((0, 2, 4, 5), "dim 0 is 0"), ((1, 2, 4, -2), "dim 3 is -2")])
def test_input_shape_dims_must_be_positive_or_unknown(dims, dim) -> None:
    model = M.convt_model({"strides": [2, 2], "output_shape": [8, 10]}, x_shape=("n", 2, "h", "w"))
    with pytest.raises(ConvtError, match=f"input_shape: .* for input 'x'; {dim}") as err:
        check_model(model, {"x": dims})
    assert err.value.field == "input_shape"
    with pytest.raises(ConvtError, match=f"for input 'x'; {dim}"):
        check_model(model, {"": dims})  # the bare form names the graph input too
    for unknown in (-1, None, "?"):
        got = check_model(model, {"x": (unknown, 2, 4, 5)}, numeric=False)
        assert got.nodes[0].input_shape == (None, 2, 4, 5)


def test_input_shapes_argument_type() -> None:
    model = M.convt_model({"strides": [2, 2], "output_shape": [8, 10]}, x_shape=("n", 2, "h", "w"))
    with pytest.raises(ConvtError, match="input_shape: got 'x=1,2,4,5' .*expected a mapping"):
        check_model(model, "x=1,2,4,5")
    with pytest.raises(ConvtError, match="input_shape: .*not an integer"):
        check_model(model, {"x": (1, 2, 4.0, 5)})
    as_cli = check_model(model, ["x=1,2,4,5"], numeric=False)
    assert as_cli.nodes[0].input_shape == (1, 2, 4, 5)
    assert check_model(model, {"x": "1,2,4,5"}, numeric=False).nodes[0].input_shape == (1, 2, 4, 5)


# ---- the window algebra against independent oracles ------------------------

@pytest.mark.parametrize("attrs,k", [
    ({"strides": [2, 2], "auto_pad": "SAME_UPPER"}, (3, 3)),
    ({"strides": [2, 2], "auto_pad": "SAME_LOWER"}, (3, 3)),
    ({"strides": [2, 2], "auto_pad": "SAME_UPPER"}, (1, 1)),
    ({"strides": [3, 3], "auto_pad": "SAME_LOWER"}, (1, 1)),
    ({"strides": [2, 2], "auto_pad": "SAME_UPPER", "output_padding": [1, 1]}, (4, 4)),
    ({"strides": [2, 2], "auto_pad": "SAME_UPPER", "output_shape": [8, 10]}, (3, 3)),
])
def test_onnx_spec_windows_match_onnx_reference_evaluator(attrs, k) -> None:
    """'onnx-spec' is what the onnx package's own reference computes (group 1)."""
    model = M.convt_model(attrs, k=k)
    x = np.random.default_rng(3).standard_normal((1, 2, 4, 5)).astype(np.float32)
    want = ReferenceEvaluator(model).run(None, {"x": x})[0]
    a, _ = read_attrs(model.graph.node[0], (2, 3, *k), 4)
    w = numpy_helper.to_array(model.graph.initializer[0])
    b = numpy_helper.to_array(model.graph.initializer[1])
    windows = intent_windows(a, (4, 5), "onnx-spec")
    got = apply_window(full_output(x, w, a), b, windows)
    np.testing.assert_allclose(got, want, atol=1e-4)
    loops = oracles.window(x.astype(np.float64), w, b, a.strides,
                               [v.begin for v in windows], [v.length for v in windows])
    np.testing.assert_allclose(got, loops, atol=1e-9)


def test_tf_windows_follow_keras_crop_rule() -> None:
    a, _ = read_attrs(M.risky("output_shape_odd").graph.node[0], (2, 3, 3, 3), 4)
    assert intent_windows(a, (4, 5), "tf") == (Window(0, 8), Window(0, 10))
    assert intent_windows(a, (4, 5), "onnx-spec") == (Window(1, 8), Window(1, 10))
    k1, _ = read_attrs(M.risky("same_upper_k_lt_s").graph.node[0], (2, 3, 1, 1), 4)
    assert intent_windows(k1, (4, 5), "tf") == (Window(0, 8), Window(0, 10))
    assert intent_windows(k1, (4, 5), "onnx-spec") == (Window(-1, 8), Window(-1, 10))


# ---- untrusted files ---------------------------------------------------------

def _external_model(folder: Path) -> Path:
    model = M.clean_model()
    path = folder / "m.onnx"
    onnx.save(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
              location="weights.bin", size_threshold=0)
    return path


def _set_location(path: Path, location: str) -> None:
    model = onnx.load(str(path), load_external_data=False)
    for t in model.graph.initializer:
        for e in t.external_data:
            if e.key == "location":
                e.value = location
    onnx.save(model, str(path))


def test_external_data_inside_folder_loads(tmp_path: Path) -> None:
    path = _external_model(tmp_path)
    model = load_model(path)
    assert all(t.data_location == TensorProto.DEFAULT for t in model.graph.initializer)
    assert not check_model(str(path)).failed("warning")


@pytest.mark.parametrize("location", ["../weights.bin", "/etc/passwd", "sub/../../weights.bin",
                                      "..\\weights.bin"])
def test_external_data_escapes_are_refused(tmp_path: Path, location: str) -> None:
    inner = tmp_path / "inner"
    inner.mkdir()
    path = _external_model(inner)
    (inner / "weights.bin").rename(tmp_path / "weights.bin")
    _set_location(path, location)
    with pytest.raises(ConvtError, match="not a relative path inside"):
        load_model(path)


@pytest.mark.skipif(os.name == "nt", reason="symlinks")
def test_external_data_symlink_out_of_folder_is_refused(tmp_path: Path) -> None:
    inner = tmp_path / "inner"
    inner.mkdir()
    path = _external_model(inner)
    (inner / "weights.bin").rename(tmp_path / "real.bin")
    (inner / "weights.bin").symlink_to(tmp_path / "real.bin")
    with pytest.raises(ConvtError, match="inside the model's folder"):
        load_model(path)


@pytest.mark.parametrize("cut", [0, 7, 100, -3])
def test_truncated_or_empty_files_are_one_sentence_errors(tmp_path: Path, cut: int) -> None:
    data = M.clean_model().SerializeToString()
    path = tmp_path / "bad.onnx"
    path.write_bytes(data[:cut])
    with pytest.raises(ConvtError) as info:
        load_model(path)
    assert "\n" not in str(info.value)
    assert "bad.onnx" in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConvtError, match="is missing"):
        load_model(tmp_path / "none.onnx")


def test_constant_node_weights_are_used() -> None:
    """W from a Constant node (some exporters) still gets a kernel_shape check."""
    w = np.zeros((2, 3, 3, 3), np.float32)
    nodes = [helper.make_node("Constant", [], ["W"], value=numpy_helper.from_array(w)),
             helper.make_node("ConvTranspose", ["x", "W"], ["y"], kernel_shape=[2, 2])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", 1, [1, 2, 4, 5])],
                              [helper.make_tensor_value_info("y", 1, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    assert "CT003" in codes(check_model(model, numeric=False))


# ---- model-local functions ---------------------------------------------------

def test_function_nodes_are_checked() -> None:
    """A SAME_UPPER ConvTranspose inside model.functions is found, flagged and probed."""
    report = check_model(M.function_model({"strides": [2, 2], "auto_pad": "SAME_UPPER"}))
    (node,) = report.nodes
    assert node.graph == "function:local.MyFn"
    assert node.name == "inner"
    assert {"CT010", "CT030"} <= {f.code for f in node.findings}
    assert node.input_shape == (1, 2, 4, 5)  # bound from the call site
    assert report.failed("error")
    assert "function:local.MyFn" in report.to_text()


@pytest.mark.parametrize("attrs,code", [
    ({"strides": [2, 2], "pads": [-1, 0, 1, 0]}, "CT001"),
    ({"strides": [2, 2], "output_padding": [2, 2]}, "CT002"),
    ({"strides": [2, 2], "pads": [0, 0, 1, 1]}, "CT020"),
    ({"strides": [2, 2], "output_shape": [8, 10]}, "CT013"),
])
def test_function_nodes_get_every_rule(attrs, code) -> None:
    for w_inside in (False, True):
        report = check_model(M.function_model(attrs, w_inside=w_inside))
        assert code in codes(report), report.to_text()


def test_function_attribute_bound_at_call_site_is_reported() -> None:
    model = M.function_model({"pads": [1, 1, 1, 1]}, ref_attrs={"strides": "st"},
                             call_attrs={"st": [2, 2]})
    report = check_model(model)
    (node,) = report.nodes
    found = {f.code: f for f in node.findings}
    assert found["CT007"].severity == "warning"
    assert "'st'" in found["CT007"].message
    assert "CT031" in found
    assert "CT006" not in found
    assert node.attributes["strides"] == "<bound at call site: st>"
    json.dumps(report.to_dict())


def test_function_without_call_site_shapes_is_not_an_error() -> None:
    """No kernel_shape and W's shape unknown inside a function: a warning, not CT006 error."""
    model = M.function_model({"strides": [2, 2], "pads": [1, 1, 1, 1]})
    del model.graph.node[:]  # no call site: nothing binds W's shape
    model.graph.node.append(helper.make_node("Identity", ["x"], ["y"]))
    report = check_model(model)
    (finding,) = [f for f in report.nodes[0].findings if f.code == "CT006"]
    assert finding.severity == "warning"
    assert "local.MyFn" in finding.message


# ---- bounded numeric probe -----------------------------------------------------

@pytest.mark.parametrize("n", [20000, 100000])
def test_huge_static_input_is_probed_at_a_stand_in(n: int) -> None:
    import tracemalloc

    tracemalloc.start()
    report = check_model(M.clean_model(x_shape=(1, 3, n, n)))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 2 ** 28
    node = report.nodes[0]
    assert node.numeric["stand_in"] is True
    assert node.numeric["input_shape"] == [1, 3, 5, 5]
    (msg,) = [f.message for f in node.findings if f.code == "CT030"]
    assert "above the cap" in msg
    assert "stand-in" in msg


def test_huge_output_shape_skips_the_probe() -> None:
    model = M.convt_model({"strides": [2, 2], "output_shape": [200000, 200000]},
                          x_shape=(1, 3, 100000, 100000))
    report = check_model(model)
    (msg,) = [f.message for f in report.nodes[0].findings if f.code == "CT031"]
    assert "above the cap" in msg
    assert "output_shape" in msg
    assert "--input-shape" in msg


def test_probe_memory_error_is_a_finding(monkeypatch: pytest.MonkeyPatch) -> None:
    import convt_tools.check.probe as P

    def boom(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(P, "probe_ort", boom)
    (finding,) = check_model(M.clean_model()).nodes[0].findings
    assert finding.code == "CT031"
    assert "out of memory" in finding.message


# ---- public API input ------------------------------------------------------------

@pytest.mark.parametrize("bad", [b"not a model", None, 3, onnx.ModelProto()])
def test_check_model_rejects_what_is_not_a_model(bad) -> None:
    with pytest.raises(ConvtError, match="^model: "):
        check_model(bad)


def test_model_proto_with_external_data_is_a_convt_error(tmp_path: Path) -> None:
    path = _external_model(tmp_path)
    _set_location(path, "../../etc/passwd")
    proto = onnx.load(str(path), load_external_data=False)
    with pytest.raises(ConvtError, match="external file .*pass the model's path"):
        check_model(proto)
    with pytest.raises(ConvtError, match="not a relative path inside"):
        check_model(str(path))


def test_tf_same_window_comes_from_the_spec(monkeypatch: pytest.MonkeyPatch) -> None:
    """One source of truth: the tf reading of SAME is geometry.keras_crop / keras_output_length
    (the functions behind the spec's crop plan)."""
    import convt_tools.geometry as G

    a, _ = read_attrs(M.risky("same_lower").graph.node[0], (2, 3, 3, 3), 4)
    assert intent_windows(a, (4, 5), "tf") == (Window(0, 8), Window(0, 10))
    monkeypatch.setattr(G, "keras_crop", lambda *args: G.AxisCrop(7, 0, 0))
    assert intent_windows(a, (4, 5), "tf") == (Window(7, 8), Window(7, 10))
