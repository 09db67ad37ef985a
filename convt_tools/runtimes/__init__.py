"""The execution layer: the only code that creates an engine session or runs an ONNX model.

========================  ==================================  =======================
name                      engine                              pip extra
========================  ==================================  =======================
``onnxruntime``           onnxruntime (any execution providers) base install
``openvino``              OpenVINO, CPU device, f32 pinned    ``[openvino]``
``tract``                 tract (Python bindings)             ``[tract]``
``torch``                 PyTorch via onnx2torch, CPU         none: two steps (README)
``onnx-reference``        ``onnx.reference.ReferenceEvaluator`` base install
``mnn``                   MNN, its converter core (no logging) ``[mnn]``
``ncnn``                  ncnn via the pnnx binary, per sample ``[ncnn]`` + pnnx (--no-deps)
``litert``                LiteRT interpreter (.tflite export)   ``[litert]``
``opencv``                OpenCV dnn (``cv2.dnn``), CPU         ``[opencv]``
``tvm``                   TVM Relax ONNX frontend, llvm, VM     ``[tvm]``
``iree``                  IREE import + llvm-cpu, iree.runtime  ``[iree]``
========================  ==================================  =======================

These names are the same everywhere: ``validate --runtime``, ``run
--engine`` (which adds ``reference``, the NumPy reference), check's reading
table (which adds the documented-only rows of :data:`DOCUMENTED_ONLY`), JSON
and JUnit. The old spellings of :data:`DEPRECATED` are accepted by
:func:`canonical_name` with a deprecation note.

``[all-runtimes]`` installs OpenVINO and tract (torch: a CPU torch, then
``pip install --no-deps onnx2torch``; no extra, see pyproject.toml). Each adapter lives in its own
module and implements :class:`~.base.Runtime`: ``version()``, ``load(model)``
returning a :class:`~.base.LoadedModel` with ``run(inputs) -> outputs``;
options are explicit keywords of :func:`get_runtime` (``providers``,
``threads``). :func:`run_isolated` runs models in a child process with a
per-call timeout (for engines that can abort the process). A missing engine
raises :class:`~.base.RuntimeUnavailable` (names the extra); an engine
refusing a model raises :class:`~.base.RuntimeRefused`.

This package knows no ``convt`` verb: it imports nothing from ``validate``,
``check`` or ``cli``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Sequence

from ..errors import ConvtError
from ._isolated import DEFAULT_TIMEOUT_S, run_isolated
from .base import LoadedModel, ModelLike, Runtime, RuntimeRefused, RuntimeUnavailable

__all__ = ["ABORTS_PROCESS", "ADAPTERS", "DEFAULT_TIMEOUT_S", "DEPRECATED", "DOCUMENTED_ONLY", "EngineInfo",
           "LoadedModel", "ModelLike", "Runtime", "RuntimeRefused", "RuntimeUnavailable",
           "canonical_name", "deprecation_note", "engine_table", "get_runtime",
           "installed_runtimes", "parse_runtime_names", "require_runtimes", "run_isolated"]

# name -> (module, class); one row per runnable engine (the single source of the names).
ADAPTERS: dict[str, tuple[str, str]] = {
    "onnxruntime": ("onnxruntime_adapter", "OnnxruntimeRuntime"),
    "openvino": ("openvino_adapter", "OpenvinoRuntime"),
    "tract": ("tract_adapter", "TractRuntime"),
    "torch": ("torch_adapter", "TorchRuntime"),
    "onnx-reference": ("reference_adapter", "OnnxReferenceRuntime"),
    "mnn": ("mnn_adapter", "MnnRuntime"),
    "ncnn": ("ncnn_adapter", "NcnnRuntime"),
    "litert": ("litert_adapter", "LitertRuntime"),
    "opencv": ("opencv_adapter", "OpencvRuntime"),
    "tvm": ("tvm_adapter", "TvmRuntime"),
    "iree": ("iree_adapter", "IreeRuntime"),
}

# Engines known from their documentation only (check's reading table): never run here.
DOCUMENTED_ONLY: tuple[str, ...] = ("onnxruntime<1.14", "onnxruntime<=1.12", "tensorrt",
                                    "onnx2tf")

# Old spelling -> the name (accepted with a deprecation note).
DEPRECATED: dict[str, str] = {"onnx.reference": "onnx-reference", "onnx2torch": "torch"}

# Engines that can abort the process on some models: check runs them isolated.
ABORTS_PROCESS: tuple[str, ...] = ("openvino", "tract", "mnn", "ncnn", "opencv", "tvm", "iree")


def canonical_name(name: str) -> str:
    """``name`` stripped and lower-cased, an old spelling mapped to its name (not validated)."""
    key = name.strip().lower() if isinstance(name, str) else name
    return DEPRECATED.get(key, key)


def deprecation_note(names: str | Sequence[str] | None) -> str | None:
    """One line naming the old spellings among ``names`` and their names, else None."""
    if names is None:
        return None
    items = names.split(",") if isinstance(names, str) else list(names)
    old = [i.strip().lower() for i in items if isinstance(i, str)
           and i.strip().lower() in DEPRECATED]
    if not old:
        return None
    pairs = ", ".join(f"{o!r} is now {DEPRECATED[o]!r}" for o in dict.fromkeys(old))
    return f"note: deprecated engine name(s): {pairs}; the old spelling will be removed."


def _unknown(name: object) -> ConvtError:
    return ConvtError(f"runtime: got {name!r}; expected one of {', '.join(ADAPTERS)} "
                      f"(comma-separated for several).", field="runtime")


def get_runtime(name: str, *, providers: Sequence[str] | str | None = None,
                threads: int | None = None, quiet: bool = False,
                strict_symbols: bool = False) -> Runtime:
    """The adapter for ``name`` (engine not yet imported), with explicit options.

    ``providers`` apply to onnxruntime only; ``threads`` (``None``: the
    engine's default) to every engine; ``quiet``: onnxruntime logs only fatal
    errors (for probes that expect refusals); ``strict_symbols``: tract runs
    the model with its symbolic dims as they are, never re-typed for the
    concrete input (check measures that). Old spellings are accepted.
    """
    if not isinstance(name, str) or canonical_name(name) not in ADAPTERS:
        raise _unknown(name)
    key = canonical_name(name)
    module, cls_name = ADAPTERS[key]
    cls = getattr(importlib.import_module(f".{module}", __name__), cls_name)
    if key == "onnxruntime":
        return cls(providers, threads=threads,
                   log_severity=4 if quiet else 3)
    if providers is not None:
        raise ConvtError(f"providers: execution providers apply to the onnxruntime runtime "
                         f"only, not {key!r}.", field="providers")
    if key == "tract":
        return cls(threads=threads, strict_symbols=strict_symbols)
    return cls(threads=threads)


def parse_runtime_names(text: str | Sequence[str]) -> list[str]:
    """``"onnxruntime,openvino"`` (or a list) -> canonical names, in order, without repeats."""
    items = text.split(",") if isinstance(text, str) else list(text)
    names: list[str] = []
    for item in items:
        if not isinstance(item, str) or canonical_name(item) not in ADAPTERS:
            raise _unknown(item)
        key = canonical_name(item)
        if key not in names:
            names.append(key)
    if not names:
        raise ConvtError("runtime: got an empty list; expected one or more of "
                         f"{', '.join(ADAPTERS)}.", field="runtime")
    return names


def require_runtimes(names: Sequence[str], providers: Sequence[str] | str | None = None, *,
                     threads: int | None = None) -> list[Runtime]:
    """Adapters for ``names``, each imported: the first missing one raises RuntimeUnavailable."""
    if providers is not None and "onnxruntime" not in names:
        raise ConvtError("providers: execution providers apply to the onnxruntime runtime "
                         "only; add onnxruntime to --runtime or drop --providers.",
                         field="providers")
    runtimes = [get_runtime(n, providers=providers if n == "onnxruntime" else None,
                            threads=threads) for n in names]
    for rt in runtimes:
        rt.module()
    return runtimes


def installed_runtimes() -> dict[str, str]:
    """name -> ``version()`` for every engine that imports, else the reason it does not."""
    found: dict[str, str] = {}
    for name in ADAPTERS:
        try:
            found[name] = get_runtime(name).version()
        except RuntimeUnavailable as exc:
            found[name] = str(exc)
    return found


@dataclass(frozen=True)
class EngineInfo:
    """One row of :func:`engine_table` (``convt runtimes``)."""

    name: str
    engine: str
    installed: bool
    version: str | None
    install: str
    where: str
    note: str = ""
    kind: str = "runtime"  # "reference" (NumPy), "runtime" (an adapter), "documented" (never run)

    def to_dict(self) -> dict[str, object]:
        """The row as JSON-ready values."""
        return {"name": self.name, "kind": self.kind, "engine": self.engine,
                "installed": self.installed, "version": self.version, "install": self.install,
                "used_by": self.where, "note": self.note}


_ENGINE_TEXT = {
    "onnxruntime": "onnxruntime (execution providers via --providers)",
    "openvino": "OpenVINO, CPU device, f32 precision pinned",
    "tract": "tract (Sonos), Python bindings",
    "torch": "PyTorch via onnx2torch, CPU",
    "onnx-reference": "onnx.reference.ReferenceEvaluator (the spec's evaluator; slow)",
    "mnn": "MNN (Alibaba) via its converter core, CPU, float32",
    "ncnn": "ncnn (Tencent) via pnnx (fp16=0), CPU, float32, per sample",
    "litert": "LiteRT (TFLite) interpreter, ai-edge-litert; runs the .tflite export",
    "opencv": "OpenCV dnn (cv2.dnn.readNetFromONNX), CPU",
    "tvm": "Apache TVM, Relax ONNX frontend, llvm target, VM (compiled in a child process)",
    "iree": "IREE: iree-import-onnx, iree-compile llvm-cpu, iree.runtime local-task",
}


def engine_table() -> list[EngineInfo]:
    """Every engine, installed or not: the NumPy reference, the runnable adapters (version
    when installed, the reason otherwise), and the documented-only rows of check's table."""
    from .. import __version__

    rows = [EngineInfo("reference", "convt's NumPy reference (run --engine only)", True,
                       __version__, "included", "run", kind="reference")]
    for name in ADAPTERS:
        rt = get_runtime(name)
        extra = rt.extra
        install = (getattr(rt, "install", None)
                   or (f'pip install -e ".[{extra}]"' if extra else "included"))
        try:
            version, ok, note = rt.engine_version(), True, ""
        except RuntimeUnavailable as exc:
            version, ok, note = None, False, str(exc)
        old = [o for o, n in DEPRECATED.items() if n == name]
        if old:
            note = "; ".join(filter(None, [note, f"old spelling {', '.join(old)} (deprecated)"]))
        where = "validate, run" + ("" if rt.model_kind != "onnx"   # check reads ONNX models
                                   else ", check (documented)" if name == "torch" else ", check")
        rows.append(EngineInfo(name, _ENGINE_TEXT[name], ok, version, install, where, note))
    for name in DOCUMENTED_ONLY:
        rows.append(EngineInfo(name, "documented readings only (never run)", False, None, "-",
                               "check (documented)", kind="documented"))
    return rows
