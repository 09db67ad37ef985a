"""``convt validate --runtime/--form/--jobs/--shard`` and ``convt run --engine`` (issue 11).

The runtimes used here are the two of the base install (onnxruntime and
``onnx.reference``), so these tests always run; a missing or refusing
runtime is simulated with monkeypatch. Expected values are the per-config
results of a plain ``--jobs 1`` run (``--jobs``/``--shard`` must not change
them) and the NumPy reference for ``run --engine``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree as ET

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "fixtures" / "examples"
BASE = "onnxruntime,onnx-reference"


@pytest.fixture(scope="module")
def configs(tmp_path_factory) -> Path:
    """Five small example configs (the 128-channel seed example is slow on onnx.reference)."""
    folder = tmp_path_factory.mktemp("configs")
    for p in sorted(EXAMPLES.glob("*.json")):
        if p.name != "seed.json":
            shutil.copy(p, folder / p.name)
    return folder


def _json(res) -> dict:
    assert res.exit_code in (0, 1), res.output
    return json.loads(res.stdout)


def test_table_has_one_column_per_runtime(cli, configs):
    res = cli("validate", configs, "--runtime", BASE)
    assert res.exit_code == 0, res.output
    header = res.stdout.splitlines()[0].split()
    assert header[-2:] == ["onnxruntime", "onnx-reference"]
    rows = [ln for ln in res.stdout.splitlines() if ln.startswith(str(configs))]
    assert len(rows) == 6
    assert all(ln.count("PASS") == 2 for ln in rows)
    assert "6 config(s) x 2 runtime(s): 12 passed, 0 failed" in res.stdout
    assert "runtimes: onnxruntime 1." in res.stdout
    assert "validating" not in res.output  # no progress bar when not on a TTY


def test_json_and_junit_have_one_result_per_config_and_runtime(cli, configs, tmp_path):
    report = tmp_path / "r.xml"
    data = _json(cli("validate", configs, "--runtime", BASE, "--json", "--junit-xml", report))
    assert data["runtimes"] == ["onnxruntime", "onnx-reference"]
    assert [r["runtime"] for r in data["results"]] == ["onnxruntime", "onnx-reference"] * 6
    assert all(r["runtime_version"].startswith(r["runtime"] + " ") for r in data["results"])
    suite = ET.parse(report).getroot()
    cases = suite.findall("testcase")
    assert len(cases) == 12
    assert suite.get("tests") == "12"
    assert {c.get("classname") for c in cases} == {"convt.validate.onnxruntime",
                                                   "convt.validate.onnx-reference"}
    assert cases[1].get("name").endswith(" [onnx-reference]")


def test_a_refusing_runtime_fails_with_its_reason(cli, configs, monkeypatch, tmp_path):
    from convt_tools.runtimes.reference_adapter import OnnxReferenceRuntime

    def refuse(self, module, model):
        raise RuntimeError("ConvTranspose with non symmetrical padding is not implemented.")

    monkeypatch.setattr(OnnxReferenceRuntime, "_load", refuse)
    report = tmp_path / "r.xml"
    res = cli("validate", configs, "--runtime", BASE, "--junit-xml", report)
    assert res.exit_code == 1, res.output
    assert "ERROR" in res.stdout
    assert "[onnx-reference]:" in res.stdout
    assert "onnx-reference refused the model at load: ConvTranspose with non" in res.stdout
    errors = ET.parse(report).getroot().findall("testcase/error")
    assert len(errors) == 6
    assert ET.parse(report).getroot().findall("testcase/failure") == []


def test_a_missing_runtime_exits_2_naming_the_extra(cli, configs, monkeypatch, tmp_path):
    from convt_tools.runtimes.tract_adapter import TractRuntime

    def gone(self):
        raise ImportError("No module named 'tract'")

    monkeypatch.setattr(TractRuntime, "_import", gone)
    report = tmp_path / "r.xml"
    res = cli("validate", configs, "--runtime", "onnxruntime,tract", "--junit-xml", report)
    assert res.exit_code == 2
    lines = res.output.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("Error: runtime: 'tract' is not available")
    assert 'pip install "convt-tools[tract]"' in lines[0]
    assert not report.exists()


@pytest.mark.parametrize("args, starts", [
    (["--runtime", "tensorrt"], "Error: runtime: got 'tensorrt'"),
    (["--shard", "3/2"], "Error: shard: got '3/2'"),
    (["--shard", "0/2"], "Error: shard: got '0/2'"),
    (["--shard", "1"], "Error: shard: got '1'"),
    (["--runtime", "openvino", "--providers", "CPU"], "Error: providers:"),
    (["--jobs", "0"], "Error: jobs: got 0"),
])
def test_bad_options_one_line_exit_2(cli, configs, args, starts):
    res = cli("validate", configs, *args)
    assert res.exit_code == 2, res.output
    assert res.output.strip().splitlines()[0].startswith(starts), res.output


def test_form_with_model_is_refused(cli, tmp_path):
    layer = EXAMPLES / "same_odd_crop_k3x5_s2.json"
    model = tmp_path / "m.onnx"
    assert cli("export", layer, "-o", model).exit_code == 0
    res = cli("validate", layer, "--model", model, "--form", "compact")
    assert res.exit_code == 2
    assert res.output.startswith("Error: form:")
    res = cli("validate", layer, "--model", model, "--runtime", BASE, "--json")
    assert res.exit_code == 0, res.output
    assert [r["status"] for r in json.loads(res.stdout)["results"]] == ["PASS", "PASS"]


def test_compact_form_is_validated_too(cli):
    layer = EXAMPLES / "same_odd_crop_k3x5_s2.json"
    data = _json(cli("validate", layer, "--form", "compact", "--runtime", BASE, "--json"))
    assert [r["status"] for r in data["results"]] == ["PASS", "PASS"]


def test_shards_cover_every_config_once_with_identical_results(cli, configs):
    full = _json(cli("validate", configs, "--json"))["results"]
    parts = [_json(cli("validate", configs, "--json", "--shard", f"{k}/4"))["results"]
             for k in (1, 2, 3, 4)]
    names = [r["name"] for part in parts for r in part]
    assert sorted(names) == sorted(r["name"] for r in full)
    assert len(names) == len(set(names))
    # round-robin over the sorted list: shard k holds positions k-1, k-1+4, ...
    assert [r["name"] for r in parts[1]] == [r["name"] for r in full][1::4]
    by_name = {r["name"]: r for part in parts for r in part}
    assert all(by_name[r["name"]] == r for r in full)
    empty = _json(cli("validate", EXAMPLES / "seed.json", "--json", "--shard", "2/3"))
    assert empty["results"] == []


@pytest.mark.slow
def test_jobs_give_the_results_of_one_job(configs):
    """Real subprocesses (the console entry point), --jobs 2 vs --jobs 1: identical JSON."""
    cmd = [sys.executable, "-m", "convt_tools", "validate", str(configs), "--runtime", BASE,
           "--json"]
    one = subprocess.run([*cmd, "--jobs", "1"], capture_output=True, text=True, cwd=ROOT)
    two = subprocess.run([*cmd, "--jobs", "2"], capture_output=True, text=True, cwd=ROOT)
    assert one.returncode == 0, one.stderr
    assert two.returncode == 0, two.stderr
    assert json.loads(two.stdout) == json.loads(one.stdout)
    assert "validating" not in two.stderr  # piped: no progress bar


@pytest.mark.parametrize("engine", ["onnxruntime", "onnx-reference"])
def test_run_engine_equals_the_reference(cli, tmp_path, engine):
    layer = EXAMPLES / "same_odd_crop_k3x5_s2.json"
    x = np.random.default_rng(3).standard_normal((1, 5, 4, 16)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    ref, out = tmp_path / "ref.npy", tmp_path / "y.npy"
    assert cli("run", layer, "-i", tmp_path / "x.npy", "-o", ref).exit_code == 0
    res = cli("run", layer, "-i", tmp_path / "x.npy", "-o", out, "--engine", engine)
    assert res.exit_code == 0, res.output
    np.testing.assert_allclose(np.load(out), np.load(ref), rtol=1e-5, atol=1e-5)


def test_run_engine_names_are_the_runtime_names():
    from convt_tools.cli.run_cmd import ENGINES
    from convt_tools.runtimes import ADAPTERS

    assert ENGINES == ["reference", *ADAPTERS]


def test_run_engine_missing_and_refusing(cli, tmp_path, monkeypatch):
    from convt_tools.runtimes.openvino_adapter import OpenvinoRuntime
    from convt_tools.runtimes.reference_adapter import OnnxReferenceRuntime

    layer = EXAMPLES / "same_odd_crop_k3x5_s2.json"
    np.save(tmp_path / "x.npy", np.zeros((1, 5, 4, 16), np.float32))

    def gone(self):
        raise ImportError("No module named 'openvino'")

    def refuse(self, module, model):
        raise RuntimeError("no kernel for this")

    monkeypatch.setattr(OpenvinoRuntime, "_import", gone)
    monkeypatch.setattr(OnnxReferenceRuntime, "_load", refuse)
    out = tmp_path / "y.npy"
    res = cli("run", layer, "-i", tmp_path / "x.npy", "-o", out, "--engine", "openvino")
    assert res.exit_code == 2
    assert 'pip install "convt-tools[openvino]"' in res.output
    res = cli("run", layer, "-i", tmp_path / "x.npy", "-o", out, "--engine", "onnx-reference")
    assert res.exit_code == 1
    assert res.output.strip() == ("Error: engine: onnx-reference refused the model at load: "
                                  "no kernel for this")
    assert not out.exists()
