"""One ConvTranspose node with everything known about it.

Owns :class:`NodeContext`: the node's place (:class:`~convt_tools.check.graph.NodeRef`),
its parsed attributes (``None`` when unusable), X's shape (from shape
inference, may hold ``None`` dims), W and B as arrays when they are constants
in scope (else only their shapes, when known), the element type, and the
CT006 findings from parsing the attributes. Rules and the numeric probe read
only this.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping

import numpy as np

from .attrs import _ATTRIBUTE_TYPES, ConvTAttrs, _type_name, read_attrs
from ..onnxbase import check_tensor
from .graph import NodeRef, tensor_array

if TYPE_CHECKING:
    from ..onnxbase import Graph
from .report import Finding

__all__ = ["NodeContext", "node_context"]


@dataclass
class NodeContext:
    """What is known about one node: attributes, tensors and shapes."""

    ref: NodeRef
    attrs: ConvTAttrs | None
    x_shape: tuple[int | None, ...] | None
    w: np.ndarray | None
    w_shape: tuple[int, ...] | None
    b: np.ndarray | None
    b_shape: tuple[int, ...] | None
    elem_type: int | None
    findings: list[Finding]

    @property
    def sizes(self) -> tuple[int | None, ...] | None:
        if self.x_shape is None or self.attrs is None or len(self.x_shape) != self.attrs.rank + 2:
            return None
        return self.x_shape[2:]

    @property
    def c_in(self) -> int | None:
        return self.x_shape[1] if self.x_shape is not None and len(self.x_shape) > 1 else None


def node_context(ref: NodeRef, shapes: Mapping[str, tuple[int | None, ...]],
                 types: Mapping[str, int], *, weights: bool = True) -> NodeContext:
    """Collect attributes, constants and inferred shapes for ``ref``.

    Constant W and B are validated (:func:`convt_tools.onnxbase.check_tensor`) always, but
    read as arrays only with ``weights`` (the numeric probe needs them; the
    static rules need only their shapes, from the tensor headers).
    """
    node = ref.node
    names = list(node.input) + ["", "", ""]
    x_name, w_name, b_name = names[0], names[1], names[2]
    broken = structure_findings(ref)
    w_t = ref.constants.get(w_name) if w_name else None
    b_t = ref.constants.get(b_name) if b_name else None
    w_head = check_tensor(w_t)[0] if w_t is not None else None
    b_head = check_tensor(b_t)[0] if b_t is not None else None
    w = tensor_array(w_t) if w_t is not None and weights else None
    b = tensor_array(b_t) if b_t is not None and weights else None
    w_shape = w_head if w_head is not None else _known(shapes.get(w_name))
    b_shape = b_head if b_head is not None else (_known(shapes.get(b_name)) if b_name else None)
    x_shape = shapes.get(x_name)
    attrs, findings = read_attrs(node, w_shape, None if x_shape is None else len(x_shape),
                                 ref.function)
    if broken:
        attrs, findings = None, broken   # unusable: its attributes are not read further
    elem = types.get(x_name) or (types.get(w_name) if w_name else None)
    return NodeContext(ref, attrs, x_shape, w, w_shape, b, b_shape, elem, findings)


def _defined_names(graph: Graph) -> set[str] | None:
    """Names defined in ``graph`` (inputs, initializers, node outputs); None for a subgraph
    body, which may also read names of the enclosing graphs."""
    names: set[str] = set()
    for i in graph.input:
        names.add(i if isinstance(i, str) else i.name)
    for t in getattr(graph, "initializer", ()):
        names.add(t.name)
    for n in graph.node:
        names.update(n.output)
    return names


def structure_findings(ref: NodeRef) -> list[Finding]:
    """CT006 errors for a node that is not a ConvTranspose at all: fewer than the two inputs
    X and W, an empty X or W name, an input no one defines, an attribute with no type.
    Such a node is reported (exit 1: the model is broken), never a traceback."""
    node = ref.node
    found: list[Finding] = []
    inputs = list(node.input)
    if len(inputs) < 2:
        found.append(Finding("CT006", f"has {len(inputs)} input(s); ConvTranspose needs X and "
                                      f"W (and optionally B)"))
    for role, name in zip(("X", "W"), inputs):
        if not name:
            found.append(Finding("CT006", f"input {role} has an empty name; ConvTranspose "
                                          f"needs it"))
    sub = "/" in ref.graph_path
    defined = None if sub else _defined_names(ref.graph)
    if defined is not None:
        for role, name in zip(("X", "W", "B"), inputs):
            if name and name not in defined and name not in ref.constants:
                found.append(Finding("CT006", f"input {role} names {name!r}, which no graph "
                                              f"input, initializer or node defines"))
    for a in node.attribute:
        if a.ref_attr_name:
            continue
        want = _ATTRIBUTE_TYPES.get(a.name)
        if a.type == 0:
            found.append(Finding("CT006", f"attribute {a.name!r} has no type (UNDEFINED); "
                                          f"expected {want or 'INT or INTS'}"))
        elif want is not None and _type_name(a.type) != want:
            found.append(Finding("CT006", f"attribute {a.name!r} has type {_type_name(a.type)}; "
                                          f"ConvTranspose expects {want}"))
    return found


def _known(shape: tuple[int | None, ...] | None) -> tuple[int, ...] | None:
    if shape is None or any(d is None for d in shape):
        return None
    return tuple(int(d) for d in shape if d is not None)
