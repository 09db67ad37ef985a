"""The README's set-up commands and CI agree, and the package metadata is complete."""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```bash\n(.+?)\n```", text, flags=re.S)


def test_readme_opens_with_two_setup_commands() -> None:
    commands = _readme_commands()
    assert len(commands) >= 2
    main_job, tests = commands[0].strip(), commands[1].strip()
    # Issue 24: the first command also creates and enters a venv (Debian/Ubuntu's system
    # Python refuses pip outside one), so the second runs in it.
    assert main_job.startswith("python3 -m venv .venv && . .venv/bin/activate && ")
    assert "pip install" in main_job
    assert "convt " in main_job
    assert "pip install" in tests
    assert "pytest" in tests


def _ci_lines() -> list[str]:
    return [ln.strip() for ln in (ROOT / ".ci" / "run").read_text().splitlines()]


def _pytest_ini() -> dict:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]


def test_ci_runs_exactly_the_readme_test_command() -> None:
    test_cmd = _readme_commands()[1].strip()
    assert test_cmd in _ci_lines()


def test_ci_runs_every_other_tier_once() -> None:
    """The README command is the fast tier (addopts deselects the markers); CI's only other
    pytest run selects exactly the deselected tiers (the runtime matrix in full included)."""
    runs = [ln for ln in _ci_lines() if "pytest" in ln and not ln.startswith("#")]
    assert len(runs) == 3
    # 3b: the compile-based runtimes' own files, on their stated sample (issue 19)
    assert runs[2] == ("python3 -m pytest tests/test_new_runtimes.py tests/test_mnn_ncnn.py "
                       "tests/test_targets_converted.py")
    assert runs[0] == _readme_commands()[1].strip()
    tiers = {m.split(":")[0] for m in _pytest_ini()["markers"]}
    assert runs[1] == ('python3 -m pytest -m "slow or matrix or matrix_exhaustive or runtimes '
                       'or oracle"')
    deselected = set(re.findall(r"not (\w+)", _pytest_ini()["addopts"]))
    assert deselected == {"slow", "matrix", "matrix_exhaustive", "oracle"}
    assert deselected | {"runtimes"} == tiers
    assert "CONVT_RUNTIME_MATRIX" not in "\n".join(_ci_lines())


def test_support_is_importable_without_a_conftest_path_hack() -> None:
    assert _pytest_ini()["pythonpath"] == ["tests"]
    assert "sys.path" not in (ROOT / "tests" / "conftest.py").read_text()


def test_runtime_dependencies_are_exactly_these() -> None:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = sorted(re.split(r"[<>=!~ ]", d)[0] for d in meta["dependencies"])
    assert names == ["click", "h5py", "numpy", "onnx", "onnxruntime"]
    assert meta["scripts"]["convt"] == "convt_tools.cli:main"
    heavy = {"tensorflow", "tensorflow-cpu", "keras", "jax", "torch"}
    optional = meta.get("optional-dependencies", {})
    runtime_extras = {"openvino", "tract", "all-runtimes"}
    extras = {re.split(r"[<>=!~ ]", d)[0] for name, deps in optional.items()
              if name not in runtime_extras for d in deps}
    assert not heavy & extras
    names_of = {k: sorted(re.split(r"[<>=!~ ]", d)[0] for d in v) for k, v in optional.items()}
    assert names_of["openvino"] == ["openvino"]
    assert names_of["tract"] == ["tract"]
    # No extra pulls torch/onnx2torch/pnnx (CUDA wheels; issue 17 item 21): README's two steps.
    assert "torch" not in names_of
    assert names_of["all-runtimes"] == sorted(names_of["openvino"] + names_of["tract"])
    assert "tensorflow" not in str(optional) and "keras" not in str(optional)
