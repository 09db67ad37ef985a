"""OpenCV dnn (``pip install -e ".[opencv]"`` from the clone): ``cv2.dnn.readNetFromONNX``.

The ONNX model is read by OpenCV's own ONNX importer (``ENGINE_AUTO``, which
opencv-python-headless 5.x resolves to OpenCV's new dnn engine, CPU), from a
file (external data beside it), inputs set by name and the graph outputs
fetched by name. Symbolic input dims are taken as they are: OpenCV sizes the
network from the blob given at run time. ``threads`` calls
``cv2.setNumThreads`` (process-wide, as OpenCV has no per-network setting).
There is no separate conversion step, so loading runs in this process; check
measures OpenCV in a child process (:data:`~convt_tools.runtimes.ABORTS_PROCESS`).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from .base import LoadedModel, ModelLike, Runtime, load_proto, temporary_model_file

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
        weights = {t.name for t in proto.graph.initializer}
        inputs = [i.name for i in proto.graph.input if i.name not in weights]
        outputs = [o.name for o in proto.graph.output]
        if self.threads is not None:
            module.setNumThreads(self.threads)
        with temporary_model_file(model) as path:
            net = module.dnn.readNetFromONNX(path)
        return _Net(net, inputs, outputs)
