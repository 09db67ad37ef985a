"""The CLI on Conv1DTranspose / Conv3DTranspose configs (real-Keras fixtures) and zero-size inputs.

Expected values come from real Keras: the fixtures in fixtures/cases_1d, cases_3d
(fixtures/generate_nd.py) and tests/data/keras_zero_size.json.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from support.cli import invoke

ROOT = Path(__file__).resolve().parent.parent
CASE_1D = ROOT / "fixtures" / "cases_1d" / "act_same_k3_s2_d1_opN_cl_in2x3x2_f4_gelu_b1"
CASE_3D = ROOT / "fixtures" / "cases_3d" / "act_same_k3_s2_d1_opN_cf_in1x2x2x1x3_f3_softmax_b1"
ZERO = json.loads((ROOT / "tests" / "data" / "keras_zero_size.json").read_text())


def _config(case: Path, tmp_path: Path) -> tuple[Path, dict, dict[str, np.ndarray]]:
    meta = json.loads(case.with_suffix(".json").read_text())
    path = tmp_path / "layer.json"
    path.write_text(json.dumps(meta["config"]))
    with np.load(case.with_suffix(".npz")) as data:
        arrays = {k: data[k] for k in data.files}
    return path, meta, arrays


@pytest.mark.parametrize("case", [CASE_1D, CASE_3D], ids=["1d", "3d"])
def test_shape_json_names_class_and_rank(case: Path, tmp_path: Path) -> None:
    path, meta, _ = _config(case, tmp_path)
    shape = ",".join(map(str, meta["input_shape"]))
    res = invoke("shape", path, "--input-shape", shape, "--json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["class_name"] == meta["class_name"]
    assert data["rank"] == meta["rank"]
    assert data["output_shape"] == meta["output_shape"]["concrete"]
    assert len(data["crop_plan"]) == meta["rank"]


def test_shape_flags_with_rank(tmp_path: Path) -> None:
    """Keras Conv1DTranspose(32, 8, strides=4, padding='same') on (1, 16000, 64): in*s."""
    res = invoke("shape", "--rank", "1", "--filters", "32", "--kernel-size", "8", "--strides",
                 "4", "--padding", "same", "--input-shape", "1,16000,64")
    assert res.exit_code == 0, res.output
    assert res.output.strip() == "(1, 64000, 32)"
    bad = invoke("shape", "--rank", "4", "--filters", "2", "--kernel-size", "3",
                 "--input-shape", "1,4,2")
    assert bad.exit_code == 2 and bad.output.startswith("Error: rank:")


@pytest.mark.parametrize("case", [CASE_1D, CASE_3D], ids=["1d", "3d"])
def test_run_and_export_equal_keras(case: Path, tmp_path: Path) -> None:
    """run (reference and onnxruntime) on the fixture's weights equals Keras (atol 1e-5)."""
    path, meta, arrays = _config(case, tmp_path)
    np.save(tmp_path / "x.npy", arrays["input"])
    np.savez(tmp_path / "w.npz", kernel=arrays["kernel"], bias=arrays["bias"])
    for engine in ("reference", "onnxruntime"):
        out = tmp_path / f"y_{engine}.npy"
        res = invoke("run", path, "-i", tmp_path / "x.npy", "-w", tmp_path / "w.npz",
                     "--engine", engine, "-o", out)
        assert res.exit_code == 0, res.output
        np.testing.assert_allclose(np.load(out), arrays["output"], rtol=1e-5, atol=1e-5)
    res = invoke("export", path, "-w", tmp_path / "w.npz", "-o", tmp_path / "m.onnx", "--json")
    assert res.exit_code == 0, res.output
    info = json.loads(res.output)
    assert info["class_name"] == meta["class_name"]
    assert len(info["input"]["shape"]) == meta["rank"] + 2


@pytest.mark.parametrize("case", [CASE_1D, CASE_3D], ids=["1d", "3d"])
def test_validate_passes(case: Path, tmp_path: Path) -> None:
    path, _, _ = _config(case, tmp_path)
    res = invoke("validate", path)
    assert res.exit_code == 0, res.output
    assert "1 passed, 0 failed" in res.output


@pytest.mark.parametrize("case", [c for c in ZERO["cases"] if min(c["compute_output_shape"]) >= 0],
                         ids=lambda c: f"{c['class_name']}-{c['input_shape']}")
def test_run_zero_size_input_is_pure_bias_like_keras(case: dict, tmp_path: Path) -> None:
    """Keras (TF): the output has compute_output_shape and every value is sigmoid(0.5)."""
    cfg = {"class_name": case["class_name"],
           "config": {**case["kwargs"], "activation": "sigmoid",
                      "bias_initializer": {"class_name": "Constant", "config": {"value": 0.5}}}}
    (tmp_path / "layer.json").write_text(json.dumps(cfg))
    np.save(tmp_path / "x.npy", np.ones(case["input_shape"], np.float32))
    res = invoke("run", tmp_path / "layer.json", "-i", tmp_path / "x.npy", "-o", tmp_path / "y.npy")
    assert res.exit_code == 0, res.output
    y = np.load(tmp_path / "y.npy")
    assert list(y.shape) == case["tensorflow_output_shape"]
    np.testing.assert_allclose(np.unique(y), case["values"], rtol=1e-6)


def test_export_refuses_zero_size_spatial_input(tmp_path: Path) -> None:
    res = invoke("export", "--rank", "1", "--filters", "2", "--kernel-size", "3",
                 "--input-shape", "1,0,3", "-o", tmp_path / "m.onnx")
    assert res.exit_code == 2
    assert res.output.startswith("Error: input_shape:") and "length is 0" in res.output
    assert not (tmp_path / "m.onnx").exists()


def test_shape_3d_as_a_real_process(tmp_path: Path) -> None:
    path, meta, _ = _config(CASE_3D, tmp_path)
    proc = subprocess.run([sys.executable, "-m", "convt_tools", "shape", str(path),
                           "--input-shape", ",".join(map(str, meta["input_shape"]))],
                          capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin",
                               "KERAS_HOME": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "(" + ", ".join(map(str, meta["output_shape"]["concrete"])) + ")"
