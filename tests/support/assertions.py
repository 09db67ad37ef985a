"""Assertions shared by the CLI tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def assert_one_line_error(result: Any, field: str | None = None) -> str:
    """A usage/input error: exit code 2, one ``Error: <field>...`` line on stderr, no traceback.

    ``result`` is a CliRunner result or a ``subprocess.CompletedProcess``;
    returns the line.
    """
    code = getattr(result, "exit_code", getattr(result, "returncode", None))
    assert code == 2, f"exit code {code}: {result.stderr!r}"
    text = result.stderr.strip()
    assert text.count("\n") == 0, f"more than one line on stderr: {text!r}"
    assert "Traceback" not in text
    prefix = "Error: " if field is None else f"Error: {field}"
    assert text.startswith(prefix), f"{text!r} does not start with {prefix!r}"
    return text


def assert_nothing_written(folder: Path, *keep: Path) -> None:
    """``folder`` holds nothing but ``keep`` (no output, no temporary file left behind)."""
    left = sorted(p for p in Path(folder).iterdir() if p not in set(keep))
    assert left == [], f"left behind: {left}"
