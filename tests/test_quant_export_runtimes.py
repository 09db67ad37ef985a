"""``convt export --quantize int8`` models on real runtimes: within 1 LSB of the int8
reference (issue 20).

The reference is :func:`convt_tools.quant.int8_reference` (ONNX Q/DQ simulated exactly
around the float64 reference); the comparison is in LSB of the output scale
(:func:`convt_tools.quant.compare_lsb`), rounding ties counted. onnxruntime runs in the
fast tier; OpenVINO (f32 pinned, as its adapter does) and tract where installed.
"""

from __future__ import annotations

import json

from pathlib import Path

import numpy as np
import onnx
import pytest

from convt_tools.runtimes import get_runtime
from convt_tools.quant import compare_lsb
from support.cli import invoke
from support.optional import need, runtime_or_skip
from support.quant_export import (
    KINDS, RANKS, input_shape, reference_output, shape_arg, seeded_input, torch_config,
    write_config,
)

KERAS_MODEL = Path(__file__).resolve().parents[1] / "examples" / "model.keras"

GRID = [(r, k, g, a) for r in RANKS for k in KINDS for g in ("--per-channel", "--per-tensor")
        for a in ("int8", "uint8")]


def _export(tmp_path, rank, kind, granularity, acts, targets=None):
    cfg = write_config(tmp_path, torch_config(rank, kind))
    out = tmp_path / "q.onnx"
    extra = ["--target", targets] if targets else []
    res = invoke("export", cfg, "-o", out, "--input-shape", shape_arg(input_shape(rank, kind, 2)),
                 "--quantize", "int8", granularity, "--activations", acts, *extra)
    assert res.exit_code == 0, res.output
    return onnx.load(out)


def _check(runtime, model, rank, kind):
    x = seeded_input(input_shape(rank, kind, 2))
    y = runtime.run(model, {"input": x})[0]
    cmp = compare_lsb(y, reference_output(model, x.astype(np.float64)))
    assert cmp.passed, cmp.describe()
    return cmp


@pytest.mark.parametrize("rank, kind, granularity, acts", GRID)
def test_onnxruntime_within_one_lsb(tmp_path, rank, kind, granularity, acts):
    _check(get_runtime("onnxruntime"), _export(tmp_path, rank, kind, granularity, acts),
           rank, kind)


@pytest.mark.runtimes
@pytest.mark.parametrize("name", ["openvino", "tract"])
@pytest.mark.parametrize("rank, kind, granularity, acts", GRID)
def test_openvino_and_tract_within_one_lsb(tmp_path, name, rank, kind, granularity, acts):
    runtime = runtime_or_skip(name)
    _check(runtime, _export(tmp_path, rank, kind, granularity, acts), rank, kind)


@pytest.mark.runtimes
@pytest.mark.parametrize("name", ["onnxruntime", "openvino"])
@pytest.mark.parametrize("rank", RANKS)
def test_blocked_form_within_one_lsb(tmp_path, name, rank):
    runtime = runtime_or_skip(name)
    model = _export(tmp_path, rank, "grp", "--per-channel", "int8", "onnxruntime,openvino")
    assert any(a.name == "block_size" for n in model.graph.node for a in n.attribute)
    _check(runtime, model, rank, "grp")


@pytest.mark.runtimes
def test_tract_refuses_the_blocked_form_the_default_targets_avoid(tmp_path):
    from convt_tools.runtimes import RuntimeRefused

    runtime = runtime_or_skip("tract")
    model = _export(tmp_path, 2, "grp", "--per-channel", "int8", "onnxruntime,openvino")
    x = seeded_input(input_shape(2, "grp", 2))
    with pytest.raises(RuntimeRefused):
        runtime.run(model, {"input": x})


def test_export_is_close_to_the_float_layer(tmp_path):
    """Against the float model (not the reference): the quantization error, in LSB."""
    model = _export(tmp_path, 2, "g1", "--per-channel", "int8")
    cfg = write_config(tmp_path, torch_config(2, "g1"), "f.json")
    res = invoke("export", cfg, "-o", tmp_path / "f.onnx", "--input-shape", "2,4,5,4")
    assert res.exit_code == 0, res.output
    ort = get_runtime("onnxruntime")
    x = seeded_input(input_shape(2, "g1", 2))
    yq = ort.run(model, {"input": x})[0]
    yf = ort.run(onnx.load(tmp_path / "f.onnx"), {"input": x})[0]
    scale = reference_output(model, x.astype(np.float64)).out_params.scale
    assert np.abs(yq - yf).max() / float(scale) < 3


def _neighbourhood(model):
    """The exported model's QDQ ConvTranspose alone (from its input Q to its output DQ)."""
    from convt_tools.quant import neighbourhood

    node = next(n for n in model.graph.node if n.op_type == "ConvTranspose")
    index = {o: n for n in model.graph.node for o in n.output}
    start = index[index[node.input[0]].input[0]].input[0]          # DQ <- Q <- start
    users = {i: n for n in model.graph.node for i in n.input}
    end = users[users[node.output[0]].output[0]].output[0]         # Q -> DQ -> end
    c_in = next(t for t in model.graph.initializer if t.name == "W_quantized").dims[0]
    return neighbourhood(model, start, end, c_in, 2), c_in


@pytest.mark.parametrize("runtime", [
    "onnxruntime", pytest.param("openvino", marks=pytest.mark.runtimes),
    pytest.param("tract", marks=pytest.mark.runtimes)])
def test_saved_keras_layer_exports_within_one_lsb(tmp_path, runtime):
    """A saved Keras model's layer (channels_last, odd crop, relu): the QDQ ConvTranspose
    between the layout Transposes, crop Slice and activation is within 1 LSB."""
    rt = runtime_or_skip(runtime)
    out = tmp_path / "up.onnx"
    res = invoke("export", KERAS_MODEL, "--layer", "up_1", "-o", out,
                 "--quantize", "int8", "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["quantization"]["form"] == "axis1"
    sub, c_in = _neighbourhood(onnx.load(out))
    x = seeded_input((2, c_in, 3, 4))
    y = rt.run(sub, {sub.graph.input[0].name: x})[0]
    cmp = compare_lsb(y, reference_output(sub, x.astype(np.float64)))
    assert cmp.passed, cmp.describe()


@pytest.mark.runtimes
@pytest.mark.parametrize("kind, acts, precision", [
    ("g1", "int8", "i8"), ("grp", "int8", "i8"), ("g1", "uint8", "f32"), ("dw", "int8", "f32"),
])
def test_openvino_runs_the_export_in_int8_only_for_group_1_symmetric_int8(tmp_path, kind, acts,
                                                                        precision):
    """What OpenVINO really runs (its compiled model's Deconvolution ``runtimePrecision``,
    f32 pinned as the adapter does): i8 for group-1 nodes with int8 activations at zero
    point 0 (the group split makes a grouped layer group-1 nodes), f32 otherwise."""
    ov = need("openvino")
    _export(tmp_path, 2, kind, "--per-channel", acts)
    core = ov.Core()
    compiled = core.compile_model(core.read_model(str(tmp_path / "q.onnx")), "CPU",
                                  {"INFERENCE_PRECISION_HINT": "f32"})
    found = {op.get_rt_info()["runtimePrecision"].astype(str)
             for op in compiled.get_runtime_model().get_ops()
             if op.get_rt_info()["layerType"].astype(str) == "Deconvolution"}
    assert found == {precision}


def _dilated(rank, kind):
    cfg = torch_config(rank, kind)
    cfg.update(dilation=2, output_padding=0)
    return cfg


def _export_cfg(tmp_path, cfg, shape, *extra):
    path = write_config(tmp_path, cfg)
    out = tmp_path / "d.onnx"
    res = invoke("export", path, "-o", out, "--input-shape", shape_arg(shape), "--quantize",
                 "int8", "--json", *extra)
    assert res.exit_code == 0, res.output
    return onnx.load(out), json.loads(res.stdout)["quantization"]


def test_strided_dilated_group_one_layer_gets_uint8_activations_for_openvino(tmp_path):
    """OpenVINO's int8 Deconvolution is wrong with stride > 1 and dilation > 1 (q-check's
    reading, fixtures/quant_dilated); by default such a layer gets uint8 activations, which
    OpenVINO runs in f32."""
    _, q = _export_cfg(tmp_path, _dilated(2, "g1"), input_shape(2, "g1", 2))
    assert q["input"]["type"] == "uint8"
    assert any("dilation > 1" in n for n in q["notes"])


def test_explicit_int8_on_a_strided_dilated_layer_is_kept_with_a_warning(tmp_path):
    _, q = _export_cfg(tmp_path, _dilated(2, "g1"), input_shape(2, "g1", 2),
                       "--activations", "int8")
    assert q["input"]["type"] == "int8"
    assert any(n.startswith("warning: int8 activations asked; openvino") for n in q["notes"])


def test_strided_dilated_layer_without_openvino_stays_int8(tmp_path):
    _, q = _export_cfg(tmp_path, _dilated(2, "g1"), input_shape(2, "g1", 2), "--target",
                       "onnxruntime,tract")
    assert q["input"]["type"] == "int8"


@pytest.mark.parametrize("name", [
    "onnxruntime", pytest.param("openvino", marks=pytest.mark.runtimes),
    pytest.param("tract", marks=pytest.mark.runtimes)])
@pytest.mark.parametrize("rank", RANKS)
@pytest.mark.parametrize("kind", KINDS)
def test_strided_dilated_exports_within_one_lsb(tmp_path, name, rank, kind):
    runtime = runtime_or_skip(name)
    model, _ = _export_cfg(tmp_path, _dilated(rank, kind), input_shape(rank, kind, 2))
    _check(runtime, model, rank, kind)
