"""Where the ConvTranspose nodes are and what is constant there.

Owns the list of ConvTranspose nodes in the default domain with the constants
visible in their scope (:func:`iter_convtranspose`, :class:`NodeRef`), walked
with the graph paths of :mod:`convt_tools.onnxbase` (``main``,
``function:<domain>.<name>``, ``<parent path>/<node name or OpType#i>.<attr>[j]``).
onnx is never imported here.

A function body is a scope of its own: the main graph's initializers are not
visible there, only its own Constant nodes; its inputs' shapes and some of
its nodes' attributes (``ref_attr_name``) are bound at each call site.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..onnxbase import function_path, node_label, subgraphs, tensor_to_array

if TYPE_CHECKING:
    import onnx

    from ..onnxbase import Graph

__all__ = ["NodeRef", "iter_convtranspose", "tensor_array"]


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
    graph: Graph
    index: int
    node: onnx.NodeProto
    constants: dict[str, onnx.TensorProto]
    const_owner: dict[str, Graph]
    function: str = ""

    @property
    def label(self) -> str:
        return self.node.name or f"#{self.index}"


def iter_convtranspose(model: onnx.ModelProto) -> list[NodeRef]:
    """Every ConvTranspose node (default domain), subgraphs and function bodies included.

    Main graph first (graph order), then each model-local function's body.
    """
    out: list[NodeRef] = []

    def walk(graph: Graph, path: str, consts: dict[str, onnx.TensorProto],
             owner: dict[str, Graph], fn: str) -> None:
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
            for name, sub in subgraphs(node):
                walk(sub, f"{path}/{node_label(node, i)}.{name}", consts, owner, fn)

    walk(model.graph, "main", {}, {}, "")
    for f in model.functions:
        walk(f, function_path(f), {}, {}, f"{f.domain}.{f.name}")
    return out


def tensor_array(t: onnx.TensorProto) -> np.ndarray:
    """A TensorProto as a NumPy array, its header checked first (no external files are read
    here): a malformed tensor is a :class:`ConvtError`
    (:func:`convt_tools.onnxbase.tensor_to_array`)."""
    return tensor_to_array(t)
