"""Graph helpers for verify: constants, producers/consumers, a layer's path and its cut.

A layer's *path* is its ConvTranspose plus the nodes around it that carry its data:
backwards the layout nodes that feed it (Transpose, Unsqueeze, Reshape, Identity),
forwards the chain of data nodes that follow it (Transpose, Squeeze, Reshape, Identity,
Slice, Pad, Add/Sub/Mul with a constant, Split with one output, and the source layer's
activation). Shape arithmetic (Shape, Gather, Concat...) is not on the path; the
*cut* (:func:`extract`) takes every node the path's output needs from the path's input,
so runtime-computed crops (tf2onnx's dynamic Slice/Pad) come with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper, shape_inference

__all__ = ["Graph", "extract"]

LAYOUT_BACK = frozenset({"Transpose", "Unsqueeze", "Reshape", "Identity", "Cast"})
DATA_FORWARD = frozenset({"Transpose", "Squeeze", "Reshape", "Identity", "Slice", "Pad", "Cast"})
ARITH = frozenset({"Add", "Sub", "Mul", "Div"})


@dataclass
class Graph:
    """A loaded model's main graph with lookups (built once per model)."""

    model: onnx.ModelProto

    def __post_init__(self) -> None:
        g = self.model.graph
        self.inits: dict[str, onnx.TensorProto] = {i.name: i for i in g.initializer}
        self.producer: dict[str, onnx.NodeProto] = {o: n for n in g.node for o in n.output if o}
        self.consumers: dict[str, list[onnx.NodeProto]] = {}
        for n in g.node:
            for t in n.input:
                if t:
                    self.consumers.setdefault(t, []).append(n)
        self.graph_inputs = [i.name for i in g.input if i.name not in self.inits]
        self.graph_outputs = [o.name for o in g.output]
        self._dims: dict[str, list[int | None]] | None = None
        self._const: dict[str, np.ndarray | None] = {}

    # ---- constants -----------------------------------------------------
    def const(self, name: str) -> np.ndarray | None:
        """The value of ``name`` when it is an initializer or a Constant node's output
        (through Identity/Cast/Unsqueeze/Squeeze/Reshape of a constant), else None."""
        if name in self._const:
            return self._const[name]
        value: np.ndarray | None = None
        if name in self.inits:
            value = numpy_helper.to_array(self.inits[name])
        else:
            node = self.producer.get(name)
            if node is not None and node.op_type == "Constant":
                for a in node.attribute:
                    if a.name == "value":
                        value = numpy_helper.to_array(a.t)
            elif node is not None and node.op_type in ("Identity", "Cast") and node.input:
                value = self.const(node.input[0])
        self._const[name] = value
        return value

    def is_const(self, name: str) -> bool:
        return self.const(name) is not None

    def data_inputs(self, node: onnx.NodeProto) -> list[str]:
        return [t for t in node.input if t and not self.is_const(t)]

    # ---- shapes --------------------------------------------------------
    def dims(self, name: str) -> list[int | None] | None:
        """The dims shape inference knows for tensor ``name`` (None: free), or None."""
        if self._dims is None:
            try:
                inferred = shape_inference.infer_shapes(self.model)
            except Exception:  # noqa: BLE001 - an untrusted model: inference is a hint only
                inferred = self.model
            self._dims = {}
            g = inferred.graph
            for vi in [*g.value_info, *g.input, *g.output]:
                if vi.type.tensor_type.HasField("shape"):
                    self._dims[vi.name] = [d.dim_value if d.HasField("dim_value") and d.dim_value
                                           > 0 else None for d in vi.type.tensor_type.shape.dim]
        return self._dims.get(name)

    # ---- attributes ----------------------------------------------------
    @staticmethod
    def attrs(node: onnx.NodeProto) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for a in node.attribute:
            v = helper.get_attribute_value(a)
            out[a.name] = v.decode() if isinstance(v, bytes) else (
                list(v) if isinstance(v, (list, tuple)) else v)
        return out


def extract(graph: Graph, t_in: str, t_out: str, in_dims: list[int | str],
            ) -> onnx.ModelProto:
    """The nodes that compute ``t_out`` from ``t_in`` (and constants) as a model.

    ``in_dims``: the declared input dims (ints, or names for free dims). Raises
    :class:`ValueError` naming the tensor when the nodes need another
    non-constant input.
    """
    need, seen, members = [t_out], set(), set()
    while need:
        t = need.pop()
        if not t or t in seen or t == t_in or t in graph.inits:
            continue
        seen.add(t)
        n = graph.producer.get(t)
        if n is None:
            raise ValueError(f"the layer's nodes also read {t!r}, which {t_in!r} does not give")
        if id(n) not in members:
            members.add(id(n))
            need.extend(n.input)
            for a in n.attribute:
                if a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS):
                    raise ValueError(f"node {n.name!r} ({n.op_type}) holds a subgraph")
    order = [n for n in graph.model.graph.node if id(n) in members]
    used = {t for n in order for t in n.input}
    g = helper.make_graph(
        order, "verify_layer",
        [helper.make_tensor_value_info(t_in, onnx.TensorProto.FLOAT, in_dims)],
        [helper.make_tensor_value_info(t_out, onnx.TensorProto.FLOAT, None)],
        [graph.inits[t] for t in graph.inits if t in used])
    return helper.make_model(g, opset_imports=list(graph.model.opset_import),
                             ir_version=graph.model.ir_version)
