"""``convt export --quantize int8`` (issue 20): the QDQ model's weights, bias and forms.

What the model holds is read back from the written file; the per-runtime LSB checks
against the fake-quant reference are in tests/test_quant_export_runtimes.py.
"""

from __future__ import annotations

import json
import re

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from convt_tools.quant import choose_form, out_channel_view
from support.cli import invoke
from support.quant_export import (
    KINDS, RANKS, input_shape, shape_arg, torch_config, write_config,
)

KERAS_MODEL = Path(__file__).resolve().parents[1] / "examples" / "model.keras"


def _export(tmp_path, rank, kind, *extra, name="q.onnx"):
    cfg = write_config(tmp_path, torch_config(rank, kind))
    out = tmp_path / name
    res = invoke("export", cfg, "-o", out, "--input-shape", shape_arg(input_shape(rank, kind)),
                 "--json", *extra)
    assert res.exit_code == 0, res.output
    return out, json.loads(res.stdout)


def _float_w(tmp_path, rank, kind):
    cfg = write_config(tmp_path, torch_config(rank, kind), "float.json")
    out = tmp_path / "float.onnx"
    res = invoke("export", cfg, "-o", out, "--input-shape", shape_arg(input_shape(rank, kind)))
    assert res.exit_code == 0, res.output
    inits = {t.name: numpy_helper.to_array(t) for t in onnx.load(out).graph.initializer}
    return inits["W"].astype(np.float64), inits["B"].astype(np.float64)


def _inits(path):
    return {t.name: numpy_helper.to_array(t) for t in onnx.load(path).graph.initializer}


def _dq_weights(path):
    """(dequantized W in ONNX layout, per-output-channel scales) of an exported model,
    concatenating the group split's parts."""
    inits = _inits(path)
    model = onnx.load(path)
    parts = sorted(n for n in inits if n.startswith("W_quantized"))
    ws, scales = [], []
    for name in parts:
        suffix = name[len("W_quantized"):]
        q = inits[name].astype(np.float64)
        s = inits[f"W_scale{suffix}"].astype(np.float64)
        node = next(n for n in model.graph.node if n.input and n.input[0] == name)
        at = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        if s.ndim == 0:
            full = s
        elif at.get("block_size"):
            full = np.repeat(s, at["block_size"], axis=at["axis"])
        else:
            full = s.reshape([-1 if i == at["axis"] else 1 for i in range(q.ndim)])
        ws.append(q * full)
        scales.append(s)
    return np.concatenate(ws, axis=0), scales


@pytest.mark.parametrize("rank", RANKS)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("granularity", ["--per-channel", "--per-tensor"])
def test_dequantized_weights_within_half_a_step(tmp_path, rank, kind, granularity):
    w, _ = _float_w(tmp_path, rank, kind)
    path, info = _export(tmp_path, rank, kind, "--quantize", "int8", granularity)
    wq, _ = _dq_weights(path)
    group = {"g1": 1, "grp": 2, "dw": 4}[kind]
    if granularity == "--per-channel":
        step = np.abs(out_channel_view(w, group)).reshape(w.shape[1] * group, -1).max(1) / 127
        err = np.abs(out_channel_view(wq - w, group)).reshape(len(step), -1).max(1)
    else:
        step = np.array([np.abs(w).max() / 127])
        err = np.array([np.abs(wq - w).max()])
    assert (err <= step / 2 * (1 + 1e-6)).all(), (err / step).max()


@pytest.mark.parametrize("rank", RANKS)
@pytest.mark.parametrize("kind", KINDS)
def test_each_output_channel_uses_the_full_int8_range(tmp_path, rank, kind):
    path, _ = _export(tmp_path, rank, kind, "--quantize", "int8")
    group = {"g1": 1, "grp": 2, "dw": 4}[kind]
    inits = _inits(path)
    q = np.concatenate([inits[n] for n in sorted(inits) if n.startswith("W_quantized")], axis=0)
    per_channel = np.abs(out_channel_view(q.astype(np.int64), group)).reshape(
        q.shape[1] * group, -1).max(1)
    assert per_channel.tolist() == [127] * len(per_channel)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("granularity", ["--per-channel", "--per-tensor"])
def test_bias_is_int32_at_x_scale_times_w_scale(tmp_path, kind, granularity):
    _, b = _float_w(tmp_path, 2, kind)
    path, info = _export(tmp_path, 2, kind, "--quantize", "int8", granularity)
    inits = _inits(path)
    x_scale = np.float32(info["quantization"]["input"]["scale"])
    names = sorted(n for n in inits if n.startswith("B_quantized"))
    bq = np.concatenate([inits[n].reshape(-1) for n in names])
    bs = np.concatenate([np.broadcast_to(inits[n.replace("quantized", "scale")],
                                         inits[n].shape) for n in names])
    ws = np.concatenate([np.broadcast_to(inits[n.replace("B_quantized", "W_scale")]
                                         .reshape(-1)[:inits[n].size] if
                                         inits[n.replace("B_quantized", "W_scale")].ndim < 2
                                         else inits[n.replace("B_quantized", "W_scale")]
                                         .reshape(inits[n].size, -1)[:, 0], inits[n].shape)
                         for n in names])
    assert inits[names[0]].dtype == np.int32
    np.testing.assert_array_equal(bs, (x_scale * ws.astype(np.float32)).astype(np.float32))
    np.testing.assert_array_equal(bq, np.round(b / bs.astype(np.float64)).astype(np.int32))


@pytest.mark.parametrize("targets, kind, form, axis, nodes", [
    ("onnxruntime,openvino,tract", "g1", "axis1", 1, 1),
    ("onnxruntime,openvino,tract", "grp", "split", 1, 2),
    ("onnxruntime,openvino", "grp", "blocked", 0, 1),
    ("onnxruntime,openvino,tract", "dw", "axis0_out", 0, 1),
    ("tensorrt", "g1", "axis0_in", 0, 1),
    ("tensorrt", "grp", "axis0_in", 0, 1),
    ("tensorrt", "dw", "axis0_out", 0, 1),
])
def test_form_follows_the_targets(tmp_path, targets, kind, form, axis, nodes):
    path, info = _export(tmp_path, 2, kind, "--quantize", "int8", "--target", targets)
    q = info["quantization"]
    assert (q["form"], q["weight_axis"], q["nodes"]) == (form, axis, nodes)
    convs = [n for n in onnx.load(path).graph.node if n.op_type == "ConvTranspose"]
    assert len(convs) == nodes


def test_blocked_scale_is_per_output_channel(tmp_path):
    path, info = _export(tmp_path, 2, "grp", "--quantize", "int8", "--target", "onnxruntime")
    scale = _inits(path)["W_scale"]
    assert scale.shape == (2, 3, 3, 3)      # (group, C_out/group, k, k)
    assert info["quantization"]["weight_block_size"] == 2
    assert onnx.load(path).opset_import[0].version == 21


def test_blocked_needs_opset_21_else_split():
    form, notes = choose_form(4, 6, 2, per_channel=True, targets=("onnxruntime",), opset=17)
    assert form == "split"
    assert "opset 21" in notes[0]


def test_uint8_activations_have_a_zero_point_in_range(tmp_path):
    path, info = _export(tmp_path, 2, "g1", "--quantize", "int8", "--activations", "uint8")
    inits = _inits(path)
    assert inits["x_zero_point"].dtype == np.uint8
    assert 0 < int(inits["x_zero_point"]) < 255


def test_int8_activations_are_symmetric(tmp_path):
    path, _ = _export(tmp_path, 2, "g1", "--quantize", "int8")
    inits = _inits(path)
    assert (inits["x_zero_point"].dtype, int(inits["x_zero_point"])) == (np.int8, 0)


def test_calibration_file_sets_the_input_scale(tmp_path):
    calib = np.full(input_shape(2, "g1", batch=3), 0.5, np.float32)
    calib[0, 0, 0, 0] = -2.54
    np.save(tmp_path / "calib.npy", calib)
    _, info = _export(tmp_path, 2, "g1", "--quantize", "int8", "--calibration",
                      tmp_path / "calib.npy")
    assert info["quantization"]["input"]["scale"] == pytest.approx(2.54 / 127, rel=1e-6)


def test_calibration_seed_changes_the_scales(tmp_path):
    _, a = _export(tmp_path, 2, "g1", "--quantize", "int8", "--calibration-seed", "1", name="a")
    _, b = _export(tmp_path, 2, "g1", "--quantize", "int8", "--calibration-seed", "2", name="b")
    assert a["quantization"]["input"]["scale"] != b["quantization"]["input"]["scale"]


def test_keras_layer_with_activation_quantizes_before_the_activation(tmp_path):
    out = tmp_path / "k.onnx"
    res = invoke("export", "--filters", 3, "--kernel-size", 3, "--strides", 2, "--padding",
                 "same", "--activation", "relu", "--input-shape", "None,5,4,2", "-o", out,
                 "--quantize", "int8")
    assert res.exit_code == 0, res.output
    ops = [n.op_type for n in onnx.load(out).graph.node]
    assert ops.index("DequantizeLinear", ops.index("ConvTranspose")) < ops.index("Relu")


# ---------------------------------------------------------------- bad input

def _bad(tmp_path, *extra):
    cfg = write_config(tmp_path, torch_config(2, "g1"))
    out = tmp_path / "q.onnx"
    res = invoke("export", cfg, "-o", out, "--input-shape", "1,4,5,4", *extra)
    assert not out.exists()
    return res


def test_pickled_calibration_is_refused_without_unpickling(tmp_path):
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    res = _bad(tmp_path, "--quantize", "int8", "--calibration", tmp_path / "obj.npy")
    assert res.exit_code == 2
    assert res.stderr.count("\n") == 1 and "calibration" in res.stderr


def test_calibration_of_the_wrong_shape_names_the_input_shape(tmp_path):
    np.save(tmp_path / "c.npy", np.zeros((2, 3, 5, 4), np.float32))
    res = _bad(tmp_path, "--quantize", "int8", "--calibration", tmp_path / "c.npy")
    assert res.exit_code == 2
    assert "calibration" in res.stderr and "(?, 4, 5, 4)" in res.stderr


def test_non_finite_calibration_is_refused(tmp_path):
    np.save(tmp_path / "c.npy", np.full((2, 4, 5, 4), np.nan, np.float32))
    res = _bad(tmp_path, "--quantize", "int8", "--calibration", tmp_path / "c.npy")
    assert (res.exit_code, "NaN" in res.stderr) == (2, True)


@pytest.mark.parametrize("flag", [["--per-tensor"], ["--activations", "uint8"],
                                  ["--calibration-seed", "3"]])
def test_quantize_options_need_quantize(tmp_path, flag):
    res = _bad(tmp_path, *flag)
    assert (res.exit_code, "--quantize" in res.stderr) == (2, True)


def test_two_calibration_sources_are_refused(tmp_path):
    np.save(tmp_path / "c.npy", np.zeros((2, 4, 5, 4), np.float32))
    res = _bad(tmp_path, "--quantize", "int8", "--calibration", tmp_path / "c.npy",
               "--calibration-seed", "1")
    assert (res.exit_code, "calibration_seed" in res.stderr) == (2, True)


def test_unknown_target_lists_the_known_ones(tmp_path):
    res = _bad(tmp_path, "--quantize", "int8", "--target", "tflite")
    assert res.exit_code == 2
    assert "onnxruntime, openvino, tract, tensorrt" in res.stderr


def test_calibration_file_is_never_the_output(tmp_path):
    np.save(tmp_path / "c.npy", np.zeros((2, 4, 5, 4), np.float32))
    cfg = write_config(tmp_path, torch_config(2, "g1"))
    res = invoke("export", cfg, "-o", tmp_path / "c.npy", "--input-shape", "1,4,5,4",
                 "--quantize", "int8", "--calibration", tmp_path / "c.npy")
    assert res.exit_code == 2
    assert np.load(tmp_path / "c.npy").shape == (2, 4, 5, 4)


@pytest.mark.runtimes
@pytest.mark.parametrize("kind, extra, runtimes", [
    ("g1", [], "onnxruntime,openvino,tract"),
    ("grp", [], "onnxruntime,openvino,tract"),
    ("grp", ["--target", "onnxruntime,openvino"], "onnxruntime,openvino"),
    ("dw", [], "onnxruntime,openvino,tract"),
    ("g1", ["--per-tensor"], "onnxruntime,openvino,tract"),
    ("grp", ["--activations", "uint8"], "onnxruntime,openvino,tract"),
])
def test_check_finds_nothing_wrong_in_the_export_for_its_targets(tmp_path, kind, extra,
                                                                 runtimes):
    """No QDQ finding (CT040-CT049) at warning or error for the runtimes it was made for
    (grouped layers keep check's float CT021 warning about onnx.reference)."""
    path, _ = _export(tmp_path, 2, kind, "--quantize", "int8", *extra)
    res = invoke("check", path, "--runtime", runtimes)
    assert res.exit_code == 0, res.output
    assert not re.search(r"(WARNING|ERROR)\s+CT04", res.output), res.output


def test_saved_model_folder_export_quantizes_every_layer(tmp_path):
    out = tmp_path / "outdir"
    res = invoke("export", KERAS_MODEL, "-o", f"{out}/", "--quantize", "int8")
    assert res.exit_code == 0, res.output
    models = sorted(out.glob("*.onnx"))
    assert len(models) == 2
    for path in models:
        ops = [n.op_type for n in onnx.load(path).graph.node]
        assert ops.count("QuantizeLinear") == 2, (path.name, ops)


def test_keras_saved_model_as_the_float_source_of_a_repair(tmp_path):
    q = tmp_path / "q.onnx"
    res = invoke("export", KERAS_MODEL, "--layer", "up_2", "-o", q, "--quantize",
                 "int8", "--per-tensor")
    assert res.exit_code == 0, res.output
    out = tmp_path / "r.onnx"
    res = invoke("repair", q, "-o", out, "--float", KERAS_MODEL, "--target",
                 "onnxruntime", "--json")
    assert res.exit_code == 0, res.output
    node = json.loads(res.stdout)["nodes"][0]
    assert (node["form"], node["weight_max_error_in_steps"] <= 0.5) == ("axis1", True)
