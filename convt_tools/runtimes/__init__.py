"""Runtime adapters: run an ONNX model on several inference engines, one interface.

========================  ==================================  =======================
name (``--runtime``)      engine                              pip extra
========================  ==================================  =======================
``onnxruntime``           onnxruntime (any execution providers) base install
``openvino``              OpenVINO, CPU device                ``[openvino]``
``tract``                 tract (Python bindings)             ``[tract]``
``torch``                 PyTorch via onnx2torch, CPU         none: two steps (README)
``onnx-reference``        ``onnx.reference.ReferenceEvaluator`` base install
========================  ==================================  =======================

``[all-runtimes]`` installs OpenVINO and tract (torch: a CPU torch, then
``pip install --no-deps onnx2torch``; no extra, see pyproject.toml). Each adapter lives in its own
module and implements :class:`~.base.Runtime`: ``version()``, ``load(model)``
returning a :class:`~.base.LoadedModel` with ``run(inputs) -> outputs``.
A missing engine raises :class:`~.base.RuntimeUnavailable` (names the
extra); an engine refusing a model raises :class:`~.base.RuntimeRefused`.
"""

from __future__ import annotations

import importlib
from typing import Any, Sequence

from ..errors import ConvtError
from .base import LoadedModel, Runtime, RuntimeRefused, RuntimeUnavailable

__all__ = ["RUNTIMES", "LoadedModel", "Runtime", "RuntimeRefused", "RuntimeUnavailable",
           "get_runtime", "installed_runtimes", "parse_runtime_names", "require_runtimes"]

# name -> (module, class); one row per engine (the single source of the names).
RUNTIMES: dict[str, tuple[str, str]] = {
    "onnxruntime": ("onnxruntime_adapter", "OnnxruntimeRuntime"),
    "openvino": ("openvino_adapter", "OpenvinoRuntime"),
    "tract": ("tract_adapter", "TractRuntime"),
    "torch": ("torch_adapter", "TorchRuntime"),
    "onnx-reference": ("reference_adapter", "OnnxReferenceRuntime"),
}


def _unknown(name: object) -> ConvtError:
    return ConvtError(f"runtime: got {name!r}; expected one of {', '.join(RUNTIMES)} "
                      f"(comma-separated for several).", field="runtime")


def get_runtime(name: str, *, providers: Sequence[str] | str | None = None) -> Runtime:
    """The adapter for ``name`` (not yet imported). ``providers`` apply to onnxruntime only."""
    if not isinstance(name, str) or name.strip().lower() not in RUNTIMES:
        raise _unknown(name)
    key = name.strip().lower()
    module, cls_name = RUNTIMES[key]
    cls = getattr(importlib.import_module(f".{module}", __name__), cls_name)
    if key == "onnxruntime":
        return cls(providers)  # type: ignore[no-any-return]
    if providers is not None:
        raise ConvtError(f"providers: execution providers apply to the onnxruntime runtime "
                         f"only, not {key!r}.", field="providers")
    return cls()  # type: ignore[no-any-return]


def parse_runtime_names(text: str | Sequence[str]) -> list[str]:
    """``"onnxruntime,openvino"`` (or a list) -> canonical names, in order, without repeats."""
    items = text.split(",") if isinstance(text, str) else list(text)
    names: list[str] = []
    for item in items:
        if not isinstance(item, str) or item.strip().lower() not in RUNTIMES:
            raise _unknown(item)
        key = item.strip().lower()
        if key not in names:
            names.append(key)
    if not names:
        raise ConvtError("runtime: got an empty list; expected one or more of "
                         f"{', '.join(RUNTIMES)}.", field="runtime")
    return names


def require_runtimes(names: Sequence[str], providers: Sequence[str] | str | None = None
                     ) -> list[Runtime]:
    """Adapters for ``names``, each imported: the first missing one raises RuntimeUnavailable."""
    if providers is not None and "onnxruntime" not in names:
        raise ConvtError("providers: execution providers apply to the onnxruntime runtime "
                         "only; add onnxruntime to --runtime or drop --providers.",
                         field="providers")
    runtimes = [get_runtime(n, providers=providers if n == "onnxruntime" else None)
                for n in names]
    for rt in runtimes:
        rt.module()
    return runtimes


def installed_runtimes() -> dict[str, str]:
    """name -> ``version()`` for every engine that imports, else the reason it does not."""
    found: dict[str, Any] = {}
    for name in RUNTIMES:
        try:
            found[name] = get_runtime(name).version()
        except RuntimeUnavailable as exc:
            found[name] = str(exc)
    return found
