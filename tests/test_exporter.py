"""The ONNX exporter against an independent direct-definition oracle.

Every exported model is run on onnxruntime and compared with
``support.export_oracle.direct_conv_transpose`` (scatter loops + REFERENCE.md's
Keras lengths + the activation table's NumPy side, in float64).

Tolerances. float32: each ONNX output is a sum of at most
``C * ceil(kh/s) * ceil(kw/s)`` (< 64 here) products, so its rounding error is
below ``64 * 2**-24 * S`` ~ ``4e-6 * S`` with ``S = sum |x| |k| + |b|`` (the
``abs_scale`` of that output); the activations here are at most ~2-Lipschitz
on these values and add O(1e-7) relative error, hence
``atol = 1e-5 * S, rtol = 1e-5``. float16: inputs and weights are rounded to
float16 first and the oracle gets the same rounded values, so only the
model's own roundings count: the ConvTranspose result is rounded to float16
(relative 2**-11 ~ 4.9e-4) and each float16 activation op rounds again (up to
~6 ops in a chain, e.g. the erf form of gelu), hence ``rtol = 2e-3`` and
``atol = 2e-3 * S`` (4 float16 ulps; the largest error measured over the
activation sweep was 4e-4 * S, for log_softmax; float32's was 2.4e-7 * S).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import onnx
import pytest

from support.export_oracle import abs_scale, assert_portable, direct_conv_transpose, keras_length, run_onnx
from convt_tools.activations import ACTIVATIONS
from convt_tools.errors import ConvtError
from convt_tools.exporter import DEFAULT_OPSET, describe_model, export_spec
from convt_tools.onnxbase import save_model
from convt_tools.spec import load_config, make_spec
from convt_tools.weights import check_weights, load_weights
from support.tiers import fast_only

LATEST = onnx.defs.onnx_opset_version()
OPSETS = sorted({11, 13, 17, LATEST})
FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "examples" / "seed.json"

# (id, layer kwargs, input (H, W)) covering the semantic space of the crop plan.
GEOMETRIES = [
    ("k<s-valid-extend", dict(kernel_size=2, strides=3, padding="valid"), (3, 4)),
    ("k<s-same-extend", dict(kernel_size=(1, 2), strides=(2, 3), padding="same"), (3, 2)),
    ("valid-op", dict(kernel_size=3, strides=2, padding="valid", output_padding=1), (3, 4)),
    ("valid-op-nonsquare", dict(kernel_size=(3, 2), strides=(2, 3), padding="valid",
                                output_padding=(1, 2)), (2, 3)),
    ("same-odd-total", dict(kernel_size=3, strides=2, padding="same"), (4, 3)),
    ("same-even-k-op", dict(kernel_size=4, strides=2, padding="same", output_padding=1), (3, 3)),
    ("same-k5-s3-op2", dict(kernel_size=5, strides=3, padding="same", output_padding=(2, 0)),
     (2, 3)),
    ("same-s1-even-k", dict(kernel_size=(2, 4), strides=1, padding="same"), (4, 5)),
    ("dilation-same", dict(kernel_size=3, dilation_rate=2, padding="same"), (4, 5)),
    ("dilation-valid-nonsquare", dict(kernel_size=(2, 3), dilation_rate=(3, 2)), (3, 2)),
    ("nonsquare-all", dict(kernel_size=(3, 5), strides=(1, 2), padding="same"), (3, 4)),
    ("1x1-input", dict(kernel_size=3, strides=2, padding="same"), (1, 1)),
    ("1x1-input-valid", dict(kernel_size=(2, 3), strides=(3, 1)), (1, 1)),
    ("k1-s1", dict(kernel_size=1), (3, 3)),
]


def _layout(spec, n: int, hw: tuple[int, int], channels: int) -> tuple[int, ...]:
    return (n, *hw, channels) if spec.data_format == "channels_last" else (n, channels, *hw)


def _weights(spec, channels: int, rng: np.random.Generator):
    kernel = rng.uniform(-0.5, 0.5, spec.kernel_shape(channels)).astype(np.float32)
    bias = rng.uniform(-0.5, 0.5, spec.filters).astype(np.float32) if spec.use_bias else None
    return kernel, bias


def _compare(spec, hw, *, opset=DEFAULT_OPSET, dtype="float32", channels=3, batch=2,
             symbolic=True, seed=0):
    """Export, run on onnxruntime, compare with the oracle; returns the max abs error."""
    rng = np.random.default_rng(seed)
    kernel, bias = _weights(spec, channels, rng)
    x = rng.uniform(-1, 1, _layout(spec, batch, hw, channels)).astype(dtype)
    kernel, bias = kernel.astype(dtype), None if bias is None else bias.astype(dtype)
    in_shape = _layout(spec, None, (None, None) if symbolic else hw, channels)
    model = export_spec(spec, kernel, bias, input_shape=in_shape, opset=opset, dtype=dtype)
    assert_portable(model, spec, kernel)
    got = run_onnx(model, x)
    want = direct_conv_transpose(spec, x, kernel, bias)
    assert got.dtype == np.dtype(dtype)
    assert got.shape == want.shape
    scale = abs_scale(spec, x, kernel, bias)
    tol = 1e-5 if dtype == "float32" else 2e-3
    keep = np.ones(want.shape, bool)
    if spec.activation == "hard_shrink":
        keep = ~_near_jump(spec, x, kernel, bias, tol * scale)
    assert keep.mean() > 0.9
    np.testing.assert_allclose(got.astype(np.float64)[keep], want[keep], rtol=tol,
                               atol=tol * scale)
    return model


def _near_jump(spec, x, kernel, bias, atol):
    """Outputs whose pre-activation lies within ``atol`` of hard_shrink's jumps at +-0.5.

    There a rounding-level difference legitimately flips the output between 0
    and ~0.5, so those few points are not compared.
    """
    z = direct_conv_transpose(dataclasses.replace(spec, activation="linear"), x, kernel, bias)
    return np.abs(np.abs(z) - 0.5) <= atol


@pytest.mark.parametrize("opset", fast_only(OPSETS, (min(OPSETS), max(OPSETS))))
@pytest.mark.parametrize("use_bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("geo", GEOMETRIES, ids=[g[0] for g in GEOMETRIES])
def test_geometry_matches_oracle(geo, data_format, use_bias, opset):
    _, kwargs, hw = geo
    spec = make_spec(4, data_format=data_format, use_bias=use_bias, **kwargs)
    _compare(spec, hw, opset=opset, symbolic=use_bias)  # fixed and symbolic H/W both covered


@pytest.mark.parametrize("opset", fast_only(OPSETS, (min(OPSETS), max(OPSETS))))
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_every_activation_matches_oracle(activation, data_format, opset):
    # Output (2, 8, 6, 4) / (2, 4, 8, 6): axis -1 is channels resp. width, both even (glu).
    spec = make_spec(4, 3, strides=2, padding="same", output_padding=(1, 1),
                     activation=activation, data_format=data_format)
    _compare(spec, (4, 3), opset=opset, seed=1)


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("geo", GEOMETRIES, ids=[g[0] for g in GEOMETRIES])
def test_float16_geometry(geo, data_format):
    _, kwargs, hw = geo
    spec = make_spec(4, data_format=data_format, **kwargs)
    _compare(spec, hw, dtype="float16")


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_float16_every_activation(activation):
    spec = make_spec(4, 3, strides=2, padding="same", activation=activation,
                     data_format="channels_first")
    _compare(spec, (3, 3), dtype="float16", seed=2)


def test_float32_errors_are_far_below_tolerance():
    # The sweep's tolerance is loose enough to be robust; the real error is ~1e-7.
    spec = make_spec(8, 4, strides=2, padding="same", output_padding=1)
    rng = np.random.default_rng(5)
    kernel, bias = _weights(spec, 16, rng)
    x = rng.uniform(-1, 1, (2, 5, 6, 16)).astype(np.float32)
    got = run_onnx(export_spec(spec, kernel, bias), x)
    err = np.abs(got - direct_conv_transpose(spec, x, kernel, bias)).max()
    assert err < 1e-5 * abs_scale(spec, x, kernel, bias) / 10


@pytest.mark.parametrize("geo", GEOMETRIES, ids=[g[0] for g in GEOMETRIES])
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_symbolic_model_exact_at_several_sizes(geo, data_format):
    _, kwargs, _ = geo
    spec = make_spec(2, data_format=data_format, **kwargs)
    rng = np.random.default_rng(3)
    kernel, bias = _weights(spec, 2, rng)
    model = export_spec(spec, kernel, bias, in_channels=2)
    dims = [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == list(_layout(spec, "batch", ("height", "width"), 2))
    for batch, hw in [(1, (1, 1)), (3, (2, 3)), (2, (5, 4)), (1, (7, 7))]:
        out_hw = [keras_length(n, spec.kernel_size[i], spec.strides[i], spec.dilation_rate[i],
                               spec.padding, (spec.output_padding or (None, None))[i])
                  for i, n in enumerate(hw)]
        if min(out_hw) == 0:  # Keras's empty output; onnxruntime cannot run those.
            continue
        x = rng.uniform(-1, 1, _layout(spec, batch, hw, 2)).astype(np.float32)
        want = direct_conv_transpose(spec, x, kernel, bias)
        got = run_onnx(model, x)
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-5,
                                   atol=1e-5 * abs_scale(spec, x, kernel, bias))


def test_fixed_shape_output_dims_are_static_and_inferred():
    spec = make_spec(6, (3, 2), strides=(2, 3), padding="same", activation="glu")
    model = export_spec(spec, in_channels=5, input_shape=(4, 7, 3, 5))
    out = [d.dim_value for d in model.graph.output[0].type.tensor_type.shape.dim]
    assert out == [4, 14, 9, 3]  # Keras: in*s per axis; glu halves the 6 channels
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    dims = [d.dim_value for d in inferred.graph.output[0].type.tensor_type.shape.dim]
    assert dims == [4, 14, 9, 3]
    x = np.random.default_rng(0).uniform(-1, 1, (4, 7, 3, 5)).astype(np.float32)
    assert run_onnx(model, x).shape == (4, 14, 9, 3)


def test_fixture_layer_uses_build_config_shape_with_dynamic_batch():
    spec = load_config(FIXTURE)
    model = export_spec(spec)
    assert_portable(model, spec)
    info = describe_model(model)
    assert info["input"]["shape"] == ["batch", 10, 8, 128]
    assert info["output"]["shape"] == ["batch", 20, 16, 32]
    assert info["opset"] == DEFAULT_OPSET
    x = np.random.default_rng(0).standard_normal((1, 10, 8, 128)).astype(np.float32)
    assert run_onnx(model, x).shape == (1, 20, 16, 32)


def test_metadata_and_provenance():
    import convt_tools

    spec = make_spec(3, 2, strides=2, kernel_regularizer={"class_name": "L2", "config": {}})
    model = export_spec(spec, in_channels=1)
    assert model.producer_version == convt_tools.__version__
    props = {p.key: p.value for p in model.metadata_props}
    assert json.loads(props["convt.keras_config"])["kernel_regularizer"] == {
        "class_name": "L2", "config": {}}
    notes = json.loads(props["convt.notes"])
    assert any("only act during training" in n for n in notes)
    assert any("seed 0" in n for n in notes)
    plan = json.loads(props["convt.crop_plan"])
    assert plan[0] == {"axis": "height", "crop_begin": 0, "crop_end": 0, "extend_end": 0}


def test_ir_version_is_lowest_for_opset_and_loadable():
    for opset in OPSETS:
        model = export_spec(make_spec(2, 2), in_channels=1, opset=opset)
        assert model.ir_version == min(onnx.helper.find_min_ir_version_for(
            [onnx.helper.make_opsetid("", opset)]), onnx.IR_VERSION)
        assert [o.version for o in model.opset_import] == [opset]


def test_seeded_initialisation_is_reproducible():
    spec = make_spec(4, 3, kernel_initializer="he_normal", bias_initializer="random_normal")
    w = [onnx.numpy_helper.to_array(t) for t in export_spec(spec, in_channels=2, seed=7)
         .graph.initializer if t.name in ("W", "B")]
    again = [onnx.numpy_helper.to_array(t) for t in export_spec(spec, in_channels=2, seed=7)
             .graph.initializer if t.name in ("W", "B")]
    other = [onnx.numpy_helper.to_array(t) for t in export_spec(spec, in_channels=2, seed=8)
             .graph.initializer if t.name in ("W", "B")]
    assert len(w) == 2
    assert all(np.array_equal(a, b) for a, b in zip(w, again))
    assert not np.array_equal(w[0], other[0])


# ---------------------------------------------------------------- dtypes

def test_spec_dtype_float16_is_honoured_and_dtype_argument_overrides():
    spec = make_spec(2, 3, strides=2, dtype="mixed_float16")
    model = export_spec(spec, in_channels=3)
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT16
    x = np.ones((1, 2, 2, 3), np.float16)
    assert run_onnx(model, x).dtype == np.float16
    model32 = export_spec(spec, in_channels=3, dtype="float32")
    assert model32.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT


@pytest.mark.parametrize("dtype", ["float64", "bfloat16"])
def test_unsupported_dtype_is_an_error_unless_allowed(dtype):
    spec = make_spec(2, 3, strides=2, activation="soft_shrink")
    with pytest.raises(ConvtError, match=rf"^dtype: got '{dtype}'.*allow_unsupported_dtype") as e:
        export_spec(spec, in_channels=3, dtype=dtype)
    assert e.value.field == "dtype"
    model = export_spec(spec, in_channels=3, dtype=dtype, allow_unsupported_dtype=True,
                        opset=LATEST)
    assert_portable(model, spec)
    assert any("cannot run" in n for n in describe_model(model)["notes"])
    with pytest.raises(Exception):  # onnxruntime CPU has no kernel for it
        run_onnx(model, np.ones((1, 2, 2, 3), np.float64))


def test_bfloat16_needs_opset_22():
    with pytest.raises(ConvtError, match=r"^opset: got 17 with dtype bfloat16"):
        export_spec(make_spec(2, 2), in_channels=1, dtype="bfloat16", allow_unsupported_dtype=True)


@pytest.mark.parametrize("dtype", ["int8", "float8", 3])
def test_unknown_dtype(dtype):
    with pytest.raises(ConvtError, match=r"^dtype: got"):
        export_spec(make_spec(2, 2), in_channels=1, dtype=dtype)


# ---------------------------------------------------------------- errors

@pytest.mark.parametrize("opset", [10, LATEST + 1, 0, "17", True, 17.0])
def test_bad_opset(opset):
    with pytest.raises(ConvtError, match=rf"^opset: got .*from 11 to {LATEST}") as e:
        export_spec(make_spec(2, 2), in_channels=1, opset=opset)
    assert e.value.field == "opset"


def test_empty_keras_output_is_an_error_naming_input_shape():
    spec = make_spec(2, 2, strides=2, padding="same", output_padding=0)
    assert spec.output_shape((1, 1, 3, 1))[1] == 0  # Keras's length (1-1)*2 + 0 + 0
    with pytest.raises(ConvtError, match=r"^input_shape: got \(1, 1, 3, 1\).*height is 0") as e:
        export_spec(spec, in_channels=1, input_shape=(1, 1, 3, 1))
    assert e.value.field == "input_shape"
    # Unknown H/W is fine: larger inputs work.
    assert export_spec(spec, in_channels=1) is not None


def test_missing_channels_and_mismatches():
    spec = make_spec(2, 2)
    with pytest.raises(ConvtError, match=r"^input_shape: the number of input channels"):
        export_spec(spec)
    kernel = np.zeros((2, 2, 2, 4), np.float32)
    bias = np.zeros(2, np.float32)
    with pytest.raises(ConvtError, match=r"^kernel: got 4 input channels"):
        export_spec(spec, kernel, bias, in_channels=3)
    with pytest.raises(ConvtError, match=r"^kernel: got 4 input channels"):
        export_spec(spec, kernel, bias, input_shape=(None, 5, 5, 3))
    with pytest.raises(ConvtError, match=r"^in_channels: got 3 but input_shape has 5"):
        export_spec(spec, in_channels=3, input_shape=(None, 5, 5, 5))
    with pytest.raises(ConvtError, match=r"^bias: got a bias without a kernel"):
        export_spec(spec, bias=bias, in_channels=4)
    with pytest.raises(ConvtError, match=r"^bias: missing"):
        export_spec(spec, kernel)
    with pytest.raises(ConvtError, match=r"^input_shape: got"):
        export_spec(spec, kernel, bias, input_shape=(None, 5, 4))


def test_odd_glu_axis_is_an_error():
    spec = make_spec(3, 2, activation="glu")
    with pytest.raises(ConvtError, match=r"^activation: 'glu'"):
        export_spec(spec, in_channels=1)


# ---------------------------------------------------------------- saving

def _listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_save_model_roundtrip(tmp_path):
    spec = make_spec(3, 2, strides=2)
    model = export_spec(spec, in_channels=2)
    path = tmp_path / "m.onnx"
    save_model(model, path)
    assert _listing(tmp_path) == ["m.onnx"]
    loaded = onnx.load(str(path))
    assert loaded.SerializeToString() == model.SerializeToString()


def test_save_model_is_atomic(tmp_path, monkeypatch):
    model = export_spec(make_spec(3, 2), in_channels=2)

    def broken(proto, f, *args, **kwargs):
        Path(f).write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(onnx, "save_model", broken)
    with pytest.raises(ConvtError, match="^output: cannot write .*disk full"):
        save_model(model, tmp_path / "m.onnx")
    assert _listing(tmp_path) == []


def test_save_model_missing_folder(tmp_path):
    model = export_spec(make_spec(3, 2), in_channels=2)
    with pytest.raises(ConvtError, match=r"^output: folder"):
        save_model(model, tmp_path / "nope" / "m.onnx")


def test_external_data_above_threshold(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVT_EXTERNAL_DATA_BYTES", "1000")
    spec = make_spec(8, 3, strides=2, padding="same")
    rng = np.random.default_rng(0)
    kernel, bias = _weights(spec, 16, rng)  # 4608 bytes of kernel
    model = export_spec(spec, kernel, bias)
    before = model.SerializeToString()
    save_model(model, tmp_path / "big.onnx")
    assert _listing(tmp_path) == ["big.onnx", "big.onnx.data"]
    assert model.SerializeToString() == before  # the caller's model is untouched
    assert (tmp_path / "big.onnx").stat().st_size < 4000
    onnx.checker.check_model(str(tmp_path / "big.onnx"), full_check=True)
    import onnxruntime as ort

    session = ort.InferenceSession(str(tmp_path / "big.onnx"), providers=["CPUExecutionProvider"])
    x = rng.uniform(-1, 1, (1, 3, 4, 16)).astype(np.float32)
    np.testing.assert_allclose(session.run(None, {"input": x})[0],
                               direct_conv_transpose(spec, x, kernel, bias), rtol=1e-5,
                               atol=1e-5 * abs_scale(spec, x, kernel, bias))


def test_external_data_failure_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVT_EXTERNAL_DATA_BYTES", "100")
    model = export_spec(make_spec(8, 3), in_channels=8)

    def broken(*args, **kwargs):
        raise onnx.checker.ValidationError("boom")

    monkeypatch.setattr(onnx.checker, "check_model", broken)
    with pytest.raises(onnx.checker.ValidationError):
        save_model(model, tmp_path / "big.onnx")
    assert _listing(tmp_path) == []


# ---------------------------------------------------------------- the other reference

def test_agrees_with_convt_tools_reference():
    from convt_tools.reference import keras_conv2d_transpose

    rng = np.random.default_rng(11)
    for _, kwargs, hw in GEOMETRIES:
        for data_format in ("channels_last", "channels_first"):
            spec = make_spec(4, data_format=data_format, activation="gelu", **kwargs)
            kernel, bias = _weights(spec, 3, rng)
            x = rng.uniform(-1, 1, _layout(spec, 2, hw, 3)).astype(np.float32)
            got = run_onnx(export_spec(spec, kernel, bias), x)
            want = np.asarray(keras_conv2d_transpose(spec, x, kernel, bias))
            assert got.shape == want.shape
            np.testing.assert_allclose(got, want, rtol=1e-5,
                                       atol=1e-5 * abs_scale(spec, x, kernel, bias))



# ---------------------------------------------------------------- weights validation

_SPEC = make_spec(4, (3, 2))
_K = np.zeros((3, 2, 4, 5), np.float32)
_B = np.zeros(4, np.float32)


def _nan_at(arr, value):
    arr = arr.copy()
    arr.flat[3] = value
    return arr


@pytest.mark.parametrize("kernel,bias,in_channels,match", [
    (np.zeros((3, 2, 5, 4), np.float32), _B, None,
     r"^kernel: got shape \(3, 2, 5, 4\); expected \(kh, kw, filters, in_channels\) = "
     r"\(3, 2, 4, in_channels\)"),
    (np.zeros((3, 2, 4), np.float32), _B, None, r"^kernel: got shape \(3, 2, 4\)"),
    (np.zeros((3, 2, 4, 0), np.float32), _B, None, r"^kernel: got shape \(3, 2, 4, 0\)"),
    (_K, _B, 6, r"^kernel: got 5 input channels.*expected 6"),
    (_K.astype(np.int32), _B, None, r"^kernel: got an array of dtype int32; expected a float"),
    (_K.astype(bool), _B, None, r"^kernel: got an array of dtype bool"),
    (_K.astype(np.complex64), _B, None, r"^kernel: got an array of dtype complex64"),
    (_K, np.zeros(5, np.float32), None, r"^bias: got shape \(5,\); expected \(filters,\) = \(4,\)"),
    (_K, np.zeros((4, 1), np.float32), None, r"^bias: got shape \(4, 1\)"),
    (_K, _B.astype(np.int64), None, r"^bias: got an array of dtype int64"),
    (_K, None, None, r"^bias: missing; the layer has use_bias=True"),
    (_nan_at(_K, np.nan), _B, None, r"^kernel: got nan at index \(0, 0, 0, 3\) \(1 non-finite"),
    (_nan_at(_K, np.inf), _B, None, r"^kernel: got inf at index"),
    (_K, _nan_at(_B, -np.inf), None, r"^bias: got -inf at index \(3,\)"),
])
def test_check_weights_errors(kernel, bias, in_channels, match):
    with pytest.raises(ConvtError, match=match):
        check_weights(_SPEC, kernel, bias, in_channels)


def test_check_weights_accepts_and_bias_without_use_bias():
    k, b = check_weights(_SPEC, _K.astype(np.float16), _B.astype(np.float64), 5)
    assert k.dtype == np.float16
    assert b.dtype == np.float64
    nobias = make_spec(4, (3, 2), use_bias=False)
    assert check_weights(nobias, _K, None)[1] is None
    with pytest.raises(ConvtError, match=r"^bias: got an array of shape \(4,\), but the layer "
                                         r"has use_bias=False"):
        check_weights(nobias, _K, _B)


def _npz(path, **arrays):
    np.savez(path, **arrays)
    return path


def test_load_weights(tmp_path):
    k, b = load_weights(_npz(tmp_path / "w.npz", kernel=_K + 1, bias=_B + 2), _SPEC)
    np.testing.assert_array_equal(k, _K + 1)
    np.testing.assert_array_equal(b, _B + 2)
    with pytest.raises(ConvtError, match=r"^weights: got unknown key\(s\) 'kernal'"):
        load_weights(_npz(tmp_path / "a.npz", kernal=_K, bias=_B), _SPEC)
    with pytest.raises(ConvtError, match=r"^weights: .* has no 'kernel' array"):
        load_weights(_npz(tmp_path / "b.npz", bias=_B), _SPEC)
    with pytest.raises(ConvtError, match=r"^weights: .* has no 'bias' array"):
        load_weights(_npz(tmp_path / "c.npz", kernel=_K), _SPEC)
    with pytest.raises(ConvtError, match=r"^weights: got unknown key\(s\) 'bias'.*use_bias=False"):
        load_weights(_npz(tmp_path / "d.npz", kernel=_K, bias=_B), make_spec(4, (3, 2),
                                                                         use_bias=False))
    with pytest.raises(ConvtError, match=r"^kernel: got shape"):
        load_weights(_npz(tmp_path / "e.npz", kernel=_K[:2], bias=_B), _SPEC)
    with pytest.raises(ConvtError, match=r"^kernel: got 5 input channels.*expected 2"):
        load_weights(_npz(tmp_path / "f.npz", kernel=_K, bias=_B), _SPEC, in_channels=2)


def test_load_weights_never_unpickles(tmp_path):
    objects = np.empty(4, dtype=object)
    objects[:] = [1.0, 2.0, 3.0, 4.0]
    path = _npz(tmp_path / "p.npz", kernel=_K, bias=objects)
    with pytest.raises(ConvtError, match=r"^weights: .* holds Python objects \(pickled data\)"):
        load_weights(path, _SPEC)
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ConvtError, match=r"^weights: .* is not an .npz archive"):
        load_weights(tmp_path / "junk.npz", _SPEC)
    with pytest.raises(ConvtError, match=r"^weights: .* is missing; expected a file"):
        load_weights(tmp_path / "missing.npz", _SPEC)


def test_glu_channels_first_symbolic_output_dim_is_named_half():
    spec = make_spec(4, 3, activation="glu", data_format="channels_first")
    model = export_spec(spec, in_channels=2)
    assert describe_model(model)["output"]["shape"] == ["batch", 4, "out_height", "out_width_half"]
    x = np.zeros((1, 2, 3, 4), np.float32)
    assert run_onnx(model, x).shape == (1, 4, 5, 3)  # width 4 + 3 - 1 = 6, halved


@pytest.mark.parametrize("opset", fast_only(range(11, LATEST + 1), (11, 17, LATEST)))
def test_every_activation_at_every_opset(opset):
    # Cheap version of the sweep for every opset the installed onnx knows.
    for activation in sorted(ACTIVATIONS):
        spec = make_spec(2, 2, strides=2, activation=activation, data_format="channels_first")
        _compare(spec, (2, 2), opset=opset, channels=1, batch=1, seed=opset)
