"""Isolated mode: run models on one engine in a child process, with a per-call timeout.

Some engines can abort the whole process on a model (tract 0.23 panics on
some nodes, e.g. ``output_shape`` with N and C). :func:`run_isolated` runs a
batch of ``(model bytes, inputs)`` calls in ``python -m
convt_tools.runtimes._isolated``: each call's outputs, or its refusal as a
one-line string. A call that kills the child is reported as such ("aborted
the process") and the rest run in a fresh child; a call that runs past
``timeout_s`` is killed and reported as timed out. Arrays cross the process
boundary as ``.npy`` files read with ``allow_pickle=False``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Mapping, Sequence

import numpy as np

__all__ = ["DEFAULT_TIMEOUT_S", "run_isolated"]

# Seconds one call (load and run of one model) may take in the child.
DEFAULT_TIMEOUT_S = 300.0


def _write_job(tmp: str, i: int, model: bytes, inputs: Mapping[str, np.ndarray]) -> None:
    with open(os.path.join(tmp, f"{i}.onnx"), "wb") as f:
        f.write(model)
    names = list(inputs)
    with open(os.path.join(tmp, f"{i}.json"), "w", encoding="utf-8") as f:
        json.dump(names, f)
    for k, name in enumerate(names):
        np.save(os.path.join(tmp, f"{i}_in{k}.npy"), np.ascontiguousarray(inputs[name]))


def _read_outcome(tmp: str, i: int) -> list[np.ndarray] | str | None:
    done, err = os.path.join(tmp, f"{i}.done"), os.path.join(tmp, f"{i}.err")
    if os.path.exists(done):
        with open(done, encoding="utf-8") as f:
            count = int(f.read().strip() or 0)
        return [np.load(os.path.join(tmp, f"{i}_out{k}.npy"), allow_pickle=False)
                for k in range(count)]
    if os.path.exists(err):
        with open(err, encoding="utf-8") as f:
            return f.read().strip() or "refused"
    return None


def run_isolated(runtime: str, calls: Sequence[tuple[bytes, Mapping[str, np.ndarray]]], *,
                 timeout_s: float = DEFAULT_TIMEOUT_S, threads: int | None = None,
                 strict_symbols: bool = False) -> list[list[np.ndarray] | str]:
    """Each call's outputs on ``runtime`` (a canonical name), run in a child process.

    A refusal is the engine's own first line (no prefix); a crash of the
    child is ``"<runtime> aborted the process (crash) on this node"``; a call
    past ``timeout_s`` seconds is ``"<runtime> timed out after N s"``.
    ``threads`` and ``strict_symbols`` are passed to the adapter in the
    child (:func:`~convt_tools.runtimes.get_runtime`). An engine that is not
    installed raises :class:`~.base.RuntimeUnavailable` here, before any child.
    """
    from . import get_runtime

    get_runtime(runtime).module()
    results: list[list[np.ndarray] | str | None] = [None] * len(calls)
    with tempfile.TemporaryDirectory(prefix="convt-iso-") as tmp:
        for i, (model, inputs) in enumerate(calls):
            _write_job(tmp, i, model, inputs)
        start = 0
        while start < len(calls):
            argv = [sys.executable, "-m", "convt_tools.runtimes._isolated", runtime, tmp,
                    str(start), str(len(calls)), "" if threads is None else str(threads),
                    "strict" if strict_symbols else ""]
            child = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     env={**os.environ, "RUST_BACKTRACE": "0"})
            i, since, timed_out = start, time.monotonic(), False
            try:
                while child.poll() is None:  # a deadline per call: reset as each one finishes
                    while i < len(calls) and _read_outcome(tmp, i) is not None:
                        i, since = i + 1, time.monotonic()
                    if time.monotonic() - since > timeout_s:
                        child.kill()
                        timed_out = True
                        break
                    time.sleep(0.01)
            finally:
                if child.poll() is None:
                    child.kill()
                child.wait()
            nxt = len(calls)
            for j in range(start, len(calls)):
                outcome = _read_outcome(tmp, j)
                if outcome is not None:
                    results[j] = outcome
                    continue
                results[j] = (f"{runtime} timed out after {timeout_s:g} s" if timed_out
                              else f"{runtime} aborted the process (crash) on this node")
                nxt = j + 1
                break
            start = nxt
    return [r if r is not None else "not run" for r in results]


def _child(argv: Sequence[str]) -> None:
    from . import RuntimeRefused, get_runtime
    from .base import first_line

    runtime, tmp, start, stop = argv[0], argv[1], int(argv[2]), int(argv[3])
    threads = int(argv[4]) if len(argv) > 4 and argv[4] else None
    strict = len(argv) > 5 and argv[5] == "strict"
    adapter = get_runtime(runtime, threads=threads, strict_symbols=strict)
    for i in range(start, stop):
        with open(os.path.join(tmp, f"{i}.onnx"), "rb") as f:
            model = f.read()
        with open(os.path.join(tmp, f"{i}.json"), encoding="utf-8") as f:
            names = json.load(f)
        inputs = {n: np.load(os.path.join(tmp, f"{i}_in{k}.npy"), allow_pickle=False)
                  for k, n in enumerate(names)}
        try:
            outs = adapter.load(model).run(inputs)
        except RuntimeRefused as exc:
            _write_atomic(os.path.join(tmp, f"{i}.err"), exc.detail)
            continue
        except Exception as exc:  # noqa: BLE001 - every failure is reported, never raised
            _write_atomic(os.path.join(tmp, f"{i}.err"), first_line(exc))
            continue
        for k, y in enumerate(outs):
            np.save(os.path.join(tmp, f"{i}_out{k}.npy"), np.asarray(y))
        _write_atomic(os.path.join(tmp, f"{i}.done"), str(len(outs)))


def _write_atomic(path: str, text: str) -> None:
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


if __name__ == "__main__":  # pragma: no cover - exercised through run_isolated
    _child(sys.argv[1:])
