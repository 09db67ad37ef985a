"""onnxruntime, on exactly the execution providers asked for (default CPU).

A provider that is listed but does not initialise is a :class:`ConvtError`
(never a silent fallback to CPU): see :mod:`convt_tools.validate.runtime`.
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import ConvtError
from .base import LoadedModel, Runtime, RuntimeRefused, first_line


class _Session(LoadedModel):
    runtime = "onnxruntime"

    def __init__(self, sess: Any) -> None:
        self.session = sess
        self.providers = list(sess.get_providers())

    def _run(self, inputs: Mapping[str, np.ndarray]) -> Sequence[Any]:
        return self.session.run(None, dict(inputs))


class OnnxruntimeRuntime(Runtime):
    """``onnxruntime`` (base install). ``providers``: names or short forms (``CUDA,CPU``)."""

    name = "onnxruntime"
    extra = None
    packages = ("onnxruntime",)

    def __init__(self, providers: Sequence[str] | str | None = None) -> None:
        self._providers = providers

    def _import(self) -> Any:
        import onnxruntime

        return onnxruntime

    def _version(self, module: Any) -> str:
        return str(module.__version__)

    def providers(self) -> list[str]:
        """The resolved provider list (ConvtError for one this onnxruntime lacks)."""
        from ..validate.runtime import resolve_providers

        return resolve_providers(self._providers)

    def _load(self, module: Any, model: Any) -> LoadedModel:
        from ..validate.runtime import session

        if not isinstance(model, (str, os.PathLike)):
            return _Session(session(model, self.providers()))
        try:
            return _Session(session(model, self.providers()))
        except ConvtError:
            raise
        except Exception as exc:  # the reason as for the model given in memory (no path)
            text = first_line(exc, limit=1 << 20).replace(
                f"Load model from {os.fspath(model)} failed:", "", 1)
            raise RuntimeRefused(self.name, "load", text[:300]) from None
