"""LiteRT (``pip install -e ".[litert]"`` from the clone): the TensorFlow Lite interpreter.

``ai_edge_litert.interpreter.Interpreter`` (ai-edge-litert 2.3.0; no
TensorFlow) runs a ``.tflite`` flatbuffer, not an ONNX model: the adapter
declares ``model_kind = "tflite"`` and the verbs hand it the layer's tflite
export (:mod:`convt_tools.tflite`) instead of the ONNX one. A model is the
serialised bytes, a path to a ``.tflite`` file, or an object with a ``data``
attribute holding the bytes (``convt_tools.tflite.TfliteModel``). Inputs are
matched by position (the export has one), cast to the input tensor's dtype
(float16-rounded values are exact in float32); an input of another shape
resizes the tensor first (``resize_tensor_input``). ``threads``: the
interpreter's ``num_threads``.
"""

from __future__ import annotations

import os
from importlib import metadata
from typing import Any, Mapping, Protocol, Sequence, runtime_checkable

import numpy as np

from .base import LoadedModel, Runtime

__all__ = ["LitertRuntime"]


@runtime_checkable
class HasTfliteBytes(Protocol):
    """A tflite model object: its serialised flatbuffer in ``data``."""

    data: bytes


def tflite_bytes(model: Any) -> bytes:
    """The flatbuffer bytes of ``model`` (bytes, a path, or an object with ``data``)."""
    if isinstance(model, (bytes, bytearray)):
        return bytes(model)
    if isinstance(model, HasTfliteBytes):
        return bytes(model.data)
    if isinstance(model, (str, os.PathLike)):
        with open(model, "rb") as fh:
            return fh.read()
    raise TypeError(f"litert runs .tflite models (bytes, a path or a TfliteModel); got "
                    f"{type(model).__name__} (an ONNX model?)")


class _Loaded(LoadedModel):
    runtime = "litert"

    def __init__(self, interpreter: Any) -> None:
        self.interpreter = interpreter

    def _run(self, inputs: Mapping[str, np.ndarray]) -> Sequence[Any]:
        it = self.interpreter
        details = it.get_input_details()
        arrays = list(inputs.values())
        if len(arrays) != len(details):
            raise ValueError(f"the model has {len(details)} inputs; got {len(arrays)}")
        resized = False
        for d, a in zip(details, arrays):
            if tuple(d["shape"]) != tuple(np.shape(a)):
                it.resize_tensor_input(d["index"], list(np.shape(a)))
                resized = True
        if resized:
            it.allocate_tensors()
        for d, a in zip(details, arrays):
            it.set_tensor(d["index"], np.ascontiguousarray(a, dtype=d["dtype"]))
        it.invoke()
        return [np.array(it.get_tensor(d["index"])) for d in it.get_output_details()]


class LitertRuntime(Runtime):
    """``litert``: ai-edge-litert's TFLite interpreter, CPU (its default XNNPACK delegate)."""

    name = "litert"
    extra = "litert"
    packages = ("ai_edge_litert",)
    model_kind = "tflite"

    def _import(self) -> Any:
        from ai_edge_litert import interpreter

        return interpreter

    def _version(self, module: Any) -> str:
        return metadata.version("ai-edge-litert")

    def _load(self, module: Any, model: Any) -> LoadedModel:
        it = module.Interpreter(model_content=tflite_bytes(model), num_threads=self.threads)
        it.allocate_tensors()
        return _Loaded(it)
