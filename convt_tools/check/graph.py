"""Walking ONNX graphs: where the ConvTranspose nodes are and what is constant there.

Owns the graph-path naming used in every report (``main`` for the top graph,
``function:<domain>.<name>`` for the body of a model-local function,
``<parent path>/<node name or OpType#i>.<attr>[j]`` for subgraphs), the
depth-first walk over graphs and subgraphs (:func:`iter_graphs`, and
:func:`iter_model_graphs` for the main graph and every function body), the
list of ConvTranspose nodes in the default domain with the constants visible
in their scope (:func:`iter_convtranspose`, :class:`NodeRef`), and the
model's default-domain opset. onnx is imported only inside functions.

A function body is a scope of its own: the main graph's initializers are not
visible there, only its own Constant nodes; its inputs' shapes and some of
its nodes' attributes (``ref_attr_name``) are bound at each call site.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np

__all__ = [
    "NodeRef", "default_opset", "function_path", "iter_convtranspose", "iter_graphs",
    "iter_model_graphs", "tensor_array",
]


@dataclass
class NodeRef:
    """A ConvTranspose node and where it lives.

    ``graph_path`` is ``main``, ``function:<domain>.<name>`` or either
    followed by ``/<node>.<attr>[i]`` for subgraphs; ``graph`` is a
    GraphProto or, for a function body, the FunctionProto; ``constants`` maps
    names visible in that scope to their TensorProtos (initializers of this
    and enclosing graphs, and Constant nodes); ``function`` is
    ``<domain>.<name>`` of the enclosing model-local function, else ``""``.
    """

    graph_path: str
    graph: Any
    index: int
    node: Any
    constants: dict[str, Any]
    const_owner: dict[str, Any]
    function: str = ""

    @property
    def label(self) -> str:
        return self.node.name or f"#{self.index}"


def _node_label(node: Any, i: int) -> str:
    return node.name or f"{node.op_type}#{i}"


def _subgraphs(node: Any) -> Iterator[tuple[str, Any]]:
    for attr in node.attribute:
        if attr.HasField("g"):
            yield attr.name, attr.g
        for j, g in enumerate(attr.graphs):
            yield f"{attr.name}[{j}]", g


def iter_graphs(graph: Any, path: str = "main") -> Iterator[tuple[str, Any]]:
    """``(path, graph)`` for ``graph`` and every nested subgraph, depth first."""
    yield path, graph
    for i, node in enumerate(graph.node):
        for name, sub in _subgraphs(node):
            yield from iter_graphs(sub, f"{path}/{_node_label(node, i)}.{name}")


def function_path(fn: Any) -> str:
    """``function:<domain>.<name>``: the graph path of a model-local function's body."""
    return f"function:{fn.domain}.{fn.name}"


def iter_model_graphs(model: Any) -> Iterator[tuple[str, Any]]:
    """``(path, graph)`` for the main graph, every function body and all their subgraphs.

    Function bodies are FunctionProtos (``node``, no ``initializer``).
    """
    yield from iter_graphs(model.graph)
    for fn in model.functions:
        yield from iter_graphs(fn, function_path(fn))


def iter_convtranspose(model: Any) -> list[NodeRef]:
    """Every ConvTranspose node (default domain), subgraphs and function bodies included.

    Main graph first (graph order), then each model-local function's body.
    """
    out: list[NodeRef] = []

    def walk(graph: Any, path: str, consts: dict[str, Any], owner: dict[str, Any],
             fn: str) -> None:
        consts = dict(consts)
        owner = dict(owner)
        for t in getattr(graph, "initializer", ()):
            consts[t.name] = t
            owner[t.name] = graph
        for node in graph.node:
            if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
                for attr in node.attribute:
                    if attr.name == "value" and attr.HasField("t"):
                        consts[node.output[0]] = attr.t
        for i, node in enumerate(graph.node):
            if node.op_type == "ConvTranspose" and node.domain in ("", "ai.onnx"):
                out.append(NodeRef(path, graph, i, node, consts, owner, fn))
            for name, sub in _subgraphs(node):
                walk(sub, f"{path}/{_node_label(node, i)}.{name}", consts, owner, fn)

    walk(model.graph, "main", {}, {}, "")
    for f in model.functions:
        walk(f, function_path(f), {}, {}, f"{f.domain}.{f.name}")
    return out


def default_opset(model: Any) -> int:
    """The model's default-domain opset version (11 when absent)."""
    for op in model.opset_import:
        if op.domain in ("", "ai.onnx"):
            return int(op.version)
    return 11


def tensor_array(t: Any) -> np.ndarray:
    """A TensorProto as a NumPy array, its header checked first (no external files are read
    here): a malformed tensor is a :class:`ConvtError` (:func:`.loading.tensor_to_array`)."""
    from .loading import tensor_to_array

    return tensor_to_array(t)
