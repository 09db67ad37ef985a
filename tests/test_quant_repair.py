"""``convt repair`` on QDQ ConvTranspose models (issue 20), on the real quantize_static and
hand-made fixtures of ``fixtures/quant/``.

With ``--float``: the precision-losing forms (grouped weights with scales shared across
groups, depthwise collapsed to one scale, per-input-channel scales) become per-output-channel
weights, each channel within half a step of the float weights, running within 1 LSB of the
fake-quant reference. Without it: only what the model determines is fixed (identical
dequantized weights), the rest is refused with the reason and nothing written.
"""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

from convt_tools.quant import (
    compare_lsb, model_qdq_nodes, model_reference, out_channel_view, weight_granularity,
)
from convt_tools.runtimes import get_runtime
from support.cli import invoke, run_convt
from support.optional import runtime_or_skip
from support.quant_export import seeded_input, shape_arg, torch_config, write_config
from support.quant_fixtures import QUANT, model_path

# quantize_static per_channel=True on grouped layers without bias (scales shared across
# groups) and on depthwise layers (one scale), every rank; hand-made wrong forms.
LOSSY = [f"r{r}_grp_b0__pc_{a}" for r in (1, 2, 3) for a in ("s8", "u8")] + \
    [f"r{r}_dw_b{b}__pc_{a}" for r in (1, 2, 3) for b in (0, 1) for a in ("s8", "u8")] + \
    ["r2_grp_b0__WRONG_axis1_shared_groups", "r2_grp_b1__WRONG_axis1_shared_groups",
     "r2_dw_b0__WRONG_dw_one_scale", "r2_dw_b1__WRONG_dw_one_scale",
     "r2_grp_b1__WRONG_axis0_cin_scales", "r2_g1_b1__WRONG_axis0_cin_scales"]


def _float_path(name):
    return QUANT / "float" / f"{name.split('__')[0]}.onnx"


def _repair(tmp_path, name, *extra):
    out = tmp_path / "repaired.onnx"
    res = invoke("repair", model_path(name), "-o", out, "--json", *extra)
    return res, out


def _weights(model):
    """The dequantized W of the repaired model in ONNX layout (the group split's nodes
    joined) and each output channel's scale."""
    nodes = [q for _, q in model_qdq_nodes(model)]
    w = np.concatenate([q.weight for q in nodes], axis=0)
    group = nodes[0].attrs.group if len(nodes) == 1 else len(nodes)
    scales = []
    for q in nodes:
        s, _ = q.w.expand(q.w_int.shape)
        per = out_channel_view(np.ascontiguousarray(np.broadcast_to(s, q.w_int.shape)),
                               q.attrs.group)
        scales.append(per.reshape(per.shape[0], -1).max(1))
    return w, group, np.concatenate(scales), nodes


@pytest.mark.parametrize("name", LOSSY)
def test_float_repair_gives_per_output_channel_weights(tmp_path, name):
    res, out = _repair(tmp_path, name, "--float", _float_path(name), "--target", "onnxruntime")
    assert res.exit_code == 0, res.output
    for q in (q for _, q in model_qdq_nodes(onnx.load(out))):
        assert weight_granularity(q.w, q.w_int.shape, q.attrs.group).meaning \
            == "per_output_channel"


@pytest.mark.parametrize("name", LOSSY)
def test_float_repair_weights_within_half_a_step_per_channel(tmp_path, name):
    res, out = _repair(tmp_path, name, "--float", _float_path(name), "--target", "onnxruntime")
    assert res.exit_code == 0, res.output
    w_float = onnx.numpy_helper.to_array(
        next(t for t in onnx.load(_float_path(name)).graph.initializer if t.dims and
             len(t.dims) > 2)).astype(np.float64)
    w, group, scales, _ = _weights(onnx.load(out))
    err = np.abs(out_channel_view(w - w_float, group)).reshape(len(scales), -1).max(1)
    assert (err <= scales / 2 * (1 + 1e-6)).all(), (err / scales).max()


def _fixture_input(name):
    return np.load(QUANT / "float" / f"{name.split('__')[0]}.npz")["x"].astype(np.float32)


def _within_one_lsb(runtime, model, x):
    y = runtime.run(model, {model.graph.input[0].name: x})[0]
    cmp = compare_lsb(y, model_reference(model, x.astype(np.float64)))
    assert cmp.passed, cmp.describe()


@pytest.mark.parametrize("name", LOSSY)
def test_float_repair_runs_within_one_lsb_on_onnxruntime(tmp_path, name):
    res, out = _repair(tmp_path, name, "--float", _float_path(name))
    assert res.exit_code == 0, res.output
    _within_one_lsb(get_runtime("onnxruntime"), onnx.load(out), _fixture_input(name))


@pytest.mark.runtimes
@pytest.mark.parametrize("runtime", ["openvino", "tract"])
@pytest.mark.parametrize("name", LOSSY)
def test_float_repair_runs_within_one_lsb_on_openvino_and_tract(tmp_path, runtime, name):
    rt = runtime_or_skip(runtime)
    res, out = _repair(tmp_path, name, "--float", _float_path(name))
    assert res.exit_code == 0, res.output
    _within_one_lsb(rt, onnx.load(out), _fixture_input(name))


@pytest.mark.runtimes
@pytest.mark.parametrize("name", ["r2_g1_b0__RIGHT_pertensor_wzp-17_s8sym",
                                  "r2_g1_b1__RIGHT_pertensor_wzp-22_s8sym",
                                  "r2_g1_b1__pt_s8sym_wasym"])
def test_float_repair_fixes_what_openvino_computes_wrongly(tmp_path, name):
    """A nonzero per-tensor weight zero point with int8 activations at zero point 0, group 1:
    OpenVINO is 131-136 LSB off (fixtures/quant); the repaired model is within 1 LSB."""
    ov = runtime_or_skip("openvino")
    x = _fixture_input(name)
    original = onnx.load(model_path(name))
    before = compare_lsb(ov.run(original, {"x": x})[0], model_reference(original, x))
    assert before.max_lsb > 100
    res, out = _repair(tmp_path, name, "--float", _float_path(name))
    assert res.exit_code == 0, res.output
    _within_one_lsb(ov, onnx.load(out), x)


@pytest.mark.parametrize("name", ["r2_g1_b0__RIGHT_pertensor_wzp-17_s8sym",
                                  "r2_g1_b1__pt_s8sym_wasym"])
def test_openvino_zero_point_case_is_refused_without_float(tmp_path, name):
    res, out = _repair(tmp_path, name)
    assert res.exit_code == 1
    assert "asymmetric" in res.stderr and "OpenVINO" in res.stderr
    assert not out.exists()


# ---------------------------------------------------------------- without a float source

@pytest.mark.parametrize("name, targets, form", [
    ("r2_grp_b0__WRONG_axis1_shared_groups", "onnxruntime,openvino,tract", "split"),
    ("r2_grp_b0__WRONG_axis1_shared_groups", "onnxruntime,openvino", "blocked"),
    ("r2_grp_b0__pc_s8", "onnxruntime,openvino,tract", "split"),
    ("r3_grp_b0__pc_u8", "onnxruntime,openvino", "split"),     # opset 13: no blocked DQ
    ("r2_dw_b1__WRONG_dw_one_scale", "onnxruntime,openvino,tract", "axis0_out"),
    ("r2_dw_b1__pc_s8", "onnxruntime,openvino,tract", "axis0_out"),
    ("r2_grp_b1__RIGHT_blocked_s8sym", "onnxruntime,openvino,tract", "split"),
])
def test_reexpressed_weights_dequantize_identically(tmp_path, name, targets, form):
    res, out = _repair(tmp_path, name, "--target", targets)
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["nodes"][0]["form"] == form
    before = model_qdq_nodes(onnx.load(model_path(name)))[0][1].weight
    after, _, _, _ = _weights(onnx.load(out))
    np.testing.assert_array_equal(after, before)


@pytest.mark.parametrize("name", ["r2_g1_b1__WRONG_bias_scale_x2",
                                  "r2_g1_b1__WRONG_bias_scale_pt_x2"])
def test_bias_scale_becomes_x_scale_times_w_scale(tmp_path, name):
    res, out = _repair(tmp_path, name)
    assert res.exit_code == 0, res.output
    q = model_qdq_nodes(onnx.load(out))[0][1]
    w_scale = np.broadcast_to(q.w.scale, (q.b_int.size,)).astype(np.float32)
    want = (np.float32(q.x.scale) * w_scale).astype(np.float32)
    np.testing.assert_array_equal(np.broadcast_to(q.b.scale, want.shape), want)


def test_bias_values_move_by_at_most_half_a_new_step(tmp_path):
    name = "r2_g1_b1__WRONG_bias_scale_x2"
    res, out = _repair(tmp_path, name)
    assert res.exit_code == 0, res.output
    before = model_qdq_nodes(onnx.load(model_path(name)))[0][1]
    after = model_qdq_nodes(onnx.load(out))[0][1]
    assert (np.abs(after.bias - before.bias) <= after.b.scale / 2 * (1 + 1e-6)).all()


def test_zero_point_type_is_fixed(tmp_path):
    name = "r2_g1_b1__WRONG_zp_wrong_type"
    assert model_qdq_nodes(onnx.load(model_path(name)))[0][1].w.zero_point.dtype == np.uint8
    res, out = _repair(tmp_path, name)
    assert res.exit_code == 0, res.output
    assert model_qdq_nodes(onnx.load(out))[0][1].w.zero_point.dtype == np.int8


@pytest.mark.parametrize("name, reason", [
    ("r2_g1_b1__WRONG_int_other_scale", "not in the model"),
    ("r2_g1_b1__WRONG_int_outch_under_pertensor", "not in the model"),
    ("r2_g1_b1__WRONG_int_pertensor_under_axis1", "not in the model"),
    ("r2_grp_b1__WRONG_int_outch_under_axis0", "per input channel"),
    ("r2_g1_b1__WRONG_axis0_cin_scales", "per input channel"),
    ("r2_g1_b1__WRONG_zp_out_of_range", "outside the weights' type"),
    ("r2_g1_b1__WRONG_zp_wrapped_w", "reinterpreted"),
    ("r2_g1_b1__WRONG_zp_wrapped_act", "zero point is -128"),
    ("r2_grp_b1__WRONG_scale_len_axis1", "expected 4 values"),
])
def test_undetermined_forms_are_refused_with_the_reason(tmp_path, name, reason):
    res, out = _repair(tmp_path, name)
    assert res.exit_code == 1
    assert reason in res.stderr
    assert not out.exists()


@pytest.mark.parametrize("name", ["r2_g1_b1__pc_s8", "r2_dw_b1__RIGHT_dw_axis0_s8sym",
                                  "r2_grp_b1__pt_s8"])
def test_right_forms_are_left_alone(tmp_path, name):
    res, _ = _repair(tmp_path, name)
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["nodes"] == []


# ---------------------------------------------------------------- CLI contract

def test_repair_never_overwrites_its_input(tmp_path):
    src = tmp_path / "m.onnx"
    src.write_bytes(model_path("r2_grp_b0__pc_s8").read_bytes())
    res = invoke("repair", src, "-o", src)
    assert res.exit_code == 2
    assert src.read_bytes() == model_path("r2_grp_b0__pc_s8").read_bytes()


def test_float_source_is_never_the_output(tmp_path):
    flt = tmp_path / "f.onnx"
    flt.write_bytes(_float_path("r2_grp_b0__pc_s8").read_bytes())
    res = invoke("repair", model_path("r2_grp_b0__pc_s8"), "-o", flt, "--float", flt)
    assert res.exit_code == 2
    assert flt.read_bytes() == _float_path("r2_grp_b0__pc_s8").read_bytes()


def test_float_option_on_a_float_model_is_refused(tmp_path):
    res = invoke("repair", _float_path("r2_g1_b1__pc_s8"), "-o", tmp_path / "o.onnx",
                 "--float", _float_path("r2_g1_b1__pc_s8"))
    assert (res.exit_code, "no QDQ ConvTranspose" in res.stderr) == (2, True)


def test_float_option_with_intent_is_refused(tmp_path):
    res = invoke("repair", model_path("r2_g1_b1__pc_s8"), "-o", tmp_path / "o.onnx",
                 "--intent", "tf", "--float", _float_path("r2_g1_b1__pc_s8"))
    assert (res.exit_code, "without --intent" in res.stderr) == (2, True)


def test_unknown_qdq_target_lists_the_known_ones(tmp_path):
    res = invoke("repair", model_path("r2_g1_b1__pc_s8"), "-o", tmp_path / "o.onnx",
                 "--target", "torch")
    assert (res.exit_code, "onnxruntime, openvino, tract, tensorrt" in res.stderr) == (2, True)


def test_float_source_of_another_layer_is_refused(tmp_path):
    res = invoke("repair", model_path("r2_grp_b0__pc_s8"), "-o", tmp_path / "o.onnx",
                 "--float", _float_path("r2_g1_b1__pc_s8"))
    assert res.exit_code == 2
    assert "float" in res.stderr and not (tmp_path / "o.onnx").exists()


def test_torch_source_with_weights_as_float(tmp_path):
    """export --quantize --per-tensor of a torch layer, then repair --float with the torch
    config and its weights: per-output-channel weights within half a step."""
    cfg = write_config(tmp_path, torch_config(2, "grp"))
    rng = np.random.default_rng(0)
    weight = rng.uniform(-1, 1, (4, 3, 3, 3)).astype(np.float32)
    weight[:2] *= 0.1                       # one group's channels much smaller
    np.savez(tmp_path / "w.npz", weight=weight, bias=rng.uniform(-1, 1, 6).astype(np.float32))
    q = tmp_path / "q.onnx"
    res = invoke("export", cfg, "-w", tmp_path / "w.npz", "-o", q, "--input-shape",
                 shape_arg((1, 4, 5, 4)), "--quantize", "int8", "--per-tensor")
    assert res.exit_code == 0, res.output
    out = tmp_path / "r.onnx"
    res = invoke("repair", q, "-o", out, "--float", cfg, "--float-weights", tmp_path / "w.npz")
    assert res.exit_code == 0, res.output
    w, group, scales, _ = _weights(onnx.load(out))
    err = np.abs(out_channel_view(w - weight, group)).reshape(len(scales), -1).max(1)
    assert (err <= scales / 2 * (1 + 1e-6)).all()
    _within_one_lsb(get_runtime("onnxruntime"), onnx.load(out), seeded_input((1, 4, 5, 4)))


def test_repair_as_a_subprocess(tmp_path):
    out = tmp_path / "r.onnx"
    proc = run_convt("repair", model_path("r2_dw_b1__pc_s8"), "-o", out, "--float",
                     _float_path("r2_dw_b1__pc_s8"), "--target", "onnxruntime")
    assert proc.returncode == 0, proc.stderr
    assert "form axis0_out" in proc.stdout and out.exists()


# ---------------------------------------------------------------- OpenVINO's strided dilated i8

DILATED = QUANT.parent / "quant_dilated" / "r1_s2_d2.onnx"


def test_strided_dilated_node_is_refused_where_blocked_is_not_available(tmp_path):
    """A right model OpenVINO computes wrongly in i8 (q-check's fixtures/quant_dilated):
    with tract also targeted, no same-values form makes OpenVINO run it in float."""
    out = tmp_path / "r.onnx"
    res = invoke("repair", DILATED, "-o", out)
    assert res.exit_code == 1
    assert "dilation > 1" in res.stderr and "tract refuse" in res.stderr
    assert not out.exists()


def _dilated_int8_export(tmp_path):
    cfg = torch_config(2, "g1")
    cfg.update(dilation=2, output_padding=0)
    q = tmp_path / "q.onnx"
    res = invoke("export", write_config(tmp_path, cfg), "-o", q, "--input-shape", "1,4,5,4",
                 "--quantize", "int8", "--activations", "int8")
    assert res.exit_code == 0, res.output
    return q


def test_strided_dilated_node_becomes_blocked_for_onnxruntime_and_openvino(tmp_path):
    out = tmp_path / "r.onnx"
    res = invoke("repair", _dilated_int8_export(tmp_path), "-o", out, "--json", "--target",
                 "onnxruntime,openvino")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["nodes"][0]["form"] == "blocked"


@pytest.mark.runtimes
def test_strided_dilated_repair_runs_within_one_lsb_on_openvino(tmp_path):
    ov = runtime_or_skip("openvino")
    q = _dilated_int8_export(tmp_path)
    x = seeded_input((1, 4, 5, 4))
    before = compare_lsb(ov.run(onnx.load(q), {"input": x})[0],
                         model_reference(onnx.load(q), x.astype(np.float64)))
    out = tmp_path / "r.onnx"
    res = invoke("repair", q, "-o", out, "--target", "onnxruntime,openvino")
    assert res.exit_code == 0, res.output
    _within_one_lsb(ov, onnx.load(out), x)
    assert before.max_lsb > 1          # what the repair avoids (measured 13 LSB here)
