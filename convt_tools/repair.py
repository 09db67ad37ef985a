"""``convt repair``: rewrite runtime-dependent ConvTranspose nodes into portable ones.

A node is rewritten when ``convt check`` finds negative pads (CT001),
``output_padding >= stride`` (CT002), pads with auto_pad (CT005), auto_pad
SAME_* (CT010-CT012) or ``output_shape`` (CT013-CT015). The chosen intent
(``tf``, ``onnx-spec`` or ``ort``, see :mod:`convt_tools.check`) gives a
per-axis window ``(begin, length)`` on the natural full output of length
``L``; it is expressed with explicit non-negative pads, ``auto_pad`` NOTSET
and no ``output_shape``::

    zb = ceil(max(-begin, 0) / d)        zero kernel taps prepended (a shift)
    pb = begin + zb * d                  >= 0
    E  = L + zb*d - pb - length          = pe - op
    E >= 0            -> pe = E, op = 0
    0 < -E <= s - 1   -> pe = 0, op = -E (zero rows appended, bias lands on them)
    -E > s - 1        -> append ze = ceil((-E - (s-1)) / d) zero kernel taps,
                         then E' = E + ze*d as above

Zero kernel taps add exact zeros, so the padded kernel reproduces a negative
``begin`` or an extension beyond ``stride - 1`` exactly; the padded ``W`` is a
new initializer (a Constant node inside a model-local function), and the
original initializer is dropped once nothing in the model (any graph,
subgraph or function, or a graph input or output) refers to it any more.

Nodes in the bodies of model-local functions are repaired in place like any
other. Their input sizes come from the call sites (when they all agree); an
``output_shape`` node whose input size is unknown is refused, and a node with
an attribute bound at the call site (``ref_attr_name``) is refused when it
needs a repair and listed as not checked otherwise.

``ort`` means what the installed onnxruntime computes, measured: a node
onnxruntime refuses (negative pads, ``output_padding >= stride``, pads with
auto_pad) has no such behaviour, so the ``ort`` repair of it is refused.

Every repair is proven before anything is returned: the repaired node runs
in onnxruntime on seeded inputs and must equal the NumPy reference under the
intent, and for ``ort`` also the original node; the whole repaired model must
pass ``onnx.checker`` and run. The proof is bounded like ``convt check``'s
probe (:data:`~convt_tools.check.MAX_PROBE_ELEMENTS`): above the cap a form
whose pads do not depend on the input size is proven at stand-in sizes (the
report says so), an ``output_shape`` node is refused, and the whole-model run
is skipped.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from .check import (
    INTENTS, MAX_PROBE_ELEMENTS, ConvTAttrs, NodeContext, OrtRefused, Window, _first_line,
    apply_input_shapes, apply_window, input_shapes_arg, bound_attributes, close, default_opset, describe_windows,
    full_output, infer_shapes, intent_windows, iter_convtranspose, iter_model_graphs,
    max_abs_diff, node_context, ort_version, probe_elements, probe_ort, resolve_model, run_ort,
    single_node_model, static_findings,
)
from .errors import ConvtError

__all__ = ["NodePlan", "RepairRefused", "RepairReport", "plan_axis", "repair_model", "save_model"]

REPAIR_CODES = ("CT001", "CT002", "CT005", "CT010", "CT011", "CT012", "CT013", "CT014", "CT015")
BROKEN_CODES = ("CT003", "CT004", "CT006")
STAND_INS = ((5, 6), (7, 9))
_DROP = ("auto_pad", "output_shape", "pads", "output_padding", "kernel_shape")


class RepairRefused(ConvtError):
    """The repair cannot be made (or proven) under the chosen intent; nothing is written.

    ``report`` (set by :func:`repair_model`) is the :class:`RepairReport` as far
    as it got: the nodes planned before the refusal (with any proof records),
    the untouched nodes, and ``refusal`` = this message.
    """

    report: "RepairReport | None" = None


@dataclass(frozen=True)
class AxisPlan:
    """Explicit attributes for one axis: pads, output_padding, zero taps before/after."""

    pad_begin: int
    pad_end: int
    output_padding: int
    taps_before: int
    taps_after: int


def plan_axis(window: Window, natural: int, s: int, d: int) -> AxisPlan:
    """Express ``window`` on an axis with natural length ``natural`` (see the module doc)."""
    zb = -(-max(-window.begin, 0) // d)
    pb = window.begin + zb * d
    e = natural + zb * d - pb - window.length
    ze = 0
    if -e > s - 1:
        ze = -(-(-e - (s - 1)) // d)
        e += ze * d
    return AxisPlan(pb, max(e, 0), max(-e, 0), zb, ze)


@dataclass
class NodePlan:
    """How one node is rewritten, and the evidence that it is right."""

    graph: str
    name: str
    index: int
    codes: list[str]
    old: dict[str, Any]
    new: dict[str, Any] = field(default_factory=dict)
    kernel_padding: list[list[int]] | None = None
    windows: str = ""
    notes: list[str] = field(default_factory=list)
    proof: list[dict[str, Any]] = field(default_factory=list)
    size_dependent: bool = False

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class RepairReport:
    """What :func:`repair_model` changed and how it was verified."""

    model: str
    intent: str
    onnxruntime: str
    nodes: list[NodePlan] = field(default_factory=list)
    untouched: list[str] = field(default_factory=list)
    whole_model: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    refusal: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; a refused repair lists its nodes under ``planned``, not ``repaired``."""
        nodes = [n.to_dict() for n in self.nodes]
        head = {"model": self.model, "intent": self.intent, "onnxruntime": self.onnxruntime,
                "refused": self.refusal is not None}
        if self.refusal is not None:
            return {**head, "reason": self.refusal, "planned": nodes,
                    "untouched": self.untouched, "notes": self.notes}
        return {**head, "repaired": nodes, "untouched": self.untouched,
                "whole_model": self.whole_model, "notes": self.notes}

    def to_text(self) -> str:
        lines = [f"{self.model}: {len(self.nodes)} node(s) repaired for intent {self.intent} "
                 f"(onnxruntime {self.onnxruntime})"]
        for n in self.nodes:
            lines.append(f"[{n.graph}] {n.name!r} (index {n.index}) {','.join(n.codes)}: "
                         f"{n.old} -> {n.new}")
            lines.append(f"  window: {n.windows}")
            if n.kernel_padding:
                lines.append(f"  W padded with zero taps (before, after) per axis: "
                             f"{n.kernel_padding}")
            lines += [f"  note: {t}" for t in n.notes]
            for p in n.proof:
                lines.append(f"  proof at input {p['input_shape']}: max |repaired - intent "
                             f"reference| = {p['max_abs_diff_vs_intent']:.3g}"
                             + (f", max |repaired - original in onnxruntime| = "
                                f"{p['max_abs_diff_vs_original_ort']:.3g}"
                                if p.get("max_abs_diff_vs_original_ort") is not None else ""))
        lines += [f"untouched: {u}" for u in self.untouched]
        wm = self.whole_model
        if wm:
            lines.append(f"whole model: {wm.get('summary', '')}")
        lines += [f"note: {t}" for t in self.notes]
        return "\n".join(lines)


# --------------------------------------------------------------------------
# Per-node planning
# --------------------------------------------------------------------------

def _attrs_for_intent(attrs: ConvTAttrs, codes: Sequence[str]) -> tuple[ConvTAttrs, list[str]]:
    """pads together with auto_pad: auto_pad wins (as pads lose to output_shape in the spec)."""
    if "CT005" in codes:
        return dataclasses.replace(attrs, pads=None), [
            f"pads {list(attrs.pads or ())} dropped: auto_pad {attrs.auto_pad} takes precedence "
            f"(the spec forbids both; it ignores pads next to output_shape likewise)"]
    return attrs, []


def _sizes_to_probe(ctx: NodeContext, w_shape: Sequence[int]
                    ) -> tuple[list[tuple[int, ...]], str]:
    """The input sizes to plan and prove at, and a note when they are stand-ins.

    The real size when known and within :data:`MAX_PROBE_ELEMENTS`; else, for
    forms whose pads do not depend on the size, two stand-in sizes (the plans
    must agree); ``output_shape`` without a usable real size is refused.
    """
    a = ctx.attrs
    assert a is not None
    sizes = ctx.sizes
    label = ctx.ref.label
    if sizes is not None and all(n is not None for n in sizes):
        real = tuple(int(n) for n in sizes)  # type: ignore[arg-type]
        need = probe_elements(a, int(w_shape[0]), int(w_shape[1]) * a.group, real)
        if need <= MAX_PROBE_ELEMENTS:
            return [real], ""
        why = (f"proving it at the real input size {list(real)} needs {need} elements, above "
               f"the cap of {MAX_PROBE_ELEMENTS}")
        if a.output_shape is not None:
            raise RepairRefused(
                f"node {label!r}: output_shape {list(a.output_shape)} makes its pads depend on "
                f"the input size, and {why}; nothing written.", field="input_shape")
        return list(STAND_INS), (f"planned and proven at stand-in sizes {list(STAND_INS)}: "
                                 f"{why}; this form's pads do not depend on the input size")
    if a.output_shape is not None:
        if ctx.ref.function:
            raise RepairRefused(
                f"node {label!r} in {ctx.ref.graph_path}: output_shape "
                f"{list(a.output_shape)} makes its pads depend on the input size, which is "
                f"bound at each call site of function {ctx.ref.function!r} (and the call sites "
                f"do not all pass one known size); nothing written.", field="model")
        raise RepairRefused(
            f"node {label!r}: output_shape {list(a.output_shape)} fixes the output size, "
            f"so its pads depend on the input size, which is unknown here; give "
            f"--input-shape NAME=DIMS (the repaired node is then exact for that size).",
            field="input_shape")
    stand = [tuple(known if known is not None else stand for known, stand in
                   zip(sizes or (None,) * a.rank, pair)) for pair in STAND_INS]
    return stand, (f"input size unknown: planned at stand-in sizes {stand}; this form's pads "
                   f"do not depend on the size")


def _windows(ctx: NodeContext, attrs: ConvTAttrs, intent: str, size: tuple[int, ...],
             w_probe: np.ndarray, b_probe: np.ndarray | None, opset: int,
             rng: np.random.Generator, codes: Sequence[str]) -> tuple[tuple[Window, ...], str]:
    """The target windows at ``size`` and a note on where they came from."""
    if intent != "ort":
        return intent_windows(attrs, size, intent), ""
    if "CT005" in codes:
        raise _ort_refuses(ctx, "pads together with auto_pad")
    c_in = w_probe.shape[0]
    try:
        window, _, _ = probe_ort(ctx.ref, attrs, (1, c_in, *size), w_probe, b_probe, opset, rng)
    except OrtRefused as exc:
        raise _ort_refuses(ctx, str(exc)) from None
    if window is None:
        raise RepairRefused(f"node {ctx.ref.label!r}: onnxruntime's output at input size {size} "
                            f"matches no window of the transposed convolution; refusing to guess.",
                            field="intent")
    return window, f"onnxruntime {ort_version()} measured at input size {list(size)}"


def _ort_refuses(ctx: NodeContext, why: str) -> RepairRefused:
    """The ``ort`` intent on a node onnxruntime will not run: nothing to reproduce."""
    return RepairRefused(
        f"node {ctx.ref.label!r}: onnxruntime {ort_version()} refuses this node ({why}), so "
        f"there is no onnxruntime behaviour to reproduce; use --intent tf or --intent "
        f"onnx-spec.", field="intent")


def _plan_node(ctx: NodeContext, codes: list[str], intent: str, opset: int,
               rng: np.random.Generator) -> tuple[NodePlan, list[AxisPlan], list[tuple[int, ...]]]:
    a0 = ctx.attrs
    ref = ctx.ref
    if a0 is None or a0.rank != 2:
        raise RepairRefused(f"node {ref.label!r}: only 2-D ConvTranspose nodes can be repaired.",
                            field="model")
    attrs, notes = _attrs_for_intent(a0, codes)
    w_shape = ctx.w_shape
    if w_shape is None:
        raise RepairRefused(f"node {ref.label!r} in {ref.graph_path}: the shape of W is unknown"
                            + (f" (an input of function {ref.function!r} whose call sites do "
                               f"not all pass one known shape)" if ref.function else "")
                            + "; nothing written.", field="model")
    w_probe = rng.standard_normal(w_shape).astype(np.float32)
    b_probe = rng.standard_normal(w_shape[1] * attrs.group).astype(np.float32) \
        if ctx.b_shape is not None or (len(ref.node.input) > 2 and ref.node.input[2]) else None
    sizes, size_note = _sizes_to_probe(ctx, w_shape)
    plans: list[list[AxisPlan]] = []
    shown = ""
    for size in sizes:
        axes, windows, naturals, how = _axis_plans(ctx, attrs, intent, size, w_probe, b_probe,
                                                   opset, rng, codes)
        plans.append(axes)
        shown = shown or describe_windows(windows, naturals)
        if how and how not in notes:
            notes.append(how)
    if any(p != plans[0] for p in plans[1:]):
        raise RepairRefused(f"node {ref.label!r}: under intent {intent} its crop depends on the "
                            f"input size (probed at {sizes}); give --input-shape.",
                            field="input_shape")
    size_dependent = not size_note and _depends_on_size(ctx, attrs, intent, plans[0], w_probe,
                                                        b_probe, opset, codes)
    if size_dependent:
        notes.append(f"its pads depend on the input size: exact only at input size "
                     f"{list(sizes[0])}")
    if size_note:
        notes.append(size_note)
    axes = plans[0]
    new = {"pads": [axes[0].pad_begin, axes[1].pad_begin, axes[0].pad_end, axes[1].pad_end]}
    if any(p.output_padding for p in axes):
        new["output_padding"] = [p.output_padding for p in axes]
    padding = [[p.taps_before, p.taps_after] for p in axes]
    kernel = [attrs.kernel[i] + sum(padding[i]) for i in range(2)]
    new["kernel_shape"] = kernel
    old = {k: v for k, v in _attr_dict(ref.node).items() if k in _DROP}
    plan = NodePlan(ref.graph_path, ref.label, ref.index, codes, old, new,
                    padding if any(map(any, padding)) else None, shown, notes,
                    size_dependent=size_dependent)
    return plan, axes, sizes


def _axis_plans(ctx: NodeContext, attrs: ConvTAttrs, intent: str, size: tuple[int, ...],
                w_probe: np.ndarray, b_probe: np.ndarray | None, opset: int,
                rng: np.random.Generator, codes: Sequence[str]
                ) -> tuple[list[AxisPlan], tuple[Window, ...], list[int], str]:
    """The per-axis plan at input ``size``, with its windows, natural lengths and a note."""
    windows, how = _windows(ctx, attrs, intent, size, w_probe, b_probe, opset, rng, codes)
    naturals = [attrs.natural_length(i, n) for i, n in enumerate(size)]
    axes = [plan_axis(w, nat, attrs.strides[i], attrs.dilations[i])
            for i, (w, nat) in enumerate(zip(windows, naturals))]
    return axes, windows, naturals, how


def _depends_on_size(ctx: NodeContext, attrs: ConvTAttrs, intent: str, axes: list[AxisPlan],
                     w_probe: np.ndarray, b_probe: np.ndarray | None, opset: int,
                     codes: Sequence[str]) -> bool:
    """True when the plan made at the real input size is not the plan at other sizes.

    ``output_shape`` always (it fixes the output size); otherwise the plan is
    made again at the stand-in sizes (a separate seeded generator, so the proof
    inputs do not change) and any difference, or a refusal there, counts.
    """
    if attrs.output_shape is not None:
        return True
    rng = np.random.default_rng(0)
    for size in STAND_INS:
        try:
            other = _axis_plans(ctx, attrs, intent, size, w_probe, b_probe, opset, rng, codes)[0]
        except RepairRefused:
            return True
        if other != axes:
            return True
    return False


def _attr_dict(node: Any) -> dict[str, Any]:
    from onnx import helper

    out = {}
    for a in node.attribute:
        v = helper.get_attribute_value(a)
        out[a.name] = v.decode() if isinstance(v, bytes) else (list(v) if isinstance(v, (list, tuple)) else v)
    return out


def _padded_kernel(w: np.ndarray, axes: Sequence[AxisPlan], dilations: Sequence[int]) -> np.ndarray:
    """``W`` with zero taps prepended/appended per spatial axis (exact zeros)."""
    widths = [(0, 0), (0, 0)] + [(p.taps_before, p.taps_after) for p in axes]
    return np.pad(w, widths)


def _names(g: Any) -> list[str]:
    """Names in a GraphProto's inputs/outputs (ValueInfoProtos) or a FunctionProto's (strings)."""
    return [v if isinstance(v, str) else v.name for v in (*g.input, *g.output)]


def _unique_name(model: Any, base: str) -> str:
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


def _rewrite(model: Any, ctx: NodeContext, plan: NodePlan, axes: Sequence[AxisPlan],
             pending: list[tuple[Any, int, Any]]) -> np.ndarray:
    """Replace the node in its graph (and add a padded W when needed); return the new W.

    Inside a function the padded W is a Constant node; it is appended to
    ``pending`` as ``(graph, index, node)`` and inserted by
    :func:`_insert_pending` once every node is rewritten (indices stay valid).
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
        w = _padded_kernel(w, axes, ctx.attrs.dilations)  # type: ignore[union-attr]
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
    new.attribute.extend(copy.deepcopy(a) for a in node.attribute if a.name not in _DROP)
    ref.graph.node[ref.index].CopyFrom(new)
    return w if w is not None else np.zeros(0)


def _insert_pending(pending: Sequence[tuple[Any, int, Any]]) -> None:
    """Insert each Constant node just before its ConvTranspose (last index first)."""
    for graph, index, const in sorted(pending, key=lambda p: -p[1]):
        nodes = list(graph.node)
        nodes.insert(index, const)
        del graph.node[:]
        graph.node.extend(nodes)


def _referenced(model: Any) -> set[str]:
    """Every name a node input, a graph input or a graph output anywhere in ``model`` uses."""
    used: set[str] = set()
    for _, g in iter_model_graphs(model):
        for n in g.node:
            used.update(n.input)
        used.update(_names(g))
    return used


def _replaced_weight(ctx: NodeContext, old_w: str) -> tuple[str, Any, str] | None:
    """Where the W a padded copy replaces lives: ``(name, graph, "initializer"|"Constant node")``.

    An initializer in this or an enclosing graph, or a Constant node in the
    node's own graph (function bodies have no initializers); else None.
    """
    if old_w in ctx.ref.const_owner:
        return old_w, ctx.ref.const_owner[old_w], "initializer"
    if any(n.op_type == "Constant" and list(n.output) == [old_w] for n in ctx.ref.graph.node):
        return old_w, ctx.ref.graph, "Constant node"
    return None


def _drop_unused_weights(model: Any, replaced: Sequence[tuple[str, Any, str, NodePlan]]) -> None:
    """Remove replaced Ws ``(name, graph, kind, plan)`` that nothing refers to any more."""
    used = _referenced(model)
    for was, owner, kind, plan in replaced:
        if was in used:
            continue
        if kind == "initializer":
            field_, keep = owner.initializer, [t for t in owner.initializer if t.name != was]
        else:
            field_, keep = owner.node, [n for n in owner.node
                                        if not (n.op_type == "Constant" and list(n.output) == [was])]
        if len(keep) != len(field_):
            kept = [copy.deepcopy(x) for x in keep]
            del field_[:]
            field_.extend(kept)
            plan.notes.append(f"{kind} {was!r} removed: nothing in the model uses it any more")


# --------------------------------------------------------------------------
# Proof
# --------------------------------------------------------------------------

def _prove_node(ctx: NodeContext, original_node: Any, repaired_node: Any, plan: NodePlan,
                attrs: ConvTAttrs,
                intent: str, sizes: Sequence[tuple[int, ...]], new_w: np.ndarray | None,
                opset: int, rng: np.random.Generator) -> None:
    """Run the repaired node and compare with the intent reference (and original ORT for ort)."""
    w = ctx.w if ctx.w is not None else rng.standard_normal(ctx.w_shape).astype(np.float32)
    b = ctx.b
    if b is None and ctx.b_shape is not None:
        b = rng.standard_normal(ctx.b_shape).astype(np.float32)
    w_new = new_w if plan.kernel_padding else w
    for size in sizes:
        shape = (1, int(w.shape[0]), *size)
        x = rng.standard_normal(shape).astype(np.float32)
        try:
            y = run_ort(single_node_model(repaired_node, shape, w_new, b, opset), {"x": x})[0]
        except OrtRefused as exc:
            raise RepairRefused(f"node {plan.name!r}: onnxruntime refuses the repaired node "
                                f"({exc}); nothing written.", field="model") from None
        if intent == "ort":
            try:
                orig = run_ort(single_node_model(original_node, shape, w, b, opset), {"x": x})[0]
            except OrtRefused as exc:
                raise _ort_refuses(ctx, str(exc)) from None
            want = orig.astype(np.float64)
            vs_orig = max_abs_diff(y, orig)
        else:
            want = apply_window(full_output(x, w, attrs), b, intent_windows(attrs, size, intent))
            vs_orig = _original_diff(original_node, shape, w, b, x, y, opset)
        diff = max_abs_diff(y, want)
        record = {"input_shape": list(shape), "output_shape": list(y.shape),
                  "max_abs_diff_vs_intent": diff, "max_abs_diff_vs_original_ort": vs_orig}
        plan.proof.append(record)
        if diff is None or not close(y, want):
            raise RepairRefused(
                f"node {plan.name!r}: the repaired node does not reproduce intent {intent} at "
                f"input {list(shape)} (output {list(y.shape)} vs {list(want.shape)}, max diff "
                f"{diff}); nothing written.", field="intent")


def _original_diff(node: Any, shape: Sequence[int], w: np.ndarray, b: np.ndarray | None,
                   x: np.ndarray, y: np.ndarray, opset: int) -> float | None:
    try:
        orig = run_ort(single_node_model(node, shape, w, b, opset), {"x": x})[0]
    except OrtRefused:
        return None
    return max_abs_diff(y, orig)


WHOLE_MODEL_MAX_ELEMENTS = 4 * MAX_PROBE_ELEMENTS


def _seeded_feeds(model: Any, rng: np.random.Generator) -> tuple[dict[str, np.ndarray] | None, str]:
    """Seeded inputs for a whole-model run, or None and why not.

    Not run when an input has unknown dims, or when an input or any tensor
    shape inference knows of has more than :data:`WHOLE_MODEL_MAX_ELEMENTS`.
    """
    from onnx import helper

    inits = {t.name for t in model.graph.initializer}
    dims_of: dict[str, list[int]] = {}
    for vi in model.graph.input:
        if vi.name in inits:
            continue
        tt = vi.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim]
        if dims and dims[0] is None:
            dims[0] = 1  # a free batch dim: run one sample
        if any(d is None for d in dims):
            return None, "graph inputs have unknown dims (give --input-shape)"
        dims_of[vi.name] = dims  # type: ignore[assignment]
    shapes, _, _ = infer_shapes(model)
    sizes = {k: math.prod(1 if d is None else d for d in v) for k, v in shapes["main"].items()}
    sizes.update({k: math.prod(v) for k, v in dims_of.items()})
    big = max(sizes.items(), key=lambda kv: kv[1], default=("", 0))
    if big[1] > WHOLE_MODEL_MAX_ELEMENTS:
        return None, (f"tensor {big[0]!r} has {big[1]} elements, above the cap of "
                      f"{WHOLE_MODEL_MAX_ELEMENTS} for a whole-model run")
    feeds = {}
    for vi in model.graph.input:
        if vi.name not in dims_of:
            continue
        tt = vi.type.tensor_type
        dims = dims_of[vi.name]
        dtype = helper.tensor_dtype_to_np_dtype(tt.elem_type)
        if np.issubdtype(dtype, np.floating):
            feeds[vi.name] = rng.standard_normal(dims).astype(dtype)
        else:
            feeds[vi.name] = np.zeros(dims, dtype=dtype)
    return feeds, ""


def _whole_model(original: Any, repaired: Any, intent: str, rng: np.random.Generator
                 ) -> dict[str, Any]:
    """checker on the repaired model; run original and repaired on the same seeded inputs."""
    import onnx

    out: dict[str, Any] = {}
    try:
        onnx.checker.check_model(repaired)
        out["checker"] = "passed"
    except Exception as exc:
        try:
            onnx.checker.check_model(original)
        except Exception:
            out["checker"] = f"failed, as the original does ({_first_line(exc)})"
        else:
            raise RepairRefused(f"model: the repaired model fails onnx.checker "
                                f"({_first_line(exc)}); nothing written.", field="model") from None
    feeds, why = _seeded_feeds(original, rng)
    if feeds is None:
        out["summary"] = f"not run: {why}"
        return out
    try:
        new = run_ort(repaired, feeds)
    except OrtRefused as exc:
        raise RepairRefused(f"model: onnxruntime cannot run the repaired model ({exc}); "
                            f"nothing written.", field="model") from None
    try:
        old = run_ort(original, feeds)
    except OrtRefused as exc:
        out["summary"] = f"repaired model runs; the original does not load/run in onnxruntime ({exc})"
        return out
    diffs = [max_abs_diff(a, b) for a, b in zip(new, old)]
    out["max_abs_diff_vs_original_ort"] = diffs
    shown = ["shape differs" if d is None else f"{d:.3g}" for d in diffs]
    out["summary"] = (f"repaired and original both run in onnxruntime; max |difference| per "
                      f"output: {shown}" + ("" if intent == "ort" else
                                            " (nonzero where onnxruntime's reading of the "
                                            "original differs from the intent)"))
    if intent == "ort" and not all(close(a, b.astype(np.float64)) for a, b in zip(new, old)):
        raise RepairRefused(f"model: the repaired model differs from onnxruntime running the "
                            f"original (max diffs {shown}); nothing written.", field="model")
    return out


# --------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------

def repair_model(model: Any, intent: str,
                 input_shapes: Mapping[str, Sequence[int | None]] | Sequence[str] | None = None,
                 *, seed: int = 0, name: str | None = None) -> tuple[Any, RepairReport]:
    """Return ``(repaired ModelProto, report)``; ``model`` is a path or a ModelProto (not modified).

    ``input_shapes`` is what :func:`~convt_tools.check.check_model` takes.
    When a rewrite is exact only at the given input size (``output_shape``,
    or a plan that differs at other sizes), the repaired model's graph inputs
    get the given dims fixed, all but dim 0 (the batch), so onnxruntime
    refuses other sizes instead of computing something else; the report's
    notes say so.

    Raises :class:`RepairRefused` (with the partial report as ``.report``)
    when a node cannot be rewritten exactly or the proof fails,
    :class:`ConvtError` for unreadable input.
    """
    if intent not in INTENTS:
        raise ConvtError(f"intent: got {intent!r}; expected one of {', '.join(INTENTS)}.",
                         field="intent")
    original, label = resolve_model(model, name)
    given = input_shapes_arg(input_shapes)
    repaired = copy.deepcopy(original)
    shaped = apply_input_shapes(repaired, given)
    report = RepairReport(label, intent, ort_version())
    work: list[tuple[NodeContext, NodePlan, list[AxisPlan], list[tuple[int, ...]]]] = []
    try:
        _repair_into(original, repaired, shaped, given, intent, seed, report, work)
    except RepairRefused as exc:
        report.refusal = str(exc)
        report.nodes = [plan for _, plan, _, _ in work]
        exc.report = report
        raise
    return repaired, report


def _repair_into(original: Any, repaired: Any, shaped: Any,
                 given: dict[str, tuple[int | None, ...]], intent: str, seed: int,
                 report: RepairReport, work: list[Any]) -> None:
    """The body of :func:`repair_model`: plan, rewrite and prove into ``repaired``.

    ``work`` collects ``(ctx, plan, axes, sizes)`` as nodes are planned, so a
    refusal can report how far it got.
    """
    shapes, types, _ = infer_shapes(shaped)
    rng = np.random.default_rng(seed)
    opset = default_opset(repaired)
    unchecked = 0
    for ref in iter_convtranspose(repaired):
        ctx = node_context(ref, shapes.get(ref.graph_path, {}), types.get(ref.graph_path, {}))
        findings = static_findings(ctx)
        codes = sorted({f.code for f in findings})
        broken = sorted({f.code for f in findings
                         if f.code in BROKEN_CODES and f.severity == "error"})
        if broken:
            raise RepairRefused(f"node {ref.label!r} in {ref.graph_path}: {', '.join(broken)} "
                                f"(illegal kernel/group/attributes) cannot be repaired by "
                                f"re-padding; fix the model first.", field="model")
        todo = [c for c in codes if c in REPAIR_CODES]
        bound = bound_attributes(ref.node)
        if bound and todo:
            raise RepairRefused(
                f"node {ref.label!r} in {ref.graph_path}: {', '.join(todo)}, but attribute(s) "
                f"{sorted(bound)} are bound at each call site of function {ref.function!r}, so "
                f"the node's crop is not known here and a rewrite would have to change every "
                f"call site; nothing written.", field="model")
        if bound or ctx.attrs is None:
            unchecked += 1
            why = (f"attribute(s) {sorted(bound)} bound at each call site" if bound else
                   next(f.message for f in findings if f.code == "CT006"))
            report.untouched.append(f"{ref.graph_path}/{ref.label} (not checked: {why})")
            continue
        if not todo:
            report.untouched.append(f"{ref.graph_path}/{ref.label}")
            continue
        plan, axes, sizes = _plan_node(ctx, todo, intent, opset, rng)
        work.append((ctx, plan, axes, sizes))
    pending: list[tuple[Any, int, Any]] = []
    replaced: list[tuple[str, Any, str, NodePlan]] = []
    for ctx, plan, axes, sizes in work:
        attrs, _ = _attrs_for_intent(ctx.attrs, plan.codes)  # type: ignore[arg-type]
        original_node = copy.deepcopy(ctx.ref.node)
        new_w = _rewrite(repaired, ctx, plan, axes, pending)
        where = _replaced_weight(ctx, original_node.input[1]) if plan.kernel_padding else None
        if where is not None:
            replaced.append((*where, plan))
        _prove_node(ctx, original_node, ctx.ref.graph.node[ctx.ref.index], plan, attrs, intent,
                    sizes, new_w, opset, rng)
        report.nodes.append(plan)
    _insert_pending(pending)
    _drop_unused_weights(repaired, replaced)
    if not work:
        report.notes.append(
            f"nothing repaired: {unchecked} ConvTranspose node(s) could not be checked (see "
            f"untouched)" if unchecked else
            "nothing to repair: no runtime-dependent ConvTranspose node")
    if _needs_pinning(original, [(ctx, plan) for ctx, plan, _, _ in work]):
        report.notes += _pin_inputs(repaired, given)
    report.whole_model = _whole_model(apply_input_shapes(original, given),
                                      apply_input_shapes(repaired, given), intent, rng)


def _needs_pinning(original: Any, planned: Sequence[tuple[NodeContext, NodePlan]]) -> bool:
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


def _pin_inputs(model: Any, given: Mapping[str, Sequence[int | None]]) -> list[str]:
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


def save_model(model: Any, path: str | os.PathLike[str]) -> None:
    """Atomically write ``model`` (all tensors inline) to ``path``."""
    import onnx

    from .io import atomic_write

    atomic_write(path, lambda tmp: onnx.save(model, tmp))
