"""The target rewrites beyond the bias Add and the group split (:mod:`.targets`).

Each takes a model (rewritten in place) and the spatial ranks of the ConvTranspose
nodes to rewrite (None: every rank) and returns one line per change. None changes what
the model computes:

* :func:`explicit_pads`: ``auto_pad = VALID`` as explicit zero ``pads`` (no auto_pad);
  SAME_* is left (``repair`` rewrites it into explicit pads under an intent first; the
  exporter never writes it), with a note;
* :func:`less_as_greater`: every ``Less(a, b)`` as ``Greater(b, a)`` (the same
  comparison, NaN false in both; MNN 3.6.1 misreads ``Less(x, c)`` with a negative
  constant ``c``, measured: soft_shrink and sparse_plus came out wrong);
* :func:`write_kernel_shape`: ``kernel_shape = W.shape[2:]`` on a ConvTranspose that
  lacks it (W an initializer of its graph), the value ONNX infers anyway;
* :func:`expand_dilation`: a dilated ConvTranspose as an undilated one whose kernel has
  the dilation's zeros written in: ``W'`` of spatial size ``d * (k - 1) + 1`` per axis
  with ``W'[..., ::d] = W`` (every other value 0), ``dilations`` 1 and ``kernel_shape``
  (if written) ``d * (k - 1) + 1``. The effective kernel, so the full output, its
  length ``(L - 1) * s + d * (k - 1) + 1`` and every window on it, is unchanged (MNN
  3.6.1 computes a 3-D ConvTranspose with dilation > 1 wrongly, measured); the work
  grows by ``prod((d*(k-1)+1) / k)`` (3.9x for k 3, d 2 in 2-D; 12.7x for k 3, d 3 in
  3-D);
* :func:`decompose_ops`: an operator the runtime lacks as the elementary ones of its ONNX
  definition (:data:`DECOMPOSITIONS`): ``Selu(x; alpha, gamma)`` as
  ``Mul(Elu(x; alpha), gamma)`` and ``Softsign(x)`` as ``Div(x, Add(Abs(x), 1))``
  (measured: ncnn 1.0.20261020 has no Selu, IREE 3.13 no Softsign; pnnx fuses the
  decomposed Softsign back into a layer ncnn lacks, so ncnn is not given it). Main
  graph only, where ONNX shape inference gives the input's element type (the constant's);
* :func:`restore_rank`: a ConvTranspose whose output is a graph output writes
  ``<out>_raw`` and an ``Identity`` writes ``<out>`` (MNN's 1-D ConvTranspose is a
  2-D one inside; the node after it removes the trailing unit dim, measured);
* :func:`split_with_sizes`: every ``Split`` without explicit sizes (a GLU's two halves)
  gets them, ``ceil(d / n)`` per output and the rest last (the ONNX rule for
  ``num_outputs``), where the split axis ``d`` is static after ONNX shape inference;
  elsewhere (symbolic, in function bodies) the note says it is left.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Collection

import numpy as np

from ..onnxbase import default_opset, import_onnx, iter_model_graphs
from ._nodes import NodeCursor, add_initializer, attr, initializer, is_convt, label, unique_name

if TYPE_CHECKING:
    import onnx

__all__ = ["DECOMPOSITIONS", "decompose_ops", "dilated_kernel", "expand_dilation",
           "explicit_pads", "less_as_greater", "node_rank", "restore_rank", "split_with_sizes",
           "write_kernel_shape"]


def _onnx() -> Any:
    return import_onnx()


def _weight_shape(graph: Any, name: str) -> list[int] | None:
    for t in getattr(graph, "initializer", ()):
        if t.name == name:
            return [int(d) for d in t.dims]
    return None


def node_rank(graph: Any, node: onnx.NodeProto) -> int | None:
    """The spatial rank of a ConvTranspose: from ``W``'s initializer, else its
    ``kernel_shape``/``strides``/``pads`` attribute (None when nothing says)."""
    dims = _weight_shape(graph, node.input[1]) if len(node.input) > 1 else None
    if dims is not None:
        return len(dims) - 2
    for name, per in (("kernel_shape", 1), ("strides", 1), ("dilations", 1), ("pads", 2)):
        value = attr(node, name)
        if value:
            return len(value) // per
    return None


def _selected(graph: Any, node: onnx.NodeProto, ranks: Collection[int] | None) -> bool:
    return is_convt(node) and (ranks is None or node_rank(graph, node) in ranks)


def explicit_pads(model: onnx.ModelProto, ranks: Collection[int] | None = None) -> list[str]:
    """``auto_pad = VALID`` written as zero ``pads`` (module doc); in place."""
    notes = []
    for path, graph in iter_model_graphs(model):
        for node in graph.node:
            auto = attr(node, "auto_pad")
            auto = auto.decode() if isinstance(auto, bytes) else auto
            if not _selected(graph, node, ranks) or auto in (None, "NOTSET"):
                continue
            where = label(path, node)
            rank = node_rank(graph, node)
            if auto != "VALID" or rank is None:
                notes.append(f"{where}: auto_pad {auto} left (repair --intent writes it as "
                             f"explicit pads)")
                continue
            _set_ints(node, "pads", [0] * (2 * rank), drop=("auto_pad",))
            notes.append(f"{where}: auto_pad VALID written as pads {[0] * (2 * rank)}")
    return notes


def less_as_greater(model: onnx.ModelProto, ranks: Collection[int] | None = None
                    ) -> list[str]:
    """Every ``Less(a, b)`` written as ``Greater(b, a)`` (module doc); ``ranks`` is not
    used. In place, in every graph and function body."""
    notes = []
    for path, graph in iter_model_graphs(model):
        for node in graph.node:
            if node.op_type != "Less" or node.domain not in ("", "ai.onnx"):
                continue
            node.op_type = "Greater"
            a, b = node.input[0], node.input[1]
            node.input[0], node.input[1] = b, a
            notes.append(f"{label(path, node)}: Less as Greater with the "
                         f"inputs swapped")
    return notes


def write_kernel_shape(model: onnx.ModelProto, ranks: Collection[int] | None = None
                       ) -> list[str]:
    """``kernel_shape`` written from ``W`` where missing (module doc); in place."""
    notes = []
    for path, graph in iter_model_graphs(model):
        for node in graph.node:
            if not _selected(graph, node, ranks) or attr(node, "kernel_shape") is not None:
                continue
            dims = _weight_shape(graph, node.input[1])
            if dims is None:
                notes.append(f"{label(path, node)}: kernel_shape left "
                             f"unwritten (W is not an initializer of its graph)")
                continue
            node.attribute.append(_onnx().helper.make_attribute("kernel_shape", dims[2:]))
            notes.append(f"{label(path, node)}: kernel_shape {dims[2:]} "
                         f"written")
    return notes


def dilated_kernel(w: np.ndarray, dilations: Collection[int]) -> np.ndarray:
    """``W`` ``(C_in, C_out/G, *k)`` with the dilation's zeros written in: shape
    ``(C_in, C_out/G, *(d*(k-1)+1))``, ``out[:, :, ::d_1, ::d_2, ...] = W``, zeros elsewhere."""
    d = tuple(int(v) for v in dilations)
    k = w.shape[2:]
    out = np.zeros(w.shape[:2] + tuple(di * (ki - 1) + 1 for di, ki in zip(d, k)), w.dtype)
    out[(slice(None), slice(None)) + tuple(slice(None, None, di) for di in d)] = w
    return out


def _set_ints(node: onnx.NodeProto, name: str, values: list[int], drop: tuple[str, ...] = ()
              ) -> None:
    """Attribute ``name`` set to ``values`` (replacing it), the ``drop`` ones removed."""
    kept = [a for a in node.attribute if a.name != name and a.name not in drop]
    del node.attribute[:]
    node.attribute.extend(kept)
    node.attribute.append(_onnx().helper.make_attribute(name, values))


def expand_dilation(model: onnx.ModelProto, ranks: Collection[int] | None = None
                    ) -> list[str]:
    """Every selected ConvTranspose with a dilation > 1 as an undilated one with the
    dilated kernel (module doc, :func:`dilated_kernel`); in place, in every graph."""
    notes = []
    for path, graph in iter_model_graphs(model):
        for node in graph.node:
            dilations = attr(node, "dilations") if _selected(graph, node, ranks) else None
            if not dilations or all(int(v) == 1 for v in dilations):
                continue
            w = initializer(graph, node.input[1])
            if w is None or w.ndim - 2 != len(dilations):
                notes.append(f"{label(path, node)}: dilations {list(dilations)} left (W is not "
                             f"an initializer of its graph)")
                continue
            wide = dilated_kernel(w, dilations)
            node.input[1] = add_initializer(graph, f"{node.input[1]}_dilated", wide)
            _set_ints(node, "dilations", [1] * len(dilations))
            if attr(node, "kernel_shape") is not None:
                _set_ints(node, "kernel_shape", list(wide.shape[2:]))
            notes.append(f"{label(path, node)}: dilations {list(dilations)} written into the "
                         f"kernel ({list(w.shape[2:])} -> {list(wide.shape[2:])}, dilations 1)")
    return notes


# ONNX's default Selu attributes (the operator spec)
_SELU_ALPHA, _SELU_GAMMA = 1.67326319217681884765625, 1.05070102214813232421875


def _selu(node: onnx.NodeProto, graph: Any, dtype: np.dtype) -> list[onnx.NodeProto]:
    helper = _onnx().helper
    alpha, gamma = (float(v) if v is not None else default for v, default in (
        (attr(node, "alpha"), _SELU_ALPHA), (attr(node, "gamma"), _SELU_GAMMA)))
    x, y = node.input[0], node.output[0]
    elu = unique_name(graph, f"{y}_elu")
    g = add_initializer(graph, f"{y}_gamma", np.asarray(gamma, dtype))
    return [helper.make_node("Elu", [x], [elu], alpha=alpha, name=unique_name(graph, elu)),
            helper.make_node("Mul", [elu, g], [y], name=unique_name(graph, f"{y}_scale"))]


def _softsign(node: onnx.NodeProto, graph: Any, dtype: np.dtype) -> list[onnx.NodeProto]:
    helper = _onnx().helper
    x, y = node.input[0], node.output[0]
    a, den = unique_name(graph, f"{y}_abs"), unique_name(graph, f"{y}_den")
    one = add_initializer(graph, f"{y}_one", np.asarray(1, dtype))
    return [helper.make_node("Abs", [x], [a], name=a),
            helper.make_node("Add", [a, one], [den], name=den),
            helper.make_node("Div", [x, den], [y], name=unique_name(graph, f"{y}_div"))]


# op type -> the nodes that compute it (module doc)
DECOMPOSITIONS: dict[str, Callable[[onnx.NodeProto, Any, np.dtype], list[onnx.NodeProto]]] = {
    "Selu": _selu, "Softsign": _softsign}


def _elem_types(model: onnx.ModelProto) -> dict[str, int]:
    """Tensor name -> its ONNX element type after shape inference (main graph)."""
    return {name: t.elem_type for name, t in _inferred(model) if t.elem_type}


def decompose_ops(model: onnx.ModelProto, ops: Collection[str]) -> list[str]:
    """Every node of the main graph whose op type is in ``ops`` (keys of
    :data:`DECOMPOSITIONS`) as the elementary nodes of its definition (module doc); in
    place. One line per node changed, or left (its input's element type unknown)."""
    graph = model.graph
    if not any(n.op_type in ops and n.domain in ("", "ai.onnx") for n in graph.node):
        return []
    types = _elem_types(model)
    helper = _onnx().helper
    notes = []
    cursor = NodeCursor(graph)
    for node in cursor:
        if node.op_type not in ops or node.domain not in ("", "ai.onnx"):
            continue
        where = f"main/{node.name or node.output[0]}"
        elem = types.get(node.input[0])
        if elem is None:
            notes.append(f"{where}: {node.op_type} left (its input's element type is unknown)")
            continue
        new = DECOMPOSITIONS[node.op_type](node, graph, helper.tensor_dtype_to_np_dtype(elem))
        cursor.replace(*new)
        notes.append(f"{where}: {node.op_type} as {' -> '.join(n.op_type for n in new)}")
    return notes


def restore_rank(model: onnx.ModelProto, ranks: Collection[int] | None = None) -> list[str]:
    """An ``Identity`` after every selected ConvTranspose that writes a graph output
    (module doc); main graph only, in place."""
    graph = model.graph
    outputs = {v.name for v in graph.output}
    notes = []
    cursor = NodeCursor(graph)
    for node in cursor:
        if not _selected(graph, node, ranks) or node.output[0] not in outputs:
            continue
        out = node.output[0]
        raw = unique_name(graph, f"{out}_raw")
        node.output[0] = raw
        cursor.insert(_onnx().helper.make_node(
            "Identity", [raw], [out], name=unique_name(graph, f"{node.name or out}_identity")))
        notes.append(f"main/{node.name or out}: an Identity after it (its output is a graph "
                     f"output)")
    return notes


def _inferred(model: onnx.ModelProto) -> list[tuple[str, Any]]:
    """``(name, tensor_type)`` of every typed tensor of the main graph after ONNX shape
    inference."""
    g = _onnx().shape_inference.infer_shapes(model).graph
    return [(v.name, v.type.tensor_type) for v in (*g.input, *g.value_info, *g.output)
            if v.type.HasField("tensor_type")]


def _static_dims(model: onnx.ModelProto) -> dict[str, list[int | None]]:
    """Tensor name -> its dims after ONNX shape inference (None: symbolic or unknown)."""
    return {name: [int(d.dim_value) if d.HasField("dim_value") else None for d in t.shape.dim]
            for name, t in _inferred(model) if t.HasField("shape")}


def _sizes(length: int, parts: int) -> list[int]:
    step = -(-length // parts)
    return [step] * (parts - 1) + [length - step * (parts - 1)]


def split_with_sizes(model: onnx.ModelProto, ranks: Collection[int] | None = None
                     ) -> list[str]:
    """Explicit sizes on every Split of the main graph that lacks them (module doc);
    ``ranks`` is not used (a Split is not a ConvTranspose). In place."""
    graph = model.graph
    opset = default_opset(model)
    pending = [n for n in graph.node if n.op_type == "Split" and n.domain in ("", "ai.onnx")
               and not (len(n.input) > 1 and n.input[1]) and attr(n, "split") is None]
    if not pending:
        return []
    dims = _static_dims(model)
    helper, numpy_helper = _onnx().helper, _onnx().numpy_helper
    notes = []
    for node in pending:
        label = f"main/{node.name or node.output[0]}"
        shape = dims.get(node.input[0])
        axis = int(attr(node, "axis") or 0)
        length = None if shape is None or not -len(shape) <= axis < len(shape) else shape[axis]
        if length is None:
            notes.append(f"{label}: Split left without sizes (its axis {axis} is not static)")
            continue
        sizes = _sizes(length, len(node.output))
        for i, a in enumerate(node.attribute):
            if a.name == "num_outputs":
                del node.attribute[i]
                break
        if opset >= 13:
            name = unique_name(graph, f"{node.name or node.output[0]}_sizes")
            graph.initializer.append(numpy_helper.from_array(np.asarray(sizes, np.int64), name))
            del node.input[1:]
            node.input.append(name)
        else:
            node.attribute.append(helper.make_attribute("split", sizes))
        notes.append(f"{label}: Split with explicit sizes {sizes}")
    return notes
