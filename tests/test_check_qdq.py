"""convt check on QDQ ConvTranspose: findings CT040-CT049, ``quantization`` and ``execution``,
against the real-tool fixtures of fixtures/quant/ (quantize_static outputs, hand-made forms,
what onnxruntime 1.32, OpenVINO 2026.4 and tract 0.23 did with each)."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import numpy_helper
from support.cli import run_convt
from support.quant_fixtures import (
    DILATED, QUANT, dilated_cases, entry, expected_form_codes, model_path, quant_entries,
)

from convt_tools.check import check_model

FORM = {f"CT04{i}" for i in range(7)}
QDQ = [n for n in quant_entries() if not n.endswith("qoperator")]


def _node(name, runtimes=None):
    return check_model(str(model_path(name)), numeric=False, runtimes=runtimes).nodes[0]


@pytest.fixture(scope="module")
def nodes():
    return {n: _node(n) for n in quant_entries()}


@pytest.mark.parametrize("name", quant_entries())
def test_form_findings_flag_every_wrong_form_and_no_right_one(nodes, name):
    found = {f.code for f in nodes[name].findings if f.code in FORM}
    want = expected_form_codes(name)
    assert want <= found and (found == set()) == (want == set())


@pytest.mark.parametrize("name", [n for n in QDQ if ("_rr" in n or "_pct" in n)
                                  and not expected_form_codes(n)])
def test_reduce_range_and_percentile_models_get_no_form_finding(nodes, name):
    """Integers at 64 (reduce_range) and percentile-calibrated activations are right."""
    assert not [f.code for f in nodes[name].findings if f.code in FORM]


def _ov_measured(name):
    e = entry(name)
    d = (e.get("ov_info") or {}).get("deconv_f32")
    if isinstance(d, list):
        return {"i8": "int8", "f32": "float"}[d[0]["runtimePrecision"]]
    return "refused"


@pytest.mark.parametrize("name", QDQ)
def test_openvino_prediction_matches_its_runtime_precision(nodes, name):
    assert nodes[name].execution["openvino"]["execution"] == _ov_measured(name)


@pytest.mark.parametrize("name", QDQ)
def test_onnxruntime_prediction_matches_what_it_did(nodes, name):
    want = "refused" if entry(name)["ort"] else "float"
    assert nodes[name].execution["onnxruntime"]["execution"] == want


@pytest.mark.parametrize("name", QDQ)
def test_tract_refusals_are_predicted(nodes, name):
    refused = nodes[name].execution["tract"]["execution"] == "refused"
    assert refused == bool(entry(name)["tract"])


@pytest.mark.parametrize("name", [n for n in QDQ if entry(n).get("onnxref")])
def test_onnx_reference_refusals_are_predicted(nodes, name):
    assert nodes[name].execution["onnx-reference"]["execution"] == "refused"


@pytest.mark.parametrize("name", QDQ)
def test_openvino_fault_predicted_exactly_where_it_measured_wrong(nodes, name):
    err = entry(name).get("err_lsb", {}).get("ov")
    wrong = isinstance(err, (int, float)) and err > 1
    assert bool(nodes[name].execution["openvino"].get("fault")) == wrong


def test_openvino_zero_point_case_fails_only_when_openvino_is_judged():
    name = "r2_g1_b1__pt_s8sym_wasym"
    codes = lambda rt: {f.code for f in _node(name, rt).findings}  # noqa: E731
    assert ("CT048" in codes("openvino"), "CT048" in codes("onnxruntime,tract")) == (True, False)


def test_tensorrt_row_runs_axis0_and_does_not_take_axis1():
    ax0 = _node("r2_g1_b0__WRONG_axis0_cin_scales", "tensorrt")
    ax1 = _node("r2_g1_b0__pc_s8", "tensorrt")
    assert (ax0.execution["tensorrt"]["execution"], ax1.execution["tensorrt"]["execution"]) == (
        "int8", "refused")


@pytest.mark.parametrize("name", [n for n in QDQ if entry(n)["ort"] is None
                                  and entry(n).get("err_lsb", {}).get("ov", 0) <= 1])
def test_models_every_measured_runtime_computed_right_have_no_error(nodes, name):
    """A documented-only row (TensorRT) or a refusal is never an error by itself."""
    assert not [f.code for f in nodes[name].findings
                if f.severity == "error" and f.code in {"CT047", "CT048", "CT049"}]


def test_axis0_is_info_when_only_tensorrt_is_judged():
    f = [f for f in _node("r2_g1_b0__WRONG_axis0_cin_scales", "tensorrt").findings
         if f.code == "CT040"]
    assert f[0].severity == "info"


def test_integer_finding_carries_its_evidence():
    f = [f for f in _node("r2_g1_b1__WRONG_int_pertensor_under_axis1").findings
         if f.code == "CT046"][0]
    assert "made per tensor" in f.message and "reach the limit" in f.message


def test_json_carries_quantization_and_execution(cli):
    res = cli("check", model_path("r2_grp_b0__pc_s8"), "--json", "--no-numeric")
    node = json.loads(res.stdout)["nodes"][0]
    assert (node["quantization"]["weight"]["meaning"], node["quantization"]["weight"]["axis"],
            node["execution"]["openvino"]["execution"]) == ("axis1_shared_across_groups", 1,
                                                            "float")


def test_json_execution_names_its_source(cli):
    res = cli("check", model_path("r2_g1_b0__RIGHT_blocked_s8sym"), "--json", "--no-numeric")
    tract = json.loads(res.stdout)["nodes"][0]["execution"]["tract"]
    assert tract["execution"] == "refused" and "tract 0.23" in tract["source"]


def test_float_node_has_no_quantization_entry(cli):
    res = cli("check", model_path("r2_g1_b1__pt_u8_qoperator"), "--json", "--no-numeric")
    assert "quantization" not in json.loads(res.stdout)["nodes"][0]


def test_subprocess_scale_length_error_exits_1():
    res = run_convt("check", model_path("r2_grp_b1__WRONG_scale_len_axis1"), "--no-numeric")
    assert res.returncode == 1 and "CT045" in res.stdout


# ---- fixtures/quant_dilated: OpenVINO i8 Deconvolution with stride > 1 and dilation > 1

DILATED_CASES = dilated_cases()


@pytest.mark.parametrize("name", sorted(DILATED_CASES))
def test_openvino_runs_dilated_layers_in_int8_as_predicted(name):
    node = check_model(str(DILATED / f"{name}.onnx"), numeric=False).nodes[0]
    assert node.execution["openvino"]["execution"] == "int8"


@pytest.mark.parametrize("name", sorted(DILATED_CASES))
def test_openvino_dilation_fault_covers_every_measured_wrong_result(name):
    e = DILATED_CASES[name]
    node = check_model(str(DILATED / f"{name}.onnx"), numeric=False).nodes[0]
    predicted = bool(node.execution["openvino"].get("fault"))
    both = max(e["strides"]) > 1 and max(e["dilations"]) > 1
    assert predicted == both and (e["err_lsb"]["ov"] <= 1 or predicted)


def _positive_asymmetric_weights(tmp_path):
    """RIGHT_pertensor_s8sym with its W replaced by a genuine asymmetric int8 quantization of
    |W| (all weights >= 0: MinMax gives zero point -128, as quantize_static's
    WeightSymmetric=False does)."""
    model = onnx.load(model_path("r2_g1_b0__RIGHT_pertensor_s8sym"))
    w = np.abs(numpy_helper.to_array(onnx.load(QUANT / "float" / "r2_g1_b0.onnx").graph.initializer[0]))
    s = np.float32(w.max() / 255)
    q = np.clip(np.round(w / s) - 128, -128, 127).astype(np.int8)
    new = {"W_q": q, "W_scale": s, "W_zp": np.int8(-128)}
    for t in model.graph.initializer:
        if t.name in new:
            t.CopyFrom(numpy_helper.from_array(np.asarray(new[t.name]), t.name))
    path = tmp_path / "positive.onnx"
    onnx.save(model, path)
    return path


def test_genuine_zero_point_minus_128_weights_are_not_called_wrapped(tmp_path):
    node = check_model(str(_positive_asymmetric_weights(tmp_path)), numeric=False).nodes[0]
    assert not [f for f in node.findings if f.code == "CT044"]


def test_wrapped_activation_zero_point_is_a_warning():
    f = [f for f in _node("r2_g1_b0__WRONG_zp_wrapped_act").findings if f.code == "CT044"]
    assert [x.severity for x in f] == ["warning"]
