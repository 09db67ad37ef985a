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
from typing import Any, Iterable, Iterator

from ..errors import ConvtError
from ..io import check_input_file

__all__ = ["check_external_locations", "check_tensor", "load_model", "resolve_model",
           "tensor_to_array"]


def _import_onnx() -> Any:
    import onnx

    return onnx


def _attribute_tensors(nodes: Iterable[Any]) -> Iterator[Any]:
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


def _graph_tensors(graph: Any) -> Iterator[Any]:
    """Every TensorProto stored in ``graph`` and its subgraphs (initializers, attributes)."""
    yield from graph.initializer
    for sp in graph.sparse_initializer:
        yield sp.values
        yield sp.indices
    yield from _attribute_tensors(graph.node)


def _model_tensors(model: Any) -> Iterator[Any]:
    """Every TensorProto of ``model``: its graphs and the attributes of its functions' nodes."""
    yield from _graph_tensors(model.graph)
    for fn in model.functions:
        yield from _attribute_tensors(fn.node)


def check_external_locations(model: Any, folder: Path) -> int:
    """Refuse external-data locations that leave ``folder``; return how many tensors use it.

    Rejected: absolute paths, drive letters, ``..`` components, and paths whose
    real path (symlinks resolved) is outside ``folder``. Nothing is opened.
    """
    onnx = _import_onnx()
    root = folder.resolve()
    count = 0
    for t in _model_tensors(model):
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
        if bad:
            raise ConvtError(
                f"model: tensor {t.name!r} has external-data location {loc!r}, which is not a "
                f"relative path inside the model's folder; refusing to read it.", field="model")
    return count


def _location(tensor: Any) -> str:
    return {e.key: e.value for e in tensor.external_data}.get("location", "")


def load_model(path: str | os.PathLike[str], lazy: bool = False) -> Any:
    """Load an untrusted ONNX model; any failure is a one-sentence :class:`ConvtError`.

    Parses with ``load_external_data=False``, checks every external-data
    location (:func:`check_external_locations`), then loads the external data;
    with ``lazy`` it does not: each external tensor gets the model's folder as
    its ``basepath`` and its bytes are read, range-checked, only when
    :func:`tensor_to_array` asks for them (``check`` and ``validate`` read the
    ConvTranspose weights, never the rest of a big model).
    """
    onnx = _import_onnx()
    p = Path(path)
    check_input_file(p, "model", f"the model {str(path)!r}")
    try:
        model = onnx.load(str(p), load_external_data=False)
    except Exception as exc:  # protobuf DecodeError and friends
        raise ConvtError(f"model: {str(path)!r} is not a valid ONNX model "
                         f"({type(exc).__name__}: {_first_line(exc)}).", field="model") from None
    if model.ir_version <= 0 or not model.HasField("graph"):
        raise ConvtError(f"model: {str(path)!r} is not a valid ONNX model (no IR version or "
                         f"no graph; truncated or not ONNX).", field="model")
    if check_external_locations(model, p.parent):
        from onnx.external_data_helper import load_external_data_for_model
        for loc in sorted({_location(t) for t in _model_tensors(model) if _location(t)}):
            # Every file read counts as an input: outputs may never overwrite it.
            check_input_file(p.parent / loc, "model",
                             f"the external data file {loc!r} of the model {str(path)!r}")
        if lazy:
            for tensor in _model_tensors(model):
                if _location(tensor):
                    entry = tensor.external_data.add()
                    entry.key, entry.value = "basepath", str(p.parent)
            return model
        try:
            load_external_data_for_model(model, str(p.parent))
        except Exception as exc:
            raise ConvtError(f"model: cannot load the external data of {str(path)!r} "
                             f"({type(exc).__name__}: {_first_line(exc)}).",
                             field="model") from None
    return model


def resolve_model(model: Any, name: str | None = None, lazy: bool = False) -> tuple[Any, str]:
    """``(ModelProto, label)`` for a path (loaded with :func:`load_model`) or a ModelProto.

    A ModelProto must have a graph and no tensor stored in an external file
    (without the model's path there is no folder to check or read it from).
    Anything else is a :class:`ConvtError` naming ``model``.
    """
    if isinstance(model, (str, os.PathLike)):
        return load_model(model, lazy), name or str(model)
    onnx = _import_onnx()
    if not isinstance(model, onnx.ModelProto):
        raise ConvtError(f"model: got {type(model).__name__}; expected a path (str or "
                         f"os.PathLike) or an onnx.ModelProto.", field="model")
    if not model.HasField("graph"):
        raise ConvtError("model: the ModelProto has no graph; expected a complete ONNX model.",
                         field="model")
    for t in _model_tensors(model):
        if t.data_location == onnx.TensorProto.EXTERNAL or len(t.external_data):
            loc = {e.key: e.value for e in t.external_data}.get("location", "")
            raise ConvtError(f"model: tensor {t.name!r} keeps its data in an external file "
                             f"({loc!r}) that a ModelProto cannot be checked against; pass the "
                             f"model's path instead (or load it with its external data).",
                             field="model")
    return model, name or "model"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


# Element types a ConvTranspose weight, bias or constant may have (numeric, whole bytes).
_NUMERIC = ("FLOAT", "DOUBLE", "FLOAT16", "BFLOAT16", "INT8", "INT16", "INT32", "INT64",
            "UINT8", "UINT16", "UINT32", "UINT64", "BOOL")


def check_tensor(t: Any, field: str = "model") -> tuple[tuple[int, ...], Any]:
    """Validate an untrusted TensorProto's header against its data; return ``(dims, dtype)``.

    Refused with a one-sentence :class:`ConvtError` (never a traceback): an
    unknown or non-numeric ``data_type`` (STRING, 999, complex, 4-bit), negative
    dims, a size above :func:`convt_tools.io.max_bytes`, ``raw_data`` whose
    length is not ``prod(dims) * itemsize``, and a typed field (``float_data``
    ...) with the wrong number of values. Reads only the header and lengths.
    """
    onnx = _import_onnx()
    name = t.name or "<unnamed>"
    kind = onnx.TensorProto.DataType.Name(t.data_type) \
        if t.data_type in onnx.TensorProto.DataType.values() else None
    if kind not in _NUMERIC:
        raise ConvtError(f"{field}: tensor {name!r} has data_type "
                         f"{kind or t.data_type!r}; expected a numeric type "
                         f"({', '.join(_NUMERIC)}).", field=field)
    dims = tuple(int(d) for d in t.dims)
    if any(d < 0 for d in dims):
        raise ConvtError(f"{field}: tensor {name!r} has negative dims {list(dims)}; expected "
                         f"sizes >= 0.", field=field)
    dtype = onnx.helper.tensor_dtype_to_np_dtype(t.data_type)
    count = 1
    for d in dims:
        count *= d
    itemsize = 2 if kind == "BFLOAT16" else dtype.itemsize
    if t.data_location == onnx.TensorProto.EXTERNAL and not t.HasField("raw_data"):
        return dims, dtype   # its bytes are in a file checked where it is read
    if t.HasField("raw_data"):
        want = count * itemsize
        if want > _EXACT_RAW_BYTES:
            # Measuring raw_data costs a transient copy of it (protobuf has no cheaper way):
            # above this size only the declared size is checked here, the length when the
            # bytes are read (tensor_to_array).
            from ..io import check_allocation

            check_allocation(dims, dtype if kind != "BFLOAT16" else "uint16", field,
                             f"tensor {name!r} (dims {list(dims)})")
            return dims, dtype
        have, unit = _raw_length(t), f"bytes of raw_data (itemsize {itemsize})"
    else:
        storage = onnx.helper.tensor_dtype_to_field(t.data_type)
        have, unit = len(getattr(t, storage)), f"values in {storage}"
        want = count
    if have != want:
        raise ConvtError(f"{field}: tensor {name!r} declares dims {list(dims)} "
                         f"({count:,} elements) but holds {have:,} {unit}, not {want:,}; the "
                         f"model is corrupt.", field=field)
    return dims, dtype


_EXACT_RAW_BYTES = 64 << 20


def _varint_length(n: int) -> int:
    return max(1, (n.bit_length() + 6) // 7)


def _raw_length(t: Any) -> int:
    """``len(t.raw_data)`` without copying the bytes (reading the field copies them).

    The message's size is the other fields' size plus the raw_data field: one
    tag byte, the varint length, the bytes. Solved for the length.
    """
    onnx = _import_onnx()
    from .shapes import copy_fields

    other = onnx.TensorProto()
    copy_fields(t, other, skip="raw_data")
    rest = t.ByteSize() - other.ByteSize() - 1
    for k in range(1, 11):
        if _varint_length(rest - k) == k:
            return rest - k
    return len(t.raw_data)  # pragma: no cover - unreachable for a well-formed message


def tensor_to_array(t: Any, field: str = "model") -> Any:
    """An untrusted TensorProto as a NumPy array, after :func:`check_tensor`."""
    from onnx import numpy_helper

    dims, dtype = check_tensor(t, field)
    onnx = _import_onnx()
    if t.data_location == onnx.TensorProto.EXTERNAL and not t.HasField("raw_data"):
        return _read_external(t, dims, dtype, field)
    try:
        return numpy_helper.to_array(t)
    except Exception as exc:  # noqa: BLE001 - untrusted bytes
        raise ConvtError(f"{field}: tensor {t.name or '<unnamed>'!r} cannot be read "
                         f"({type(exc).__name__}: {_first_line(exc)}).", field=field) from None


def _read_external(t: Any, dims: tuple[int, ...], dtype: Any, field: str) -> Any:
    """The bytes of a lazily loaded external tensor (:func:`load_model` with ``lazy``)."""
    import numpy as np

    info = {e.key: e.value for e in t.external_data}
    name = t.name or "<unnamed>"
    if "basepath" not in info:
        raise ConvtError(f"{field}: tensor {name!r} keeps its data in an external file that "
                         f"was not loaded; load the model from its path.", field=field)
    path = os.path.join(info["basepath"], info.get("location", ""))
    count = 1
    for d in dims:
        count *= d
    want = count * dtype.itemsize
    try:
        offset = int(info.get("offset", 0))
        length = int(info.get("length", want))
        size = os.path.getsize(path)
    except (ValueError, OSError) as exc:
        raise ConvtError(f"{field}: tensor {name!r}: cannot read its external data "
                         f"({type(exc).__name__}: {_first_line(exc)}).", field=field) from None
    if length != want or offset < 0 or offset + length > size:
        raise ConvtError(f"{field}: tensor {name!r} declares dims {list(dims)} ({want:,} bytes) "
                         f"but its external data is {length:,} bytes at offset {offset:,} of a "
                         f"{size:,}-byte file; the model is corrupt.", field=field)
    with open(path, "rb") as fh:
        fh.seek(offset)
        return np.fromfile(fh, dtype=dtype, count=count).reshape(dims)

