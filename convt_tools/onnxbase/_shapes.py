"""Graph-input shapes: parsing ``--input-shape``, fixing them, inferring the rest.

Owns :func:`parse_input_shapes` (``NAME=DIMS`` items, ``?``/``None``/``-1``
for unknown dims, a bare ``DIMS`` for a single-input model under the name
``""``), :func:`input_shapes_arg` (what the API accepts: ``None``, a mapping
``{name: dims}`` or a list of ``NAME=DIMS`` strings as on the command line),
:func:`apply_input_shapes` (a copy of the model with those input shapes; every
given dim is a positive integer or unknown, and must agree with a dim the
model fixes) and :func:`infer_shapes`
(onnx shape inference, then per graph path, see :mod:`._graph`,
value name -> dims and -> element type; outer-scope values are visible in
subgraphs; ``None`` is an unknown dim).

The body of a model-local function is not shape-inferred; only its inputs
get shapes, taken from its call sites when every call site (in the main graph
and its subgraphs) passes the same shape (:func:`_bind_call_sites`).
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

from ..errors import ConvtError, first_line
from ..spec import parse_shape
from ._graph import function_path, node_label, subgraphs
from ._proto import copy_fields, import_onnx

if TYPE_CHECKING:
    import onnx

__all__ = ["SKELETON_BYTES", "apply_input_shapes", "declared_bytes", "infer_shapes",
           "input_shapes_arg", "parse_input_shapes", "skeleton"]

_UNKNOWN = ("none", "?", "-1", "null")
_EXPECTED = ("expected a mapping {input name: dims} or a list of 'NAME=DIMS' strings (as "
             "--input-shape takes), e.g. {'x': (1, 3, 32, 32)} or ['x=1,3,32,32']")


def parse_input_shapes(items: Iterable[str]) -> dict[str, tuple[int | None, ...]]:
    """``["x=1,3,32,32", ...]`` -> ``{"x": (1, 3, 32, 32)}``; a bare shape maps to ``""``."""
    out: dict[str, tuple[int | None, ...]] = {}
    for item in items:
        name, sep, dims = item.rpartition("=")
        if not sep:
            name, dims = "", item
        out[name.strip()] = parse_shape(dims, "input_shape")
    return out


def input_shapes_arg(value: Any) -> dict[str, tuple[int | None, ...]]:
    """Normalise the ``input_shapes`` argument of the public API.

    Accepted: ``None`` (no shapes), a mapping ``{name: dims}`` (``""`` for the
    only input; dims a sequence of ints with ``None``, ``-1`` or ``"?"`` for
    unknown, or a ``"1,3,32,32"`` string) or a list/tuple of ``NAME=DIMS``
    strings as ``--input-shape`` takes them. Dims are checked for sign later
    (:func:`apply_input_shapes`, which knows the graph input's name).
    """
    if value is None:
        return {}
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return parse_input_shapes(value)
    if not isinstance(value, Mapping):
        raise ConvtError(f"input_shape: got {value!r} (of type {type(value).__name__}); "
                         f"{_EXPECTED}.", field="input_shape")
    out: dict[str, tuple[int | None, ...]] = {}
    for name, dims in value.items():
        if not isinstance(name, str):
            raise ConvtError(f"input_shape: got input name {name!r}; {_EXPECTED}.",
                             field="input_shape")
        if isinstance(dims, str):
            out[name] = parse_shape(dims, "input_shape")
            continue
        if isinstance(dims, (bytes, Mapping)) or not isinstance(dims, Iterable):
            raise ConvtError(f"input_shape: got {dims!r} for input {name!r}; expected a sequence "
                             f"of dims such as (1, 3, 32, 32), None or ? for unknown dims.",
                             field="input_shape")
        out[name] = tuple(_dim(d, name, dims) for d in dims)
    return out


def _dim(d: Any, name: str, dims: Any) -> int | None:
    """One dim of a mapping value: an int (``-1`` = unknown), ``None`` or ``"?"``."""
    if d is None or (isinstance(d, str) and d.strip().lower() in _UNKNOWN):
        return None
    if isinstance(d, bool) or not hasattr(d, "__index__"):
        raise ConvtError(f"input_shape: got {tuple(dims)!r} for input {name!r}; dim {d!r} is not "
                         f"an integer; expected positive integers, with None, ? or -1 for "
                         f"unknown dims.", field="input_shape")
    value = int(d.__index__())
    return None if value == -1 else value


def _check_dims(name: str, dims: Sequence[int | None]) -> None:
    """Every known dim of graph input ``name`` is positive (nothing to probe at 0)."""
    for i, d in enumerate(dims):
        if d is not None and d < 1:
            shown = ",".join("?" if v is None else str(v) for v in dims)
            raise ConvtError(f"input_shape: got {shown} for input {name!r}; dim {i} is {d}, "
                             f"expected a positive integer (or -1, ? or None for unknown).",
                             field="input_shape")


def _dims(type_proto: onnx.TypeProto) -> tuple[int | None, ...] | None:
    if not type_proto.HasField("tensor_type") or not type_proto.tensor_type.HasField("shape"):
        return None
    return tuple(d.dim_value if d.HasField("dim_value") and d.dim_value >= 0 else None
                 for d in type_proto.tensor_type.shape.dim)


SKELETON_BYTES = 1024


def declared_bytes(t: onnx.TensorProto) -> int:
    """Bytes of a tensor from its dims (8 per element: an upper bound; no data is read --
    ``ByteSize()`` would serialise the tensor)."""
    n = 8
    for d in t.dims:
        n *= max(int(d), 0)
    return n


def skeleton(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of ``model`` for shape inference, without the bytes of its big initializers.

    Initializers above 1 KiB keep name, type and dims (all shape inference
    reads of a weight) and are marked external, so neither the copy nor
    ``onnx.shape_inference`` (which serialises its argument) duplicates a big
    model's weights. Small ones (shape constants) are copied whole.
    """
    onnx = import_onnx()
    from onnx import helper

    out = onnx.ModelProto()
    copy_fields(model, out, skip="graph")
    graph = out.graph
    copy_fields(model.graph, graph, skip="initializer")
    for t in model.graph.initializer:
        if declared_bytes(t) <= SKELETON_BYTES:
            graph.initializer.append(t)
            continue
        head = helper.make_tensor(t.name, t.data_type, [0], vals=b"", raw=True) \
            if t.data_type in onnx.TensorProto.DataType.values() else onnx.TensorProto(name=t.name)
        del head.dims[:]
        head.dims.extend(t.dims)
        head.ClearField("raw_data")
        head.data_location = onnx.TensorProto.EXTERNAL
        entry = head.external_data.add()
        entry.key, entry.value = "location", "convt-skeleton"
        graph.initializer.append(head)
    return out


def apply_input_shapes(model: onnx.ModelProto, shapes: Any) -> onnx.ModelProto:
    """A copy of ``model`` whose graph inputs have the given shapes (checked against fixed dims).

    ``shapes`` is anything :func:`input_shapes_arg` accepts. A known dim must be
    a positive integer: a batch of 0 leaves nothing to probe, and a negative
    dim other than ``-1`` (unknown) is a mistake, not an unknown.
    """
    from onnx import helper

    shapes = input_shapes_arg(shapes)
    model = copy.deepcopy(model)
    inits = {t.name for t in model.graph.initializer}
    inputs = [vi for vi in model.graph.input if vi.name not in inits]
    if "" in shapes:
        if len(inputs) != 1:
            raise ConvtError(f"input_shape: a shape without a name needs a model with one "
                             f"input; this one has {[vi.name for vi in inputs]}; use NAME=DIMS.",
                             field="input_shape")
        shapes[inputs[0].name] = shapes.pop("")
    by_name = {vi.name: vi for vi in inputs}
    for name, dims in shapes.items():
        vi = by_name.get(name)
        if vi is None:
            raise ConvtError(f"input_shape: got input name {name!r}; the model's inputs are "
                             f"{sorted(by_name)}.", field="input_shape")
        _check_dims(name, dims)
        old = _dims(vi.type)
        if old is not None and (len(old) != len(dims) or any(
                o is not None and d is not None and o != d for o, d in zip(old, dims))):
            raise ConvtError(f"input_shape: got {tuple(dims)} for {name!r}, but the model fixes "
                             f"its shape to {old} (None = free); give a compatible shape.",
                             field="input_shape")
        merged = [d if d is not None else (o if old else None)
                  for d, o in zip(dims, old or [None] * len(dims))]
        new = helper.make_tensor_value_info(name, vi.type.tensor_type.elem_type,
                                            [d if d is not None else f"{name}_d{i}"
                                             for i, d in enumerate(merged)])
        vi.CopyFrom(new)
    return model


def infer_shapes(model: onnx.ModelProto) -> tuple[dict[str, dict[str, tuple[int | None, ...]]],
                                     dict[str, dict[str, int]], str | None]:
    """Per graph path: value name -> shape and -> elem type, from onnx shape inference.

    Outer-scope values are visible in subgraphs. Returns an error text when
    inference failed (shapes then come from declared inputs/value_info only).
    """
    import onnx
    error = None
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
    except Exception as exc:
        inferred, error = model, first_line(exc)
    shapes: dict[str, dict[str, tuple[int | None, ...]]] = {}
    types: dict[str, dict[str, int]] = {}

    def walk(graph: onnx.GraphProto, path: str, outer_s: dict[str, tuple[int | None, ...]],
             outer_t: dict[str, int]) -> None:
        s, t = dict(outer_s), dict(outer_t)
        for vi in list(graph.input) + list(graph.value_info) + list(graph.output):
            d = _dims(vi.type)
            if d is not None:
                s[vi.name] = d
            if vi.type.HasField("tensor_type"):
                t[vi.name] = vi.type.tensor_type.elem_type
        for init in graph.initializer:
            s[init.name] = tuple(init.dims)
            t[init.name] = init.data_type
        shapes[path], types[path] = s, t
        for i, node in enumerate(graph.node):
            calls.setdefault((node.domain, node.op_type), []).append(
                [(s.get(v), t.get(v)) for v in node.input])
            for name, sub in subgraphs(node):
                walk(sub, f"{path}/{node_label(node, i)}.{name}", s, t)

    calls: dict[tuple[str, str], list[list[_Site]]] = {}
    walk(inferred.graph, "main", {}, {})
    for fn in model.functions:
        s, t = _bind_call_sites(fn, calls.get((fn.domain, fn.name), []))
        shapes[function_path(fn)], types[function_path(fn)] = s, t
    return shapes, types, error


# What one call site passes for one input: its shape and element type, where known.
_Site = tuple["tuple[int | None, ...] | None", "int | None"]


def _bind_call_sites(fn: onnx.FunctionProto, sites: list[list[_Site]]
                     ) -> tuple[dict[str, tuple[int | None, ...]], dict[str, int]]:
    """Shapes and types of ``fn``'s inputs on which all its call sites agree."""
    s: dict[str, tuple[int | None, ...]] = {}
    t: dict[str, int] = {}
    for j, name in enumerate(fn.input):
        seen = {site[j] if j < len(site) else (None, None) for site in sites}
        if len(seen) == 1:
            shape, elem = seen.pop()
            if shape is not None:
                s[name] = shape
            if elem:
                t[name] = elem
    return s, t
