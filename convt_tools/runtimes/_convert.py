"""Running a model converter (pnnx, MNN's converter core) in a child process with a timeout.

Engines that run a converted model (MNN's ``.mnn``, ncnn's ``.param``/``.bin``)
convert the ONNX file first with the tool their users use. Converters can
crash or hang on a model, and MNN's Python converter entry point phones home,
so every conversion runs in a child process (:func:`run_converter`): its exit
status, its combined stdout/stderr text, and a timeout that kills it. Nothing
here reaches the network or installs packages; the child's environment is the
parent's, with the working directory a private folder.

:func:`tool_error_line` picks the converter's own first error line out of its
output (the refusal's reason); :func:`concrete_shapes` resolves each graph
input's dims for a concrete feed (converters that need static shapes are run
once per concrete shape).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import subprocess
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator, Mapping, Sequence

import numpy as np

if TYPE_CHECKING:
    import onnx

__all__ = ["CONVERT_TIMEOUT_S", "Converted", "feed_shapes", "float16_outputs", "graph_inputs",
           "native_stdout_to_stderr", "run_converter", "tool_error_line"]

# Seconds one conversion may take before the child is killed.
CONVERT_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Converted:
    """A converter run: exit status (None: killed after the timeout) and its output text."""

    returncode: int | None
    output: str

    @property
    def ok(self) -> bool:
        """The converter exited with status 0."""
        return self.returncode == 0


def run_converter(argv: Sequence[str], *, cwd: str, timeout_s: float = CONVERT_TIMEOUT_S,
                  env: Mapping[str, str] | None = None) -> Converted:
    """Run ``argv`` in ``cwd``; its status and stdout+stderr (never raises on failure)."""
    try:
        done = subprocess.run(list(argv), cwd=cwd, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                              timeout=timeout_s, env=None if env is None else dict(env),
                              check=False)
    except subprocess.TimeoutExpired as exc:
        text = exc.stdout.decode("utf-8", "replace") if isinstance(exc.stdout, bytes) else ""
        return Converted(None, text + f"\ntimed out after {timeout_s:g} s")
    return Converted(done.returncode, done.stdout.decode("utf-8", "replace"))


def tool_error_line(text: str, markers: Sequence[str], fallback: str) -> str:
    """The first line of ``text`` containing one of ``markers`` (case-insensitive), stripped,
    else ``fallback``."""
    for line in text.splitlines():
        low = line.lower()
        if any(m in low for m in markers):
            return line.strip()[:300]
    return fallback


def graph_inputs(model: onnx.ModelProto) -> list[tuple[str, list[int | str | None]]]:
    """The graph's real inputs (initializers excluded): name and dims (int, symbol or None)."""
    inits = {i.name for i in model.graph.initializer}
    out: list[tuple[str, list[int | str | None]]] = []
    for vi in model.graph.input:
        if vi.name in inits:
            continue
        dims: list[int | str | None] = []
        for d in vi.type.tensor_type.shape.dim:
            dims.append(d.dim_value if d.HasField("dim_value") else (d.dim_param or None))
        out.append((vi.name, dims))
    return out


def float16_outputs(model: onnx.ModelProto) -> list[bool]:
    """Per graph output: declared float16 (engines that compute it in float32 cast back)."""
    return [o.type.tensor_type.elem_type == 10 for o in model.graph.output]


def feed_shapes(names: Sequence[str], inputs: Mapping[str, np.ndarray]) -> tuple[tuple[int, ...], ...]:
    """The concrete shape of each named feed, in ``names`` order (a cache key)."""
    return tuple(tuple(int(d) for d in np.shape(inputs[n])) for n in names)


@contextlib.contextmanager
def native_stdout_to_stderr() -> Iterator[None]:
    """Inside the block, what native code prints on file descriptor 1 goes to 2 instead.

    MNN 3.6.1 prints ``The device supports: ...`` on stdout when its engine is
    imported; ``convt ... --json`` must print JSON only. C's stdio buffer is
    flushed before the descriptor is restored, so nothing leaks out later.
    """
    sys.stdout.flush()
    try:
        saved = os.dup(1)
    except OSError:   # no descriptor 1 (a closed stdout): nothing to protect
        yield
        return
    try:
        os.dup2(2, 1)
        yield
    finally:
        try:
            ctypes.CDLL(None).fflush(None)
        except (OSError, AttributeError):
            pass
        os.dup2(saved, 1)
        os.close(saved)
