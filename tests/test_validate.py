"""validate_spec / validate_model: good exports pass, deliberately wrong models fail and say why."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from convt_tools.errors import ConvtError
from convt_tools.spec import make_spec
from convt_tools.validate import (default_input_shape, validate_model, validate_spec,
                                  validation_weights, weights_from_model)

# Same padding, k3 s2: Keras crops 0 at the start and 1 at the end (asymmetric).
SPEC = make_spec(filters=4, kernel_size=3, strides=2, padding="same", activation="relu")


def exported(spec, kernel, bias, form="portable"):
    from convt_tools.exporter import export_spec

    return export_spec(spec, kernel, bias, in_channels=kernel.shape[3], form=form)


def convt_node(model):
    return next(n for n in model.graph.node if n.op_type == "ConvTranspose")


def replace_init(model, name, array):
    for i, init in enumerate(model.graph.initializer):
        if init.name == name:
            model.graph.initializer[i].CopyFrom(numpy_helper.from_array(array.astype(np.float32), name))
            return model
    raise AssertionError(name)


def set_attr(model, name, value):
    node = convt_node(model)
    for a in node.attribute:
        if a.name == name:
            node.attribute.remove(a)
            break
    node.attribute.append(helper.make_attribute(name, value))
    return model


@pytest.fixture(scope="module")
def weights():
    return validation_weights(SPEC, 4, seed=1)   # filters == in_channels: a channel swap still loads


@pytest.mark.parametrize("layer", [
    dict(filters=4, kernel_size=3, strides=2, padding="same", activation="relu"),
    dict(filters=3, kernel_size=(2, 3), strides=(3, 2), padding="valid", data_format="channels_first"),
    dict(filters=2, kernel_size=3, strides=2, padding="valid", output_padding=1, activation="softmax"),
    dict(filters=6, kernel_size=3, dilation_rate=2, padding="same", activation="gelu", use_bias=False),
    dict(filters=4, kernel_size=4, strides=2, padding="same", dtype="float16", activation="hard_shrink"),
])
def test_good_exports_pass(layer):
    result = validate_spec(make_spec(**layer))
    assert result.passed, result.message
    assert result.model_shape == result.reference_shape
    assert result.max_abs_error <= result.tolerance.atol + result.tolerance.rtol * 10
    assert "default" in result.tolerance.source
    assert "eps" in result.tolerance.source


def test_good_model_with_given_weights_passes(weights):
    kernel, bias = weights
    result = validate_model(exported(SPEC, kernel, bias), SPEC, kernel=kernel, bias=bias)
    assert result.passed, result.message


def test_pads_on_the_wrong_side_fail_with_a_crop_hint(weights):
    kernel, bias = weights
    # The one-node (compact) form, its crop moved to the start; Keras: [0, 0, 1, 1].
    model = set_attr(exported(SPEC, kernel, bias, "compact"), "pads", [1, 1, 0, 0])
    result = validate_model(model, SPEC, kernel=kernel, bias=bias)
    assert not result.passed
    assert result.status == "FAIL"
    assert result.message.startswith("values differ")
    assert any("wrong side" in h for h in result.hints), result.hints


@pytest.mark.parametrize("mistake, hint", [
    (lambda k: k.transpose(2, 3, 0, 1), "channel axes are swapped"),   # (filters, C_in, kh, kw)
    (lambda k: k.transpose(3, 2, 0, 1)[:, :, ::-1, ::-1], "flipped"),
])
def test_wrong_kernel_layout_fails_and_is_named(weights, mistake, hint):
    kernel, bias = weights
    model = replace_init(exported(SPEC, kernel, bias), "W", np.ascontiguousarray(mistake(kernel)))
    result = validate_model(model, SPEC, kernel=kernel, bias=bias)
    assert not result.passed
    assert any(hint in h for h in result.hints), result.hints


def test_missing_bias_fails_and_is_named(weights):
    kernel, bias = weights
    model = exported(SPEC, kernel, bias)
    node = convt_node(model)
    del node.input[2]
    result = validate_model(model, SPEC, kernel=kernel, bias=bias)
    assert not result.passed
    assert any("bias is missing" in h for h in result.hints), result.hints


def test_shape_mismatch_names_the_axis(weights):
    kernel, bias = weights
    model = set_attr(exported(SPEC, kernel, bias), "output_padding", [1, 0])
    # the declared output shape no longer holds; drop it so onnxruntime runs the node.
    model.graph.output[0].type.tensor_type.ClearField("shape")
    result = validate_model(model, SPEC, kernel=kernel, bias=bias, input_shape=(1, 5, 7, 4))
    assert not result.passed
    assert result.message.startswith("shape differs")
    assert "height" in result.message
    assert "+1" in result.message


def test_weights_read_back_from_the_model(weights):
    kernel, bias = weights
    model = exported(SPEC, kernel, bias)
    k, b, note = weights_from_model(model, SPEC)
    np.testing.assert_array_equal(k, kernel)
    np.testing.assert_array_equal(b, bias)
    assert "W.transpose(2, 3, 1, 0)" in note
    result = validate_model(model, SPEC)
    assert result.passed
    assert "read from the model" in result.weights_source


def test_hand_built_model_is_validated_too():
    # A plain NHWC model built with onnx.helper, independent of the exporter.
    spec = make_spec(filters=2, kernel_size=2, strides=2)
    kernel, bias = validation_weights(spec, 3, seed=0)
    nodes = [helper.make_node("Transpose", ["input"], ["t"], perm=[0, 3, 1, 2]),
             helper.make_node("ConvTranspose", ["t", "W", "B"], ["c"], strides=[2, 2]),
             helper.make_node("Transpose", ["c"], ["output"], perm=[0, 2, 3, 1])]
    f = onnx.TensorProto.FLOAT
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("input", f, ["n", "h", "w", 3])],
                              [helper.make_tensor_value_info("output", f, None)],
                              [numpy_helper.from_array(kernel.transpose(3, 2, 0, 1).copy(), "W"),
                               numpy_helper.from_array(bias, "B")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    assert validate_model(model, spec, kernel=kernel, bias=bias).passed
    model.graph.node[1].attribute.append(helper.make_attribute("pads", [0, 0, 1, 1]))
    bad = validate_model(model, spec, kernel=kernel, bias=bias)
    assert not bad.passed
    assert bad.message.startswith("shape differs")


def test_given_tolerances_are_used_and_stated():
    result = validate_spec(SPEC, rtol=0.0, atol=0.0)
    assert result.tolerance.atol == 0.0
    assert result.tolerance.rtol == 0.0
    assert result.tolerance.source == "given"
    with pytest.raises(ConvtError, match="atol"):
        validate_spec(SPEC, atol=-1.0)


def test_unknown_provider_lists_the_available_ones():
    with pytest.raises(ConvtError, match="CPUExecutionProvider"):
        validate_spec(SPEC, providers="NoSuchProvider")


def test_default_input_shape_and_its_source():
    shape, source = default_input_shape(SPEC, None)
    assert shape == (2, 5, 7, 3)
    assert source == "a small default"
    shape, source = default_input_shape(make_spec(filters=2, kernel_size=2, input_shape=(None, 4, 4, 8)), None)
    assert shape == (2, 4, 4, 8)
    assert "batch" in source
    glu_cf = make_spec(filters=2, kernel_size=3, activation="glu", data_format="channels_first")
    shape, _ = default_input_shape(glu_cf, 3)
    assert glu_cf.output_shape(shape)[-1] % 2 == 0


def test_given_input_is_used():
    x = np.random.default_rng(0).standard_normal((1, 3, 2, 5)).astype(np.float32)
    result = validate_spec(SPEC, x=x)
    assert result.passed
    assert result.input_shape == (1, 3, 2, 5)
    assert result.input_source == "--input"


# ---------------------------------------------------------------- review findings

def test_bias_less_model_fails_when_the_config_uses_a_bias(weights):
    kernel, bias = weights
    model = exported(SPEC, kernel, bias)
    del convt_node(model).input[2]
    # Weights read back from the model: the missing B would be invisible without this rule.
    result = validate_model(model, SPEC)
    assert not result.passed
    assert "use_bias=True" in result.message
    assert "no B input" in result.message
    no_bias_spec = make_spec(filters=4, kernel_size=3, strides=2, padding="same",
                             activation="relu", use_bias=False)
    assert validate_model(exported(no_bias_spec, kernel, None), no_bias_spec).passed


def test_model_with_static_input_dims_is_fed_its_own_shape(weights, tmp_path):
    kernel, bias = weights
    from convt_tools.exporter import export_spec
    from convt_tools.onnxbase import save_model

    model = export_spec(SPEC, kernel, bias, input_shape=(1, 6, 9, kernel.shape[3]))
    save_model(model, tmp_path / "m.onnx")
    result = validate_model(tmp_path / "m.onnx", SPEC)
    assert result.passed, result.message
    assert result.input_shape == (1, 6, 9, kernel.shape[3])


@pytest.mark.parametrize("bad", ["layer.json", None, {"filters": 2}])
def test_spec_argument_must_be_a_spec(bad):
    with pytest.raises(ConvtError, match="^spec: got"):
        validate_spec(bad)  # type: ignore[arg-type]


def test_model_argument_type_and_unsafe_external_data(weights, tmp_path):
    kernel, bias = weights
    with pytest.raises(ConvtError, match="^model: got bytes"):
        validate_model(b"\x08\x01", SPEC)
    model = exported(SPEC, kernel, bias)
    w = next(i for i in model.graph.initializer if i.name == "W")
    w.ClearField("raw_data")
    w.data_location = onnx.TensorProto.EXTERNAL
    entry = w.external_data.add()
    entry.key, entry.value = "location", "../../etc/passwd"
    onnx.save(model, tmp_path / "escape.onnx")
    with pytest.raises(ConvtError, match="^model:"):
        validate_model(tmp_path / "escape.onnx", SPEC, kernel=kernel, bias=bias)
