"""Exporter test helpers: the Keras-layer oracle (from tests/oracles.py) and shared checks (tests only)."""

from __future__ import annotations

import numpy as np

from support.oracles import keras_conv_transpose as direct_conv_transpose
from support.oracles import keras_length
from support.runners import run_onnx_model

__all__ = ["abs_scale", "assert_portable", "direct_conv_transpose", "keras_length", "run_onnx"]


# ---------------------------------------------------------------- shared checks

def run_onnx(model, x: np.ndarray) -> np.ndarray:
    """Run ``model`` on onnxruntime's CPU provider (conftest's runner), feeding ``input``."""
    return run_onnx_model(model, {"input": x})[0]


def abs_scale(spec, x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None) -> float:
    """max over outputs of sum |x||k| + |b|: what float rounding errors are relative to."""
    import dataclasses

    linear = dataclasses.replace(spec, activation="linear")
    b = None if bias is None else np.abs(bias)
    return max(1.0, float(direct_conv_transpose(linear, np.abs(x), np.abs(kernel), b).max(
        initial=0.0)))


def assert_portable(model, spec, kernel=None) -> None:
    """The structural contract of an exported model (see convt_tools.exporter)."""
    import json

    import onnx
    from onnx import numpy_helper

    onnx.checker.check_model(model, full_check=True)
    onnx.shape_inference.infer_shapes(model, strict_mode=True)
    assert model.producer_name == "convt-tools"
    assert model.ir_version <= onnx.IR_VERSION
    props = {p.key: p.value for p in model.metadata_props}
    assert json.loads(props["convt.keras_config"]) == json.loads(json.dumps(spec.to_config()))
    assert len(json.loads(props["convt.crop_plan"])) == 2
    assert [i.name for i in model.graph.input] == ["input"]
    assert [o.name for o in model.graph.output] == ["output"]
    for value in (*model.graph.input, *model.graph.output):
        assert value.type.tensor_type.HasField("shape")
        assert len(value.type.tensor_type.shape.dim) == 4
    convs = [n for n in model.graph.node if n.op_type == "ConvTranspose"]
    assert len(convs) == 1
    conv = convs[0]
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in conv.attribute}
    assert "auto_pad" not in attrs
    assert "output_shape" not in attrs
    assert min(attrs["pads"]) >= 0
    hc, wc = spec.crop_plan()
    inits = {t.name: t for t in model.graph.initializer}
    pads = list(attrs["pads"])
    slices = [n for n in model.graph.node if n.op_type == "Slice" and n.input[0] == conv.output[0]
              and n.name == "Crop"]
    if props.get("convt.form", "portable") == "compact":
        assert pads == [hc.begin, wc.begin, hc.end, wc.end]
        assert not slices
    else:
        # Portable: symmetric pads; whatever the crop plan cuts beyond them is one constant
        # Slice right after the node, ends < 0 (independent of the input size).
        assert pads[:2] == pads[2:], f"asymmetric pads {pads} in the portable form"
        cut = {ax: (0, 0) for ax in (2, 3)}
        if slices:
            assert len(slices) == 1
            starts, ends, axes = (numpy_helper.to_array(inits[n]).tolist()
                                  for n in slices[0].input[1:4])
            assert all(e < 0 for e in ends)
            cut.update({a: (s, -e) for s, e, a in zip(starts, ends, axes)})
        assert [pads[0] + cut[2][0], pads[1] + cut[3][0]] == [hc.begin, wc.begin]
        assert [pads[2] + cut[2][1], pads[3] + cut[3][1]] == [hc.end, wc.end]
        assert bool(slices) == ((hc.begin + hc.end) % 2 == 1 or (wc.begin + wc.end) % 2 == 1)
    if hc.extend or wc.extend:
        assert list(attrs["output_padding"]) == [hc.extend, wc.extend]
    else:
        assert "output_padding" not in attrs
    assert list(attrs["strides"]) == list(spec.strides)
    assert list(attrs["dilations"]) == list(spec.dilation_rate)
    assert list(attrs["kernel_shape"]) == list(spec.kernel_size)
    assert (len(conv.input) == 3) == spec.use_bias
    w = numpy_helper.to_array(inits[conv.input[1]])
    assert w.shape[1:] == (spec.filters, *spec.kernel_size)
    if kernel is not None:
        np.testing.assert_array_equal(
            w, np.asarray(kernel).astype(w.dtype).transpose(3, 2, 0, 1))
