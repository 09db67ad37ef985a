"""OpenCV dnn (``pip install -e ".[opencv]"`` from the clone): ``cv2.dnn.readNetFromONNX``.

The ONNX model is read by OpenCV's own ONNX importer (``ENGINE_AUTO``, which
opencv-python-headless 5.x resolves to OpenCV's new dnn engine, CPU), from a
file (external data beside it), inputs set by name and the graph outputs
fetched by name. Symbolic input dims are taken as they are: OpenCV sizes the
network from the blob given at run time. ``threads`` calls
``cv2.setNumThreads`` (process-wide, as OpenCV has no per-network setting).
There is no separate conversion step, so loading runs in this process; check
measures OpenCV in a child process (:data:`~convt_tools.runtimes.ABORTS_PROCESS`).
OpenCV does not raise on a model it cannot import (e.g. an unsupported op): it
logs the reason to stderr and returns an empty network; the log written
while reading the model is captured and that reason is the refusal.
"""

from __future__ import annotations

import os
import sys
import tempfile
from typing import Any, Mapping, Sequence

import numpy as np

from .base import (LoadedModel, ModelLike, Runtime, RuntimeRefused, feed_names, load_proto,
                   temporary_model_file)

__all__ = ["OpencvRuntime"]


class _Net(LoadedModel):
    runtime = "opencv"

    def __init__(self, net: Any, inputs: list[str], outputs: list[str]) -> None:
        self.net = net
        self.inputs = inputs
        self.outputs = outputs

    def _run(self, inputs: Mapping[str, np.ndarray]) -> Sequence[Any]:
        for name in self.inputs:
            self.net.setInput(np.ascontiguousarray(inputs[name]), name)
        outs = self.net.forward(self.outputs)
        return [np.array(o) for o in outs]


class OpencvRuntime(Runtime):
    """``opencv``: OpenCV's dnn module (``cv2.dnn``), CPU."""

    name = "opencv"
    extra = "opencv"
    packages = ("cv2",)

    def _import(self) -> Any:
        import cv2

        return cv2

    def _version(self, module: Any) -> str:
        return str(module.__version__)

    def _load(self, module: Any, model: ModelLike) -> LoadedModel:
        proto = load_proto(model)
        inputs = feed_names(proto)
        outputs = [o.name for o in proto.graph.output]
        if self.threads is not None:
            module.setNumThreads(self.threads)
        with temporary_model_file(model) as path, _CapturedStderr() as log:
            net = module.dnn.readNetFromONNX(path)
        if net.empty():  # OpenCV logs why (e.g. the unsupported ops) and returns an empty net
            raise RuntimeRefused(self.name, "load", _why_empty(log.text, path))
        return _Net(net, inputs, outputs)


def _why_empty(log: str, path: str) -> str:
    """OpenCV's own reason for an empty network, on one line, without the temporary path."""
    text = " ".join(line.strip() for line in log.splitlines() if line.strip())
    text = text.replace(f"'{path}' ", "")
    marker = "DNN/ONNX: "
    text = text[text.index(marker) + len(marker):] if marker in text else text
    return text or "cv2.dnn.readNetFromONNX returned an empty network"


class _CapturedStderr:
    """``with _CapturedStderr() as log``: what native code writes to fd 2 goes to ``log.text``
    (OpenCV logs its import errors there instead of raising)."""

    text = ""

    def __enter__(self) -> _CapturedStderr:
        sys.stderr.flush()
        self._file = tempfile.TemporaryFile(mode="w+b")
        self._saved = os.dup(2)
        os.dup2(self._file.fileno(), 2)
        return self

    def __exit__(self, *exc: object) -> None:
        os.dup2(self._saved, 2)
        os.close(self._saved)
        self._file.seek(0)
        self.text = self._file.read().decode("utf-8", "replace")
        self._file.close()
