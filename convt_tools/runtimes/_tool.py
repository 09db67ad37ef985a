"""Running a converter, compiler or engine as a child process, with a timeout.

Model converters and compilers (MNN's converter core, pnnx, IREE's importer
and compiler) and some engines (ncnn on a pnnx-converted model) can crash
(segfault) or hang on some graphs, and MNN's Python converter entry point
phones home; so each such step runs in its own process via :func:`run_tool`,
with one convention for every adapter:

- success (exit status 0): the child's output (stdout then stderr) is returned;
- a run past ``timeout_s`` is killed: ``"<tool> timed out after N s"``;
- a crash (killed by a signal): ``"<tool> crashed (SIGSEGV)"``, followed by
  ``"; <its error line>"`` where its output names an error (pnnx segfaults right after
  printing which op it could not read);
- another exit status: the tool's own first error line (:func:`error_line`), else
  ``"<failure> (exit N)"`` (``failure`` given by the adapter, e.g. "the converter wrote no
  model"), else ``"<tool> exited with status N"``;

each failure a :class:`~.base.RuntimeRefused` of the adapter's runtime at the
step's stage (``"conversion"``, ``"import"``, ``"compile"``, ``"run"``).
``<tool>`` is the program's file name unless the adapter names it. Nothing
here reaches the network, installs packages or knows a particular tool; the
child's environment is the parent's (plus ``env``).

A step repeated many times (TVM's compiles, ncnn's runs of one converted
model) goes to a :class:`ChildServer` instead: one long-lived child that
answers one request line at a time, with the same conventions (a crash or a
timeout kills it and is a refusal; the next request starts a fresh child).

:func:`native_stdout_discarded` keeps what a native engine prints on stdout (MNN) off
the command's own stdout.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import re
import select
import signal
import subprocess
import sys
import tempfile
import time
import weakref
from typing import IO, Iterator, Mapping, Sequence

from .base import RuntimeRefused

__all__ = ["ERROR_MARKERS", "TOOL_TIMEOUT_S", "ChildServer", "ended", "error_line",
           "native_stdout_discarded", "run_tool"]

# Seconds one conversion or compilation may take (a one-node model takes ~1-3 s here).
TOOL_TIMEOUT_S = 300.0

# Words (case-insensitive) that make a line of a tool's output its error line.
ERROR_MARKERS: tuple[str, ...] = ("error", "failed")

_TRACEBACK = "Traceback (most recent call last):"
# What a tool's line carries that means nothing to a user: a temporary file's path:line:col,
# a log time stamp ("[12:03:04] :45: "), a leading "error: ".
_NOISE = (re.compile(r"^\[\d\d:\d\d:\d\d\]\s*:\d+:\s*"), re.compile(r"^\S+:\d+:\d+: "),
          re.compile(r"^error: "))


def error_line(text: str, markers: Sequence[str] = ERROR_MARKERS, *, first_line: bool = True,
               limit: int = 300) -> str:
    """The tool's own first error line in ``text``, else ``""``.

    A Python traceback gives its exception line (the first unindented line after
    ``Traceback (most recent call last):``); otherwise the first line containing one of
    ``markers`` (case-insensitive); otherwise, when ``first_line``, the first non-empty
    line. Stripped and cut at ``limit`` characters.
    """
    raw = text.splitlines()
    if _TRACEBACK in raw:
        start = raw.index(_TRACEBACK) + 1
        for line in raw[start:]:
            if line.strip() and not line[:1].isspace():
                return line.strip()[:limit]
    lines = [line.strip() for line in raw if line.strip()]
    for line in lines:
        low = line.lower()
        if any(m in low for m in markers):
            return line[:limit]
    return lines[0][:limit] if lines and first_line else ""


def _clean(line: str) -> str:
    for pattern in _NOISE:
        line = pattern.sub("", line)
    return line


def run_tool(runtime: str, stage: str, argv: Sequence[str], *,
             timeout_s: float = TOOL_TIMEOUT_S, cwd: str | None = None,
             env: Mapping[str, str] | None = None, tool: str | None = None,
             markers: Sequence[str] = ERROR_MARKERS, first_line: bool = True,
             failure: str | None = None) -> str:
    """Run ``argv``; its output (stdout then stderr) on success, else :class:`RuntimeRefused`
    (module doc).

    ``stage`` names the step in the refusal; ``tool`` the program (default: ``argv[0]``'s
    file name); ``markers`` and ``first_line`` choose its error line (:func:`error_line`);
    ``failure`` says what went wrong when the output names no error.
    """
    name = tool or os.path.basename(argv[0])
    try:
        proc = subprocess.run(list(argv), capture_output=True, text=True, errors="replace",
                              timeout=timeout_s, cwd=cwd,
                              env=None if env is None else {**os.environ, **env},
                              stdin=subprocess.DEVNULL, check=False)
    except subprocess.TimeoutExpired:
        raise RuntimeRefused(runtime, stage, f"{name} timed out after {timeout_s:g} s") from None
    if proc.returncode == 0:
        return proc.stdout + proc.stderr
    if proc.returncode < 0:
        said = _said(proc, markers, first_line=False)
        raise RuntimeRefused(runtime, stage, ended(name, proc.returncode)
                             + (f"; {_clean(said)}" if said else ""))
    line = _said(proc, markers, first_line=first_line)
    if line:
        raise RuntimeRefused(runtime, stage, _clean(line))
    raise RuntimeRefused(runtime, stage, f"{failure} (exit {proc.returncode})" if failure
                         else ended(name, proc.returncode))


def ended(tool: str, returncode: int) -> str:
    """How a child that failed ended: ``"<tool> crashed (SIGSEGV)"`` for a signal (a negative
    ``returncode``), else ``"<tool> exited with status N"``."""
    if returncode >= 0:
        return f"{tool} exited with status {returncode}"
    try:
        return f"{tool} crashed ({signal.Signals(-returncode).name})"
    except ValueError:
        return f"{tool} crashed (signal {-returncode})"


def _said(proc: subprocess.CompletedProcess[str], markers: Sequence[str], *,
          first_line: bool) -> str:
    """The error line of the child's stderr, else of its stdout (:func:`error_line`)."""
    return (error_line(proc.stderr, markers, first_line=first_line)
            or error_line(proc.stdout, markers, first_line=first_line))


class ChildServer:
    """One long-lived child process that answers one request line at a time.

    The child (``argv``) reads requests from stdin, one line each, and answers
    each with one stdout line that starts with ``reply`` (other stdout lines
    are skipped); its stderr goes to a temporary file, read only when it dies.
    :meth:`request` returns the answer after ``reply``. A child that dies (a
    crash: ``"<tool> crashed (SIGSEGV)"`` plus its stderr's error line, as
    :func:`run_tool` says it) or runs past ``timeout_s`` on a request is killed
    and the request is a :class:`~.base.RuntimeRefused` at ``stage``; the next
    request starts a fresh child (with the parent's environment then, plus
    ``env``). Children still running at exit are killed.
    """

    def __init__(self, runtime: str, stage: str, argv: Sequence[str], *, tool: str,
                 reply: str, env: Mapping[str, str] | None = None,
                 markers: Sequence[str] = ERROR_MARKERS) -> None:
        self.runtime, self.stage, self.argv, self.tool = runtime, stage, list(argv), tool
        self.reply, self.markers = reply, markers
        self.env = dict(env or {})
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: IO[str] | None = None
        # stdout read but not yet answered: bytes after the last full line
        self._pending = b""
        _SERVERS.add(self)

    def request(self, line: str, timeout_s: float) -> str:
        """Send ``line`` (no newline in it); the child's answer (after ``reply``)."""
        proc = self._proc
        if proc is None or proc.poll() is not None:
            self.stop()
            # kept open while the child runs (closed by stop()), so no context manager
            self._stderr = tempfile.TemporaryFile(  # noqa: SIM115
                "w+", encoding="utf-8", errors="replace")
            proc = self._proc = subprocess.Popen(
                self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
                env={**os.environ, **self.env} if self.env else None)
            self._pending = b""
        assert proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write(line.encode() + b"\n")
            proc.stdin.flush()
        except BrokenPipeError:
            pass                                   # it died: read the end below
        deadline = time.monotonic() + timeout_s
        fd = proc.stdout.fileno()
        while True:
            # Lines are split here from raw reads: a buffered readline() could hold the
            # reply in its buffer after a line of the child's own output, where select()
            # does not see it (seen: a TVM compile that printed first waited out the
            # timeout with its answer read).
            while b"\n" in self._pending:
                raw, self._pending = self._pending.split(b"\n", 1)
                answer = raw.decode("utf-8", errors="replace")
                if answer.startswith(self.reply):
                    return answer[len(self.reply):]
            ready, _, _ = select.select([fd], [], [], max(deadline - time.monotonic(), 0))
            if not ready:
                self.stop()
                raise RuntimeRefused(self.runtime, self.stage,
                                     f"{self.tool} timed out after {timeout_s:g} s")
            chunk = os.read(fd, 65536)
            if not chunk:                          # the child died
                code = proc.wait()
                said = self._said()
                self.stop()
                raise RuntimeRefused(self.runtime, self.stage, ended(self.tool, code)
                                     + (f"; {_clean(said)}" if said and code < 0 else ""))
            self._pending += chunk

    def _said(self) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        return error_line(self._stderr.read(), self.markers, first_line=False)

    def stop(self) -> None:
        """Kill the child (if any) and drop its stderr file."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        for pipe in (self._proc.stdin, self._proc.stdout) if self._proc is not None else ():
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
        self._proc = None
        self._pending = b""
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None


_SERVERS: weakref.WeakSet[ChildServer] = weakref.WeakSet()


@atexit.register
def _stop_servers() -> None:
    for server in list(_SERVERS):
        server.stop()


@contextlib.contextmanager
def native_stdout_discarded() -> Iterator[None]:
    """Inside the block, what native code prints on file descriptor 1 is discarded.

    MNN 3.6.1 prints ``The device supports: ...`` (its CPU features, not a
    diagnostic) on stdout when its engine is imported or a module loaded;
    ``convt ... --json`` must print JSON only, and a command's output must not
    depend on which engines are installed. C's stdio buffer is flushed before
    the descriptor is restored, so nothing leaks out later.
    """
    sys.stdout.flush()
    try:
        saved = os.dup(1)
    except OSError:   # no descriptor 1 (a closed stdout): nothing to protect
        yield
        return
    sink = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(sink, 1)
        yield
    finally:
        os.close(sink)
        try:
            ctypes.CDLL(None).fflush(None)
        except (OSError, AttributeError):
            pass
        os.dup2(saved, 1)
        os.close(saved)
