"""Running small single-node models on every installed runtime (check's measurements).

:func:`installed` says which of :data:`RUNNABLE` can be run here (and their
versions); :func:`run_many` runs a batch of ``(model bytes, x)`` jobs on one
runtime and returns each output, or the runtime's refusal as a one-line
string. Every run goes through the adapters of :mod:`convt_tools.runtimes`
(the same options validate uses, e.g. OpenVINO's f32 pin; tract with
``strict_symbols``: a model with symbolic dims is measured as it is, not
re-typed for the probe's shape). onnxruntime and ``onnx-reference`` run in this process; OpenVINO
and tract run isolated in a child process (:func:`convt_tools.runtimes.run_isolated`),
because tract aborts the whole process on some nodes (a Rust panic, e.g.
``output_shape`` with N and C). A job that kills the child is reported as
refused ("aborted the process") and the rest run in a fresh child.
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

import numpy as np

from ..runtimes import (ABORTS_PROCESS, ADAPTERS, RuntimeRefused, RuntimeUnavailable,
                        canonical_name, get_runtime, run_isolated)

__all__ = ["CHILD_TIMEOUT_S", "RUNNABLE", "Refusal", "installed", "installed_among", "run_calls",
           "run_many"]

RUNNABLE = ("onnxruntime", "openvino", "tract", "onnx-reference", "mnn", "ncnn", "opencv", "tvm",
            "iree")
CHILD_TIMEOUT_S = 300


class Refusal(str):
    """A runtime's refusal of one job: its first line (a ``str``, so it reads as the message).

    :func:`run_many` returns one output array or one :class:`Refusal` per job.
    """

    __slots__ = ()


def installed() -> dict[str, str]:
    """``{runtime: version}`` for the runtimes of :data:`RUNNABLE` importable here.

    ``CONVT_RUNTIMES_OFF`` (comma-separated names; old spellings accepted)
    hides some (for tests).
    """
    off = {canonical_name(s) for s in os.environ.get("CONVT_RUNTIMES_OFF", "").split(",")
           if s.strip()}
    out = {}
    for name in RUNNABLE:
        if name in off:
            continue
        try:
            out[name] = get_runtime(name).engine_version()
        except RuntimeUnavailable:
            continue
    return out


def installed_among(names: Sequence[str]) -> dict[str, str]:
    """``{runtime: version}`` for those of ``names`` (any runtime of
    :data:`convt_tools.runtimes.ADAPTERS`) whose engine imports here, in the given order;
    ``CONVT_RUNTIMES_OFF`` hides some, as for :func:`installed`."""
    off = {canonical_name(s) for s in os.environ.get("CONVT_RUNTIMES_OFF", "").split(",")
           if s.strip()}
    out = {}
    for name in names:
        key = canonical_name(name)
        if key in off or key not in ADAPTERS:
            continue
        try:
            out[key] = get_runtime(key).engine_version()
        except RuntimeUnavailable:
            continue
    return out


def run_calls(runtime: str, calls: Sequence[tuple[bytes, Mapping[str, np.ndarray]]], *,
              timeout_s: float = CHILD_TIMEOUT_S) -> list[list[np.ndarray] | Refusal]:
    """Run each ``(model bytes, feeds)`` on ``runtime`` (any name of
    :data:`convt_tools.runtimes.ADAPTERS`): all its outputs, or the refusal's first line.

    The engines of :data:`convt_tools.runtimes.ABORTS_PROCESS` run in one child process
    for the whole batch (:func:`convt_tools.runtimes.run_isolated`); the others here.
    """
    runtime = canonical_name(runtime)
    if runtime not in ADAPTERS:
        raise ValueError(f"runtime: got {runtime!r}; expected one of {', '.join(ADAPTERS)}")
    if runtime in ABORTS_PROCESS:
        return [Refusal(r) if isinstance(r, str) else [np.asarray(a) for a in r]
                for r in run_isolated(runtime, calls, timeout_s=timeout_s,
                                      strict_symbols=True)]
    adapter = get_runtime(runtime, quiet=True)
    out: list[list[np.ndarray] | Refusal] = []
    for model, feeds in calls:
        try:
            out.append([np.asarray(a) for a in adapter.load(model).run(dict(feeds))])
        except RuntimeRefused as exc:  # every refusal is evidence, never a crash
            out.append(Refusal(exc.detail))
    return out


def run_many(runtime: str, jobs: Sequence[tuple[bytes, np.ndarray]]
             ) -> list[np.ndarray | Refusal]:
    """Run each ``(model, x)`` on ``runtime``; output 0 or the refusal's first line.

    The model's one input is named ``x`` (:func:`~.probe.single_node_model`).
    """
    runtime = canonical_name(runtime)
    if runtime not in RUNNABLE:
        raise ValueError(f"runtime: got {runtime!r}; expected one of {', '.join(RUNNABLE)}")
    return [r if isinstance(r, Refusal) else r[0]
            for r in run_calls(runtime, [(model, {"x": x}) for model, x in jobs])]


def describe(runtimes: dict[str, Any]) -> str:
    """``"onnxruntime 1.32.0, openvino 2026.4.0"``."""
    return ", ".join(f"{k} {v}" for k, v in runtimes.items())
