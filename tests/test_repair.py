"""``repair_model``: every risky form under every intent, proven numerically."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from support import models as M
from support import oracles
from convt_tools import check_model, repair_model
from convt_tools.check import run_ort
from convt_tools.check.probe import OrtRefused
from convt_tools.repair import RepairRefused
from support.optional import need
from support.repair_cases import CASES, EXPECTED, ORT_REFUSES, X_SHAPE
from support.repair_cases import strides as _strides
from support.repair_cases import weights as _weights


# Keep these tests fast: OpenVINO/tract (child processes) are measured in test_readings.py.
pytestmark = pytest.mark.usefixtures("runtimes_off")


def _assert_portable(model: onnx.ModelProto) -> None:
    onnx.checker.check_model(model, full_check=True)
    for node in model.graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        assert "output_shape" not in attrs
        assert attrs.get("auto_pad", b"NOTSET") == b"NOTSET"
        assert min(attrs["pads"]) >= 0
        assert all(o < s for o, s in zip(attrs.get("output_padding", [0, 0]), attrs["strides"]))


@pytest.mark.parametrize("form,intent", CASES)
def test_repair_reproduces_the_intent(form: str, intent: str) -> None:
    original = M.risky(form)
    repaired, report = repair_model(original, intent)
    _assert_portable(repaired)
    assert len(report.nodes) == 1
    assert report.nodes[0].proof
    # Independent oracle: plain loops over the definition, windows derived by hand.
    x = np.random.default_rng(11).standard_normal(X_SHAPE).astype(np.float32)
    w, b = _weights(original)
    bh, bw, lh, lw = EXPECTED[form][intent]
    want = oracles.window(x.astype(np.float64), w, b, _strides(original), (bh, bw), (lh, lw))
    got = run_ort(repaired, {"x": x})[0]
    np.testing.assert_allclose(got, want, atol=1e-4)
    # Against onnxruntime running the original, where it can (ORT_REFUSES: it cannot load them).
    if form not in ORT_REFUSES:
        ort_original = run_ort(original, {"x": x})[0]
        if intent == "ort" or EXPECTED[form][intent] == EXPECTED[form].get("ort"):
            np.testing.assert_allclose(got, ort_original, atol=1e-5)
        else:
            assert got.shape != ort_original.shape or not np.allclose(got, ort_original, atol=1e-3)
    # and the repaired model is clean for `convt check`.
    assert not check_model(repaired).failed("error")


def test_original_model_is_not_modified() -> None:
    original = M.risky("neg_pads_begin")
    before = original.SerializeToString()
    repaired, report = repair_model(original, "tf")
    assert original.SerializeToString() == before
    assert "W" in [t.name for t in original.graph.initializer]
    assert report.nodes[0].kernel_padding == [[1, 0], [0, 0]]


def test_replaced_weight_is_dropped_when_unused() -> None:
    """The padded W replaces W; nothing else uses W, so it is not kept (no doubled weights)."""
    original = M.risky("neg_pads_begin")
    repaired, report = repair_model(original, "tf")
    names = [t.name for t in repaired.graph.initializer]
    assert "W" not in names
    assert "W_convt_padded" in names
    padded = numpy_helper.to_array(repaired.graph.initializer[names.index("W_convt_padded")])
    np.testing.assert_array_equal(padded[:, :, 1:], _weights(original)[0])
    assert any("'W' removed" in t for t in report.nodes[0].notes)
    onnx.checker.check_model(repaired, full_check=True)


def test_shared_weight_is_kept() -> None:
    """W still feeds another node after the rewrite: it stays."""
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((2, 3, 3, 3)).astype(np.float32), "W")
    nodes = [helper.make_node("ConvTranspose", ["x", "W"], ["a"], name="risky", strides=[2, 2],
                              pads=[-1, 0, 1, 0]),
             helper.make_node("ConvTranspose", ["x", "W"], ["b"], name="clean", strides=[2, 2],
                              pads=[1, 1, 1, 1])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", 1, [1, 2, 4, 5])],
                              [helper.make_tensor_value_info("a", 1, None),
                               helper.make_tensor_value_info("b", 1, None)], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    repaired, report = repair_model(model, "onnx-spec")
    assert [t.name for t in repaired.graph.initializer] == ["W", "W_convt_padded"]
    assert not any("removed" in t for t in report.nodes[0].notes)


@pytest.mark.parametrize("form", ORT_REFUSES)
def test_ort_intent_refuses_nodes_onnxruntime_refuses(form: str) -> None:
    """'ort' = what onnxruntime computes, measured; a node it refuses has no such behaviour."""
    with pytest.raises(RepairRefused, match="refuses this node.*no onnxruntime behaviour.*"
                                            "--intent tf or --intent onnx-spec"):
        repair_model(M.risky(form), "ort")


def test_symbolic_same_repairs_for_every_size() -> None:
    model = M.risky("same_lower", x_shape=(1, 2, "h", "w"))
    repaired, report = repair_model(model, "onnx-spec")
    assert len(report.nodes[0].proof) == 2  # two stand-in sizes
    w, b = _weights(model)
    for hw in ((4, 5), (3, 7)):
        x = np.random.default_rng(2).standard_normal((1, 2, *hw)).astype(np.float32)
        want = oracles.window(x.astype(np.float64), w, b, (2, 2), (1, 1),
                                  (hw[0] * 2, hw[1] * 2))
        np.testing.assert_allclose(run_ort(repaired, {"x": x})[0], want, atol=1e-4)


def test_output_shape_with_symbolic_input_is_dynamic_or_pinned_with_shape() -> None:
    model = M.convt_model({"strides": [2, 2], "output_shape": [8, 10]}, x_shape=(1, 2, "h", "w"))
    dynamic, report = repair_model(model, "tf")
    assert report.nodes[0].new["form"] == "dynamic"
    assert "ConvTranspose" in {n.op_type for n in dynamic.graph.node}
    repaired, _ = repair_model(model, "tf", {"x": (1, 2, 4, 5)})
    attrs = {a.name: helper.get_attribute_value(a) for a in repaired.graph.node[0].attribute}
    assert list(attrs["pads"]) == [0, 0, 1, 1]


def test_broken_nodes_are_refused() -> None:
    model = M.convt_model({"strides": [2, 2], "auto_pad": "SAME_UPPER", "kernel_shape": [2, 2]})
    with pytest.raises(RepairRefused, match="CT003"):
        repair_model(model, "tf")


def test_failed_proof_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """A wrong plan (one row shifted) must be caught by the proof, not written."""
    import dataclasses

    import convt_tools.repair.plan as R

    real = R.plan_axis

    def off_by_one(window, natural, s, d):
        plan = real(window, natural, s, d)
        return dataclasses.replace(plan, pad_begin=plan.pad_begin + 1,
                                   pad_end=max(plan.pad_end - 1, 0))

    monkeypatch.setattr(R, "plan_axis", off_by_one)
    with pytest.raises(RepairRefused, match="does not reproduce"):
        repair_model(M.risky("same_lower"), "tf")


def test_subgraph_node_is_repaired_in_place() -> None:
    model = M.if_model({"strides": [2, 2], "auto_pad": "SAME_LOWER"})
    repaired, report = repair_model(model, "tf")
    assert [n.graph for n in report.nodes] == ["main/if0.then_branch"]
    onnx.checker.check_model(repaired)
    x = np.random.default_rng(5).standard_normal(X_SHAPE).astype(np.float32)
    w = numpy_helper.to_array(model.graph.initializer[0])
    want = oracles.window(x.astype(np.float64), w, None, (2, 2), (0, 0), (8, 10))
    got = run_ort(repaired, {"x": x, "cond": np.array(True)})[0]
    np.testing.assert_allclose(got, want, atol=1e-4)
    else_before = run_ort(model, {"x": x, "cond": np.array(False)})[0]
    np.testing.assert_array_equal(run_ort(repaired, {"x": x, "cond": np.array(False)})[0],
                                  else_before)


def test_clean_model_is_left_as_it_was() -> None:
    from pathlib import Path

    path = Path(__file__).parent / "data" / "dcgan_generator.onnx"
    original = onnx.load(str(path))
    repaired, report = repair_model(str(path), "tf")
    assert report.nodes == []
    assert len(report.untouched) == 4
    assert repaired.SerializeToString() == original.SerializeToString()


def test_other_nodes_stay_as_they_were() -> None:
    rng = np.random.default_rng(0)
    w1 = numpy_helper.from_array(rng.standard_normal((2, 3, 3, 3)).astype(np.float32), "W1")
    w2 = numpy_helper.from_array(rng.standard_normal((3, 2, 4, 4)).astype(np.float32), "W2")
    nodes = [helper.make_node("ConvTranspose", ["x", "W1"], ["a"], name="risky", strides=[2, 2],
                              auto_pad="SAME_LOWER"),
             helper.make_node("Relu", ["a"], ["r"], name="relu"),
             helper.make_node("ConvTranspose", ["r", "W2"], ["y"], name="clean", strides=[2, 2],
                              pads=[1, 1, 1, 1])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", 1, [1, 2, 4, 5])],
                              [helper.make_tensor_value_info("y", 1, [1, 2, None, None])],
                              [w1, w2])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    repaired, report = repair_model(model, "onnx-spec")
    assert [n.name for n in report.nodes] == ["risky"]
    assert repaired.graph.node[1] == model.graph.node[1]
    assert repaired.graph.node[2] == model.graph.node[2]
    assert report.whole_model["max_abs_diff_vs_original_ort"][0] < 1e-5


def test_real_keras_model_through_tf2onnx(tmp_path) -> None:
    """Optional: a real Keras model converted by tf2onnx is flagged, repaired for tf, and matches Keras."""
    tf = need("tensorflow")
    tf2onnx = need("tf2onnx")
    keras = tf.keras
    inputs = keras.Input((5, 6, 2), batch_size=1)
    h = keras.layers.Conv2DTranspose(3, 3, strides=2, padding="same")(inputs)
    out = keras.layers.Conv2DTranspose(2, 1, strides=2, padding="valid")(h)
    model = keras.Model(inputs, out)
    x = np.random.default_rng(0).standard_normal((1, 5, 6, 2)).astype(np.float32)
    want = model.predict(x, verbose=0)
    onnx_model, _ = tf2onnx.convert.from_keras(
        model, input_signature=[tf.TensorSpec((1, 5, 6, 2), tf.float32, name="x")], opset=17)
    report = check_model(onnx_model)
    repaired, _ = repair_model(onnx_model, "tf")
    onnx.checker.check_model(repaired)
    assert not check_model(repaired).failed("error")
    feed = repaired.graph.input[0].name
    np.testing.assert_allclose(run_ort(repaired, {feed: x})[0], want, atol=1e-4)
    assert report.nodes  # tf2onnx kept ConvTranspose nodes


# ---- model-local functions ---------------------------------------------------

def _run_function_model(model: onnx.ModelProto) -> tuple[np.ndarray, np.ndarray]:
    x = np.random.default_rng(6).standard_normal(X_SHAPE).astype(np.float32)
    return x, run_ort(model, {"x": x})[0]


def _function_w(model: onnx.ModelProto) -> np.ndarray:
    if model.graph.initializer:
        return numpy_helper.to_array(model.graph.initializer[0])
    const = next(n for n in model.functions[0].node if n.op_type == "Constant")
    return numpy_helper.to_array(const.attribute[0].t)


def test_function_node_is_repaired_in_place() -> None:
    model = M.function_model({"strides": [2, 2], "auto_pad": "SAME_LOWER"})
    repaired, report = repair_model(model, "tf")
    assert [n.graph for n in report.nodes] == ["function:local.MyFn"]
    _assert_portable_function(repaired)
    assert repaired.graph == model.graph
    x, got = _run_function_model(repaired)
    want = oracles.window(x.astype(np.float64), _function_w(model), None, (2, 2), (0, 0),
                              (8, 10))
    np.testing.assert_allclose(got, want, atol=1e-4)
    assert not check_model(repaired).failed("error")


def test_function_node_with_constant_w_gets_a_padded_constant() -> None:
    """A shift needs zero taps: inside a function W becomes a new Constant node."""
    model = M.function_model({"strides": [2, 2], "pads": [-1, 0, 1, 0]}, w_inside=True)
    repaired, report = repair_model(model, "onnx-spec")
    body = repaired.functions[0].node
    assert [n.op_type for n in body] == ["Constant", "ConvTranspose"]
    assert list(body[1].input) == ["fx", body[0].output[0]]
    assert body[0].output[0] != "fw"
    _assert_portable_function(repaired)
    x, got = _run_function_model(repaired)
    want = oracles.window(x.astype(np.float64), _function_w(model), None, (2, 2), (-1, 0),
                              (9, 11))
    np.testing.assert_allclose(got, want, atol=1e-4)


def test_function_shift_with_w_passed_in_is_refused() -> None:
    model = M.function_model({"strides": [2, 2], "pads": [-1, 0, 1, 0]})
    with pytest.raises(RepairRefused, match="passed in by the caller"):
        repair_model(model, "tf")


def test_function_bound_attributes_are_refused_or_listed() -> None:
    risky = M.function_model({"auto_pad": "SAME_UPPER"}, ref_attrs={"strides": "st"},
                             call_attrs={"st": [2, 2]})
    with pytest.raises(RepairRefused, match="bound at each call site"):
        repair_model(risky, "tf")
    plain = M.function_model({"pads": [1, 1, 1, 1]}, ref_attrs={"strides": "st"},
                             call_attrs={"st": [2, 2]})
    repaired, report = repair_model(plain, "tf")
    assert report.nodes == []
    assert "not checked" in report.untouched[0]
    assert "could not be checked" in report.notes[0]


def _assert_portable_function(model: onnx.ModelProto) -> None:
    onnx.checker.check_model(model, full_check=True)
    for node in model.functions[0].node:
        if node.op_type == "ConvTranspose":
            attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            assert "output_shape" not in attrs
            assert "auto_pad" not in attrs
            assert min(attrs["pads"]) >= 0


# ---- bounded proofs and public API -------------------------------------------

def test_huge_input_is_proven_at_stand_in_sizes() -> None:
    model = M.risky("same_lower", x_shape=(1, 3, 20000, 20000))
    repaired, report = repair_model(model, "tf")
    (plan,) = report.nodes
    assert [p["input_shape"][2:] for p in plan.proof] == [[5, 6], [8, 9]]
    assert any("above the cap" in t and "stand-in" in t for t in plan.notes)
    assert "not run" in report.whole_model["summary"]
    assert plan.new["pads"] == [0, 0, 1, 1]


def test_huge_output_shape_is_refused() -> None:
    model = M.convt_model({"strides": [2, 2], "output_shape": [40000, 40000]},
                          x_shape=(1, 3, 20000, 20000))
    with pytest.raises(RepairRefused, match="above the cap"):
        repair_model(model, "tf")


@pytest.mark.parametrize("bad", [b"not a model", None, 3, onnx.ModelProto()])
def test_repair_model_rejects_what_is_not_a_model(bad) -> None:
    from convt_tools import ConvtError

    with pytest.raises(ConvtError, match="^model: "):
        repair_model(bad, "tf")


@pytest.mark.parametrize("shapes", [{"x": (1, 2, -4, 5)}, {"": (1, 2, 4, -3)}, {"x": (0, 2, 4, 5)},
                                    "x=1,2,4,5"])
def test_bad_input_shapes_are_convt_errors(shapes) -> None:
    from convt_tools import ConvtError

    model = M.convt_model({"strides": [2, 2], "output_shape": [8, 10]}, x_shape=("n", 2, "h", "w"))
    with pytest.raises(ConvtError, match="^input_shape: ") as err:
        repair_model(model, "tf", shapes)  # ValueError from numpy before
    assert err.value.field == "input_shape"
    assert not isinstance(err.value, RepairRefused)


def test_size_dependent_repair_pins_the_given_input_size() -> None:
    from convt_tools.check import OrtRefused

    model = M.convt_model({"strides": [2, 2], "output_shape": [8, 10]}, x_shape=("n", 2, "h", "w"))
    repaired, report = repair_model(model, "tf", {"x": (1, 2, 4, 5)})
    dims = repaired.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "n"
    assert [d.dim_value for d in dims[1:]] == [2, 4, 5]
    assert report.nodes[0].size_dependent
    assert any("input 'x' pinned to [n,2,4,5]: the repair is exact only at this size" in t
               for t in report.notes)
    assert not check_model(repaired).failed()
    w, b = _weights(model)
    x = np.random.default_rng(3).standard_normal((3, 2, 4, 5)).astype(np.float32)
    want = oracles.window(x.astype(np.float64), w, b, (2, 2), (0, 0), (8, 10))
    np.testing.assert_allclose(run_ort(repaired, {"x": x})[0], want, atol=1e-4)  # any batch
    with pytest.raises(OrtRefused, match="(?i)dimension"):  # computed a 6x6 crop before
        run_ort(repaired, {"x": np.zeros((1, 2, 3, 3), np.float32)})


def test_size_independent_repair_keeps_the_input_dynamic() -> None:
    model = M.risky("same_lower", x_shape=("n", 2, "h", "w"))
    repaired, report = repair_model(model, "onnx-spec", {"x": (1, 2, 4, 5)})
    dims = repaired.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param for d in dims] == ["n", "", "h", "w"]
    assert not report.nodes[0].size_dependent
    assert not any("pinned" in t for t in report.notes)
    x = np.zeros((1, 2, 3, 3), np.float32)
    assert run_ort(repaired, {"x": x})[0].shape == (1, 3, 6, 6)


def test_refusal_carries_the_partial_report() -> None:
    with pytest.raises(RepairRefused) as err:
        repair_model(M.risky("pads_and_auto_pad"), "ort")
    data = err.value.report.to_dict()
    assert data["refused"] is True
    assert data["reason"] == str(err.value)
    assert data["planned"] == []
    assert "repaired" not in data


# ---- output_shape with a free input size: the dynamic form, exact at every size ----------

@pytest.mark.parametrize("intent", ["tf", "onnx-spec", "ort"])
@pytest.mark.parametrize("attrs,x_shape,k", [
    ({"strides": [2, 2], "output_shape": [8, 10]}, (1, 2, "h", "w"), (3, 3)),
    ({"strides": [3], "output_shape": [11]}, (1, 2, "n"), (3,)),
    ({"strides": [2, 2, 2], "output_shape": [5, 6, 4]}, (1, 2, "a", "b", "c"), (3, 3, 3)),
])
def test_output_shape_with_free_size_is_repaired_without_pinning(intent, attrs, x_shape, k):
    from convt_tools.check import full_output, intent_windows, apply_window, read_attrs

    model = M.convt_model(attrs, x_shape=x_shape, k=k)
    repaired, report = repair_model(model, intent)
    onnx.checker.check_model(repaired)
    (plan,) = report.nodes
    assert plan.new["form"] == "dynamic" and len(plan.proof) >= 4
    dims = repaired.graph.input[0].type.tensor_type.shape.dim
    assert all(d.dim_param for d in dims[2:]), "the input must stay free (no pinning)"
    w, b = _weights(model)
    node = model.graph.node[0]
    a, _ = read_attrs(node, w.shape, len(x_shape))
    for n in (3, 4, 5, 6, 9):  # sizes of both parities, beyond the proof's
        x = np.random.default_rng(n).standard_normal((1, 2) + (n,) * a.rank).astype(np.float32)
        (y,) = run_ort(repaired, {"x": x})
        if intent == "ort":
            try:
                (want,) = run_ort(model, {"x": x})
            except OrtRefused:
                continue  # onnxruntime refuses the original at this size
        else:
            want = apply_window(full_output(x, w, a), b, intent_windows(a, (n,) * a.rank, intent))
        np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-4)
