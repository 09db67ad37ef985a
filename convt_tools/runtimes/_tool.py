"""Running a converter or compiler as a child process, with a timeout (TVM, IREE).

Model compilers can crash (segfault) or hang on some graphs; each conversion
runs in its own process via :func:`run_tool`: a non-zero exit is a
:class:`~.base.RuntimeRefused` whose reason is the tool's own first error line
(the first line of stderr that names an error, else its first non-empty line),
a crash is "<tool> crashed (signal N)", and a run past ``timeout_s`` is killed
and reported as timed out. Nothing here knows a particular tool.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from typing import Sequence

from .base import RuntimeRefused

__all__ = ["TOOL_TIMEOUT_S", "error_line", "run_tool"]

# Seconds one conversion or compilation may take (a one-node model takes ~1-3 s here).
TOOL_TIMEOUT_S = 300.0

_LOCATION = re.compile(r"^\S+:\d+:\d+: ")
_TRACEBACK = "Traceback (most recent call last):"
_ERROR_WORDS = ("error", "Error", "ERROR", "failed", "Failed")


def error_line(text: str, limit: int = 300) -> str:
    """The tool's own first error line in ``text``, else ``""``.

    A Python traceback gives its exception line (the first unindented line after
    ``Traceback (most recent call last):``); otherwise the first line naming an error
    (``error``/``failed``), else the first non-empty line.
    """
    raw = text.splitlines()
    if _TRACEBACK in raw:
        start = raw.index(_TRACEBACK) + 1
        for line in raw[start:]:
            if line.strip() and not line[:1].isspace():
                return line.strip()[:limit]
    lines = [line.strip() for line in raw if line.strip()]
    for line in lines:
        if any(word in line for word in _ERROR_WORDS):
            return line[:limit]
    return lines[0][:limit] if lines else ""


def run_tool(runtime: str, stage: str, argv: Sequence[str], *,
             timeout_s: float = TOOL_TIMEOUT_S, env: dict[str, str] | None = None) -> str:
    """Run ``argv``; its stdout on success, else :class:`RuntimeRefused` (module doc).

    ``stage`` names the step in the refusal (``"import"``, ``"compile"``).
    """
    try:
        proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout_s,
                              env=None if env is None else {**os.environ, **env},
                              stdin=subprocess.DEVNULL, check=False)
    except subprocess.TimeoutExpired:
        raise RuntimeRefused(runtime, stage, f"{os.path.basename(argv[0])} timed out after "
                                             f"{timeout_s:g} s") from None
    if proc.returncode == 0:
        return proc.stdout
    if proc.returncode < 0:
        try:
            name = signal.Signals(-proc.returncode).name
        except ValueError:
            name = str(-proc.returncode)
        raise RuntimeRefused(runtime, stage, f"{os.path.basename(argv[0])} crashed ({name})")
    line = error_line(proc.stderr) or error_line(proc.stdout) or f"exit status {proc.returncode}"
    line = _LOCATION.sub("", line)   # a temporary file's path:line:col means nothing to a user
    line = line[len("error: "):] if line.startswith("error: ") else line
    raise RuntimeRefused(runtime, stage, line)
