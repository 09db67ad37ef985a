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
    assert "pip install" in main_job
    assert "convt " in main_job
    assert "pip install" in tests
    assert "pytest" in tests


def test_ci_runs_exactly_the_readme_test_command() -> None:
    test_cmd = _readme_commands()[1].strip()
    ci_lines = [ln.strip() for ln in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert test_cmd in ci_lines


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
