"""Loading untrusted ONNX models safely.

Owns :func:`load_model`, :func:`resolve_model` (what the public entry points
accept: a path or an ``onnx.ModelProto``, nothing else) and the external-data
containment rule: a model is
parsed with ``load_external_data=False``; every tensor stored outside the
file (initializers, sparse initializers, node-attribute tensors, in the main
graph, every subgraph and every function) must name a *relative* location
that stays inside the model's folder (no absolute path, drive letter or
``..``; symlinks resolved) before any external file is opened. Any failure
is a one-sentence :class:`~convt_tools.errors.ConvtError`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator

from ..errors import ConvtError, first_line
from ..io import check_input_file
from ._proto import import_onnx

if TYPE_CHECKING:
    import onnx

__all__ = ["check_external_locations", "load_model", "model_tensors", "resolve_model",
           "tensor_location"]


def _attribute_tensors(nodes: Iterable[onnx.NodeProto]) -> Iterator[onnx.TensorProto]:
    """Every TensorProto in the attributes of ``nodes``, their subgraphs included."""
    for node in nodes:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors
            if attr.HasField("sparse_tensor"):
                yield attr.sparse_tensor.values
                yield attr.sparse_tensor.indices
            if attr.HasField("g"):
                yield from _graph_tensors(attr.g)
            for g in attr.graphs:
                yield from _graph_tensors(g)


def _graph_tensors(graph: onnx.GraphProto) -> Iterator[onnx.TensorProto]:
    """Every TensorProto stored in ``graph`` and its subgraphs (initializers, attributes)."""
    yield from graph.initializer
    for sp in graph.sparse_initializer:
        yield sp.values
        yield sp.indices
    yield from _attribute_tensors(graph.node)


def model_tensors(model: onnx.ModelProto) -> Iterator[onnx.TensorProto]:
    """Every TensorProto of ``model``: its graphs and the attributes of its functions' nodes."""
    yield from _graph_tensors(model.graph)
    for fn in model.functions:
        yield from _attribute_tensors(fn.node)


def check_external_locations(model: onnx.ModelProto, folder: Path,
                             model_file: Path | None = None) -> int:
    """Refuse external-data locations that leave ``folder``; return how many tensors use it.

    Rejected: absolute paths, drive letters, ``..`` components, paths whose
    real path (symlinks resolved) is outside ``folder``, and the model file
    itself (``model_file``: its bytes are the protobuf, never tensor data).
    Nothing is opened.
    """
    onnx = import_onnx()
    root = folder.resolve()
    count = 0
    for t in model_tensors(model):
        entries = {e.key: e.value for e in t.external_data}
        if t.data_location != onnx.TensorProto.EXTERNAL and not entries:
            continue
        count += 1
        loc = entries.get("location", "")
        parts = Path(loc.replace("\\", "/")).parts
        bad = (not loc or os.path.isabs(loc) or loc.startswith(("/", "\\"))
               or (len(loc) > 1 and loc[1] == ":") or ".." in parts)
        if not bad:
            real = (root / loc).resolve()
            bad = real != root and root not in real.parents
            if model_file is not None and real == model_file.resolve():
                raise ConvtError(
                    f"model: tensor {t.name!r} has external-data location {loc!r}, which is the "
                    f"model file itself; refusing to read it.", field="model")
        if bad:
            raise ConvtError(
                f"model: tensor {t.name!r} has external-data location {loc!r}, which is not a "
                f"relative path inside the model's folder; refusing to read it.", field="model")
    return count


def tensor_location(tensor: onnx.TensorProto) -> str:
    """The ``location`` entry of a tensor's external data (``""`` when it has none)."""
    return {e.key: e.value for e in tensor.external_data}.get("location", "")


def load_model(path: str | os.PathLike[str], *, lazy: bool = False) -> onnx.ModelProto:
    """Load an untrusted ONNX model; any failure is a one-sentence :class:`ConvtError`.

    Parses with ``load_external_data=False``, checks every external-data
    location (:func:`check_external_locations`), then loads the external data;
    with ``lazy`` it does not: each external tensor gets the model's folder as
    its ``basepath`` and its bytes are read, range-checked, only when
    :func:`~._tensors.tensor_to_array` asks for them (``check`` and ``validate`` read the
    ConvTranspose weights, never the rest of a big model).
    """
    onnx = import_onnx()
    p = Path(path)
    check_input_file(p, "model", f"the model {str(path)!r}")
    try:
        model = onnx.load(str(p), load_external_data=False)
    except Exception as exc:  # protobuf DecodeError and friends
        raise ConvtError(f"model: {str(path)!r} is not a valid ONNX model "
                         f"({type(exc).__name__}: {first_line(exc)}).", field="model") from None
    if model.ir_version <= 0 or not model.HasField("graph"):
        raise ConvtError(f"model: {str(path)!r} is not a valid ONNX model (no IR version or "
                         f"no graph; truncated or not ONNX).", field="model")
    if check_external_locations(model, p.parent, p):
        from onnx.external_data_helper import load_external_data_for_model
        for loc in sorted({tensor_location(t) for t in model_tensors(model)
                           if tensor_location(t)}):
            # Every file read counts as an input: outputs may never overwrite it.
            check_input_file(p.parent / loc, "model",
                             f"the external data file {loc!r} of the model {str(path)!r}")
        if lazy:
            for tensor in model_tensors(model):
                if tensor_location(tensor):
                    entry = tensor.external_data.add()
                    entry.key, entry.value = "basepath", str(p.parent)
            return model
        try:
            load_external_data_for_model(model, str(p.parent))
        except Exception as exc:
            raise ConvtError(f"model: cannot load the external data of {str(path)!r} "
                             f"({type(exc).__name__}: {first_line(exc)}).",
                             field="model") from None
    return model


def resolve_model(model: str | os.PathLike[str] | onnx.ModelProto, name: str | None = None,
                  *, lazy: bool = False) -> tuple[onnx.ModelProto, str]:
    """``(ModelProto, label)`` for a path (loaded with :func:`load_model`) or a ModelProto.

    A ModelProto must have a graph and no tensor stored in an external file
    (without the model's path there is no folder to check or read it from).
    Anything else is a :class:`ConvtError` naming ``model``.
    """
    if isinstance(model, (str, os.PathLike)):
        return load_model(model, lazy=lazy), name or str(model)
    onnx = import_onnx()
    if not isinstance(model, onnx.ModelProto):
        raise ConvtError(f"model: got {type(model).__name__}; expected a path (str or "
                         f"os.PathLike) or an onnx.ModelProto.", field="model")
    if not model.HasField("graph"):
        raise ConvtError("model: the ModelProto has no graph; expected a complete ONNX model.",
                         field="model")
    for t in model_tensors(model):
        if t.data_location == onnx.TensorProto.EXTERNAL or len(t.external_data):
            loc = {e.key: e.value for e in t.external_data}.get("location", "")
            raise ConvtError(f"model: tensor {t.name!r} keeps its data in an external file "
                             f"({loc!r}) that a ModelProto cannot be checked against; pass the "
                             f"model's path instead (or load it with its external data).",
                             field="model")
    return model, name or "model"
