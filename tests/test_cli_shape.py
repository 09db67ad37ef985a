"""``convt shape`` through click's CliRunner and once as a real subprocess."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from support.cli import invoke as run

from convt_tools.cli import main

SEED = Path(__file__).resolve().parents[1] / "fixtures" / "examples" / "seed.json"




def test_seed_example_from_flags() -> None:
    result = run("shape", "--filters", "32", "--kernel-size", "2", "--strides", "2",
                 "--input-shape", "4,10,8,128")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "(4, 20, 16, 32)"


def test_seed_example_from_config_file_uses_build_config_shape() -> None:
    result = run("shape", str(SEED))
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "(4, 20, 16, 32)"


def test_flags_override_config(tmp_path: Path) -> None:
    result = run("shape", str(SEED), "--padding", "same", "--kernel-size", "3",
                 "--input-shape", "1,5,5,128")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "(1, 10, 10, 32)"


def test_unknown_dims_with_question_marks() -> None:
    result = run("shape", "--filters", "8", "--kernel-size", "3", "--strides", "2",
                 "--input-shape", "?,None,7,4")
    assert result.output.strip() == "(None, None, 15, 8)"


def test_json_output() -> None:
    result = run("shape", "--filters", "3", "--kernel-size", "3", "--padding", "same",
                 "--strides", "2", "--input-shape", "2,None,5,4", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["output_shape"] == [2, None, 10, 3]
    assert data["config"]["padding"] == "same"
    h, w = data["crop_plan"]
    assert (w["natural_length"], w["output_length"]) == (11, 10)
    assert (w["crop_begin"], w["crop_end"], w["extend_end"]) == (0, 1, 0)
    assert h["natural_length"] is None


def test_explain() -> None:
    result = run("shape", "--filters", "3", "--kernel-size", "1", "--strides", "3",
                 "--input-shape", "1,4,4,2", "--explain")
    assert result.exit_code == 0
    assert "2 zero row(s) appended at the end" in result.output
    assert "\noutput (1, 12, 12, 3)\n" in result.output
    assert "note: data_format was None; resolved to channels_last" in result.output


@pytest.mark.parametrize("args,field", [
    (["--filters", "3", "--kernel-size", "3", "--strides", "2", "--dilation-rate", "2",
      "--input-shape", "1,4,4,2"], "strides"),
    (["--filters", "3", "--kernel-size", "3", "--strides", "2", "--output-padding", "2",
      "--input-shape", "1,4,4,2"], "output_padding"),
    (["--filters", "3", "--kernel-size", "3", "--padding", "full", "--input-shape", "1,4,4,2"],
     "padding"),
    (["--filters", "3", "--kernel-size", "3", "--input-shape", "1,4,4"], "input_shape"),
    (["--filters", "3", "--kernel-size", "3", "--input-shape", "1,a,4,2"], "input_shape"),
    (["--filters", "3", "--kernel-size", "3,3,3", "--input-shape", "1,4,4,2"], "kernel_size"),
    (["--filters", "3", "--kernel-size", "3"], "input_shape"),
    (["--kernel-size", "3", "--input-shape", "1,4,4,2"], "config"),
    (["/nonexistent/layer.json", "--input-shape", "1,4,4,2"], "config"),
])
def test_bad_input_is_one_line_exit_2(args: list[str], field: str) -> None:
    result = CliRunner().invoke(main, ["shape", *args])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"Error: {field}:"), result.stderr
    assert "Traceback" not in result.output + result.stderr


def test_bad_config_file(tmp_path: Path) -> None:
    cfg = tmp_path / "layer.json"
    cfg.write_text(json.dumps({"filters": 4, "kernel_size": 3, "paddin": "same"}))
    result = CliRunner().invoke(main, ["shape", str(cfg), "--input-shape", "1,4,4,2"])
    assert result.exit_code == 2
    assert "'paddin'" in result.stderr


def test_real_subprocess_of_installed_convt() -> None:
    exe = shutil.which("convt")
    cmd = [exe] if exe else [sys.executable, "-m", "convt_tools"]
    ok = subprocess.run([*cmd, "shape", "--filters", "32", "--kernel-size", "2", "--strides", "2",
                         "--input-shape", "4,10,8,128"], capture_output=True, text=True, check=False)
    assert ok.returncode == 0
    assert ok.stdout.strip() == "(4, 20, 16, 32)"
    bad = subprocess.run([*cmd, "shape", "--filters", "0", "--kernel-size", "2",
                          "--input-shape", "4,10,8,128"], capture_output=True, text=True, check=False)
    assert bad.returncode == 2
    assert bad.stderr.strip().startswith("Error: filters:")
    assert "Traceback" not in bad.stderr


def test_shape_command_does_not_import_onnx_or_numpy() -> None:
    code = ("import sys; from click.testing import CliRunner; from convt_tools.cli import main; "
            "r = CliRunner().invoke(main, ['shape', '--filters', '2', '--kernel-size', '3', "
            "'--input-shape', '1,4,4,1']); assert r.exit_code == 0, r.output; "
            "print(sorted(m for m in ('onnx', 'onnxruntime', 'numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
