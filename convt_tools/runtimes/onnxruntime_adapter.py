"""onnxruntime, on exactly the execution providers asked for (default CPU).

A provider that is listed but does not initialise is a :class:`ConvtError`
(never a silent fallback to CPU). ``threads`` sets the intra- and inter-op
thread counts (``None``: onnxruntime's default); ``log_severity`` the
session's log level (3: errors; 4: fatal only, for probes that run nodes an
engine may refuse). This is the only module that creates an
``onnxruntime.InferenceSession``.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from ..errors import ConvtError
from .base import LoadedModel, ModelLike, Runtime, RuntimeRefused, first_line, temporary_model_file

if TYPE_CHECKING:
    import onnxruntime

__all__ = ["OnnxruntimeRuntime", "resolve_providers", "session"]


def resolve_providers(providers: Sequence[str] | str | None) -> list[str]:
    """Execution provider names; ``CPU``/``cuda`` short forms accepted.

    Default ``["CPUExecutionProvider"]``. A provider onnxruntime does not
    have is a :class:`ConvtError` listing the available ones.
    """
    import onnxruntime as ort

    if providers is None:
        return ["CPUExecutionProvider"]
    if isinstance(providers, str):
        providers = [p for p in providers.split(",") if p.strip()]
    available = ort.get_available_providers()
    by_lower = {p.lower(): p for p in available}
    result = []
    for raw in providers:
        key = raw.strip().lower()
        if not key.endswith("executionprovider"):
            key += "executionprovider"
        if key not in by_lower:
            raise ConvtError(f"providers: got {raw!r}; this onnxruntime has "
                             f"{', '.join(available)}.", field="providers")
        result.append(by_lower[key])
    if not result:
        raise ConvtError("providers: got an empty list; give at least one, e.g. CPU.",
                         field="providers")
    return result


def session(model: ModelLike, providers: list[str], *, threads: int | None = None,
            log_severity: int = 3) -> onnxruntime.InferenceSession:
    """An ``InferenceSession`` of ``model`` (ModelProto, path or bytes) on exactly ``providers``.

    ``threads``: intra- and inter-op threads (``None``: onnxruntime's default).
    A listed provider that fails to initialise is a :class:`ConvtError`.
    """
    import onnxruntime as ort

    from ..onnxbase import has_pending

    if log_severity >= 4:
        ort.set_default_logger_severity(4)
    opts = ort.SessionOptions()
    opts.log_severity_level = log_severity
    if threads is not None:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = threads
    if isinstance(model, (bytes, bytearray)):
        sess = ort.InferenceSession(bytes(model), opts, providers=providers)
    elif isinstance(model, (str, os.PathLike)):
        sess = ort.InferenceSession(os.fspath(model), opts, providers=providers)
    elif has_pending(model):
        # weights held outside the proto (an export above the external-data threshold):
        # onnxruntime reads them from a temporary <model>.onnx + .data pair
        with temporary_model_file(model) as path:
            sess = ort.InferenceSession(path, opts, providers=providers)
    else:
        sess = ort.InferenceSession(model.SerializeToString(), opts, providers=providers)
    missing = [p for p in providers if p not in sess.get_providers()]
    if missing:
        raise ConvtError(f"providers: {', '.join(missing)} could not be initialised (it is "
                         f"listed but failed to load; onnxruntime fell back to "
                         f"{', '.join(sess.get_providers())}).", field="providers")
    return sess


class _Session(LoadedModel):
    runtime = "onnxruntime"

    def __init__(self, sess: onnxruntime.InferenceSession) -> None:
        self.session = sess
        self.providers = list(sess.get_providers())

    def _run(self, inputs: Mapping[str, np.ndarray]) -> Sequence[Any]:
        return self.session.run(None, dict(inputs))


class OnnxruntimeRuntime(Runtime):
    """``onnxruntime`` (base install). ``providers``: names or short forms (``CUDA,CPU``)."""

    name = "onnxruntime"
    extra = None
    packages = ("onnxruntime",)

    def __init__(self, providers: Sequence[str] | str | None = None, *,
                 threads: int | None = None, log_severity: int = 3) -> None:
        super().__init__(threads=threads)
        self._providers = providers
        self.log_severity = log_severity

    def _import(self) -> Any:
        import onnxruntime

        return onnxruntime

    def providers(self) -> list[str]:
        """The resolved provider list (ConvtError for one this onnxruntime lacks)."""
        return resolve_providers(self._providers)

    def _load(self, module: Any, model: ModelLike) -> LoadedModel:
        providers = self.providers()
        if not isinstance(model, (str, os.PathLike)):
            return _Session(session(model, providers, threads=self.threads,
                                    log_severity=self.log_severity))
        try:
            return _Session(session(model, providers, threads=self.threads,
                                    log_severity=self.log_severity))
        except ConvtError:
            raise
        except Exception as exc:  # the reason as for the model given in memory (no path)
            text = first_line(exc, limit=1 << 20).replace(
                f"Load model from {os.fspath(model)} failed:", "", 1)
            raise RuntimeRefused(self.name, "load", text[:300]) from None
