"""convt_tools.quant: the QDQ parse and the int8 reference, against the real-tool fixtures
of fixtures/quant/ (onnxruntime.quantization.quantize_static outputs and hand-made forms)."""

from __future__ import annotations

import numpy as np
import pytest
from support.quant_fixtures import entry, load_case, quant_entries

from convt_tools.quant import (
    QParams, QuantError, compare_lsb, dequantize, int8_reference, integer_evidence,
    model_qdq_nodes, quantize, weight_granularity,
)

NAMES = quant_entries()
QDQ = [n for n in NAMES if not n.endswith("qoperator")]


def _one(name):
    model, e, x, q_ref = load_case(name)
    (_node, qdq), = model_qdq_nodes(model)
    return qdq, e, x, q_ref


def test_fixture_set_is_the_documented_one():
    assert len(NAMES) == 236


@pytest.mark.parametrize("name", QDQ)
def test_parse_reads_weight_params_as_stored(name):
    qdq, e, _, _ = _one(name)
    assert (qdq.w.axis, qdq.w.block_size, list(qdq.w.scale.shape), qdq.w.dtype) == (
        e["w_axis"], e["w_block_size"], e["w_scale_shape"], e["w_dtype"])


@pytest.mark.parametrize("name", QDQ)
def test_weight_granularity_matches_the_generators_analysis(name):
    qdq, e, _, _ = _one(name)
    g = weight_granularity(qdq.w, qdq.w_shape, qdq.attrs.group)
    want = "invalid" if e["w_granularity"].startswith("invalid") else e["w_granularity"]
    assert g.meaning == want


@pytest.mark.parametrize("name", [n for n in QDQ if entry(n)["reference"] == "ok"])
def test_int8_reference_reproduces_the_fixture_integers(name):
    qdq, _e, x, q_ref = _one(name)
    r = int8_reference(qdq, x)
    assert np.array_equal(r.y_int, q_ref.astype(np.int64))


@pytest.mark.parametrize("name", [n for n in QDQ if entry(n)["reference"] != "ok"])
def test_int8_reference_refuses_parameters_that_do_not_fit(name):
    qdq, _, x, _ = _one(name)
    with pytest.raises(QuantError, match="values for axis"):
        int8_reference(qdq, x)


def test_float_model_parses_as_not_quantized():
    model, _, _, _ = load_case("r2_g1_b1__pt_u8_qoperator")
    (_, qdq), = model_qdq_nodes(model)
    assert not qdq.quantized and qdq.w_float is not None


@pytest.mark.parametrize("name", [n for n in QDQ if entry(n)["reference"] == "ok"
                                  and "zp_wrapped_w" not in n])
def test_integers_show_the_declared_granularity_on_right_models(name):
    """reduce_range (max|q| 64) and percentile calibration are right: not flagged. The
    integers of zp_out_of_range were made with zero point 0, not the stored 200."""
    qdq, _e, _, _ = _one(name)
    g = weight_granularity(qdq.w, qdq.w_shape, qdq.attrs.group)
    ev = integer_evidence(qdq.w, qdq.w_int, qdq.attrs.group, g.meaning)
    wrong_ints = "WRONG_int" in name or "zp_out_of_range" in name
    assert ev.consistent is not wrong_ints


@pytest.mark.parametrize("name,made", [
    ("r2_g1_b1__WRONG_int_outch_under_pertensor", "per_output_channel"),
    ("r2_grp_b0__WRONG_int_outch_under_axis0", "per_output_channel"),
    ("r2_g1_b0__WRONG_int_pertensor_under_axis1", "per_tensor"),
    ("r2_g1_b1__WRONG_int_other_scale", None),
])
def test_integer_evidence_names_the_granularity_that_made_them(name, made):
    qdq, _, _, _ = _one(name)
    g = weight_granularity(qdq.w, qdq.w_shape, qdq.attrs.group)
    assert integer_evidence(qdq.w, qdq.w_int, qdq.attrs.group, g.meaning).made == made


def _params(scale, zp=None, axis=1, block=0, dtype="int8"):
    return QParams("t", np.asarray(scale, np.float32), None if zp is None else np.asarray(zp),
                   axis, block, dtype)


@pytest.mark.parametrize("v,q", [(0.5, 0), (1.5, 2), (2.5, 2), (-0.5, 0), (-1.5, -2),
                                 (200.0, 127), (-200.0, -128)])
def test_quantize_rounds_half_to_even_and_saturates(v, q):
    assert int(quantize(np.array([v]), _params(1.0, np.int8(0)))[0][0]) == q


def test_quantize_counts_ties():
    assert quantize(np.array([0.5, 0.7, 2.5]), _params(1.0, np.int8(0)))[1] == 2


def test_uint8_is_the_default_type_without_zero_point():
    p = QParams("t", np.float32(1.0), None, 1, 0, "uint8")
    assert int(quantize(np.array([-3.0]), p)[0][0]) == 0


def test_blocked_dequantize_repeats_each_scale_over_its_block():
    q = np.ones((4, 1, 2), np.int8)
    p = _params(np.array([[[1, 1]], [[3, 3]]]), np.zeros((2, 1, 2), np.int8), axis=0, block=2)
    assert dequantize(q, p)[:, 0, 0].tolist() == [1.0, 1.0, 3.0, 3.0]


def test_per_axis_length_mismatch_is_a_quant_error_naming_the_axis():
    with pytest.raises(QuantError, match="axis 1 of length 4"):
        dequantize(np.ones((2, 4, 3), np.int8), _params(np.ones(8), np.zeros(8, np.int8)))


def test_compare_lsb_states_error_in_lsb_and_counts_ties():
    qdq, _, x, _ = _one("r2_g1_b1__RIGHT_pertensor_s8sym")
    r = int8_reference(qdq, x)
    s = float(r.out_params.scale)
    off = r.y.copy()
    off.flat[0] += 3 * s
    c = compare_lsb(off, r, tolerance=1.0)
    assert (round(c.max_lsb, 6), c.over, c.passed) == (3.0, 1, False)


def test_compare_lsb_passes_the_reference_itself():
    qdq, _, x, _ = _one("r2_grp_b1__RIGHT_blocked_s8sym")
    r = int8_reference(qdq, x)
    assert compare_lsb(r.y, r).max_lsb == 0.0
