"""Walking ONNX graphs: graph paths, subgraphs, function bodies, the default-domain opset.

Owns the graph-path naming used in every report (``main`` for the top graph,
``function:<domain>.<name>`` for the body of a model-local function,
``<parent path>/<node name or OpType#i>.<attr>[j]`` for subgraphs) and the
depth-first walk over graphs and subgraphs (:func:`iter_graphs`, and
:func:`iter_model_graphs` for the main graph and every function body).
onnx is never imported here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterator

if TYPE_CHECKING:
    import onnx

    Graph = onnx.GraphProto | onnx.FunctionProto

__all__ = ["default_opset", "function_path", "iter_graphs", "iter_model_graphs", "node_label",
           "subgraphs"]


def node_label(node: onnx.NodeProto, i: int) -> str:
    """A node's name, else ``<OpType>#<index>``: its step in a graph path."""
    return node.name or f"{node.op_type}#{i}"


def subgraphs(node: onnx.NodeProto) -> Iterator[tuple[str, onnx.GraphProto]]:
    """``(attribute name, graph)`` for every graph attribute of ``node`` (``name[j]`` in lists)."""
    for attr in node.attribute:
        if attr.HasField("g"):
            yield attr.name, attr.g
        for j, g in enumerate(attr.graphs):
            yield f"{attr.name}[{j}]", g


def iter_graphs(graph: Graph, path: str = "main") -> Iterator[tuple[str, Graph]]:
    """``(path, graph)`` for ``graph`` and every nested subgraph, depth first."""
    yield path, graph
    for i, node in enumerate(graph.node):
        for name, sub in subgraphs(node):
            yield from iter_graphs(sub, f"{path}/{node_label(node, i)}.{name}")


def function_path(fn: onnx.FunctionProto) -> str:
    """``function:<domain>.<name>``: the graph path of a model-local function's body."""
    return f"function:{fn.domain}.{fn.name}"


def iter_model_graphs(model: onnx.ModelProto) -> Iterator[tuple[str, Graph]]:
    """``(path, graph)`` for the main graph, every function body and all their subgraphs.

    Function bodies are FunctionProtos (``node``, no ``initializer``).
    """
    yield from iter_graphs(model.graph)
    for fn in model.functions:
        yield from iter_graphs(fn, function_path(fn))


def default_opset(model: onnx.ModelProto) -> int:
    """The model's default-domain opset version (11 when absent)."""
    for op in model.opset_import:
        if op.domain in ("", "ai.onnx"):
            return int(op.version)
    return 11
