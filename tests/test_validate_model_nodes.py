"""convt validate --model MODEL without a config: every ConvTranspose node (float or QDQ) of a
model made elsewhere, against the reference of its own ONNX semantics, on each runtime.

Judged on the real-tool fixtures of fixtures/quant/: OpenVINO 2026.4 computes the right
per-tensor weight-zero-point models wrongly (131-136 LSB measured there), every other
runtime/model pair that ran matched the int8 reference."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper
from support.cli import run_convt
from support.optional import runtime_or_skip, runtime_params
from support.quant_fixtures import DILATED, QUANT, entry, model_path

from convt_tools.runtimes import get_runtime
from convt_tools.validate.nodes import validate_model_nodes

# one of each kind of form (ranks 1-3, groups 1 / 2 / depthwise, blocked, quantize_static)
SAMPLE = ["r2_g1_b1__pc_s8", "r2_grp_b1__pt_s8", "r2_dw_b1__pc_s8_ovr_axis0",
          "r2_grp_b1__RIGHT_blocked_s8sym", "r1_g1_b1__RIGHT_axis1_s8sym",
          "r3_dw_b1__RIGHT_dw_axis0_s8sym", "r2_g1_b1__RIGHT_pertensor_u8",
          "r2_grp_b0__WRONG_axis1_shared_groups", "r2_g1_b0__WRONG_int_other_scale"]
OV_WRONG = ["r2_g1_b1__pt_s8sym_wasym", "r2_g1_b1__RIGHT_pertensor_wzp-22_s8sym",
            "r2_g1_b0__WRONG_zp_wrapped_w"]


def _status(name, runtime):
    (res,), = validate_model_nodes(str(model_path(name)), [runtime])
    return res


@pytest.mark.parametrize("name", SAMPLE)
def test_onnxruntime_passes_right_and_consistent_models(name):
    assert _status(name, get_runtime("onnxruntime")).status == "PASS"


@pytest.mark.runtimes
@pytest.mark.parametrize("name", SAMPLE)
def test_openvino_passes_where_it_matched_the_reference(name):
    assert _status(name, runtime_or_skip("openvino")).status == "PASS"


@pytest.mark.runtimes
@pytest.mark.parametrize("name", [n for n in SAMPLE if not entry(n)["tract"]])
def test_tract_passes_where_it_ran(name):
    assert _status(name, runtime_or_skip("tract")).status == "PASS"


@pytest.mark.runtimes
@pytest.mark.parametrize("name", OV_WRONG)
def test_openvino_zero_point_case_is_caught_in_lsb(name):
    res = _status(name, runtime_or_skip("openvino"))
    assert res.status == "FAIL" and "LSB" in res.message


@pytest.mark.parametrize("name", OV_WRONG)
def test_onnxruntime_computes_the_zero_point_case_right(name):
    assert _status(name, get_runtime("onnxruntime")).status == "PASS"


@pytest.mark.runtimes
def test_tract_refusing_blocked_dq_is_an_error_result():
    res = _status("r2_grp_b1__RIGHT_blocked_s8sym", runtime_or_skip("tract"))
    assert res.status == "ERROR" and "W_DQ (DequantizeLinear)" in res.error


def test_a_node_without_defined_meaning_is_an_error_saying_why():
    res = _status("r2_grp_b1__WRONG_scale_len_axis1", get_runtime("onnxruntime"))
    assert res.status == "ERROR" and "8 values for axis 1 of length 4" in res.error


@pytest.mark.parametrize("runtime", runtime_params(["onnxruntime", "openvino", "tract"]))
def test_float_model_passes_with_the_float_tolerance(runtime):
    rt = runtime_or_skip(runtime)
    (res,), = validate_model_nodes(str(QUANT / "float" / "r3_grp_b1.onnx"), [rt])
    assert res.status == "PASS" and res.tolerance.rtol > 0


def test_float_model_with_a_wrong_runtime_result_fails(monkeypatch):
    """The comparison can fail: a runtime whose output is shifted by one LSB-sized step."""
    rt = get_runtime("onnxruntime")
    real = type(rt).load

    def shifted(self, model):
        loaded = real(self, model)
        run = loaded.run
        loaded.run = lambda feeds: [run(feeds)[0] + 0.01]
        return loaded
    monkeypatch.setattr(type(rt), "load", shifted)
    (res,), = validate_model_nodes(str(QUANT / "float" / "r2_g1_b1.onnx"), [rt])
    assert res.status == "FAIL"


def test_qdq_tolerance_is_stated_in_lsb_of_the_output_scale():
    res = _status("r2_g1_b1__pc_s8", get_runtime("onnxruntime"))
    assert res.tolerance.source.startswith("1 LSB of the output scale")


def test_ties_are_reported_in_the_notes():
    res = _status("r2_g1_b1__pc_s8", get_runtime("onnxruntime"))
    assert any("rounding ties" in n for n in res.notes)


def test_one_result_per_node_and_runtime(cli, tmp_path):
    res = cli("validate", "--model", model_path("r2_g1_b1__pc_s8"), "--json",
              "--runtime", "onnxruntime,onnx-reference")
    out = json.loads(res.stdout)
    assert [(r["runtime"], r["status"]) for r in out["results"]] == [
        ("onnxruntime", "PASS"), ("onnx-reference", "ERROR")]


def test_junit_has_one_testcase_per_node_and_runtime(cli, tmp_path):
    junit = tmp_path / "r.xml"
    cli("validate", "--model", model_path("r2_g1_b1__pc_s8"), "--junit-xml", junit,
        "--runtime", "onnxruntime,onnx-reference")
    assert junit.read_text().count("<testcase") == 2


@pytest.mark.parametrize("flag,value", [("--weights", "w.npz"), ("--input-shape", "1,5,4,4"),
                                        ("--opset", "13")])
def test_config_options_without_a_config_are_refused(cli, flag, value):
    res = cli("validate", "--model", model_path("r2_g1_b1__pc_s8"), flag, value)
    assert res.exit_code == 2 and flag in res.output


def test_nothing_to_validate_is_a_one_line_error(cli):
    res = cli("validate")
    assert res.exit_code == 2 and "--model MODEL alone" in res.output


@pytest.mark.runtimes
def test_subprocess_openvino_zero_point_case_exits_1():
    runtime_or_skip("openvino")
    res = run_convt("validate", "--model", model_path("r2_g1_b1__pt_s8sym_wasym"), "--runtime",
                    "onnxruntime,openvino")
    assert res.returncode == 1 and "LSB" in res.stdout


@pytest.mark.runtimes
@pytest.mark.parametrize("name", ["r1_s2_d2", "r1_s3_d2", "r2_s2_d2", "r3_s3x1x1_d1x2x1"])
def test_openvino_int8_stride_and_dilation_fault_is_caught(name):
    (res,), = validate_model_nodes(str(DILATED / f"{name}.onnx"), [runtime_or_skip("openvino")])
    assert res.status == "FAIL"


@pytest.mark.runtimes
@pytest.mark.parametrize("name", ["r1_s1_d2", "r2_s2_d1"])
def test_openvino_int8_controls_pass(name):
    (res,), = validate_model_nodes(str(DILATED / f"{name}.onnx"), [runtime_or_skip("openvino")])
    assert res.status == "PASS"


def _two_node_model(path, dtype=np.float32):
    """x -> ConvTranspose (explicit pads, output_padding) -> Relu -> ConvTranspose (SAME_UPPER)."""
    rng = np.random.default_rng(0)
    elem = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    w1 = rng.standard_normal((3, 4, 3, 3)).astype(dtype)
    w2 = rng.standard_normal((4, 2, 2, 2)).astype(dtype)
    nodes = [helper.make_node("ConvTranspose", ["x", "W1"], ["a"], name="up1", strides=[2, 2],
                              pads=[1, 1, 1, 1], output_padding=[1, 1]),
             helper.make_node("Relu", ["a"], ["b"]),
             helper.make_node("ConvTranspose", ["b", "W2"], ["y"], name="up2",
                              auto_pad="SAME_UPPER", strides=[2, 2])]
    graph = helper.make_graph(nodes, "two", [helper.make_tensor_value_info("x", elem, ["N", 3, 5, 4])],
                              [helper.make_tensor_value_info("y", elem, None)],
                              [numpy_helper.from_array(w1, "W1"), numpy_helper.from_array(w2, "W2")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return str(path)


def test_every_node_of_a_model_gets_its_own_result(tmp_path):
    groups = validate_model_nodes(_two_node_model(tmp_path / "two.onnx"),
                                  [get_runtime("onnxruntime")])
    assert [(g[0].name.rsplit(":", 1)[1], g[0].input_shape, g[0].status) for g in groups] == [
        ("up1", (1, 3, 5, 4), "PASS"), ("up2", (1, 4, 10, 8), "PASS")]


def test_float16_model_is_fed_float16_and_judged_with_its_tolerance(tmp_path):
    groups = validate_model_nodes(_two_node_model(tmp_path / "h.onnx", np.float16),
                                  [get_runtime("onnxruntime")])
    assert [(g[0].dtype, g[0].status) for g in groups] == [("float16", "PASS")] * 2
