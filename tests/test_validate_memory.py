"""``validate --model`` does not copy a big model (issue 9 item 15).

Observable, deterministic consequences of the bounded-memory path (the peak
RSS itself is measured by ``benchmarks/bench_memory.py``, not here):

- a model given by path reaches onnxruntime as that path (never as serialised
  bytes), its external data resolved by onnxruntime next to it;
- the reference over chunks of filters (a big kernel's float64 copy is made a
  chunk at a time) gives the same result as in one piece.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime
import pytest

import convt_tools.validate as validate_pkg
from convt_tools.exporter import export_spec
from convt_tools.spec import make_spec
from convt_tools.validate import validate_model

SPECS = [
    make_spec(filters=5, kernel_size=3, strides=2, padding="same", activation="relu"),
    make_spec(filters=3, kernel_size=(2, 3), strides=(1, 2), padding="valid",
              data_format="channels_first", use_bias=False),
]


def _weights(spec, c_in, seed=1):
    rng = np.random.default_rng(seed)
    kernel = rng.standard_normal((*spec.kernel_size, spec.filters, c_in)).astype(np.float32)
    bias = rng.standard_normal(spec.filters).astype(np.float32) if spec.use_bias else None
    return kernel, bias


def _saved(tmp_path, spec, external, threshold=1024):
    kernel, bias = _weights(spec, 16)   # W above 1 KiB: external with onnx.save's default
    model = export_spec(spec, kernel, bias, in_channels=16)
    path = tmp_path / "m.onnx"
    saved = onnx.ModelProto()
    saved.CopyFrom(model)   # onnx.save moves the data of what it saves out of the proto
    onnx.save(saved, str(path), save_as_external_data=external, all_tensors_to_one_file=True,
              location="m.onnx.data", size_threshold=threshold)
    return path, model


def _shape(spec, batch=1):
    return (batch, 5, 6, 16) if spec.data_format == "channels_last" else (batch, 16, 5, 6)


def _fields(result):
    d = result.to_dict()
    return {k: d[k] for k in ("status", "input_shape", "reference_shape", "model_shape",
                              "max_abs_error", "max_rel_error", "worst_index", "tolerance",
                              "weights_source", "message", "hints")}


@pytest.mark.parametrize("external", [False, True], ids=["inline", "external-data"])
@pytest.mark.parametrize("spec", SPECS, ids=["same-relu-nhwc", "valid-nchw-nobias"])
def test_a_model_path_reaches_onnxruntime_as_the_path(tmp_path, monkeypatch, spec, external):
    path, model = _saved(tmp_path, spec, external)
    given = []
    real = onnxruntime.InferenceSession

    def spy(what, *args, **kwargs):
        given.append(what)
        return real(what, *args, **kwargs)

    monkeypatch.setattr(onnxruntime, "InferenceSession", spy)
    result = validate_model(str(path), spec, input_shape=_shape(spec))
    assert given == [str(path)]          # no serialised copy of the model
    if external:
        assert (tmp_path / "m.onnx.data").stat().st_size >= 16 * spec.filters * 4
    assert result.passed, result.message
    # The same figures as the model handed over in memory (serialised for onnxruntime).
    monkeypatch.setattr(onnxruntime, "InferenceSession", real)
    in_memory = validate_model(model, spec, input_shape=result.input_shape)
    assert _fields(result) == _fields(in_memory)


def test_small_external_constants_still_load_whole(tmp_path, monkeypatch):
    """Shape constants in an external file: onnxruntime cannot infer shapes from a path,
    so such a model is handed over whole (loaded with its external data), as before."""
    spec = SPECS[0]
    path, _ = _saved(tmp_path, spec, True, threshold=0)
    given = []
    real = onnxruntime.InferenceSession
    monkeypatch.setattr(onnxruntime, "InferenceSession",
                        lambda what, *a, **k: given.append(type(what)) or real(what, *a, **k))
    result = validate_model(str(path), spec, input_shape=_shape(spec))
    assert given == [bytes]
    assert result.passed, result.message


@pytest.mark.parametrize("spec", SPECS, ids=["same-relu-nhwc", "valid-nchw-nobias"])
@pytest.mark.parametrize("wrong", [False, True], ids=["right-model", "wrong-bias"])
def test_reference_over_chunks_of_filters_gives_the_same_result(monkeypatch, spec, wrong):
    kernel, bias = _weights(spec, 16)
    model = export_spec(spec, kernel, bias, in_channels=16)
    given_bias = None if bias is None else (bias + 1.0 if wrong else bias)
    shape = _shape(spec, batch=2)
    whole = validate_model(model, spec, kernel=kernel, bias=given_bias, input_shape=shape)
    monkeypatch.setattr(validate_pkg, "REFERENCE_CHUNK_BYTES", 8)  # one filter per chunk
    assert validate_pkg._filters_per_chunk(kernel) == 1
    chunked = validate_model(model, spec, kernel=kernel, bias=given_bias, input_shape=shape)
    a, b = _fields(whole), _fields(chunked)
    for key in ("max_abs_error", "max_rel_error"):
        assert b.pop(key) == pytest.approx(a.pop(key), rel=1e-9, abs=1e-12)
    assert a == b
    assert chunked.passed is not (wrong and spec.use_bias)


@pytest.mark.parametrize("external", [False, True], ids=["inline", "external-data"])
def test_a_mismatch_on_a_model_path_is_diagnosed_as_in_memory(tmp_path, external):
    """The kernel let go before onnxruntime loads the model is read again for the diagnosis."""
    spec = SPECS[0]   # relu; the model is exported without it
    linear = make_spec(filters=5, kernel_size=3, strides=2, padding="same")
    path, model = _saved(tmp_path, linear, external)
    from_path = validate_model(str(path), spec, input_shape=_shape(spec))
    in_memory = validate_model(model, spec, input_shape=_shape(spec))
    assert from_path.status == "FAIL"
    assert from_path.hints
    assert _fields(from_path) == _fields(in_memory)


def test_a_refused_model_path_gives_the_same_reason_as_in_memory(tmp_path):
    """onnxruntime prefixes its reason with 'Load model from PATH failed:' for a path; the
    reason reported is the one of the model handed over in memory."""
    from onnx import TensorProto, helper

    spec = make_spec(filters=2, kernel_size=2, padding="valid")
    node = helper.make_node("NoSuchOp", ["x"], ["y"])
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 3, 1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 4, 2])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path / "bad.onnx"
    onnx.save(model, str(path))
    kernel, bias = _weights(spec, 1)
    from_path = validate_model(str(path), spec, kernel=kernel, bias=bias)
    in_memory = validate_model(model, spec, kernel=kernel, bias=bias)
    assert from_path.status == "ERROR"
    assert "NoSuchOp" in from_path.error
    assert str(path) not in from_path.error
    assert from_path.error == in_memory.error
