"""check and validate --model on QDQ models made now by the real quantize_static, with
layers, seeds and options that are not in fixtures/quant/ (slow: quantization and
OpenVINO compilation per model)."""

from __future__ import annotations

import pytest
from support.optional import need, runtime_or_skip
from support.quantize import float_layer, quantize

from convt_tools.check import check_model
from convt_tools.runtimes import get_runtime
from convt_tools.validate.nodes import validate_model_nodes

pytestmark = pytest.mark.slow

FORM = {f"CT04{i}" for i in range(7)}
# name: C_in, C_out, group, kernel, strides, dilations, pads, spatial
LAYERS = {
    "g1_k4s2": (3, 5, 1, [4, 4], [2, 2], [1, 1], [1, 2, 1, 2], [6, 5]),
    "g1_r1_s3": (5, 7, 1, [3], [3], [1], [2, 1], [9]),
    "grp3_nobias_like": (6, 9, 3, [3, 3], [2, 1], [1, 1], [1, 0, 1, 0], [4, 6]),
    "dw6": (6, 6, 6, [3, 2], [2, 2], [1, 1], [0, 0, 0, 0], [5, 5]),
    "g1_r3": (2, 3, 1, [2, 3, 2], [2, 1, 2], [1, 1, 1], [0] * 6, [3, 3, 2]),
}
CONFIGS = {   # name: per_channel, uint8 activations, extra options
    "pt_s8sym": (False, False, {"ActivationSymmetric": True}),
    "pc_s8sym": (True, False, {"ActivationSymmetric": True}),
    "pc_u8_rr": (True, True, {}),
    "pt_s8sym_wasym": (False, False, {"ActivationSymmetric": True, "WeightSymmetric": False}),
}
CASES = [(layer, cfg) for layer in LAYERS for cfg in CONFIGS]


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """``{(layer, config): path or the quantize_static crash}``."""
    root = tmp_path_factory.mktemp("fresh")
    out = {}
    for i, (name, (cin, cout, g, k, s, d, pads, sp)) in enumerate(LAYERS.items()):
        src = root / f"{name}.onnx"
        calib = float_layer(src, cin=cin, cout=cout, group=g, kernel=k, strides=s, dilations=d,
                            pads=pads, spatial=sp, seed=1000 + i)
        for cfg, (pc, u8, extra) in CONFIGS.items():
            dst = root / f"{name}__{cfg}.onnx"
            crash = quantize(src, dst, calib, per_channel=pc, uint8=u8, extra=extra)
            out[(name, cfg)] = crash or dst
    return out


def _expected_form(layer, cfg, crash):
    if crash is not None:
        return None
    if cfg.startswith("pc") and layer.startswith("dw"):
        return {"CT042"}
    if cfg.startswith("pc") and layer.startswith("grp"):
        return {"CT041"}
    return set()


@pytest.mark.parametrize("layer,cfg", CASES)
def test_form_findings_on_fresh_models(made, layer, cfg):
    got = made[(layer, cfg)]
    want = _expected_form(layer, cfg, got if isinstance(got, str) else None)
    if want is None:   # quantize_static crashed: grouped layer with bias, per channel
        assert "could not be broadcast" in got and cfg.startswith("pc")
        return
    node = check_model(str(got), numeric=False).nodes[0]
    assert {f.code for f in node.findings if f.code in FORM} == want


def _ov_precision(path):
    ov = need("openvino")
    core = ov.Core()
    compiled = core.compile_model(core.read_model(str(path)), "CPU",
                                  {"INFERENCE_PRECISION_HINT": "f32"})
    return [op.get_rt_info()["runtimePrecision"].astype(str)
            for op in compiled.get_runtime_model().get_ordered_ops()
            if op.get_rt_info()["layerType"].astype(str) == "Deconvolution"][0]


def _made(made, layer, cfg):
    """The model's path and its checked node; None when quantize_static crashed (the known
    grouped-with-bias crash, asserted)."""
    path = made[(layer, cfg)]
    if isinstance(path, str):
        assert "could not be broadcast" in path
        return None
    return path, check_model(str(path), numeric=False).nodes[0]


@pytest.mark.runtimes
@pytest.mark.parametrize("layer,cfg", CASES)
def test_openvino_precision_prediction_on_fresh_models(made, layer, cfg):
    got = _made(made, layer, cfg)
    if got is not None:
        path, node = got
        predicted = node.execution["openvino"]["execution"]
        assert {"i8": "int8", "f32": "float"}[_ov_precision(path)] == predicted


@pytest.mark.runtimes
@pytest.mark.parametrize("layer,cfg", CASES)
def test_validate_fails_openvino_exactly_where_a_fault_is_predicted(made, layer, cfg):
    got = _made(made, layer, cfg)
    if got is not None:
        path, node = got
        fault = bool(node.execution["openvino"].get("fault"))
        (ov, ort), = validate_model_nodes(str(path), [runtime_or_skip("openvino"),
                                                      get_runtime("onnxruntime")])
        assert (ov.status, ort.status) == ("FAIL" if fault else "PASS", "PASS")
