"""Hostile-user cases: outputs that would destroy inputs, unparsable reports, vacuous passes,
wrong argument types. Each test reproduces a defect found in review."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from xml.etree import ElementTree as ET

import numpy as np
import pytest
from click.testing import CliRunner
from support.cli import invoke

import convt_tools as ct
from convt_tools import ConvtError
from convt_tools.cli import main

EXAMPLE = Path(__file__).resolve().parents[1] / "fixtures" / "examples" / "same_odd_crop_k3x5_s2.json"




def one_line_exit_2(result, starts: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"Error: {starts}"), result.stderr


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    dest = tmp_path / "cc.json"
    shutil.copy(EXAMPLE, dest)
    return dest


def test_junit_xml_never_overwrites_an_input(cfg: Path, tmp_path: Path) -> None:
    before = cfg.read_bytes()
    one_line_exit_2(invoke("validate", cfg, "--junit-xml", cfg), "junit_xml:")
    (tmp_path / "g").mkdir()
    shutil.copy(cfg, tmp_path / "g" / "top.json")
    one_line_exit_2(invoke("validate", str(tmp_path / "g" / "*.json"), "--junit-xml",
                           tmp_path / "g" / "top.json"), "junit_xml:")
    x = tmp_path / "x.npy"
    np.save(x, np.ones((1, 9, 6, 16), np.float32))
    one_line_exit_2(invoke("validate", cfg, "-i", x, "--junit-xml", x), "junit_xml:")
    assert cfg.read_bytes() == before
    assert (tmp_path / "g" / "top.json").read_bytes() == before


def test_junit_xml_with_control_characters_parses(tmp_path: Path) -> None:
    odd = tmp_path / "a\x01b<&>.json"
    shutil.copy(EXAMPLE, odd)
    result = invoke("validate", odd, "--junit-xml", tmp_path / "r.xml")
    assert result.exit_code == 0, result.output
    suite = ET.parse(tmp_path / "r.xml").getroot()
    assert [c.get("name") for c in suite.iter("testcase")] == [str(odd).replace("\x01", "?")]


def test_non_finite_input_is_refused_and_json_is_strict(cfg: Path, tmp_path: Path) -> None:
    x = np.ones((1, 9, 6, 16), np.float32)
    x[0, 0, 0, 0] = np.nan
    np.save(tmp_path / "nan.npy", x)
    one_line_exit_2(invoke("validate", cfg, "-i", tmp_path / "nan.npy", "--json"), "input:")
    from convt_tools.cli.common import _finite
    assert json.dumps(_finite({"a": [float("nan"), 1.0, float("inf")]}), allow_nan=False) \
        == '{"a": [null, 1.0, null]}'


def test_empty_comparison_is_not_a_pass(cfg: Path, tmp_path: Path) -> None:
    np.save(tmp_path / "empty.npy", np.ones((0, 9, 6, 16), np.float32))
    one_line_exit_2(invoke("validate", cfg, "-i", tmp_path / "empty.npy"), "input_shape:")
    one_line_exit_2(invoke("validate", cfg, "--input-shape", "0,9,6,16"), "input_shape:")


def test_model_input_mismatches(cfg: Path, tmp_path: Path) -> None:
    fixed = tmp_path / "fixed.onnx"
    assert invoke("export", cfg, "-o", fixed, "--input-shape", "1,9,6,16").exit_code == 0
    np.save(tmp_path / "x2.npy", np.ones((2, 9, 6, 16), np.float32))
    one_line_exit_2(invoke("validate", cfg, "-m", fixed, "-i", tmp_path / "x2.npy"), "input:")
    # A model for 3 input channels is not the layer whose build_config says 16.
    # (The layer itself refuses 3 channels: build the model from the config without its
    # build_config, as Keras would for an unbuilt layer.)
    other = tmp_path / "three.onnx"
    unbuilt = tmp_path / "unbuilt.json"
    entry = json.loads(cfg.read_text())
    entry.pop("build_config", None)
    unbuilt.write_text(json.dumps(entry))
    assert invoke("export", unbuilt, "-o", other, "--input-shape", "None,?,?,3").exit_code == 0
    result = invoke("validate", cfg, "-m", other)
    assert result.exit_code == 1
    assert "16 channels but the model takes 3" in result.output
    # The model's own static dims are used (and reported) when no shape is given.
    result = invoke("validate", cfg, "-m", fixed, "--json")
    data = json.loads(result.output)["results"][0]
    assert data["input_shape"] == [1, 9, 6, 16]
    assert "model's static input" in data["input_source"]


def test_run_providers_need_the_onnxruntime_engine(cfg: Path, tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", np.ones((1, 9, 6, 16), np.float32))
    one_line_exit_2(invoke("run", cfg, "-i", tmp_path / "x.npy", "--providers", "CPU",
                           "-o", tmp_path / "y.npy"), "providers:")


def test_read_only_output_is_not_replaced(cfg: Path, tmp_path: Path) -> None:
    out = tmp_path / "ro.onnx"
    out.write_bytes(b"keep")
    os.chmod(out, 0o444)
    one_line_exit_2(invoke("export", cfg, "-o", out), "output:")
    assert out.read_bytes() == b"keep"


@pytest.mark.parametrize("call,field", [
    (lambda: ct.load_config(3), "config"),
    (lambda: ct.load_config(b"layer.json"), "config"),
    (lambda: ct.keras_conv2d_transpose({"filters": 4}, np.ones((1, 2, 2, 1)),
                                       np.ones((1, 1, 4, 1))), "spec"),
    (lambda: ct.save_model("abc", "z.onnx"), "model"),
    (lambda: ct.conv_transpose(np.ones((1, 1, 2, 2)), np.ones((1, 1, 2, 2)), strides="2"),
     "strides"),
])
def test_api_argument_types(call, field: str) -> None:
    with pytest.raises(ConvtError) as info:
        call()
    assert info.value.field == field


def test_api_int_strides_mean_both_axes() -> None:
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((1, 2, 3, 3)), rng.standard_normal((2, 1, 2, 2))
    np.testing.assert_array_equal(ct.conv_transpose(x, w, strides=2),
                                  ct.conv_transpose(x, w, strides=(2, 2)))


def test_float16_policy_computes_in_float16_like_keras() -> None:
    spec = ct.make_spec(filters=2, kernel_size=3, strides=2, padding="same",
                        dtype={"class_name": "DTypePolicy", "config": {"name": "mixed_float16"}})
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 4, 4, 3)).astype(np.float32)
    k = rng.standard_normal((3, 3, 2, 3)).astype(np.float32)
    b = rng.standard_normal(2).astype(np.float32)
    y = ct.keras_conv2d_transpose(spec, x, k, b)
    assert y.dtype == np.float16
    # The float16 rounding of inputs and weights is what Keras feeds the conv.
    y32 = ct.keras_conv2d_transpose(ct.make_spec(filters=2, kernel_size=3, strides=2,
                                                 padding="same"),
                                    x.astype(np.float16).astype(np.float32),
                                    k.astype(np.float16).astype(np.float32),
                                    b.astype(np.float16).astype(np.float32))
    np.testing.assert_allclose(y.astype(np.float32), y32, rtol=2e-3, atol=2e-3)


# ---------------------------------------------------------------- numerical corners (review 3)

def test_non_finite_values_stay_local_on_the_tiny_path() -> None:
    """One NaN/inf input pixel reaches exactly the K x K outputs the definition says."""
    w = np.ones((1, 1, 3, 3))
    for bad, check in ((np.nan, np.isnan), (np.inf, np.isposinf)):
        x = np.zeros((1, 1, 4, 4))
        x[0, 0, 1, 2] = bad
        y = ct.conv_transpose(x, w, strides=(2, 2))            # 9x9 output: the tiny path
        expected = np.zeros((9, 9), bool)
        expected[2:5, 4:7] = True                              # rows 1*2..+2, cols 2*2..+2
        np.testing.assert_array_equal(check(y[0, 0]), expected)
        assert np.isfinite(y[0, 0][~expected]).all()


def test_gelu_tail_and_range() -> None:
    # gelu(x) = x * Phi(x); Phi(-3) = 0.0013498980316301 (standard normal table).
    gelu = ct.ACTIVATIONS["gelu"].numpy
    assert abs(float(gelu(np.array([-3.0], np.float16))[0]) - (-3 * 0.0013498980316301)) < 4e-6
    assert float(gelu(np.array([40000.0], np.float16))[0]) == 40000.0
    assert np.isfinite(gelu(np.array([3e38], np.float32))).all()


def _float16_layer(activation: str, opset: int, value: float) -> np.ndarray:
    import onnxruntime as ort
    spec = ct.make_spec(filters=1, kernel_size=1, activation=activation, dtype="float16")
    model = ct.export_spec(spec, np.ones((1, 1, 1, 1), np.float32), np.zeros(1, np.float32),
                           input_shape=(1, 1, 1, 1), opset=opset)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"input": np.full((1, 1, 1, 1), value, np.float16)})[0].ravel()


@pytest.mark.parametrize("opset", [17, 18, 19])
def test_float16_softplus_family_does_not_overflow(opset: int) -> None:
    # softplus(100) = 100 and log_sigmoid(-100) = -100 up to float16 rounding.
    assert float(_float16_layer("softplus", opset, 100.0)[0]) == 100.0
    assert float(_float16_layer("log_sigmoid", opset, -100.0)[0]) == -100.0


def test_sparse_plus_keeps_nan_in_onnx() -> None:
    import onnxruntime as ort
    spec = ct.make_spec(filters=1, kernel_size=1, activation="sparse_plus", use_bias=False)
    for opset in (11, 17):
        model = ct.export_spec(spec, np.ones((1, 1, 1, 1), np.float32),
                               input_shape=(1, 1, 4, 1), opset=opset)
        sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        y = sess.run(None, {"input": np.array([np.nan, -2.0, 0.0, 3.0], np.float32)
                            .reshape(1, 1, 4, 1)})[0].ravel()
        assert np.isnan(y[0])
        assert y[1:].tolist() == [0.0, 0.25, 3.0]


def test_equal_infinities_are_no_error() -> None:
    from convt_tools.validate.diagnose import compare
    from convt_tools.validate.tolerance import Tolerance
    tol = Tolerance(1e-5, 1e-5, "test")
    inf, nan = np.inf, np.nan
    assert compare(np.array([inf, -inf, nan, 1.0]), np.array([inf, -inf, nan, 1.0]), tol).ok
    assert not compare(np.array([inf]), np.array([-inf]), tol).ok
    assert not compare(np.array([nan]), np.array([1.0]), tol).ok
    assert not compare(np.array([inf]), np.array([1.0]), tol).ok


def test_float16_overflow_like_keras_is_a_pass() -> None:
    """float16 exp(12) = inf in Keras and in the model; the reference must agree."""
    spec = ct.make_spec(filters=1, kernel_size=1, activation="exponential", dtype="float16")
    x = np.full((1, 2, 2, 1), 12.0, np.float32)
    result = ct.validate_spec(spec, kernel=np.ones((1, 1, 1, 1), np.float32),
                              bias=np.zeros(1, np.float32), x=x)
    assert result.passed, result.message
