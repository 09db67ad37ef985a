"""A runtime adapter that wraps another and measures the model validation runs.

:func:`recording` wraps a :class:`~convt_tools.runtimes.Runtime` so that the
validate verb loads and runs the model through it exactly as it would the
engine's own adapter, while the wrapper records the load time and the first
run's time, input and output, and then (still inside that first run, before
validation moves on to the next runtime) times further runs of the *same*
loaded model on the *same* input with the ``timer`` it was given, keeping the
last output. The engine's model is then let go, so one engine at a time holds
the model, as in ``convt validate``. The validation result (judged by
validate's own tolerance) says whether the first output is exact. Nothing
here knows a particular engine.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ..runtimes import LoadedModel, ModelLike, Runtime, RuntimeRefused
from ._timing import Timing

__all__ = ["Recorded", "RecordedModel", "Timer", "recording"]

Timer = Callable[[Callable[[], object]], Timing]


class RecordedModel(LoadedModel):
    """A loaded model whose first run is timed, kept, and followed by the timed runs.

    After the first run: ``first_run_s``, ``inputs``, ``output`` (a copy),
    and, with a timer, ``timing`` and ``last_output`` (or ``timing_error``, an
    engine failing on a later run). The engine's model is released then.
    """

    def __init__(self, inner: LoadedModel, clock: Callable[[], float],
                 timer: Timer | None) -> None:
        self.inner: LoadedModel | None = inner
        self.runtime = inner.runtime
        self.providers = list(getattr(inner, "providers", []))
        self._clock = clock
        self._timer = timer
        self.first_run_s: float | None = None
        self.inputs: dict[str, np.ndarray] | None = None
        self.output: np.ndarray | None = None
        self.timing: Timing | None = None
        self.last_output: np.ndarray | None = None
        self.timing_error: str | None = None

    def _run(self, inputs: Mapping[str, np.ndarray]) -> Sequence[Any]:
        inner = self.inner
        if inner is None:
            raise RuntimeRefused(self.runtime, "run", "the benchmarked model was released")
        t0 = self._clock()
        outputs = inner.run(inputs)
        if self.first_run_s is not None:
            return outputs
        self.first_run_s = self._clock() - t0
        self.inputs = dict(inputs)
        # a copy: an engine may hand out a buffer that its next run overwrites
        self.output = np.array(outputs[0], copy=True) if outputs else None
        if self._timer is not None:
            self._time(inner, self._timer)
        return outputs

    def _time(self, inner: LoadedModel, timer: Timer) -> None:
        inputs = self.inputs or {}
        last: list[Any] = [None]

        def run() -> None:
            last[0] = inner.run(inputs)[0]

        try:
            self.timing = timer(run)
        except RuntimeRefused as exc:   # an engine failing on a later run of the same input
            self.timing_error = exc.reason
        self.last_output = last[0]
        self.inner = None               # one engine at a time holds the model


class Recorded(Runtime):
    """Base of :func:`recording`'s wrappers (``name``/``extra``/``packages`` set per engine)."""

    def __init__(self, inner: Runtime, clock: Callable[[], float],
                 timer: Timer | None = None) -> None:
        super().__init__(threads=inner.threads)
        self.inner = inner
        self._clock = clock
        self._timer = timer
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
        self.loaded = RecordedModel(inner, self._clock, self._timer)
        return self.loaded


def recording(inner: Runtime, clock: Callable[[], float] = time.perf_counter,
              timer: Timer | None = None) -> Recorded:
    """``inner`` wrapped: same name, version, model kind and results; load, first run and
    (with ``timer``) the timed runs after it recorded."""
    cls = type(f"Recorded_{type(inner).__name__}", (Recorded,),
               {"name": inner.name, "extra": inner.extra, "packages": inner.packages,
                "install": inner.install, "model_kind": inner.model_kind,
                "run_overhead": inner.run_overhead})
    return cls(inner, clock, timer)
