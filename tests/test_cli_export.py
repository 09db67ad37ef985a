"""``convt export`` through click's CliRunner, and once as a real subprocess."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from support.cli import convt_command, invoke

from support.export_oracle import abs_scale, assert_portable, direct_conv_transpose, run_onnx
from convt_tools.cli import main
from convt_tools.spec import make_spec, parse_config

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "examples" / "seed.json"

LAYER = {"class_name": "Conv2DTranspose", "config": {
    "name": "up", "filters": 6, "kernel_size": [3, 1], "strides": [2, 3], "padding": "same",
    "output_padding": [1, 2], "data_format": "channels_last", "dilation_rate": [1, 1],
    "activation": "selu", "use_bias": True,
    "kernel_regularizer": {"class_name": "L2", "config": {"l2": 0.01}}}}


def _write_layer(folder: Path, layer=LAYER, name="layer.json") -> Path:
    path = folder / name
    path.write_text(json.dumps(layer))
    return path


def _invoke(*args: str):
    return invoke(*args)


def _assert_clean_error(result, *, starts: str, folder: Path, expect_files: set[str]):
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith(f"Error: {starts}"), result.output
    assert "Traceback" not in result.output
    assert {p.name for p in folder.iterdir()} == expect_files  # nothing written


def test_export_with_weights_runs_like_the_oracle(tmp_path):
    layer = _write_layer(tmp_path)
    spec = parse_config(LAYER)
    rng = np.random.default_rng(0)
    kernel = rng.uniform(-0.5, 0.5, spec.kernel_shape(3)).astype(np.float32)
    bias = rng.uniform(-0.5, 0.5, 6).astype(np.float32)
    np.savez(tmp_path / "w.npz", kernel=kernel, bias=bias)
    out = tmp_path / "layer.onnx"
    result = _invoke("export", str(layer), "-o", str(out), "--weights", str(tmp_path / "w.npz"))
    assert result.exit_code == 0, result.output
    text = result.output
    assert f"wrote {out}" in text
    assert "opset 17" in text
    assert "input  (batch, height, width, 3)" in text
    assert "output (batch, out_height, out_width, 6)" in text
    # REFERENCE.md, same with op: O = (in-1)*s + K%2 + op, L = (in-1)*s + K, total = L - O.
    # height k=3, s=2, op=1: total = 3 - 1 - 1 = 1 -> crop 0 at the start, 1 at the end;
    # width k=1, s=3, op=2: total = 1 - 1 - 2 = -2 -> extend 2.
    # Portable form (default): symmetric pads, the odd height crop as one constant Slice.
    assert "pads [0, 0, 0, 0]" in text
    assert "Slice (crop) starts [0], ends [-1], axes [2]" in text
    assert "output_padding [0, 2]" in text
    assert "activation selu" in text
    assert "note: kernel_regularizer only act during training" in text
    model = onnx.load(str(out))
    assert_portable(model, spec, kernel)
    x = rng.uniform(-1, 1, (2, 3, 4, 3)).astype(np.float32)
    np.testing.assert_allclose(run_onnx(model, x), direct_conv_transpose(spec, x, kernel, bias),
                               rtol=1e-5, atol=1e-5 * abs_scale(spec, x, kernel, bias))


def test_json_output(tmp_path):
    out = tmp_path / "seed.onnx"
    result = _invoke("export", str(FIXTURE), "-o", str(out), "--json", "--opset", "13",
                     "--seed", "4")
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["path"] == str(out)
    assert info["opset"] == 13
    assert info["input"] == {"name": "input", "shape": ["batch", 10, 8, 128]}
    assert info["output"] == {"name": "output", "shape": ["batch", 20, 16, 32]}
    assert info["pads"] == [0, 0, 0, 0]
    assert info["output_padding"] is None
    assert info["strides"] == [2, 2]
    assert info["kernel_shape"] == [2, 2]
    assert info["dtype"] == "float32"
    assert info["activation"] == "linear"
    assert info["size_bytes"] == out.stat().st_size
    assert info["external_data"] is None
    assert info["weights"] == "initialised (seed 4)"
    assert any("seed 4" in n for n in info["notes"])


def test_layer_flags_and_input_shape(tmp_path):
    out = tmp_path / "f.onnx"
    result = _invoke("export", "--filters", "4", "--kernel-size", "4", "--strides", "2",
                     "--padding", "same", "--data-format", "channels_first",
                     "--activation", "softmax", "--input-shape", "None,3,5,?", "-o", str(out),
                     "--json")
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["input"]["shape"] == ["batch", 3, 5, "width"]
    assert info["output"]["shape"] == ["batch", 4, 10, "out_width"]
    assert info["data_format"] == "channels_first"
    spec = make_spec(4, 4, strides=2, padding="same", data_format="channels_first",
                     activation="softmax")
    assert_portable(onnx.load(str(out)), spec)


def test_channels_from_weights_when_no_shape(tmp_path):
    layer = dict(LAYER, build_config=None)
    path = _write_layer(tmp_path, layer)
    spec = parse_config(LAYER)
    np.savez(tmp_path / "w.npz", kernel=np.ones(spec.kernel_shape(7), np.float32),
             bias=np.zeros(6, np.float32))
    result = _invoke("export", str(path), "-o", str(tmp_path / "m.onnx"), "--weights",
                     str(tmp_path / "w.npz"), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["input"]["shape"] == ["batch", "height", "width", 7]


def test_float16_and_unsupported_dtype(tmp_path):
    layer = _write_layer(tmp_path)
    result = _invoke("export", str(layer), "-o", str(tmp_path / "h.onnx"), "--input-shape",
                     "None,?,?,2", "--dtype", "float16", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["dtype"] == "float16"
    x = np.ones((1, 2, 2, 2), np.float16)
    assert run_onnx(onnx.load(str(tmp_path / "h.onnx")), x).dtype == np.float16

    result = _invoke("export", str(layer), "-o", str(tmp_path / "d.onnx"), "--input-shape",
                     "None,?,?,2", "--dtype", "float64")
    _assert_clean_error(result, starts="dtype: got 'float64'", folder=tmp_path,
                        expect_files={"layer.json", "h.onnx"})
    result = _invoke("export", str(layer), "-o", str(tmp_path / "d.onnx"), "--input-shape",
                     "None,?,?,2", "--dtype", "float64", "--allow-unsupported-dtype")
    assert result.exit_code == 0, result.output
    assert "cannot run" in result.output
    onnx.checker.check_model(str(tmp_path / "d.onnx"), full_check=True)


@pytest.mark.parametrize("args,starts", [
    (["--opset", "10"], "opset: got 10; expected an integer from 11 to"),
    (["--opset", "99"], "opset: got 99"),
    (["--input-shape", "1,1,1,2", "--padding", "same", "--kernel-size", "2", "--strides", "2",
      "--output-padding", "0,0"], "input_shape: got (1, 1, 1, 2)"),
    (["--input-shape", "None,x,3,2"], "input_shape: got 'None,x,3,2'"),
    (["--input-shape", "None,4,4"], "input_shape: got (None, 4, 4)"),
    ([], "input_shape: missing"),
    (["--opset", "abc"], "opset: got 'abc'; expected an integer"),
    (["--seed", "x"], "seed: got 'x'; expected an integer"),
    (["--seed", "-1"], "seed: got -1"),
    (["--dtype", "int8"], "dtype: got 'int8'; expected one of float32, float16"),
    (["--dtype", "bfloat16", "--allow-unsupported-dtype"], "opset: got 17 with dtype bfloat16"),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, args, starts):
    layer = dict(LAYER)
    path = _write_layer(tmp_path, layer)
    extra = [] if "--input-shape" in args or not args else ["--input-shape", "None,?,?,2"]
    result = _invoke("export", str(path), "-o", str(tmp_path / "m.onnx"), *args, *extra)
    _assert_clean_error(result, starts=starts, folder=tmp_path, expect_files={"layer.json"})


@pytest.mark.parametrize("arrays,starts", [
    (dict(kernel=np.zeros((3, 1, 6, 2), np.int32), bias=np.zeros(6, np.float32)),
     "kernel: got an array of dtype int32"),
    (dict(kernel=np.zeros((3, 1, 6, 2), np.float32)), "weights: "),
    (dict(kernel=np.zeros((1, 3, 6, 2), np.float32), bias=np.zeros(6, np.float32)),
     "kernel: got shape (1, 3, 6, 2)"),
    (dict(kernel=np.full((3, 1, 6, 2), np.nan, np.float32), bias=np.zeros(6, np.float32)),
     "kernel: got nan"),
    (dict(kernel=np.zeros((3, 1, 6, 2), np.float32), bias=np.zeros(6, np.float32),
          extra=np.zeros(1)), "weights: got unknown key(s) 'extra'"),
    (dict(kernel=np.zeros((3, 1, 6, 4), np.float32), bias=np.zeros(6, np.float32)),
     "kernel: got 4 input channels"),
])
def test_bad_weights(tmp_path, arrays, starts):
    path = _write_layer(tmp_path)
    np.savez(tmp_path / "w.npz", **arrays)
    result = _invoke("export", str(path), "-o", str(tmp_path / "m.onnx"), "--weights",
                     str(tmp_path / "w.npz"), "--input-shape", "None,?,?,2")
    _assert_clean_error(result, starts=starts, folder=tmp_path,
                        expect_files={"layer.json", "w.npz"})


def test_bad_config_and_missing_output_folder(tmp_path):
    bad = _write_layer(tmp_path, {"class_name": "Conv2DTranspose",
                                  "config": {"filters": 2, "kernel_size": 2, "padding": "full"}},
                       name="bad.json")
    result = _invoke("export", str(bad), "-o", str(tmp_path / "m.onnx"))
    _assert_clean_error(result, starts="padding: got 'full'", folder=tmp_path,
                        expect_files={"bad.json"})
    result = _invoke("export", str(FIXTURE), "-o", str(tmp_path / "no" / "m.onnx"))
    _assert_clean_error(result, starts="output: folder", folder=tmp_path,
                        expect_files={"bad.json"})


def test_failed_save_leaves_no_file(tmp_path, monkeypatch):
    def broken(proto, f, *args, **kwargs):
        Path(f).write_bytes(b"half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(onnx, "save_model", broken)
    result = _invoke("export", str(FIXTURE), "-o", str(tmp_path / "m.onnx"))
    assert result.exit_code == 2
    assert result.output.startswith("Error: output: cannot write")
    assert "No space left on device" in result.output
    assert ".tmp" not in result.output
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_real_subprocess(tmp_path):
    (convt,) = convt_command()
    out = tmp_path / "seed.onnx"
    proc = subprocess.run([convt, "export", str(FIXTURE), "-o", str(out), "--json"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["output"]["shape"] == ["batch", 20, 16, 32]
    assert out.stat().st_size > 32 * 128 * 4  # holds the (128, 32, 2, 2) float32 kernel
    proc = subprocess.run([convt, "export", str(FIXTURE), "-o", str(tmp_path / "x.onnx"),
                           "--opset", "5"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]
    assert proc.stderr.startswith("Error: opset: got 5")
    assert not (tmp_path / "x.onnx").exists()
