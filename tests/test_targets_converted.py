"""``--target`` for the converted runtimes (issue 19): MNN, ncnn, IREE.

* What each runtime needs is declared on its reading class (check's table), as flags
  that hold for every rank or for the ranks listed; ``target_rewrites`` reads them.
* Each rewrite keeps the model's meaning (onnxruntime's output before == after) and
  does what it says (no VALID left, Split sizes written, an Identity after a 1-D output,
  kernel_shape written, a bias moved only at the ranks named).
* ``validate --runtime mnn,ncnn`` exports the layer in the form those runtimes run
  exactly (the same rewrites), and a runtime lacking an activation's op is an ERROR whose
  one-line reason names the op (real output; skipped only where the runtime is missing).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import helper, numpy_helper

from support.cli import run_convt
from support.optional import runtime_or_skip
from convt_tools.check.readings import TABLE, needed_for
from convt_tools.exporter import export_spec
from convt_tools.repair._more_forms import (
    decompose_ops, dilated_kernel, expand_dilation, explicit_pads, less_as_greater, restore_rank,
    split_with_sizes, write_kernel_shape,
)
from convt_tools.repair.targets import (
    BIAS_ADD, DECOMPOSE, DILATION_EXPAND, EXPLICIT_PADS, GROUP_SPLIT, KERNEL_SHAPE, LESS_AS_GREATER,
    RANK_RESTORE, SPLIT_SIZES,
    apply_target_forms, bias_as_add, target_rewrites,
)
from convt_tools.spec import parse_config

RNG = np.random.default_rng(19)


@pytest.mark.parametrize("runtime,rewrites", [
    ("mnn", (DILATION_EXPAND, KERNEL_SHAPE, BIAS_ADD, GROUP_SPLIT, RANK_RESTORE,
             LESS_AS_GREATER)),
    ("ncnn", (EXPLICIT_PADS, SPLIT_SIZES, DECOMPOSE)),
    ("iree", (GROUP_SPLIT, DECOMPOSE)),
])
def test_the_converted_runtimes_declare_what_they_need(runtime: str, rewrites) -> None:
    assert target_rewrites([runtime]) == rewrites


@pytest.mark.parametrize("flag,rank,expected", [
    (True, 2, True), (False, 2, False), ((3,), 3, True), ((3,), 1, False), ((), 2, False),
])
def test_a_flag_names_every_rank_or_the_listed_ones(flag, rank: int, expected: bool) -> None:
    assert needed_for(flag, rank) is expected


@pytest.mark.parametrize("rank,expected", [(1, False), (2, False), (3, True)])
def test_mnn_needs_the_bias_add_only_in_3d(rank: int, expected: bool) -> None:
    assert needed_for(TABLE["mnn"].needs_bias_add, rank) is expected


def _node_model(attrs: dict, w_shape: tuple[int, ...], x_shape: tuple[int, ...],
                bias: bool = False) -> onnx.ModelProto:
    inits = [numpy_helper.from_array(RNG.standard_normal(w_shape).astype(np.float32), "W")]
    inputs = ["x", "W"]
    if bias:
        inits.append(numpy_helper.from_array(
            RNG.standard_normal(w_shape[1]).astype(np.float32), "B"))
        inputs.append("B")
    node = helper.make_node("ConvTranspose", inputs, ["y"], **attrs)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info(
        "x", onnx.TensorProto.FLOAT, list(x_shape))], [helper.make_tensor_value_info(
            "y", onnx.TensorProto.FLOAT, None)], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _ort(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def _attrs(model: onnx.ModelProto, op: str = "ConvTranspose") -> dict:
    node = next(n for n in model.graph.node if n.op_type == op)
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _valid() -> tuple[onnx.ModelProto, np.ndarray]:
    model = _node_model({"auto_pad": "VALID", "strides": [2], "kernel_shape": [3]},
                        (2, 3, 3), (1, 2, 5))
    return model, RNG.standard_normal((1, 2, 5)).astype(np.float32)


def test_explicit_pads_leaves_no_auto_pad() -> None:
    model, _ = _valid()
    explicit_pads(model)
    assert (_attrs(model).get("auto_pad"), _attrs(model)["pads"]) == (None, [0, 0])


def test_explicit_pads_keeps_the_output() -> None:
    model, x = _valid()
    before = _ort(model, x)
    explicit_pads(model)
    np.testing.assert_array_equal(_ort(model, x), before)


def test_explicit_pads_leaves_same_with_a_note() -> None:
    model = _node_model({"auto_pad": "SAME_UPPER", "strides": [2]}, (2, 3, 3), (1, 2, 5))
    assert "left" in explicit_pads(model)[0]


@pytest.mark.parametrize("rank,expected", [(1, False), (2, False), (3, True)])
def test_mnn_needs_the_dilation_expanded_only_in_3d(rank: int, expected: bool) -> None:
    assert needed_for(TABLE["mnn"].needs_dilation_expand, rank) is expected


def test_a_dilated_kernel_has_the_taps_at_every_dth_place() -> None:
    w = RNG.standard_normal((2, 3, 3, 2)).astype(np.float32)
    wide = dilated_kernel(w, (2, 3))
    np.testing.assert_array_equal(wide[:, :, ::2, ::3], w)


def test_a_dilated_kernel_is_zero_between_the_taps() -> None:
    wide = dilated_kernel(np.ones((1, 1, 3, 2), np.float32), (2, 3))
    assert (wide.shape, float(wide.sum())) == ((1, 1, 5, 4), 6.0)


_DILATED = [  # attrs, W shape, x shape
    ({"dilations": [3], "kernel_shape": [3], "pads": [1, 2]}, (2, 3, 3), (1, 2, 5)),
    ({"dilations": [2, 1], "strides": [1, 2], "auto_pad": "SAME_UPPER"}, (2, 3, 3, 2), (1, 2, 4, 5)),
    ({"dilations": [2, 3, 2], "kernel_shape": [2, 3, 2], "output_padding": [1, 0, 1],
      "strides": [3, 1, 2]}, (4, 1, 2, 3, 2), (2, 4, 3, 2, 3)),
    ({"dilations": [2, 2, 2], "group": 2, "output_shape": [3, 3, 4]}, (4, 3, 2, 2, 2),
     (1, 4, 2, 2, 3)),
]


@pytest.mark.parametrize("attrs,w_shape,x_shape", _DILATED)
def test_expanding_the_dilation_keeps_the_output(attrs, w_shape, x_shape) -> None:
    model = _node_model(attrs, w_shape, x_shape, bias="group" not in attrs)  # B: C_out / G
    x = RNG.standard_normal(x_shape).astype(np.float32)
    before = _ort(model, x)
    expand_dilation(model)
    np.testing.assert_allclose(_ort(model, x), before, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("attrs,w_shape,x_shape", _DILATED)
def test_expanding_the_dilation_leaves_dilations_one(attrs, w_shape, x_shape) -> None:
    model = _node_model(attrs, w_shape, x_shape)
    expand_dilation(model)
    assert _attrs(model)["dilations"] == [1] * (len(w_shape) - 2)


def test_expanding_the_dilation_rewrites_kernel_shape() -> None:
    model = _node_model(*_DILATED[2][:2], _DILATED[2][2])
    expand_dilation(model)
    assert _attrs(model)["kernel_shape"] == [3, 7, 3]


def test_expanding_the_dilation_keeps_the_shared_weight() -> None:
    model = _node_model(*_DILATED[0])
    w_before = numpy_helper.to_array(model.graph.initializer[0])
    expand_dilation(model)
    np.testing.assert_array_equal(numpy_helper.to_array(model.graph.initializer[0]), w_before)


def test_expanding_the_dilation_only_on_the_named_ranks() -> None:
    model = _node_model(*_DILATED[0])
    assert (expand_dilation(model, (3,)), _attrs(model)["dilations"]) == ([], [3])


def _activation_model(op: str, dtype: type, **attrs) -> onnx.ModelProto:
    elem = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    graph = helper.make_graph(
        [helper.make_node(op, ["x"], ["y"], **attrs)], "g",
        [helper.make_tensor_value_info("x", elem, [2, 5])],
        [helper.make_tensor_value_info("y", elem, [2, 5])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
@pytest.mark.parametrize("op,attrs", [("Selu", {}), ("Selu", {"alpha": 0.5, "gamma": 2.0}),
                                      ("Selu", {"alpha": 0.0, "gamma": 1.5}),
                                      ("Softsign", {})])
def test_a_decomposed_activation_computes_the_same(op: str, attrs, dtype) -> None:
    model = _activation_model(op, dtype, **attrs)
    x = (RNG.standard_normal((2, 5)) * 3).astype(dtype)
    before = _ort(model, x)
    decompose_ops(model, {op})
    tol = 1e-6 if dtype == np.float32 else 2e-3
    np.testing.assert_allclose(_ort(model, x), before, rtol=tol, atol=tol)


@pytest.mark.parametrize("op,ops", [("Selu", ["Elu", "Mul"]), ("Softsign", ["Abs", "Add", "Div"])])
def test_a_decomposed_activation_leaves_only_elementary_ops(op: str, ops) -> None:
    model = _activation_model(op, np.float32)
    decompose_ops(model, {op})
    assert [n.op_type for n in model.graph.node] == ops


def test_only_the_named_ops_are_decomposed() -> None:
    model = _activation_model("Softsign", np.float32)
    assert (decompose_ops(model, {"Selu"}), model.graph.node[0].op_type) == ([], "Softsign")


def test_kernel_shape_is_written_from_w() -> None:
    model = _node_model({"strides": [2, 1, 1]}, (2, 3, 2, 3, 1), (1, 2, 3, 3, 3))
    write_kernel_shape(model)
    assert _attrs(model)["kernel_shape"] == [2, 3, 1]


def test_a_1d_graph_output_gets_an_identity() -> None:
    model, x = _valid()
    before = _ort(model, x)
    restore_rank(model, (1,))
    assert ([n.op_type for n in model.graph.node], _ort(model, x).tolist()) == (
        ["ConvTranspose", "Identity"], before.tolist())


def test_a_2d_graph_output_is_left_for_rank_1() -> None:
    model = _node_model({"strides": [2, 2]}, (2, 3, 3, 3), (1, 2, 4, 4))
    assert restore_rank(model, (1,)) == []


def test_bias_add_for_3d_leaves_a_2d_bias() -> None:
    model = _node_model({"strides": [2, 2]}, (2, 3, 3, 3), (1, 2, 4, 4), bias=True)
    bias_as_add(model, (3,))
    assert len(model.graph.node[0].input) == 3


def test_bias_add_for_3d_moves_a_3d_bias() -> None:
    model = _node_model({"strides": [2, 2, 2]}, (2, 3, 3, 3, 3), (1, 2, 3, 3, 3), bias=True)
    x = RNG.standard_normal((1, 2, 3, 3, 3)).astype(np.float32)
    before = _ort(model, x)
    bias_as_add(model, (3,))
    np.testing.assert_allclose(_ort(model, x), before, rtol=1e-6, atol=1e-6)


def _glu(shape: tuple[int | None, ...]) -> tuple[onnx.ModelProto, np.ndarray]:
    spec = parse_config({"class_name": "Conv2DTranspose", "config": {
        "filters": 4, "kernel_size": 3, "strides": 2, "padding": "same", "activation": "glu"}})
    kernel = RNG.standard_normal((3, 3, 4, 3)).astype(np.float32)
    model = export_spec(spec, kernel, RNG.standard_normal(4).astype(np.float32),
                        input_shape=shape)
    return model, RNG.standard_normal((1, 4, 5, 3)).astype(np.float32)


def _split_inputs(model: onnx.ModelProto) -> list[int]:
    return [len([i for i in n.input if i]) for n in model.graph.node if n.op_type == "Split"]


def test_a_glu_split_gets_its_sizes() -> None:
    model, _ = _glu((1, 4, 5, 3))
    split_with_sizes(model)
    assert _split_inputs(model) == [2]


def test_a_glu_split_with_sizes_keeps_the_output() -> None:
    model, x = _glu((1, 4, 5, 3))
    before = _ort(model, x)
    apply_target_forms(model, ["ncnn"])
    np.testing.assert_array_equal(_ort(model, x), before)


def test_a_symbolic_split_axis_is_left_with_a_note() -> None:
    model = helper.make_model(helper.make_graph(
        [helper.make_node("Split", ["x"], ["a", "b"], axis=1, num_outputs=2)], "g",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, "c"])],
        [helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, None) for n in "ab"]),
        opset_imports=[helper.make_opsetid("", 18)])
    assert "not static" in split_with_sizes(model)[0]


def _soft_shrink() -> tuple[onnx.ModelProto, np.ndarray]:
    model, x = _glu((1, 4, 5, 3))
    spec = parse_config({"class_name": "Conv2DTranspose", "config": {
        "filters": 4, "kernel_size": 3, "strides": 2, "activation": "soft_shrink"}})
    model = export_spec(spec, RNG.standard_normal((3, 3, 4, 3)).astype(np.float32),
                        RNG.standard_normal(4).astype(np.float32), input_shape=(1, 4, 5, 3))
    return model, x


def test_less_as_greater_leaves_no_less() -> None:
    model, _ = _soft_shrink()
    less_as_greater(model)
    assert [n.op_type for n in model.graph.node].count("Less") == 0


def test_less_as_greater_keeps_the_output() -> None:
    model, x = _soft_shrink()
    before = _ort(model, x)
    less_as_greater(model)
    np.testing.assert_array_equal(_ort(model, x), before)


# ---------------------------------------------------------------- validate on the runtimes

LAYERS = {
    "glu-2d": ({"class_name": "Conv2DTranspose", "config": {
        "filters": 4, "kernel_size": [2, 3], "strides": [1, 2], "padding": "same",
        "activation": "glu"}}, "1,4,3,2"),
    "valid-1d": ({"class_name": "Conv1DTranspose", "config": {
        "filters": 3, "kernel_size": 1, "strides": 3, "padding": "valid"}}, "2,3,2"),
    "soft-shrink-2d": ({"class_name": "Conv2DTranspose", "config": {
        "filters": 2, "kernel_size": 3, "strides": 2, "activation": "soft_shrink"}},
        "1,4,3,2"),
    "bias-3d": ({"class_name": "Conv3DTranspose", "config": {
        "filters": 2, "kernel_size": 3, "strides": 2, "padding": "same"}}, "1,2,3,2,2"),
    # pnnx has no Selu: the ncnn target writes it as Elu then Mul (needs_decomposed)
    "selu-1d": ({"class_name": "Conv1DTranspose", "config": {
        "filters": 4, "kernel_size": 3, "strides": 2, "activation": "selu"}}, "1,5,3"),
    # MNN computes a dilated 3-D ConvTranspose wrongly: the dilation is written into W
    "dilated-3d": ({"class_name": "Conv3DTranspose", "config": {
        "filters": 2, "kernel_size": 2, "dilation_rate": 3, "padding": "same"}},
        "1,3,2,3,2"),
}


def _config(tmp_path: Path, key: str) -> Path:
    path = tmp_path / f"{key}.json"
    path.write_text(json.dumps(LAYERS[key][0]))
    return path


# soft_shrink: ncnn has no layer for its Where (refused, below, as for hard_shrink)
PASSING = [(k, r) for k in sorted(LAYERS) for r in ("mnn", "ncnn")
           if (k, r) != ("soft-shrink-2d", "ncnn")]


@pytest.mark.runtimes
@pytest.mark.parametrize("key,runtime", PASSING)
def test_validate_passes_the_export_on_the_runtime(cli, tmp_path: Path, key: str,
                                                   runtime: str) -> None:
    runtime_or_skip(runtime)
    result = cli("validate", _config(tmp_path, key), "--runtime", runtime,
                 "--input-shape", LAYERS[key][1], "--json")
    assert [r["status"] for r in json.loads(result.output)["results"]] == ["PASS"]


@pytest.mark.runtimes
def test_an_activation_op_ncnn_lacks_is_refused_naming_it(tmp_path: Path) -> None:
    runtime_or_skip("ncnn")
    config = tmp_path / "softsign.json"
    config.write_text(json.dumps({"class_name": "Conv1DTranspose", "config": {
        "filters": 4, "kernel_size": 3, "strides": 2, "activation": "softsign"}}))
    done = run_convt("validate", config, "--runtime", "ncnn", "--input-shape", "1,5,3",
                     "--json")
    result = json.loads(done.stdout)["results"][0]
    assert (result["status"], result["error"]) == (
        "ERROR", "ncnn refused the model at load: pnnx: todo Softsign")


@pytest.mark.runtimes
def test_an_op_ncnn_has_no_layer_for_is_refused_naming_it(cli, tmp_path: Path) -> None:
    runtime_or_skip("ncnn")
    config = tmp_path / "hs.json"
    config.write_text(json.dumps({"class_name": "Conv1DTranspose", "config": {
        "filters": 4, "kernel_size": 3, "strides": 2, "activation": "hard_shrink"}}))
    result = cli("validate", config, "--runtime", "ncnn", "--input-shape", "1,5,3", "--json")
    error = json.loads(result.output)["results"][0]["error"]
    assert error.endswith("ncnn has no layer torch.gt, torch.where (pnnx's names for "
                          "operators ncnn cannot run)")


@pytest.mark.runtimes
def test_a_torch_depthwise_layer_validates_on_iree_after_the_split(cli, tmp_path: Path) -> None:
    # IREE 3.13 fails to compile a depthwise ConvTranspose with multiplier 1 (check's table);
    # validate exports it split into ungrouped nodes, as export --target iree does.
    runtime_or_skip("iree")
    config = tmp_path / "dw.json"
    config.write_text(json.dumps({"in_channels": 4, "out_channels": 4, "kernel_size": 3,
                                  "stride": 2, "padding": 1, "output_padding": 1, "groups": 4,
                                  "bias": True}))
    result = cli("validate", config, "--framework", "torch", "--runtime", "iree",
                 "--input-shape", "1,4,5,5", "--json")
    assert [r["status"] for r in json.loads(result.output)["results"]] == ["PASS"]
