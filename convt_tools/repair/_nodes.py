"""Node-level helpers the repair rewrites share (one copy of each).

Every rewrite that adds nodes walks a graph with a :class:`NodeCursor`: it
yields each node once, in order, and :meth:`NodeCursor.insert` puts new nodes
right after the current one and moves past them, so a rewrite never visits
what it just wrote. :func:`unique_name` avoids every name already in the
graph (node inputs and outputs, initializers, graph inputs and outputs).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterator

import numpy as np

from ..onnxbase import import_onnx

if TYPE_CHECKING:
    import onnx

__all__ = ["NodeCursor", "add_initializer", "attr", "initializer", "is_convt", "label",
           "unique_name"]


def attr(node: onnx.NodeProto, name: str) -> Any:
    """The value of attribute ``name`` of ``node`` (``onnx.helper.get_attribute_value``), or None."""
    for a in node.attribute:
        if a.name == name:
            return import_onnx().helper.get_attribute_value(a)
    return None


def is_convt(node: onnx.NodeProto) -> bool:
    """An ONNX-domain ``ConvTranspose``."""
    return node.op_type == "ConvTranspose" and node.domain in ("", "ai.onnx")


def label(path: str, node: onnx.NodeProto) -> str:
    """``graph path/node name`` (the output name for an unnamed node), as reports print it."""
    return f"{path}/{node.name or node.output[0]}"


def unique_name(graph: Any, base: str) -> str:
    """A tensor name not yet used in ``graph`` (``base``, else ``base_2``, ...)."""
    used = {t for n in graph.node for t in (*n.input, *n.output)}
    used |= {t.name for t in getattr(graph, "initializer", ())}
    used |= {v.name for v in (*getattr(graph, "input", ()), *getattr(graph, "output", ()))}
    name, k = base, 1
    while name in used:
        k += 1
        name = f"{base}_{k}"
    return name


def initializer(graph: Any, name: str) -> np.ndarray | None:
    """The initializer ``name`` of ``graph`` as an array, or None (not an initializer here)."""
    for t in getattr(graph, "initializer", ()):
        if t.name == name:
            return import_onnx().numpy_helper.to_array(t)
    return None


def add_initializer(graph: Any, base: str, value: np.ndarray) -> str:
    """Add ``value`` as an initializer under a new name made from ``base``; that name."""
    name = unique_name(graph, base)
    graph.initializer.append(import_onnx().numpy_helper.from_array(
        np.ascontiguousarray(value), name))
    return name


class NodeCursor:
    """Walks ``graph.node`` in order while nodes are inserted after the current one."""

    def __init__(self, graph: Any) -> None:
        self.graph = graph
        self.index = 0          # the position after the current node

    def __iter__(self) -> Iterator[onnx.NodeProto]:
        while self.index < len(self.graph.node):
            node = self.graph.node[self.index]
            self.index += 1
            yield node

    def insert(self, *nodes: onnx.NodeProto) -> None:
        """Put ``nodes`` right after the current node, in order; the walk goes on after them."""
        for k, node in enumerate(nodes):
            self.graph.node.insert(self.index + k, node)
        self.index += len(nodes)

    def replace(self, *nodes: onnx.NodeProto) -> None:
        """Put ``nodes`` in place of the current node; the walk goes on after them."""
        del self.graph.node[self.index - 1]
        self.index -= 1
        self.insert(*nodes)
