"""Conformance of the torch spec, NumPy forward and ONNX export against real PyTorch.

Every expected value comes from ``fixtures/torch/`` (real torch 2.13 CPU,
``fixtures/generate_torch.py``); nothing here derives an expected value from
convt_tools. For every case: the output shape equals torch's; the NumPy
forward equals torch's output; onnxruntime on the exported model equals it,
for a model with symbolic batch/spatial dims (or the concrete input shape
where ``output_size`` fixes the output padding). Every config torch rejects
(``fixtures/torch_invalid.json``) is rejected with a ConvtError naming the
field.

Tolerance ``rtol = atol = 1e-5`` (float32, different summation orders; the
fixtures' outputs are below ~10 in magnitude, observed max error ~1e-6). A
crop or an output_padding row on the wrong side gives errors of order 0.1-1.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from convt_tools.errors import ConvtError
from convt_tools.torchconv import parse_torch_config
from convt_tools.torchconv.compute import torch_conv_transpose

FIX = Path(__file__).resolve().parent.parent / "fixtures"
CASES = json.loads((FIX / "torch" / "cases.json").read_text())
INVALID = json.loads((FIX / "torch_invalid.json").read_text())
TOL = {"rtol": 1e-5, "atol": 1e-5}


def _config(case: dict, form: int) -> tuple[dict, int | None]:
    """Three config forms: framework + module; bare kwargs with the rank given; module only."""
    if form == 0:
        return {"framework": "torch", "module": case["module"], **case["kwargs"]}, None
    if form == 1:      # the CLI derives the rank from the input shape's rank
        return dict(case["kwargs"]), int(case["module"][-2])
    return {"module": case["module"], **case["kwargs"]}, None


def _arrays(case: dict) -> dict[str, np.ndarray]:
    with np.load(FIX / "torch" / f"{case['id']}.npz", allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


@pytest.mark.parametrize("i", range(len(CASES)), ids=[c["id"] for c in CASES])
def test_shape_and_reference(i: int) -> None:
    case = CASES[i]
    cfg, rank = _config(case, i % 3)
    spec = parse_torch_config(cfg, rank=rank)
    assert spec.weight_shape() == tuple(case["weight_shape"])
    assert list(spec.output_shape(case["input_shape"], case["output_size"])) == case["output_shape"]
    # unknown dims stay unknown, known ones keep torch's length
    unknown = [None] + case["input_shape"][1:-1] + [None]
    want = case["output_shape"][:-1] + [None]
    if case["output_size"] is None:
        assert list(spec.output_shape(unknown))[1:] == want[1:]
    a = _arrays(case)
    y = torch_conv_transpose(spec, a["input"], a["weight"], a.get("bias"), case["output_size"])
    assert y.shape == a["output"].shape
    np.testing.assert_allclose(y, a["output"], **TOL)


@pytest.mark.parametrize("i", range(len(CASES)), ids=[c["id"] for c in CASES])
def test_onnxruntime_export(i: int) -> None:
    import onnxruntime as ort

    from convt_tools.torchconv.export import export_torch

    case = CASES[i]
    spec = parse_torch_config({"module": case["module"], **case["kwargs"]})
    a = _arrays(case)
    x = a["input"]
    unbatched = x.ndim == spec.rank + 1
    if case["output_size"] is None:
        shape = [None, spec.in_channels] + [None] * spec.rank
    else:
        shape = list(x.shape)
    model = export_torch(spec, a["weight"], a.get("bias"), input_shape=shape,
                         output_size=case["output_size"])
    conv = model.graph.node[0]
    attrs = {at.name: list(at.ints) for at in conv.attribute}
    strides = attrs["strides"]
    assert all(o < s for o, s in zip(attrs.get("output_padding", [0] * spec.rank), strides))
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    y = sess.run(None, {"input": x[None] if unbatched else x})[0]
    np.testing.assert_allclose(y[0] if unbatched else y, a["output"], **TOL)


def test_fixtures_cover_the_issue() -> None:
    """output_padding >= stride (< dilation), groups 1/2/4, output_size, every rank."""
    kinds = set()
    for c in CASES:
        kw = c["kwargs"]
        rank = int(c["module"][-2])
        kinds.add(("rank", rank))
        kinds.add(("groups", kw.get("groups", 1)))
        s = kw.get("stride", 1)
        op = kw.get("output_padding", 0)
        s = s if isinstance(s, list) else [s] * rank
        op = op if isinstance(op, list) else [op] * rank
        if any(o >= t for o, t in zip(op, s)):
            kinds.add("op>=stride")
        if c["output_size"] is not None:
            kinds.add("output_size")
    assert {("rank", 1), ("rank", 2), ("rank", 3), ("groups", 1), ("groups", 2), ("groups", 4),
            "op>=stride", "output_size"} <= kinds


@pytest.mark.parametrize("rec", INVALID, ids=[r["id"] for r in INVALID])
def test_torch_rejections(rec: dict) -> None:
    assert rec["rejected"], rec
    with pytest.raises(ConvtError) as err:
        spec = parse_torch_config({"module": rec["module"], **rec["kwargs"]})
        spec.output_shape(rec["input_shape"], rec["output_size"])
    assert err.value.field == rec["field"]
    assert "\n" not in str(err.value)
