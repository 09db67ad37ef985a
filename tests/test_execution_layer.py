"""One execution layer (issue 18 part 1) and exit 130 on Ctrl-C (issue 17 item 19).

- every engine library is imported and called under ``convt_tools/runtimes/``
  only, and that package imports nothing from ``validate``, ``check``, ``cli``
  (an ``ast`` scan of the package source);
- one name per engine: ``--runtime``, ``--engine``, check's table, JSON; the
  old spellings are accepted with a deprecation note; ``convt runtimes``;
- check's measured OpenVINO reading runs what validate runs (f32 pinned);
- torch configs validate on every runtime, against the real-torch fixtures;
- ``--jobs 2`` from a script fed on stdin and from a notebook-like caller
  (real subprocesses); Ctrl-C during ``validate --jobs 2`` exits 130.
"""

from __future__ import annotations

import ast
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from convt_tools.runtimes import (
    ADAPTERS,
    DEPRECATED,
    DOCUMENTED_ONLY,
    RuntimeUnavailable,
    get_runtime,
    parse_runtime_names,
)

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "convt_tools"
FIX = ROOT / "fixtures" / "torch"
CASES = json.loads((FIX / "cases.json").read_text())

# Engine libraries: their imports and entry points may appear under runtimes/ only.
ENGINE_MODULES = ("onnxruntime", "openvino", "tract", "onnx2torch", "onnx.reference")
ENGINE_CALLS = {"InferenceSession", "compile_model", "read_model", "ReferenceEvaluator",
                "Core", "convert"}


def _installed(name: str) -> bool:
    try:
        get_runtime(name).module()
        return True
    except RuntimeUnavailable:
        return False


def _need(*names: str) -> None:
    missing = [n for n in names if not _installed(n)]
    if missing:
        pytest.skip(f"runtime(s) not installed: {', '.join(missing)}")


def _engine_uses(path: Path) -> list[str]:
    """``file:line what`` for every engine import or entry-point call in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for n in names:
            if any(n == m or n.startswith(m + ".") for m in ENGINE_MODULES):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} import {n}")
        if isinstance(node, ast.Call):
            fn = node.func
            attr = fn.attr if isinstance(fn, ast.Attribute) else \
                fn.id if isinstance(fn, ast.Name) else None
            base = fn.value.id if isinstance(fn, ast.Attribute) and \
                isinstance(fn.value, ast.Name) else ""
            if attr in ENGINE_CALLS and (attr != "convert" or base == "onnx2torch"):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} call {attr}")
    return found


def test_engine_libraries_only_under_runtimes() -> None:
    outside = [u for p in sorted(PKG.rglob("*.py")) if "runtimes" not in p.relative_to(PKG).parts
               for u in _engine_uses(p)]
    assert not outside, "\n".join(outside)
    inside = [u for p in sorted((PKG / "runtimes").rglob("*.py")) for u in _engine_uses(p)]
    # the scan sees the adapters' own imports (it would see them anywhere else)
    for engine in ("onnxruntime", "openvino", "tract", "onnx2torch", "onnx.reference"):
        assert any(f"import {engine}" in u for u in inside), engine
    assert any("call InferenceSession" in u for u in inside)


def test_runtimes_import_no_verb() -> None:
    """runtimes/ runs ONNX bytes: nothing from validate/, check/, cli/ (relative or absolute)."""
    bad = []
    for path in sorted((PKG / "runtimes").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            mods: list[str] = []
            if isinstance(node, ast.ImportFrom):
                mod = node.module or ""
                if node.level >= 2:  # from ..X import: X is a sibling package of runtimes
                    mods = [mod or node.names[0].name] if mod else [a.name for a in node.names]
                elif node.level == 0 and mod.startswith("convt_tools."):
                    mods = [mod.split(".", 1)[1]]
            elif isinstance(node, ast.Import):
                mods = [a.name.split(".", 1)[1] for a in node.names
                        if a.name.startswith("convt_tools.")]
            for m in mods:
                if m.split(".")[0] in ("validate", "check", "cli", "repair", "torchconv"):
                    bad.append(f"{path.name}:{node.lineno} {m}")
    assert not bad, bad


def test_one_name_per_engine() -> None:
    from convt_tools.check import RUNTIMES as TABLE
    from convt_tools.check.runners import RUNNABLE
    from convt_tools.cli.run_cmd import ENGINES

    assert list(ADAPTERS) == ["onnxruntime", "openvino", "tract", "torch", "onnx-reference",
                              "mnn", "ncnn", "litert", "opencv", "tvm", "iree"]
    # check reads ONNX models: its table has every ONNX runtime (litert runs .tflite exports)
    onnx_runtimes = {n for n in ADAPTERS if get_runtime(n).model_kind == "onnx"}
    assert onnx_runtimes == set(ADAPTERS) - {"litert"}
    assert set(TABLE) == onnx_runtimes | set(DOCUMENTED_ONLY)
    assert set(RUNNABLE) <= set(ADAPTERS)
    assert ENGINES == ["reference", *ADAPTERS]
    assert parse_runtime_names("onnx.reference,onnx2torch,torch") == ["onnx-reference", "torch"]
    assert DEPRECATED == {"onnx.reference": "onnx-reference", "onnx2torch": "torch"}


def test_old_spellings_accepted_with_a_note(cli, tmp_path: Path) -> None:
    cfg = ROOT / "fixtures" / "examples"
    one = sorted(cfg.glob("*.json"))[0]
    r = cli("validate", one, "--runtime", "onnx.reference", "--json")
    assert r.exit_code in (0, 1), r.output
    assert "deprecated engine name" in r.stderr and "'onnx-reference'" in r.stderr
    report = json.loads(r.stdout)
    assert report["runtimes"] == ["onnx-reference"]
    assert report["results"][0]["runtime"] == "onnx-reference"
    from convt_tools.check import check_model
    from convt_tools.check.readings import runtime_names

    assert runtime_names("onnx2torch,onnx.reference") == ("torch", "onnx-reference")
    model = tmp_path / "m.onnx"
    assert cli("export", one, "-o", model).exit_code == 0
    r = cli("check", model, "--runtime", "onnx2torch,onnxruntime", "--json", "--no-numeric")
    assert r.exit_code in (0, 1), r.output
    assert "'onnx2torch' is now 'torch'" in r.stderr
    assert check_model(str(model), {}, numeric=False, runtimes="onnx2torch").to_dict()
    spec = json.loads(one.read_text())
    shape = spec.get("build_config", {}).get("input_shape") or [1, 5, 5, 3]
    x = tmp_path / "x.npy"
    np.save(x, np.random.default_rng(0).standard_normal(
        [1 if d is None else d for d in shape]).astype(np.float32))
    for engine in ("onnx.reference", "onnx-reference"):
        r = cli("run", one, "-i", x, "-o", tmp_path / f"{engine}.npy", "--engine", engine)
        assert r.exit_code == 0, r.output
        assert ("deprecated engine name" in r.stderr) is (engine == "onnx.reference")
    np.testing.assert_array_equal(np.load(tmp_path / "onnx.reference.npy"),
                                  np.load(tmp_path / "onnx-reference.npy"))


def test_convt_runtimes_lists_every_engine(cli) -> None:
    r = cli("runtimes", "--json")
    assert r.exit_code == 0, r.output
    rows = {e["name"]: e for e in json.loads(r.stdout)["engines"]}
    assert list(rows) == ["reference", *ADAPTERS, *DOCUMENTED_ONLY]
    for name in ADAPTERS:
        assert rows[name]["installed"] is _installed(name)
        # From the clone (the package is on no index): an extra, the two torch steps, or none.
        assert not rows[name]["install"].startswith('pip install "convt-tools')
        assert (rows[name]["version"] is None) is (not rows[name]["installed"])
    assert rows["openvino"]["install"] == 'pip install -e ".[openvino]"'
    assert all(rows[n]["kind"] == "documented" for n in DOCUMENTED_ONLY)
    text = cli("runtimes")
    assert text.exit_code == 0
    lines = text.stdout.splitlines()
    assert lines[0].split()[:2] == ["name", "installed"]
    assert any(ln.startswith("onnx-reference ") for ln in lines)


def test_check_openvino_reading_runs_what_validate_runs() -> None:
    """The same node: check's measured OpenVINO output (isolated child) equals validate's
    OpenVINO output bit for bit, and validate's OpenVINO compiles with f32 pinned."""
    _need("openvino")
    from onnx import helper

    from convt_tools.check.probe import single_node_model
    from convt_tools.check.runners import run_many
    from convt_tools.runtimes import require_runtimes
    from convt_tools.validate import validate_runtimes
    from convt_tools.validate.runtime import model_input

    node = helper.make_node("ConvTranspose", ["x", "w", "b"], ["y"], strides=[2, 2],
                            pads=[1, 0, 0, 1], output_padding=[1, 1])
    rng = np.random.default_rng(3)
    w = rng.standard_normal((3, 4, 3, 3)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    x = rng.standard_normal((1, 3, 5, 6)).astype(np.float32)
    model = single_node_model(node, [1, 3, 5, 6], w, b, 17)
    (measured,) = run_many("openvino", [(model.SerializeToString(), x)])
    assert isinstance(measured, np.ndarray), measured
    (adapter,) = require_runtimes(["openvino"])  # what validate --runtime openvino uses
    loaded = adapter.load(model)
    assert str(loaded.compiled.get_property("INFERENCE_PRECISION_HINT")) in ("f32", "<Type: 'float32'>")
    validated = loaded.run({model_input(model)[0]: x})[0]
    np.testing.assert_array_equal(measured, validated)
    assert measured.dtype == np.float32 and measured.shape == (1, 4, 11, 13)
    # and validate itself reads that output (a Keras spec on openvino passes)
    from convt_tools.spec import load_config

    spec = load_config(str(sorted((ROOT / "fixtures" / "examples").glob("*.json"))[0]))
    (res,) = validate_runtimes(spec, ["openvino"])
    assert res.runtime == "openvino" and res.passed, res.message


def _torch_cases(kinds: tuple[str, ...] | None = None) -> list[dict]:
    return [c for c in CASES if kinds is None or c["id"].split("_")[0] in kinds]


@pytest.mark.slow
@pytest.mark.parametrize("runtime", ["onnxruntime", "openvino", "tract", "torch",
                                     "onnx-reference"])
def test_torch_fixtures_on_every_runtime(runtime: str) -> None:
    """Every real-torch fixture (onnx-reference: the ungrouped ones; its grouped
    ConvTranspose is wrong): the model's output equals torch's recorded output."""
    _need(runtime)
    from convt_tools.torchconv.spec import parse_torch_config
    from convt_tools.validate.torch_layer import validate_torch_runtimes

    cases = CASES if runtime != "onnx-reference" else [
        c for c in CASES if c["kwargs"].get("groups", 1) == 1]
    if runtime == "onnx-reference" and os.environ.get("CONVT_RUNTIME_MATRIX") != "full":
        cases = cases[::7]  # slow (about 2000x onnxruntime); every case in the full matrix
    failed = []
    adapter = get_runtime(runtime)
    for case in cases:
        spec = parse_torch_config({"module": case["module"], **case["kwargs"]},
                                  rank=len(case["input_shape"]) - 2)
        with np.load(FIX / f"{case['id']}.npz") as z:
            x, want = z["input"], z["output"]
            weight, bias = z["weight"], z["bias"] if "bias" in z.files else None
        (res,) = validate_torch_runtimes(spec, [adapter], weight=weight, bias=bias, x=x,
                                         output_size=case["output_size"], name=case["id"])
        if not res.passed:
            failed.append(f"{case['id']}: {res.message}")
    assert not failed, "\n".join(failed)
    assert len(cases) >= 20


@pytest.mark.slow
def test_validate_torch_configs_cli_on_four_runtimes(tmp_path: Path) -> None:
    """``convt validate <torch configs> --runtime onnxruntime,openvino,tract,torch``."""
    _need("openvino", "tract", "torch")
    for case in CASES[::4]:
        if case["output_size"] is None and case["id"].split("_")[0] != "unb":
            (tmp_path / f"{case['id']}.json").write_text(json.dumps(
                {"framework": "torch", "module": case["module"], **case["kwargs"]}))
    r = subprocess.run([sys.executable, "-m", "convt_tools", "validate", str(tmp_path),
                        "--runtime", "onnxruntime,openvino,tract,torch", "--jobs", "2", "--json"],
                       capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    report = json.loads(r.stdout)
    assert {res["runtime"] for res in report["results"]} == {"onnxruntime", "openvino",
                                                            "tract", "torch"}
    assert len(report["results"]) == 4 * len(list(tmp_path.glob("*.json")))


_STDIN_SCRIPT = """
import json, sys
from convt_tools.spec import load_config
from convt_tools.validate import validate_spec
from convt_tools.validate.batch import run_ordered
from convt_tools.cli import main

spec = load_config(sys.argv[1] if len(sys.argv) > 1 else CONFIG)
assert validate_spec(spec).passed          # sessions created in this process first
out = run_ordered(abs, [-1, -2, -3, -4], 2, start_method="spawn")
assert out == [1, 2, 3, 4], out
try:
    main(["validate", CONFIG_DIR, "--jobs", "2", "--json"])
except SystemExit as exc:
    print("EXIT", exc.code)
"""


@pytest.mark.slow
@pytest.mark.parametrize("how", ["stdin", "notebook"])
def test_jobs_from_a_script_on_stdin_and_a_notebook(how: str) -> None:
    examples = ROOT / "fixtures" / "examples"
    config = sorted(examples.glob("*.json"))[0]
    code = f"CONFIG = {str(config)!r}\nCONFIG_DIR = {str(examples)!r}\n" + _STDIN_SCRIPT
    if how == "stdin":  # python - < script.py: __main__.__file__ is '<stdin>'
        r = subprocess.run([sys.executable, "-"], input=code, capture_output=True, text=True,
                           cwd=ROOT, timeout=600)
    else:  # a notebook kernel: code run in a __main__ with no file
        wrapped = ("import sys, types\nmain = sys.modules['__main__']\n"
                   f"exec(compile({code!r}, '<ipython-input-1>', 'exec'), main.__dict__)\n")
        r = subprocess.run([sys.executable, "-c", wrapped], capture_output=True, text=True,
                           cwd=ROOT, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "FileNotFoundError" not in r.stderr
    assert r.stdout.rstrip().endswith("EXIT 0"), r.stdout[-500:] + r.stderr[-2000:]
    report = json.loads(r.stdout[:r.stdout.rindex("EXIT")])
    assert report["passed"] is True and len(report["results"]) >= 2


@pytest.mark.slow
@pytest.mark.parametrize("jobs", ["2", "1"])
def test_ctrl_c_exits_130(jobs: str, tmp_path: Path) -> None:
    """SIGINT to the process group (a terminal's Ctrl-C) during a long validate: exit 130,
    not 1 (a mismatch), and no worker left behind."""
    for i in range(40):  # about 1.5 s each on onnx-reference: the run takes 30 s or more
        (tmp_path / f"c{i:02d}.json").write_text(json.dumps(
            {"framework": "torch", "module": "ConvTranspose2d", "in_channels": 32,
             "out_channels": 32, "kernel_size": 3, "stride": 2}))
    proc = subprocess.Popen([sys.executable, "-m", "convt_tools", "validate", str(tmp_path),
                             "--runtime", "onnx-reference", "--input-shape", "2,32,24,24",
                             "--jobs", jobs],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            start_new_session=True)
    try:
        time.sleep(5.0)  # imports done, workers busy (the run takes much longer)
        assert proc.poll() is None, proc.communicate()
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, (proc.returncode, err[-2000:])
    assert "Interrupted" in err and "Traceback" not in err, err[-2000:]
    time.sleep(0.5)
    try:  # the group is empty: every worker is gone
        os.killpg(proc.pid, 0)
        leftover = True
    except ProcessLookupError:
        leftover = False
    assert not leftover


@pytest.mark.slow
def test_isolated_mode_reports_a_crash_and_a_timeout(tmp_path: Path) -> None:
    """run_isolated: outputs per call; a call past its timeout is killed and reported."""
    from onnx import helper

    from convt_tools.check.probe import single_node_model
    from convt_tools.runtimes import run_isolated

    node = helper.make_node("ConvTranspose", ["x", "w"], ["y"], strides=[2, 2])
    w = np.ones((1, 1, 2, 2), np.float32)
    model = single_node_model(node, [1, 1, 3, 3], w, None, 17).SerializeToString()
    x = np.ones((1, 1, 3, 3), np.float32)
    out = run_isolated("onnxruntime", [(model, {"x": x}), (b"not onnx", {"x": x})])
    assert isinstance(out[0], list) and out[0][0].shape == (1, 1, 6, 6)
    assert isinstance(out[1], str) and out[1]
    slow = run_isolated("onnxruntime", [(model, {"x": x})], timeout_s=0.0)
    assert slow == ["onnxruntime timed out after 0 s"]
