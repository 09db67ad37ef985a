"""``convt check`` / ``convt repair`` through click's CliRunner and once as a real subprocess."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import onnx
import pytest
from click.testing import CliRunner
from support.cli import invoke as run

from support import models as M
from convt_tools.cli import main


# Keep these tests fast: OpenVINO/tract (child processes) are measured in test_readings.py.
pytestmark = pytest.mark.usefixtures("runtimes_off")

DCGAN = str(Path(__file__).parent / "data" / "dcgan_generator.onnx")




def test_clean_model_exits_0() -> None:
    result = run("check", DCGAN)
    assert result.exit_code == 0, result.output
    assert "PASS" in result.stdout
    assert "4 ConvTranspose" in result.stdout


def test_risky_model_exits_1_and_fail_on_changes_it(tmp_path: Path) -> None:
    path = M.save(M.risky("same_lower"), tmp_path / "m.onnx")
    assert run("check", path).exit_code == 1
    assert run("check", path, "--fail-on", "never").exit_code == 0
    warn = M.save(M.convt_model({"strides": [2, 2], "pads": [0, 0, 1, 1]}), tmp_path / "w.onnx")
    assert run("check", warn).exit_code == 0
    assert run("check", warn, "--fail-on", "warning").exit_code == 1
    assert run("check", DCGAN, "--fail-on", "info").exit_code == 1


def test_json_and_junit(tmp_path: Path) -> None:
    path = M.save(M.if_model({"strides": [2, 2], "auto_pad": "SAME_UPPER"}), tmp_path / "m.onnx")
    junit = tmp_path / "r.xml"
    result = run("check", path, "--json", "--junit-xml", junit)
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert len(data["nodes"]) == 2
    assert data["failed"] is True
    assert {f["code"] for n in data["nodes"] for f in n["findings"]} >= {"CT010", "CT030"}
    suite = ET.parse(junit).getroot()
    assert len(suite.findall("testcase")) == 2
    assert suite.get("failures") == "1"


def test_input_shape_option(tmp_path: Path) -> None:
    model = M.convt_model({"strides": [2, 2], "output_shape": [8, 10]}, x_shape=(1, 2, "h", "w"))
    path = M.save(model, tmp_path / "m.onnx")
    data = json.loads(run("check", path, "--json").stdout)
    assert "CT013" in {f["code"] for f in data["nodes"][0]["findings"]}
    data = json.loads(run("check", path, "--json", "--runtime", "onnxruntime,tensorrt").stdout)
    (ct013,) = [f for f in data["nodes"][0]["findings"] if f["code"] == "CT013"]
    assert "onnxruntime | tensorrt" in ct013["message"]
    assert data["nodes"][0]["readings"]["judged_on"] == ["onnxruntime", "tensorrt"]
    bad = run("check", path, "--runtime", "onnxruntime,nope")
    assert bad.exit_code == 2 and "runtime" in bad.stderr
    data = json.loads(run("check", path, "--json", "--input-shape", "x=1,2,4,5").stdout)
    assert "CT013" in {f["code"] for f in data["nodes"][0]["findings"]}
    bad = run("check", path, "--input-shape", "y=1,2,4,5")
    assert bad.exit_code == 2
    assert len(bad.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("content", [b"", b"\x08\x07garbage\xff\xff", None])
def test_unreadable_input_exits_2_with_one_line(tmp_path: Path, content) -> None:
    path = tmp_path / "bad.onnx"
    if content is None:
        path.write_bytes(M.clean_model().SerializeToString()[:-5])
    else:
        path.write_bytes(content)
    for cmd in (("check", path), ("repair", path, "-o", tmp_path / "o.onnx", "--intent", "tf")):
        result = run(*cmd)
        assert result.exit_code == 2
        assert len(result.stderr.strip().splitlines()) == 1
        assert result.stderr.startswith("Error:")
    assert not (tmp_path / "o.onnx").exists()


def test_path_escape_exits_2(tmp_path: Path) -> None:
    inner = tmp_path / "inner"
    inner.mkdir()
    path = inner / "m.onnx"
    onnx.save(M.clean_model(), str(path), save_as_external_data=True, location="w.bin",
              size_threshold=0)
    model = onnx.load(str(path), load_external_data=False)
    for t in model.graph.initializer:
        for e in t.external_data:
            if e.key == "location":
                e.value = "../../etc/passwd"
    onnx.save(model, str(path))
    result = run("check", path)
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "../../etc/passwd" in result.stderr


def test_repair_writes_and_refusal_writes_nothing(tmp_path: Path) -> None:
    src = M.save(M.risky("output_shape_odd"), tmp_path / "m.onnx")
    out = tmp_path / "fixed.onnx"
    result = run("repair", src, "-o", out, "--intent", "tf", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["repaired"][0]["new"]["pads"] == [0, 0, 1, 1]
    assert data["written"] == str(out)
    onnx.checker.check_model(onnx.load(str(out)))
    assert run("check", out).exit_code == 0
    refused_src = M.save(M.risky("pads_and_auto_pad"), tmp_path / "p.onnx")
    refused = tmp_path / "refused.onnx"
    result = run("repair", refused_src, "-o", refused, "--intent", "ort")
    assert result.exit_code == 1
    assert "Refused:" in result.stderr
    assert not refused.exists()
    assert list(tmp_path.glob(".refused*")) == []
    assert run("repair", src, "-o", out, "--intent", "nope").exit_code == 2


@pytest.mark.slow
def test_real_subprocess(tmp_path: Path) -> None:
    exe = shutil.which("convt")
    cmd = [exe] if exe else [sys.executable, "-m", "convt_tools"]
    src = M.save(M.risky("same_upper_k_lt_s"), tmp_path / "m.onnx")
    proc = subprocess.run(cmd + ["check", src, "--json"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 1, proc.stderr
    codes = {f["code"] for f in json.loads(proc.stdout)["nodes"][0]["findings"]}
    assert {"CT010", "CT011", "CT030"} <= codes
    assert proc.stderr == ""
    out = tmp_path / "fixed.onnx"
    proc = subprocess.run(cmd + ["repair", src, "-o", str(out), "--intent", "ort"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert out.exists(), proc.stderr


def test_huge_inputs_never_print_memory_error(tmp_path: Path) -> None:
    for n in (20000, 100000):
        path = M.save(M.risky("same_upper", x_shape=(1, 3, n, n)), tmp_path / f"m{n}.onnx")
        result = run("check", path)
        assert result.exit_code == 1, result.output
        assert "MemoryError" not in result.output
        assert "stand-in" in result.stdout
        out = tmp_path / f"fixed{n}.onnx"
        result = run("repair", path, "-o", out, "--intent", "tf")
        assert result.exit_code == 0, result.output
        assert out.exists(), result.output
        assert "above the cap" in result.stdout


@pytest.mark.parametrize("form", ["neg_pads_begin", "op_ge_stride"])
def test_repair_ort_intent_on_a_node_onnxruntime_refuses(tmp_path: Path, form: str) -> None:
    src = M.save(M.risky(form), tmp_path / "m.onnx")
    out = tmp_path / "fixed.onnx"
    result = run("repair", src, "-o", out, "--intent", "ort")
    assert result.exit_code == 1
    assert not out.exists()
    assert "no onnxruntime behaviour to reproduce" in result.stderr
    assert "--intent tf or --intent onnx-spec" in result.stderr


def test_function_model_is_checked_and_repaired(tmp_path: Path) -> None:
    src = M.save(M.function_model({"strides": [2, 2], "auto_pad": "SAME_UPPER"}),
                 tmp_path / "m.onnx")
    result = run("check", src)
    assert result.exit_code == 1
    assert "[function:local.MyFn]" in result.stdout
    out = tmp_path / "fixed.onnx"
    assert run("repair", src, "-o", out, "--intent", "onnx-spec").exit_code == 0
    assert run("check", out).exit_code == 0


def test_repair_refuses_to_overwrite_its_input_model(tmp_path):
    from convt_tools.cli import main as cli_main
    from click.testing import CliRunner as Runner
    from support import models as _models

    path = tmp_path / "m.onnx"
    _models.save(_models.risky("same_upper"), path)
    before = path.read_bytes()
    result = Runner().invoke(cli_main, ["repair", str(path), "-o", str(path), "--intent", "tf"])
    assert result.exit_code == 2
    assert result.stderr.strip().startswith("Error: output:")
    assert "also the model file" in result.stderr
    assert path.read_bytes() == before


@pytest.mark.parametrize("link", ["same", "symlink", "hardlink"])
def test_check_refuses_a_junit_path_that_is_the_model(tmp_path: Path, link: str) -> None:
    path = Path(M.save(M.risky("same_upper"), tmp_path / "m.onnx"))
    before = path.read_bytes()
    junit = path
    if link == "symlink":
        junit = tmp_path / "r.xml"
        junit.symlink_to(path)
    elif link == "hardlink":
        junit = tmp_path / "r.xml"
        junit.hardlink_to(path)
    result = run("check", path, "--junit-xml", junit)
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: junit_xml: ")
    assert len(result.stderr.strip().splitlines()) == 1
    assert "also the model file" in result.stderr
    assert path.read_bytes() == before
    onnx.checker.check_model(onnx.load(str(path)))


def test_junit_write_errors_name_junit_xml(tmp_path: Path) -> None:
    path = M.save(M.risky("same_upper"), tmp_path / "m.onnx")
    result = run("check", path, "--junit-xml", tmp_path / "no" / "r.xml")
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: junit_xml: ")


def test_junit_xml_with_control_characters_parses(tmp_path: Path) -> None:
    model = M.convt_model({"strides": [2, 2], "auto_pad": "SAME_UPPER"}, name='<n>&"\x01\x1b]]>')
    model.graph.name = "g\x02"
    path = M.save(model, tmp_path / "m.onnx")
    junit = tmp_path / "r.xml"
    assert run("check", path, "--junit-xml", junit).exit_code == 1
    case = ET.parse(junit).getroot().find("testcase")
    assert case.get("name").startswith('<n>&"??]]>')
    assert case.find("failure") is not None


@pytest.mark.parametrize("cmd", ["check", "repair"])
@pytest.mark.parametrize("dims,dim", [("1,2,-4,5", "dim 2 is -4"), ("0,2,4,5", "dim 0 is 0"),
                                      ("x=1,0,4,5", "dim 1 is 0")])
def test_bad_input_shape_exits_2_naming_the_input(tmp_path: Path, cmd: str, dims: str,
                                                 dim: str) -> None:
    model = M.convt_model({"strides": [2, 2], "output_shape": [8, 10]}, x_shape=("n", 2, "h", "w"))
    path = M.save(model, tmp_path / "m.onnx")
    out = tmp_path / "r.onnx"
    extra = ["-o", out, "--intent", "tf"] if cmd == "repair" else []
    result = run(cmd, path, "--input-shape", dims, *extra)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("Error: input_shape: ")
    assert f"for input 'x'; {dim}" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_repair_json_on_refusal_prints_a_json_object(tmp_path: Path) -> None:
    src = M.save(M.risky("pads_and_auto_pad"), tmp_path / "p.onnx")
    out = tmp_path / "r.onnx"
    result = run("repair", src, "-o", out, "--intent", "ort", "--json")
    assert result.exit_code == 1
    assert not out.exists()
    data = json.loads(result.stdout)
    assert data["refused"] is True
    assert "no onnxruntime behaviour" in data["reason"]
    assert data["written"] is None
    assert data["planned"] == []
    assert "Refused:" in result.stderr
    ok = json.loads(run("repair", src, "-o", out, "--intent", "tf", "--json").stdout)
    assert ok["refused"] is False
    assert ok["written"] == str(out)


def test_repair_at_one_size_pins_it_and_checks_clean(tmp_path: Path) -> None:
    model = M.convt_model({"strides": [2, 2], "output_shape": [8, 10]}, x_shape=("n", 2, "h", "w"))
    src = M.save(model, tmp_path / "m.onnx")
    out = tmp_path / "r.onnx"
    result = run("repair", src, "-o", out, "--intent", "tf", "--input-shape", "x=1,2,4,5")
    assert result.exit_code == 0, result.output
    assert "input 'x' pinned to [n,2,4,5]: the repair is exact only at this size" in result.stdout
    assert run("check", out).exit_code == 0
    dims = onnx.load(str(out)).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims] == [0, 2, 4, 5]
    assert dims[0].dim_param == "n"
