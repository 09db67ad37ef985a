"""``convt run`` and ``convt validate`` through click's CliRunner, and once as a real process."""

from __future__ import annotations

import json
import os
import subprocess
from xml.etree import ElementTree as ET

import numpy as np
import pytest
from click.testing import CliRunner
from support.cli import convt_command, invoke
from onnx import helper

from convt_tools.cli import main
from convt_tools.reference import keras_conv2d_transpose
from convt_tools.spec import load_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "fixtures", "examples")
SEED = os.path.join(EXAMPLES, "seed.json")

LAYER = {"class_name": "Conv2DTranspose",
         "config": {"name": "up", "filters": 4, "kernel_size": [3, 3], "strides": [2, 2],
                    "padding": "same", "activation": "relu", "use_bias": True,
                    "bias_initializer": {"class_name": "RandomNormal", "config": {"seed": 1}}}}


@pytest.fixture
def layer(tmp_path):
    path = tmp_path / "layer.json"
    path.write_text(json.dumps(LAYER))
    return str(path)




# ----------------------------------------------------------------- run

def test_run_reference_and_onnxruntime_agree(layer, tmp_path):
    x = np.random.default_rng(0).standard_normal((2, 5, 6, 3)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    outs = {}
    for engine in ("reference", "onnxruntime"):
        out = tmp_path / f"y_{engine}.npy"
        res = invoke("run", layer, "--input", tmp_path / "x.npy", "--engine", engine,
                     "--seed", 3, "-o", out)
        assert res.exit_code == 0, res.output
        outs[engine] = np.load(out, allow_pickle=False)
    assert outs["reference"].shape == (2, 10, 12, 4)
    np.testing.assert_allclose(outs["reference"], outs["onnxruntime"], rtol=1e-5, atol=1e-5)
    # the weights were drawn from the config's initializers with --seed 3
    from convt_tools.initializers import initialize_weights

    spec = load_config(layer)
    kernel, bias = initialize_weights(spec, 3, seed=3)
    np.testing.assert_array_equal(outs["reference"], keras_conv2d_transpose(spec, x, kernel, bias))


def test_run_with_weights_file(layer, tmp_path):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 3, 3, 2)).astype(np.float32)
    kernel = rng.standard_normal((3, 3, 4, 2)).astype(np.float32)
    bias = rng.standard_normal(4).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    np.savez(tmp_path / "w.npz", kernel=kernel, bias=bias)
    res = invoke("run", layer, "-i", tmp_path / "x.npy", "-w", tmp_path / "w.npz", "-o", tmp_path / "y.npy")
    assert res.exit_code == 0, res.output
    want = keras_conv2d_transpose(load_config(layer), x, kernel, bias)
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), want)


@pytest.mark.parametrize("array, words", [
    (np.zeros((5, 6, 3), np.float32), "rank-4"),
    (np.zeros((1, 5, 6, 3), np.int32), "dtype int32"),
])
def test_run_bad_input_is_exit_2(layer, tmp_path, array, words):
    np.save(tmp_path / "x.npy", array)
    res = invoke("run", layer, "-i", tmp_path / "x.npy", "-o", tmp_path / "y.npy")
    assert res.exit_code == 2
    assert words in res.output
    assert "Traceback" not in res.output
    assert not (tmp_path / "y.npy").exists()


def test_run_wrong_channels_is_exit_2(layer, tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((1, 3, 3, 2), np.float32))
    np.savez(tmp_path / "w.npz", kernel=np.zeros((3, 3, 4, 5), np.float32), bias=np.zeros(4, np.float32))
    res = invoke("run", layer, "-i", tmp_path / "x.npy", "-w", tmp_path / "w.npz", "-o", tmp_path / "y.npy")
    assert res.exit_code == 2
    assert "5" in res.output


def test_run_refuses_pickled_input(layer, tmp_path):
    np.save(tmp_path / "x.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    res = invoke("run", layer, "-i", tmp_path / "x.npy", "-o", tmp_path / "y.npy")
    assert res.exit_code == 2


# ----------------------------------------------------------------- validate

def test_validate_examples_pass_and_junit_has_one_case_per_config(tmp_path):
    report = tmp_path / "report.xml"
    res = invoke("validate", EXAMPLES, "--junit-xml", report)
    assert res.exit_code == 0, res.output
    configs = sorted(f for f in os.listdir(EXAMPLES) if f.endswith(".json"))
    assert len(configs) >= 6
    assert f"{len(configs)} passed, 0 failed" in res.output
    suite = ET.parse(report).getroot()
    cases = suite.findall("testcase")
    assert len(cases) == len(configs)
    assert not suite.findall(".//failure")


def test_validate_json_and_glob(tmp_path):
    res = invoke("validate", os.path.join(EXAMPLES, "valid_*.json"), "--json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["passed"] is True
    assert len(data["results"]) == 2
    r = data["results"][0]
    assert r["status"] == "PASS"
    assert r["tolerance"]["atol"] > 0
    assert r["max_abs_error"] is not None


def _wrong_model(tmp_path, layer):
    """The export with the crop on the wrong side, and its weights file."""
    from convt_tools.exporter import export_spec

    spec = load_config(layer)
    rng = np.random.default_rng(2)
    kernel = rng.standard_normal((3, 3, 4, 3)).astype(np.float32)
    bias = rng.standard_normal(4).astype(np.float32)
    model = export_spec(spec, kernel, bias, in_channels=3, form="compact")  # one node, pads moved
    node = next(n for n in model.graph.node if n.op_type == "ConvTranspose")
    for a in node.attribute:
        if a.name == "pads":
            node.attribute.remove(a)
            break
    node.attribute.append(helper.make_attribute("pads", [1, 1, 0, 0]))
    import onnx

    onnx.save(model, tmp_path / "bad.onnx")
    np.savez(tmp_path / "w.npz", kernel=kernel, bias=bias)
    return tmp_path / "bad.onnx", tmp_path / "w.npz"


def test_validate_wrong_model_exit_1_with_reason(tmp_path, layer):
    model, weights = _wrong_model(tmp_path, layer)
    report = tmp_path / "r.xml"
    res = invoke("validate", layer, "--model", model, "--weights", weights, "--junit-xml", report)
    assert res.exit_code == 1, res.output
    assert "FAIL: values differ" in res.output
    assert "wrong side" in res.output
    failure = ET.parse(report).getroot().find("testcase/failure")
    assert failure is not None
    assert "values differ" in failure.get("message")


@pytest.mark.parametrize("args, words", [
    (["--providers", "Bogus"], "CPUExecutionProvider"),
    (["--input-shape", "1,2,3"], "rank-4"),
    (["--atol", "-1"], "atol"),
])
def test_validate_bad_options_exit_2(args, words):
    res = invoke("validate", SEED, *args)
    assert res.exit_code == 2
    assert words in res.output
    assert "Traceback" not in res.output


def test_validate_bad_config_and_missing_path_exit_2(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"filters": 2}')
    res = invoke("validate", bad)
    assert res.exit_code == 2
    assert "kernel_size" in res.output
    res = invoke("validate", tmp_path / "nope.json")
    assert res.exit_code == 2
    res = invoke("validate", EXAMPLES, "--weights", tmp_path / "w.npz")
    assert res.exit_code == 2
    assert "one config" in res.output


def test_validate_with_input_file(tmp_path, layer):
    np.save(tmp_path / "x.npy", np.random.default_rng(0).standard_normal((1, 4, 3, 6)).astype(np.float32))
    res = invoke("validate", layer, "--input", tmp_path / "x.npy", "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["results"][0]["input_shape"] == [1, 4, 3, 6]


@pytest.mark.slow
def test_installed_convt_subprocess(tmp_path):
    (exe,) = convt_command()
    proc = subprocess.run([exe, "validate", SEED, "--json"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["results"][0]["status"] == "PASS"
