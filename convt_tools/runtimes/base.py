"""The one interface every runtime adapter implements.

An adapter (:class:`Runtime`) knows one inference engine: its name on the
command line, the pip extra that installs it, its version, and how to load an
ONNX model into a :class:`LoadedModel` whose :meth:`~LoadedModel.run` maps
named NumPy inputs to the list of NumPy outputs (graph output order).

Two failures are kept apart, because they mean different things to a user:

- :class:`RuntimeUnavailable` (a :class:`ConvtError`, exit 2 on the CLI):
  the engine is not installed or cannot be imported; the message names the
  pip extra, e.g. ``pip install -e ".[openvino]"`` from the clone.
- :class:`RuntimeRefused`: the engine is there but refuses this model (load
  or run raised). ``reason`` is the engine's own first line, prefixed with
  the runtime's name; validation reports it as a failure (exit 1).

Engines are imported on first use only, so the base install (onnx,
onnxruntime, numpy, click) never needs the optional ones.

Options are explicit and per adapter (never read from the environment):
``threads`` (``None``: the engine's default; a ``--jobs`` worker passes 1),
onnxruntime's ``providers``, OpenVINO's f32 precision pin (always on). A
model is a ``ModelProto``, a path, or serialised ``bytes``. This package
runs ONNX models and knows no ``convt`` verb: it imports nothing from
``validate``, ``check`` or ``cli``.
"""

from __future__ import annotations

import abc
import os
import tempfile
from typing import TYPE_CHECKING, Any, ClassVar, Mapping, Sequence, Union

import numpy as np

from ..errors import ConvtError

if TYPE_CHECKING:
    import onnx

__all__ = ["LoadedModel", "ModelLike", "Runtime", "RuntimeRefused", "RuntimeUnavailable",
           "contiguous_feeds", "feed_names", "first_line", "float16_outputs", "graph_inputs",
           "load_proto", "model_bytes", "temporary_model_file"]

# What every adapter loads: a ModelProto, a path to a .onnx file, or its serialised bytes.
ModelLike = Union["onnx.ModelProto", str, "os.PathLike[str]", bytes]


def load_proto(model: ModelLike) -> onnx.ModelProto:
    """``model`` as a ``ModelProto`` (read from a path or parsed from bytes when needed)."""
    import onnx

    if isinstance(model, onnx.ModelProto):
        return model
    if isinstance(model, (bytes, bytearray)):
        return onnx.load_model_from_string(bytes(model))
    return onnx.load_model(os.fspath(model))


def graph_inputs(proto: onnx.ModelProto) -> list[tuple[str, list[int | str | None]]]:
    """The graph inputs a caller feeds (those not given by an initializer), in graph order:
    name and dims (int, symbol or None)."""
    weights = {t.name for t in proto.graph.initializer}
    out: list[tuple[str, list[int | str | None]]] = []
    for vi in proto.graph.input:
        if vi.name in weights:
            continue
        dims: list[int | str | None] = []
        for d in vi.type.tensor_type.shape.dim:
            dims.append(d.dim_value if d.HasField("dim_value") else (d.dim_param or None))
        out.append((vi.name, dims))
    return out


def feed_names(proto: onnx.ModelProto) -> list[str]:
    """The names of :func:`graph_inputs` (the inputs a caller feeds), in graph order."""
    return [name for name, _ in graph_inputs(proto)]


def contiguous_feeds(names: Sequence[str], inputs: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    """``inputs[name]`` for each of ``names``, in that order, as C-contiguous arrays (what an
    engine's run call takes)."""
    return [np.ascontiguousarray(inputs[name]) for name in names]


def float16_outputs(proto: onnx.ModelProto) -> list[bool]:
    """Per graph output: declared float16 (engines that compute it in float32 cast back)."""
    return [o.type.tensor_type.elem_type == 10 for o in proto.graph.output]


class RuntimeUnavailable(ConvtError):
    """The runtime is not installed (or does not import); the message names the pip extra."""

    def __init__(self, runtime: str, why: str, extra: str | None,
                 install: str | None = None) -> None:
        install = install or (f'pip install -e ".[{extra}]" (from the clone)' if extra
                              else 'pip install -e . (from the clone)')
        super().__init__(f"runtime: {runtime!r} is not available ({why}); install it with "
                         f"{install}.", field="runtime")
        self.runtime = runtime
        self.extra = extra


class RuntimeRefused(Exception):
    """The runtime is installed but refuses the model; ``reason`` is one line.

    ``detail`` is the engine's own first line, without the runtime/stage prefix.
    """

    def __init__(self, runtime: str, stage: str, exc: BaseException | str) -> None:
        text = exc if isinstance(exc, str) else first_line(exc)
        self.runtime = runtime
        self.stage = stage
        self.detail = text
        self.reason = f"{runtime} refused the model at {stage}: {text}"
        super().__init__(self.reason)


def first_line(exc: BaseException, limit: int = 300) -> str:
    """The first non-empty line of ``exc``'s message (its type name when it has none)."""
    for line in str(exc).splitlines():
        line = line.strip()
        if line:
            return line[:limit]
    return type(exc).__name__


def model_bytes(model: ModelLike) -> bytes:
    """Serialised bytes of a ``ModelProto``, the contents of a model path, or ``bytes`` as is."""
    if isinstance(model, (bytes, bytearray)):
        return bytes(model)
    if isinstance(model, (str, os.PathLike)):
        with open(model, "rb") as fh:
            return fh.read()
    return model.SerializeToString()


class temporary_model_file:  # noqa: N801 (a context manager used like a function)
    """``with temporary_model_file(model) as path``: the model written to a private temp file.

    For engines that only read paths (tract, OpenVINO). The folder is removed
    on exit. A path is used as is. A ModelProto whose weights are held outside
    it (:mod:`convt_tools.onnxbase`) is written with its ``.data`` file.
    """

    def __init__(self, model: ModelLike) -> None:
        self._model = model
        self._dir: tempfile.TemporaryDirectory[str] | None = None

    def __enter__(self) -> str:
        if isinstance(self._model, (str, os.PathLike)):
            return os.fspath(self._model)
        from ..onnxbase import has_pending, save_with_external_data

        self._dir = tempfile.TemporaryDirectory(prefix="convt-rt-")
        path = os.path.join(self._dir.name, "model.onnx")
        if not isinstance(self._model, bytes) and hasattr(self._model, "graph") \
                and has_pending(self._model):
            save_with_external_data(self._model, path)   # weights held outside the proto
            return path
        with open(path, "wb") as fh:
            fh.write(model_bytes(self._model))
        return path

    def __exit__(self, *exc: object) -> None:
        if self._dir is not None:
            self._dir.cleanup()


class LoadedModel(abc.ABC):
    """A model loaded into one runtime, ready to run."""

    runtime: str

    @abc.abstractmethod
    def _run(self, inputs: Mapping[str, np.ndarray]) -> Sequence[Any]:
        """The engine's own call; may raise anything (wrapped by :meth:`run`)."""

    def run(self, inputs: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """Outputs (graph order) as NumPy arrays; an engine failure is :class:`RuntimeRefused`."""
        try:
            outputs = self._run(inputs)
            return [np.asarray(o) for o in outputs]
        except RuntimeRefused:
            raise
        except Exception as exc:  # every engine raises its own types
            raise RuntimeRefused(self.runtime, "run", exc) from None


class Runtime(abc.ABC):
    """One inference engine behind the common interface.

    ``name`` is the command-line name (``--runtime``/``--engine``), ``extra``
    the pip extra that installs it (``None``: part of the base install).
    """

    name: ClassVar[str]
    extra: ClassVar[str | None]
    packages: ClassVar[tuple[str, ...]]
    # How to install it where no pip extra can (``extra`` None): shown instead.
    install: ClassVar[str | None] = None
    # What the adapter loads: "onnx" (every ONNX engine) or "tflite" (litert); the verbs
    # export the layer in that kind (convt_tools.tflite for "tflite").
    model_kind: ClassVar[str] = "onnx"
    # Set where a run's time is not the engine's own (what else it includes, and why):
    # convt bench prints it beside the adapter's figures.
    run_overhead: ClassVar[str | None] = None

    def __init__(self, *, threads: int | None = None) -> None:
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int)
                                    or threads < 1):
            raise ConvtError(f"threads: got {threads!r}; expected an integer >= 1 or None.",
                             field="threads")
        self.threads = threads

    @abc.abstractmethod
    def _import(self) -> Any:
        """Import the engine's modules (raises ImportError/OSError when missing)."""

    def _version(self, module: Any) -> str:
        """The engine's version string (default: the module's ``__version__``)."""
        return str(module.__version__)

    @abc.abstractmethod
    def _load(self, module: Any, model: ModelLike) -> LoadedModel:
        """Load ``model`` (ModelProto, path or bytes); may raise anything (wrapped by :meth:`load`)."""

    def module(self) -> Any:
        """The imported engine; :class:`RuntimeUnavailable` naming the pip extra when missing."""
        try:
            return self._import()
        except RuntimeUnavailable:
            raise
        except Exception as exc:  # ImportError, OSError (missing shared library), ...
            raise RuntimeUnavailable(self.name, f"{', '.join(self.packages)}: "
                                     f"{first_line(exc, 160)}", self.extra,
                                     self.install) from None

    _versions: ClassVar[dict[str, str]] = {}

    def engine_version(self) -> str:
        """The installed engine's version alone, e.g. ``"1.23.0"`` (raises RuntimeUnavailable)."""
        module = self.module()
        if self.name not in Runtime._versions:
            Runtime._versions[self.name] = self._version(module)
        return Runtime._versions[self.name]

    def version(self) -> str:
        """``"<name> <version>"`` of the installed engine (raises RuntimeUnavailable)."""
        return f"{self.name} {self.engine_version()}"

    def load(self, model: ModelLike) -> LoadedModel:
        """``model`` loaded into the engine; :class:`RuntimeRefused` when it refuses."""
        module = self.module()
        try:
            return self._load(module, model)
        except (RuntimeRefused, ConvtError):  # ConvtError: a bad option (e.g. providers)
            raise
        except Exception as exc:
            raise RuntimeRefused(self.name, "load", exc) from None

    def run(self, model: ModelLike, inputs: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """Load then run once (convenience)."""
        return self.load(model).run(inputs)
