"""convt check and validate --model on broken QDQ around ConvTranspose: every broken form is a
finding or an ERROR result naming what is wrong, never a traceback."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper
from support.quant_fixtures import model_path

from convt_tools.check import check_model
from convt_tools.runtimes import get_runtime
from convt_tools.validate.nodes import validate_model_nodes

BASE = "r2_g1_b1__RIGHT_axis1_s8sym"


def _mutated(tmp_path, how):
    model = onnx.load(model_path(BASE))
    how(model)
    path = tmp_path / "m.onnx"
    onnx.save(model, path)
    return str(path)


def _dq(model, name):
    return next(n for n in model.graph.node if n.name == name)


def _set_attr(node, name, value):
    for a in list(node.attribute):
        if a.name == name:
            node.attribute.remove(a)
    node.attribute.append(helper.make_attribute(name, value))


def _init(model, name, value):
    for t in model.graph.initializer:
        if t.name == name:
            t.CopyFrom(numpy_helper.from_array(np.asarray(value), name))


CASES = {
    "axis_out_of_range": (lambda m: _set_attr(_dq(m, "W_DQ"), "axis", 7), "CT045",
                          "outside [-4, 3]"),
    "zero_point_shape": (lambda m: _init(m, "W_zp", np.zeros(2, np.int8)), "CT045",
                         "zero point shape"),
    "block_not_fitting": (lambda m: (_set_attr(_dq(m, "W_DQ"), "block_size", 3),
                                     _set_attr(_dq(m, "W_DQ"), "axis", 0)), "CT045", "blocked"),
    "bias_scale_length": (lambda m: _init(m, "B_scale", np.ones(4, np.float32)), "CT045",
                          "4 values for axis 0 of length 6"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_broken_qdq_parameters_are_findings(tmp_path, case):
    how, code, text = CASES[case]
    node = check_model(_mutated(tmp_path, how), numeric=False).nodes[0]
    assert any(f.code == code and text in f.message for f in node.findings)


@pytest.mark.parametrize("case", sorted(CASES))
def test_broken_qdq_parameters_are_error_results_in_validate(tmp_path, case):
    how, _, text = CASES[case]
    (res,), = validate_model_nodes(_mutated(tmp_path, how), [get_runtime("onnxruntime")])
    assert res.status == "ERROR" and "no defined ONNX meaning" in res.error


def test_a_computed_weight_scale_is_noted_not_read(tmp_path):
    def computed(m):
        dq = _dq(m, "W_DQ")
        m.graph.node.insert(0, helper.make_node("Identity", ["W_scale"], ["W_scale_c"]))
        dq.input[1] = "W_scale_c"
    node = check_model(_mutated(tmp_path, computed), numeric=False).nodes[0]
    assert node.quantization["weight"] is None and "not a constant" in \
        node.quantization["notes"][0]
