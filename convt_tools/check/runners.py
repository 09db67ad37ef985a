"""Running small single-node models on every installed runtime (check's measurements).

:func:`installed` says which of :data:`RUNNABLE` can be run here (and their
versions); :func:`run_many` runs a batch of ``(model bytes, x)`` jobs on one
runtime and returns each output, or the runtime's refusal as a one-line
string. onnxruntime and ``onnx.reference`` run in this process; OpenVINO and
tract run in a child process (``python -m convt_tools.check.runners``), because
tract aborts the whole process on some nodes (a Rust panic, e.g.
``output_shape`` with N and C). A job that kills the child is reported as
refused ("aborted the process") and the rest run in a fresh child. Arrays
cross the process boundary as ``.npy`` files read with ``allow_pickle=False``.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import subprocess
import sys
import tempfile
from typing import Any, Sequence

import numpy as np

__all__ = ["RUNNABLE", "installed", "run_many"]

RUNNABLE = ("onnxruntime", "openvino", "tract", "onnx.reference")
_DIST = {"onnxruntime": "onnxruntime", "openvino": "openvino", "tract": "tract",
         "onnx.reference": "onnx"}
_CHILD = ("openvino", "tract")
CHILD_TIMEOUT_S = 300


def installed() -> dict[str, str]:
    """``{runtime: version}`` for the runtimes of :data:`RUNNABLE` importable here.

    ``CONVT_RUNTIMES_OFF`` (comma-separated names) hides some (for tests).
    """
    off = {s.strip() for s in os.environ.get("CONVT_RUNTIMES_OFF", "").split(",") if s.strip()}
    out = {}
    for name in RUNNABLE:
        mod = name.split(".")[0]
        if name in off or importlib.util.find_spec(mod) is None:
            continue
        try:
            out[name] = importlib.metadata.version(_DIST[name])
        except importlib.metadata.PackageNotFoundError:
            out[name] = "?"
    return out


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]


def _run_one(runtime: str, model: bytes, x: np.ndarray) -> np.ndarray:
    if runtime == "onnxruntime":
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.log_severity_level = 4
        sess = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
        return np.asarray(sess.run(None, {"x": x})[0])
    if runtime == "onnx.reference":
        import onnx
        from onnx.reference import ReferenceEvaluator

        return np.asarray(ReferenceEvaluator(onnx.load_from_string(model)).run(None, {"x": x})[0])
    if runtime == "openvino":
        import openvino as ov

        core = ov.Core()
        compiled = core.compile_model(core.read_model(model=model, weights=b""), "CPU")
        return np.asarray(compiled({"x": x})[compiled.output(0)])
    if runtime == "tract":
        import tract

        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "m.onnx")
            with open(path, "wb") as f:
                f.write(model)
            runnable = tract.onnx().load(path).into_model().into_runnable()
            return np.asarray(runnable.run([x])[0].to_numpy())
    raise ValueError(f"runtime: got {runtime!r}; expected one of {', '.join(RUNNABLE)}")


def run_many(runtime: str, jobs: Sequence[tuple[bytes, np.ndarray]]) -> list[np.ndarray | str]:
    """Run each ``(model, x)`` on ``runtime``; an output array or the refusal's first line."""
    if runtime not in _CHILD:
        out: list[np.ndarray | str] = []
        for model, x in jobs:
            try:
                out.append(_run_one(runtime, model, x))
            except Exception as exc:  # every refusal is evidence, never a crash of check
                out.append(_first_line(exc))
        return out
    results: list[np.ndarray | str | None] = [None] * len(jobs)
    with tempfile.TemporaryDirectory() as tmp:
        for i, (model, x) in enumerate(jobs):
            with open(os.path.join(tmp, f"{i}.onnx"), "wb") as f:
                f.write(model)
            np.save(os.path.join(tmp, f"{i}_x.npy"), np.ascontiguousarray(x))
        start = 0
        while start < len(jobs):
            try:
                subprocess.run([sys.executable, "-m", "convt_tools.check.runners", runtime, tmp,
                                str(start), str(len(jobs))], capture_output=True,
                               timeout=CHILD_TIMEOUT_S, check=False,
                               env={**os.environ, "RUST_BACKTRACE": "0"})
            except subprocess.TimeoutExpired:
                pass
            nxt = len(jobs)
            for i in range(start, len(jobs)):
                y_path, err_path = os.path.join(tmp, f"{i}_y.npy"), os.path.join(tmp, f"{i}.err")
                if os.path.exists(y_path):
                    results[i] = np.load(y_path, allow_pickle=False)
                elif os.path.exists(err_path):
                    with open(err_path, encoding="utf-8") as f:
                        results[i] = f.read().strip() or "refused"
                else:  # the child died on job i
                    results[i] = f"{runtime} aborted the process (crash) on this node"
                    nxt = i + 1
                    break
            start = nxt
    return [r if r is not None else "not run" for r in results]


def _child(argv: Sequence[str]) -> None:
    runtime, tmp, start, stop = argv[0], argv[1], int(argv[2]), int(argv[3])
    for i in range(start, stop):
        with open(os.path.join(tmp, f"{i}.onnx"), "rb") as f:
            model = f.read()
        x = np.load(os.path.join(tmp, f"{i}_x.npy"), allow_pickle=False)
        try:
            y = _run_one(runtime, model, x)
        except Exception as exc:
            with open(os.path.join(tmp, f"{i}.err"), "w", encoding="utf-8") as f:
                f.write(_first_line(exc))
            continue
        np.save(os.path.join(tmp, f"{i}_y.npy"), y)


if __name__ == "__main__":  # pragma: no cover - exercised through run_many
    _child(sys.argv[1:])


def describe(runtimes: dict[str, Any]) -> str:
    """``"onnxruntime 1.32.0, openvino 2026.4.0"``."""
    return ", ".join(f"{k} {v}" for k, v in runtimes.items())
