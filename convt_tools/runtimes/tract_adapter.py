"""tract (``pip install -e ".[tract]"`` from the clone), Sonos's Rust inference engine.

``tract.onnx().load(path)`` gives an inference model; it is typed and
optimised (``into_model().into_runnable()``) with the model's own input
facts, symbolic dims included, and run as such. Only where tract cannot
type or evaluate the symbolic model (tract 0.23: ``TopK`` whose ``k`` is a
symbolic dim, "Undetermined symbol in expression", as in the ``sparsemax``
activation on a symbolic axis) is the model re-typed for the concrete input
shape at run time (cached per shape), as tract's own CLI does with
``--set``/``-i``; ``concretised`` then records why. ``strict_symbols=True`` turns that off:
the model is typed and run with its symbolic dims as they are, and tract's
refusal is the result (check measures what tract does with the symbolic
model). ``threads`` is accepted for the common interface (tract runs a model
on the calling thread).
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

import numpy as np

from .base import (LoadedModel, ModelLike, Runtime, RuntimeRefused, contiguous_feeds, first_line,
                   temporary_model_file)

__all__ = ["TractRuntime"]

_TRACT_DTYPES = {np.dtype(np.float32): "f32", np.dtype(np.float16): "f16",
                 np.dtype(np.float64): "f64"}


class _Runnable(LoadedModel):
    runtime = "tract"

    def __init__(self, tract: Any, source: ModelLike, names: list[str],
                 runnable: Any | None, why: str, *, strict: bool = False) -> None:
        self.strict = strict
        self.tract = tract
        self.source = source     # what temporary_model_file writes: bytes, a path, or a
                                 # ModelProto whose weights are held outside it (onnxbase)
        self.names = names
        self.runnable = runnable
        self.why = why
        self.by_shape: dict[tuple[Any, ...], Any] = {}
        self.concretised = ""

    def _concrete(self, arrays: list[np.ndarray]) -> Any:
        key = tuple((a.shape, a.dtype.str) for a in arrays)
        if key not in self.by_shape:
            with temporary_model_file(self.source) as path:
                model = self.tract.onnx().load(path)
            for i, a in enumerate(arrays):
                dt = _TRACT_DTYPES.get(a.dtype)
                if dt is None:
                    raise RuntimeRefused("tract", "run", f"no tract type for {a.dtype}")
                model.set_input_fact(i, ",".join(str(d) for d in a.shape) + "," + dt)
            self.by_shape[key] = model.into_model().into_runnable()
        return self.by_shape[key]

    def _run(self, inputs: Mapping[str, np.ndarray]) -> Sequence[Any]:
        arrays = contiguous_feeds(self.names, inputs)
        if self.runnable is not None:
            try:
                return [t.to_numpy() for t in self.runnable.run(arrays)]
            except Exception as exc:
                if self.strict or "Undetermined symbol" not in str(exc):
                    raise
                self.why = first_line(exc)
        self.concretised = self.why
        return [t.to_numpy() for t in self._concrete(arrays).run(arrays)]


class TractRuntime(Runtime):
    """``tract``: the tract Python bindings (``tract.onnx()``)."""

    name = "tract"
    extra = "tract"
    packages = ("tract",)

    def __init__(self, *, threads: int | None = None, strict_symbols: bool = False) -> None:
        super().__init__(threads=threads)
        self.strict_symbols = strict_symbols

    def _import(self) -> Any:
        import tract

        return tract

    def _version(self, module: Any) -> str:
        return str(module.version())

    def _load(self, module: Any, model: ModelLike) -> LoadedModel:
        from ..onnxbase import has_pending
        from .base import model_bytes

        # a path stays a path (its external data beside it); a ModelProto whose weights are
        # held outside it is written with them; anything else as serialised bytes
        data: ModelLike = (model if isinstance(model, (str, os.PathLike))
                           or (not isinstance(model, bytes) and hasattr(model, "graph")
                               and has_pending(model))
                           else model_bytes(model))
        with temporary_model_file(data) as path:
            inference = module.onnx().load(path)
        names = [inference.input_name(i) for i in range(inference.input_count())]
        if self.strict_symbols:
            return _Runnable(module, data, names, inference.into_model().into_runnable(), "",
                             strict=True)
        try:
            runnable, why = inference.into_model().into_runnable(), ""
        except Exception as exc:  # symbolic dims tract cannot type: concretise per run
            runnable, why = None, first_line(exc)
        return _Runnable(module, data, names, runnable, why)
