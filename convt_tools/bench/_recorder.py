"""A runtime adapter that wraps another and keeps what the bench needs from validation.

:func:`recording` wraps a :class:`~convt_tools.runtimes.Runtime` so that the
validate verb loads and runs the model through it exactly as it would the
engine's own adapter, while the wrapper records the load time, the first
run's time, the inputs and the output, and keeps the loaded model: the bench
then times further runs of the *same* loaded model on the *same* input, and
the validation result (judged by validate's own tolerance) says whether that
output is exact. Nothing here knows a particular engine.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ..runtimes import LoadedModel, ModelLike, Runtime

__all__ = ["Recorded", "RecordedModel", "recording"]


class RecordedModel(LoadedModel):
    """A loaded model whose first run is timed and whose inputs/output are kept."""

    def __init__(self, inner: LoadedModel, clock: Callable[[], float]) -> None:
        self.inner = inner
        self.runtime = inner.runtime
        self.providers = list(getattr(inner, "providers", []))
        self._clock = clock
        self.first_run_s: float | None = None
        self.inputs: dict[str, np.ndarray] | None = None
        self.output: np.ndarray | None = None

    def _run(self, inputs: Mapping[str, np.ndarray]) -> Sequence[Any]:
        t0 = self._clock()
        outputs = self.inner.run(inputs)
        if self.first_run_s is None:
            self.first_run_s = self._clock() - t0
            self.inputs = dict(inputs)
            # a copy: an engine may hand out a buffer that its next run overwrites
            self.output = np.array(outputs[0], copy=True) if outputs else None
        return outputs


class Recorded(Runtime):
    """Base of :func:`recording`'s wrappers (``name``/``extra``/``packages`` set per engine)."""

    def __init__(self, inner: Runtime, clock: Callable[[], float]) -> None:
        super().__init__(threads=inner.threads)
        self.inner = inner
        self._clock = clock
        self.load_s: float | None = None
        self.loaded: RecordedModel | None = None

    def _import(self) -> Any:
        return self.inner.module()

    def _version(self, module: Any) -> str:
        return self.inner.engine_version()

    def _load(self, module: Any, model: ModelLike) -> LoadedModel:
        t0 = self._clock()
        inner = self.inner.load(model)
        self.load_s = self._clock() - t0
        self.loaded = RecordedModel(inner, self._clock)
        return self.loaded


def recording(inner: Runtime, clock: Callable[[], float] = time.perf_counter) -> Recorded:
    """``inner`` wrapped: same name, version and results; load and first run recorded."""
    cls = type(f"Recorded_{type(inner).__name__}", (Recorded,),
               {"name": inner.name, "extra": inner.extra, "packages": inner.packages,
                "install": inner.install})
    return cls(inner, clock)
