"""Runtime adapters (convt_tools.runtimes): one interface, clear refusals, installed or not.

Every adapter that imports here must compute the exported layer as the
loop-by-definition oracle (tests/support/oracles.py) does, through the same
``load(model).run(inputs)`` call; one that is not installed is skipped with
the reason (the pip extra) visible in pytest's summary. Refusals and missing
engines are simulated with monkeypatch so the error paths are always tested.
Tolerance: float32 sums of < 100 products of values below ~3: 1e-5.
"""

from __future__ import annotations

import numpy as np
import pytest

from convt_tools.errors import ConvtError
from convt_tools.exporter import export_spec
from convt_tools.runtimes import (ADAPTERS, RuntimeRefused, RuntimeUnavailable, get_runtime,
                                  installed_runtimes, parse_runtime_names, require_runtimes)
from convt_tools.spec import make_spec
from support.oracles import keras_conv_transpose
from support.optional import runtime_or_skip, runtime_params

# torch has no pip extra (it would pull CUDA; issue 17 item 21): its message gives the two steps.
EXTRAS = {"onnxruntime": None, "openvino": "openvino", "tract": "tract", "torch": None,
          "onnx-reference": None, "mnn": "mnn", "ncnn": "ncnn", "litert": "litert",
          "opencv": "opencv", "tvm": "tvm", "iree": "iree"}  # issue 19
# The runtimes that load ONNX models (litert loads the .tflite export: test_tflite_export.py).
ONNX_ADAPTERS = [n for n in ADAPTERS if get_runtime(n).model_kind == "onnx"]


def installed_or_skip(name: str):
    """The adapter, or a visible skip naming the pip extra that installs it."""
    return runtime_or_skip(name)


def test_every_runtime_has_an_adapter_and_its_pip_extra():
    assert list(ADAPTERS) == list(EXTRAS)
    for name, extra in EXTRAS.items():
        assert get_runtime(name).extra == extra
        assert get_runtime(name).name == name


@pytest.mark.parametrize("name", runtime_params(ONNX_ADAPTERS))
@pytest.mark.parametrize("symbolic", [False, True], ids=["fixed", "symbolic"])
def test_runtime_runs_the_export_like_the_oracle(name, symbolic):
    runtime = installed_or_skip(name)
    assert runtime.version().startswith(f"{name} ")
    # k3 s2 same: the odd crop, so the portable form has its Slice.
    spec = make_spec(3, 3, strides=2, padding="same", activation="relu")
    rng = np.random.default_rng(4)
    kernel = rng.standard_normal(spec.kernel_shape(2)).astype(np.float32)
    bias = rng.standard_normal(3).astype(np.float32)
    x = rng.standard_normal((2, 4, 5, 2)).astype(np.float32)
    shape = (None, None, None, 2) if symbolic else x.shape
    model = export_spec(spec, kernel, bias, input_shape=shape)
    got = runtime.load(model).run({"input": x})
    assert len(got) == 1
    want = keras_conv_transpose(spec, x, kernel, bias)
    assert got[0].shape == want.shape
    np.testing.assert_allclose(got[0], want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", runtime_params(ONNX_ADAPTERS))
def test_runtime_feeds_the_graph_input_when_leading_transposes_cancel(name):
    """A Transpose and its inverse right after the input make the tensor after them the
    input tensor itself: an engine may then know the input by that name as well (OpenVINO:
    get_any_name() gave ``a_t2``, the smaller name). The adapter feeds ``input``."""
    from onnx import TensorProto, helper, numpy_helper

    runtime = installed_or_skip(name)
    rng = np.random.default_rng(8)
    w = rng.standard_normal((2, 3, 3, 3)).astype(np.float32)
    nodes = [helper.make_node("Transpose", ["input"], ["t1"], perm=[0, 2, 3, 1]),
             helper.make_node("Transpose", ["t1"], ["a_t2"], perm=[0, 3, 1, 2]),
             helper.make_node("ConvTranspose", ["a_t2", "w"], ["output"], strides=[2, 2])]
    graph = helper.make_graph(
        nodes, "cancel", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 2, 4, 5])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3, 9, 11])],
        [numpy_helper.from_array(w, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              ir_version=8)   # what the exporter writes; pnnx's ORT reads it
    x = rng.standard_normal((1, 2, 4, 5)).astype(np.float32)
    got = runtime.load(model).run({"input": x})
    from support.oracles import onnx_conv_transpose
    np.testing.assert_allclose(got[0], onnx_conv_transpose(x, w, strides=(2, 2)),
                               rtol=1e-5, atol=1e-5)


def test_a_model_the_runtime_refuses_is_a_refusal_with_its_reason():
    from onnx import helper

    spec = make_spec(2, 3, strides=2, padding="same")
    model = export_spec(spec, input_shape=(1, 3, 3, 2), form="compact")
    node = next(n for n in model.graph.node if n.op_type == "ConvTranspose")
    for attr in node.attribute:
        if attr.name == "pads":
            node.attribute.remove(attr)
            break
    node.attribute.append(helper.make_attribute("pads", [-1, 0, 0, 0]))
    with pytest.raises(RuntimeRefused) as err:
        get_runtime("onnxruntime").load(model).run(
            {"input": np.zeros((1, 3, 3, 2), np.float32)})
    assert err.value.reason.startswith("onnxruntime refused the model at ")
    assert "\n" not in err.value.reason


def test_missing_runtime_names_the_pip_extra(monkeypatch):
    from convt_tools.runtimes.openvino_adapter import OpenvinoRuntime

    def gone(self):
        raise ImportError("No module named 'openvino'")

    monkeypatch.setattr(OpenvinoRuntime, "_import", gone)
    with pytest.raises(RuntimeUnavailable) as err:
        require_runtimes(["onnxruntime", "openvino"])
    assert err.value.field == "runtime"
    assert 'pip install -e ".[openvino]"' in str(err.value)
    assert "No module named 'openvino'" in str(err.value)
    assert "openvino" in installed_runtimes()["openvino"]
    assert "not available" in installed_runtimes()["openvino"]


@pytest.mark.parametrize("text, names", [
    ("onnxruntime", ["onnxruntime"]),
    ("ONNXRuntime, tract,onnxruntime", ["onnxruntime", "tract"]),
    (["torch", "onnx-reference"], ["torch", "onnx-reference"]),
])
def test_runtime_names_parse(text, names):
    assert parse_runtime_names(text) == names


@pytest.mark.parametrize("text", ["tensorrt", "", "onnxruntime,,", ["cuda"]])
def test_bad_runtime_names_are_refused(text):
    with pytest.raises(ConvtError) as err:
        parse_runtime_names(text)
    assert err.value.field == "runtime"
    if text not in ("", "onnxruntime,,"):
        assert "onnxruntime, openvino, tract, torch, onnx-reference" in str(err.value)


def test_providers_apply_to_onnxruntime_only():
    with pytest.raises(ConvtError) as err:
        get_runtime("tract", providers=["CPU"])
    assert err.value.field == "providers"
    with pytest.raises(ConvtError) as err:
        require_runtimes(["openvino"], providers="CPU")
    assert err.value.field == "providers"
    with pytest.raises(ConvtError) as err:
        get_runtime("onnxruntime", providers="Bogus").providers()
    assert "CPUExecutionProvider" in str(err.value)


def test_torchvision_stand_in_when_torchvision_does_not_import(monkeypatch):
    """onnx2torch imports torchvision at import time (for NMS/RoiAlign only); the torch
    adapter registers a stand-in whose ops raise a clear error, so other models convert."""
    import sys

    from convt_tools.runtimes import torch_adapter

    monkeypatch.setitem(sys.modules, "torchvision", None)  # import torchvision -> ImportError
    monkeypatch.setitem(sys.modules, "torchvision.ops", None)
    torch_adapter._torchvision_stand_in()
    stand_in = sys.modules["torchvision"]
    assert stand_in is not None
    assert stand_in._convt_stand_in
    with pytest.raises(NotImplementedError, match="torchvision is not installed"):
        sys.modules["torchvision.ops"].nms(None, None, 0.5)
    torch_adapter._torchvision_stand_in()  # idempotent
    assert sys.modules["torchvision"] is stand_in
