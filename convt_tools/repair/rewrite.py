"""Graph rewriting: apply node plans in place, drop unused weights, pin input dims.

A planned node is replaced in its own graph, subgraph or model-local
function body (:func:`rewrite_node`). When its plan pads the kernel with zero
taps, the padded ``W`` is a new initializer, or a Constant node inside a
function (inserted by :func:`insert_pending` once every node is rewritten,
so node indices stay valid); the original ``W`` is dropped by
:func:`drop_unused_weights` once nothing in the model (any graph, subgraph or
function, or a graph input or output) refers to it any more.

A rewrite that is exact only at the given input size has the model's graph
inputs pinned to it (:func:`pin_inputs`, all dims but the batch), so
onnxruntime refuses other sizes instead of computing something else.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from ..check import ConvTAttrs, NodeContext
from ..onnxbase import infer_shapes, iter_model_graphs
from .dynamic import dynamic_nodes, dynamic_taps
from .plan import DROP, AxisPlan
from .report import NodePlan, RepairRefused

if TYPE_CHECKING:
    import onnx

    from ..onnxbase import Graph


# A node to insert: (graph, index, node), see insert_pending.
Pending = tuple["Graph", int, "onnx.NodeProto"]

def _padded_kernel(w: np.ndarray, axes: Sequence[AxisPlan]) -> np.ndarray:
    """``W`` with zero taps prepended/appended per spatial axis (exact zeros)."""
    widths = [(0, 0), (0, 0)] + [(p.taps_before, p.taps_after) for p in axes]
    return np.pad(w, widths)


def _names(g: Graph) -> list[str]:
    """Names in a GraphProto's inputs/outputs (ValueInfoProtos) or a FunctionProto's (strings)."""
    return [v if isinstance(v, str) else v.name for v in (*g.input, *g.output)]


def _unique_name(model: onnx.ModelProto, base: str) -> str:
    taken: set[str] = set()
    for _, g in iter_model_graphs(model):
        taken.update(t.name for t in getattr(g, "initializer", ()))
        for n in g.node:
            taken.update(n.output)
        taken.update(_names(g))
    name, i = base, 1
    while name in taken:
        i += 1
        name = f"{base}_{i}"
    return name


def rewrite_node(model: onnx.ModelProto, ctx: NodeContext, plan: NodePlan, axes: Sequence[AxisPlan],
                 pending: list[Pending]) -> np.ndarray:
    """Replace the node in its graph (and add a padded W when needed); return the new W.

    Inside a function the padded W is a Constant node; it is appended to
    ``pending`` as ``(graph, index, node)`` and inserted by
    :func:`insert_pending` once every node is rewritten (indices stay valid).
    """
    from onnx import helper, numpy_helper

    ref = ctx.ref
    node = ref.node
    inputs = list(node.input)
    w = ctx.w
    if plan.kernel_padding:
        if w is None:
            raise RepairRefused(f"node {ref.label!r} in {ref.graph_path}: the repair needs zero "
                                f"taps added to W (a shift or an extension beyond stride-1), "
                                f"but W is not a constant in "
                                + (f"function {ref.function!r} (it is passed in by the caller)."
                                   if ref.function else "the model."), field="model")
        w = _padded_kernel(w, axes)
        name = _unique_name(model, f"{inputs[1]}_convt_padded")
        tensor = numpy_helper.from_array(w, name)
        if ref.function:
            pending.append((ref.graph, ref.index,
                            helper.make_node("Constant", [], [name], value=tensor)))
            kind = "Constant node"
        else:
            ref.graph.initializer.append(tensor)
            kind = "initializer"
        plan.notes.append(f"new {kind} {name!r} {list(w.shape)} (W with zero taps) "
                          f"replaces {inputs[1]!r} for this node")
        inputs[1] = name
    new = helper.make_node("ConvTranspose", inputs, list(node.output), name=node.name or None,
                           domain=node.domain or None, doc_string=node.doc_string or None,
                           **plan.new)
    new.attribute.extend(copy.deepcopy(a) for a in node.attribute if a.name not in DROP)
    ref.graph.node[ref.index].CopyFrom(new)
    return w if w is not None else np.zeros(0)


def rewrite_dynamic(model: onnx.ModelProto, ctx: NodeContext, plan: NodePlan, attrs: ConvTAttrs, intent: str,
                    pending: list[Pending]) -> list[Any]:
    """Replace the node by the dynamic form (:mod:`.dynamic`); the new nodes go before it.

    The last node (producing the original output) takes the node's place; the
    others are queued in ``pending`` (reversed, so :func:`insert_pending`,
    which inserts each at the same index, leaves them in order).
    """
    from onnx import helper, numpy_helper

    ref = ctx.ref
    prefix = _unique_name(model, f"{ref.node.name or 'convt'}_dyn")
    taps = dynamic_taps(attrs, intent)
    padded_name = None
    if any(map(any, taps)) and ctx.w is not None:
        w = np.pad(ctx.w, [(0, 0), (0, 0)] + [tuple(t) for t in taps])
        padded_name = _unique_name(model, f"{ref.node.input[1]}_convt_padded")
        tensor = numpy_helper.from_array(w, padded_name)
        if ref.function:
            pending.append((ref.graph, ref.index,
                            helper.make_node("Constant", [], [padded_name], value=tensor)))
        else:
            ref.graph.initializer.append(tensor)
        plan.kernel_padding = [list(t) for t in taps]
        plan.new["padded_w"] = padded_name
        plan.notes.append(f"W with zero taps (before, after) {plan.kernel_padding} as "
                          f"{padded_name!r}: the zero rows any input size needs, so no Pad")
    elif any(map(any, taps)):
        plan.notes.append("W is not a constant: zero rows come from a Pad with computed pads "
                          "(tract 0.23 cannot run that)")
    nodes = dynamic_nodes(attrs, intent, ref.node, prefix, padded_name,
                          taps if padded_name else None)
    ref.graph.node[ref.index].CopyFrom(nodes[-1])
    for nd in reversed(nodes[:-1]):
        pending.append((ref.graph, ref.index, nd))
    return nodes


def insert_pending(pending: Sequence[Pending]) -> None:
    """Insert each Constant node just before its ConvTranspose (last index first)."""
    for graph, index, const in sorted(pending, key=lambda p: -p[1]):
        nodes = list(graph.node)
        nodes.insert(index, const)
        del graph.node[:]
        graph.node.extend(nodes)


def _referenced(model: onnx.ModelProto) -> set[str]:
    """Every name a node input, a graph input or a graph output anywhere in ``model`` uses."""
    used: set[str] = set()
    for _, g in iter_model_graphs(model):
        for n in g.node:
            used.update(n.input)
        used.update(_names(g))
    return used


def replaced_weight(ctx: NodeContext, old_w: str) -> tuple[str, Graph, str] | None:
    """Where the W a padded copy replaces lives: ``(name, graph, "initializer"|"Constant node")``.

    An initializer in this or an enclosing graph, or a Constant node in the
    node's own graph (function bodies have no initializers); else None.
    """
    if old_w in ctx.ref.const_owner:
        return old_w, ctx.ref.const_owner[old_w], "initializer"
    if any(n.op_type == "Constant" and list(n.output) == [old_w] for n in ctx.ref.graph.node):
        return old_w, ctx.ref.graph, "Constant node"
    return None


def drop_unused_weights(model: onnx.ModelProto, replaced: Sequence[tuple[str, Graph, str, NodePlan]]) -> None:
    """Remove replaced Ws ``(name, graph, kind, plan)`` that nothing refers to any more."""
    used = _referenced(model)
    for was, owner, kind, plan in replaced:
        if was in used:
            continue
        if kind == "initializer":
            field_, keep = owner.initializer, [t for t in owner.initializer if t.name != was]
        else:
            field_, keep = owner.node, [
                n for n in owner.node
                if not (n.op_type == "Constant" and list(n.output) == [was])]
        if len(keep) != len(field_):
            kept = [copy.deepcopy(x) for x in keep]
            del field_[:]
            field_.extend(kept)
            plan.notes.append(f"{kind} {was!r} removed: nothing in the model uses it any more")


def needs_pinning(original: onnx.ModelProto, planned: Sequence[tuple[NodeContext, NodePlan]]) -> bool:
    """True when a size-dependent plan used an input size the model itself leaves free."""
    dependent = [ctx.ref for ctx, plan in planned if plan.size_dependent]
    if not dependent:
        return False
    base, _, _ = infer_shapes(original)
    for ref in dependent:
        x = base.get(ref.graph_path, {}).get(ref.node.input[0])
        if x is None or len(x) < 3 or any(d is None for d in x[2:]):
            return True
    return False


def pin_inputs(model: onnx.ModelProto, given: Mapping[str, Sequence[int | None]]) -> list[str]:
    """Fix the given dims (all but dim 0) of ``model``'s graph inputs in place; notes on what was.

    Only dims the model leaves free change; the batch dim stays as it was.
    """
    inits = {t.name for t in model.graph.initializer}
    inputs = [vi for vi in model.graph.input if vi.name not in inits]
    by_name = {vi.name: vi for vi in inputs}
    if "" in given and len(inputs) == 1:
        given = {inputs[0].name: given[""], **{k: v for k, v in given.items() if k}}
    notes = []
    for name, dims in given.items():
        vi = by_name.get(name)
        if vi is None or not vi.type.HasField("tensor_type"):
            continue
        shape = vi.type.tensor_type.shape
        if len(shape.dim) != len(dims):  # no declared shape: declare one, every dim free
            shape.ClearField("dim")
            shape.dim.add()
            for _ in dims[1:]:
                shape.dim.add()
        changed = False
        for i, (d, dim) in enumerate(zip(dims, shape.dim)):
            if i == 0 or d is None or (dim.HasField("dim_value") and dim.dim_value == d):
                continue
            dim.Clear()
            dim.dim_value = int(d)
            changed = True
        if changed:
            shown = ",".join(str(dim.dim_value) if dim.HasField("dim_value") else
                             (dim.dim_param or "?") for dim in shape.dim)
            notes.append(f"input {name!r} pinned to [{shown}]: the repair is exact only at "
                         f"this size (a repaired node's pads depend on it), so onnxruntime now "
                         f"refuses other sizes")
    return notes
