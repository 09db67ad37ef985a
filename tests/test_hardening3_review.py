"""Review of issue 17 (hardening round 3): hostile inputs the round missed.

Each test failed before its fix: bad input is one line ``Error: <field>: ...``,
exit 2, no traceback, nothing written.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from support.cli import invoke

LAYER = {"class_name": "Conv2DTranspose", "config": {
    "name": "small", "filters": 3, "kernel_size": [3, 3], "strides": [2, 2], "padding": "same",
    "data_format": "channels_last", "dilation_rate": [1, 1], "activation": "linear",
    "use_bias": True}, "build_config": {"input_shape": [1, 4, 5, 2]}}
TORCH = {"framework": "torch", "module": "ConvTranspose2d", "in_channels": 2,
         "out_channels": 3, "kernel_size": 3, "stride": 2}


def _one_line_error(result, field: str) -> None:
    assert result.exit_code == 2, (result.exit_code, result.output)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: {field}: "), result.stderr
    assert "Traceback" not in result.stderr


def test_shape_refuses_weights_for_a_layer_config(tmp_path: Path) -> None:
    """``shape CONFIG -w X`` with a single layer config used to ignore X (missing, FIFO...)."""
    cfg = tmp_path / "k.json"
    cfg.write_text(json.dumps(LAYER))
    tcfg = tmp_path / "t.txt"
    tcfg.write_text(json.dumps(TORCH))
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for weights in (tmp_path / "missing.npz", fifo):
        _one_line_error(invoke("shape", cfg, "-w", weights), "weights")
        _one_line_error(invoke("shape", tcfg, "--input-shape", "1,2,4,4", "-w", weights),
                        "weights")
        _one_line_error(invoke("shape", "--filters", "3", "--kernel-size", "3",
                               "--input-shape", "1,4,4,2", "-w", weights), "weights")


def test_translate_in_channels_below_one_or_against_build_config(tmp_path: Path) -> None:
    """``--in-channels -3`` was a numpy ValueError traceback; 0 or a count that contradicts
    the build_config's input shape was taken silently (a proof on a 0-channel input)."""
    cfg = tmp_path / "k.json"
    cfg.write_text(json.dumps(LAYER))
    for bad in ("-3", "0", "5"):
        _one_line_error(invoke("translate", cfg, "--to", "torch", "--in-channels", bad),
                        "in_channels")
    assert invoke("translate", cfg, "--to", "torch", "--in-channels", "2").exit_code == 0


def test_validate_table_escapes_a_newline_in_a_config_file_name(tmp_path: Path) -> None:
    """A config named ``nl<LF>FAIL.json`` in a validated folder printed a raw line break in
    the table (a forged row); every name cell is one escaped line now, on both tables."""
    folder = tmp_path / "cfgs"
    folder.mkdir()
    (folder / "nl\nFAKE ROW.json").write_text(json.dumps(LAYER))
    for extra in ((), ("--runtime", "onnxruntime,onnx-reference")):
        r = invoke("validate", folder, *extra)
        assert r.exit_code == 0, r.output
        assert "nl\\x0aFAKE ROW.json" in r.stdout
        assert not any(line.startswith("FAKE ROW") for line in r.stdout.splitlines())


def test_validate_refuses_an_infinite_tolerance(tmp_path: Path) -> None:
    """``--rtol inf`` / ``--atol 1e999`` passed everything (NaN outputs included)."""
    cfg = tmp_path / "k.json"
    cfg.write_text(json.dumps(LAYER))
    for opt, value in (("--rtol", "inf"), ("--atol", "1e999"), ("--atol", "-inf")):
        _one_line_error(invoke("validate", cfg, opt, value), opt[2:])


# h5py (a Python file object's read callback) and onnxruntime's import catch Ctrl-C and fail
# with their own error; the command then reported a corrupt file or a missing runtime, exit 2.
_SWALLOWED_CTRL_C = """
import os, signal, sys
import convt_tools.sources as sources
from convt_tools.errors import ConvtError
def resolve_sources(*a, **k):
    try:
        os.kill(os.getpid(), signal.SIGINT)
        import time; time.sleep(5)
    except KeyboardInterrupt:
        raise ConvtError("weights: not a readable HDF5 file (seek of closed file).",
                         field="weights") from None
sources.resolve_sources = resolve_sources   # what every command reads its CONFIG through
from convt_tools.cli import main
main(sys.argv[1:])
"""


def test_ctrl_c_swallowed_by_a_library_still_exits_130(tmp_path: Path) -> None:
    import subprocess
    import sys

    cfg = tmp_path / "k.json"
    cfg.write_text(json.dumps(LAYER))
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.run([sys.executable, "-c", _SWALLOWED_CTRL_C, "shape", str(cfg)],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(root)})
    assert proc.returncode == 130, proc.stderr
    assert "Error:" not in proc.stderr and "Traceback" not in proc.stderr


MODELS = Path(__file__).resolve().parent.parent / "fixtures" / "models"


def test_translate_a_model_config_layer_without_weights_uses_its_input_channels() -> None:
    """``translate config.json --layer 0 --to torch`` (no weights) asked for --in-channels
    although the model records the layer's input shape (``convt layers`` prints it)."""
    cfg = MODELS / "seq_decoder.config.json"
    r = invoke("translate", cfg, "--layer", "0", "--to", "torch", "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["config"]["in_channels"] == 2
    _one_line_error(invoke("translate", cfg, "--layer", "0", "--to", "torch",
                           "--in-channels", "5"), "in_channels")


def test_validate_torch_model_uses_the_models_own_input_dims(tmp_path: Path) -> None:
    """``export torch.json --input-shape 1,4,5,5`` then ``validate torch.json --model``: the
    input comes from the model's static dims (batch 1), as for Keras configs, not batch 2."""
    cfg = tmp_path / "t.json"
    cfg.write_text(json.dumps({"module": "ConvTranspose2d", "in_channels": 4, "out_channels": 6,
                               "kernel_size": 3, "stride": 2, "padding": 1, "groups": 2}))
    model = tmp_path / "up.onnx"
    assert invoke("export", cfg, "--input-shape", "1,4,5,7", "-o", model).exit_code == 0
    r = invoke("validate", cfg, "--model", model, "--json")
    assert r.exit_code == 0, r.stdout + r.stderr
    assert json.loads(r.stdout)["results"][0]["input_shape"] == [1, 4, 5, 7]


def test_external_data_naming_the_model_itself_is_refused_by_every_command(
        tmp_path: Path) -> None:
    """A ConvTranspose whose W lives "in" the .onnx file itself: check passed it (exit 0, the
    weights never read), validate and repair refused it each their own way. The loader now
    refuses it for every command, before anything is read."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.ones((2, 3, 3, 3), np.float32), "W")
    w.ClearField("raw_data")
    w.data_location = TensorProto.EXTERNAL
    for key, value in (("location", "m.onnx"), ("offset", "0"), ("length", "216")):
        entry = w.external_data.add()
        entry.key, entry.value = key, value
    node = helper.make_node("ConvTranspose", ["x", "W"], ["y"], strides=[2, 2])
    graph = helper.make_graph([node], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 4, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [w])
    path = tmp_path / "m.onnx"
    path.write_bytes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
                     .SerializeToString())
    before = path.read_bytes()
    _one_line_error(invoke("check", path), "model")
    _one_line_error(invoke("repair", path, "-o", tmp_path / "r.onnx", "--intent", "onnx-spec"),
                    "model")
    assert path.read_bytes() == before
    assert not (tmp_path / "r.onnx").exists()
    assert onnx.load(str(path), load_external_data=False).graph.initializer[0].name == "W"
