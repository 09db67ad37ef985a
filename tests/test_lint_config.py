"""The static checks CI runs are pinned and configured in pyproject.toml (issue 18)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_lint_tools_are_pinned() -> None:
    lint = _pyproject()["project"]["optional-dependencies"]["lint"]
    assert sorted(lint) == ["import-linter==2.17", "mypy==2.4.1", "ruff==0.17.6"]


def test_tools_are_configured() -> None:
    tool = _pyproject()["tool"]
    assert tool["mypy"]["strict"] is False
    assert tool["mypy"]["warn_unused_ignores"] is True
    assert tool["ruff"]["lint"]["select"]
    types = {c["type"] for c in tool["importlinter"]["contracts"]}
    assert {"layers", "forbidden", "independence", "acyclic_siblings"} <= types


def test_ci_runs_the_three_checks() -> None:
    lines = [ln.strip() for ln in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert 'python3 -m pip install -e ".[lint]" >/dev/null' in lines
    for cmd in ("python3 -m ruff check", "python3 -m mypy convt_tools", "lint-imports"):
        assert cmd in lines
