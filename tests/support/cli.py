"""The CLI two ways: click's CliRunner in-process, and a real subprocess."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from typing import Any


def invoke(*args: Any, input: str | bytes | None = None) -> Any:
    """``convt *args`` through click's CliRunner (the fixture ``cli`` is this function).

    Arguments are turned into strings; stdout and stderr are kept apart.
    """
    from click.testing import CliRunner

    from convt_tools.cli import main

    return CliRunner().invoke(main, [str(a) for a in args], input=input)


def convt_command() -> list[str]:
    """The installed ``convt`` console script (next to this interpreter, or on PATH).

    ``pip install -e ".[test]"`` (README's test command) installs it, so a
    missing script fails the test instead of skipping it.
    """
    here = os.path.join(os.path.dirname(sys.executable), "convt")
    exe = here if os.path.exists(here) else shutil.which("convt")
    assert exe is not None, "the convt console script is not installed (pip install -e .)"
    return [exe]


def run_convt(*args: Any, timeout: float = 120, **kwargs: Any) -> subprocess.CompletedProcess:
    """``convt *args`` as a real subprocess of the console script (text, captured)."""
    return subprocess.run([*convt_command(), *(str(a) for a in args)], capture_output=True,
                          check=False, text=True, timeout=timeout, **kwargs)
