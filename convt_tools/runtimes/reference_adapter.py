"""``onnx.reference.ReferenceEvaluator``: the ONNX spec's own Python evaluator.

Slow (about 2000x onnxruntime on a ConvTranspose) and, in onnx 1.23, wrong
or crashing for ``group > 1``; useful as an independent reading of the
standard on small models. Part of the base install (onnx).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from .base import LoadedModel, ModelLike, Runtime, load_proto

__all__ = ["OnnxReferenceRuntime"]


class _Evaluator(LoadedModel):
    runtime = "onnx-reference"

    def __init__(self, evaluator: Any) -> None:
        self.evaluator = evaluator

    def _run(self, inputs: Mapping[str, np.ndarray]) -> Sequence[Any]:
        return self.evaluator.run(None, dict(inputs))


class OnnxReferenceRuntime(Runtime):
    """``onnx-reference``: ``onnx.reference.ReferenceEvaluator`` (base install)."""

    name = "onnx-reference"
    extra = None
    packages = ("onnx",)

    def _import(self) -> Any:
        import onnx
        import onnx.reference

        return onnx

    def _load(self, module: Any, model: ModelLike) -> LoadedModel:
        from onnx.reference import ReferenceEvaluator

        return _Evaluator(ReferenceEvaluator(load_proto(model)))
