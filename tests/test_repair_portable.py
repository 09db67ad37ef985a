"""``repair --form portable``: the repaired model has symmetric pads + one constant Slice.

Over every risky form x intent of test_repair.py (expected windows derived by
hand there), the portable repair must compute the same window as the hand
derivation (loop oracle, tests/support/oracles.py), carry no asymmetric pads (no
CT020 from ``convt check``), and keep every Slice constant (negative ends).
The compact repair keeps the single node (CT020 where the window is odd),
so the check can fail.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from support import models as M
from support import oracles
from convt_tools import check_model, repair_model
from convt_tools.check import run_ort
from convt_tools.errors import ConvtError
from support.repair_cases import CASES, EXPECTED, X_SHAPE
from support.repair_cases import strides as _strides
from support.repair_cases import weights as _weights


def _codes(model) -> list[str]:
    return [f.code for n in check_model(model, numeric=False).nodes for f in n.findings]


def _slices(model) -> list[onnx.NodeProto]:
    return [n for n in model.graph.node if n.op_type == "Slice"]


@pytest.mark.parametrize("form,intent", CASES)
def test_portable_repair_reproduces_the_intent_with_symmetric_pads(form, intent):
    original = M.risky(form)
    repaired, report = repair_model(original, intent, form="portable")
    onnx.checker.check_model(repaired, full_check=True)
    conv = next(n for n in repaired.graph.node if n.op_type == "ConvTranspose")
    pads = list(helper.get_attribute_value(next(a for a in conv.attribute if a.name == "pads")))
    assert pads[:2] == pads[2:], pads
    assert "CT020" not in _codes(repaired)
    consts = {n.output[0]: numpy_helper.to_array(n.attribute[0].t)
              for n in repaired.graph.node if n.op_type == "Constant"}
    for s in _slices(repaired):
        assert all(e < 0 or e == 2**63 - 1 for e in consts[s.input[2]].tolist())
    x = np.random.default_rng(11).standard_normal(X_SHAPE).astype(np.float32)
    w, b = _weights(original)
    bh, bw, lh, lw = EXPECTED[form][intent]
    want = oracles.window(x.astype(np.float64), w, b, _strides(original), (bh, bw), (lh, lw))
    got = run_ort(repaired, {"x": x})[0]
    np.testing.assert_allclose(got, want, atol=1e-4)


def test_compact_repair_keeps_one_node_and_its_warning():
    original = M.risky("same_upper")
    compact, _ = repair_model(original, "tf")
    portable, report = repair_model(original, "tf", form="portable")
    assert _slices(compact) == []
    assert "CT020" in _codes(compact)
    assert len(_slices(portable)) == 1
    assert any(n.startswith("portable form: ") for n in report.notes)


def test_portable_repair_of_a_clean_compact_export_is_proven(tmp_path):
    """A convt --form compact export (nothing risky) becomes portable, proven on the model."""
    from convt_tools.exporter import export_spec
    from convt_tools.spec import make_spec

    model = export_spec(make_spec(3, 3, strides=2, padding="same"),
                        input_shape=(None, None, None, 2), form="compact")
    repaired, report = repair_model(model, "tf", {"input": (1, 5, 4, 2)}, form="portable")
    assert report.whole_model is not None
    assert "CT020" not in _codes(repaired)
    for shape in ((1, 5, 4, 2), (2, 3, 7, 2)):
        x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
        np.testing.assert_allclose(run_ort(repaired, {"input": x})[0],
                                   run_ort(model, {"input": x})[0], rtol=1e-6, atol=1e-6)


def test_form_is_validated(cli, tmp_path):
    with pytest.raises(ConvtError) as err:
        repair_model(M.risky("same_upper"), "tf", form="wide")
    assert err.value.field == "form"
    onnx.save(M.risky("same_upper"), tmp_path / "m.onnx")
    res = cli("repair", tmp_path / "m.onnx", "-o", tmp_path / "r.onnx", "--intent", "tf",
              "--form", "portable")
    assert res.exit_code == 0, res.output
    assert "portable form:" in res.output
    assert _slices(onnx.load(tmp_path / "r.onnx"))
