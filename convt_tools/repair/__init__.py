"""``convt repair``: rewrite runtime-dependent ConvTranspose nodes into portable ones.

A node is rewritten when ``convt check`` finds negative pads (CT001),
``output_padding >= stride`` (CT002), pads with auto_pad (CT005), auto_pad
SAME_* (CT010-CT012) or ``output_shape`` (CT013-CT015). :func:`repair_model`
plans each such node under the chosen intent (``tf``, ``onnx-spec`` or
``ort``): explicit non-negative pads, ``output_padding`` and zero kernel taps
for shifts (:mod:`.plan`); rewrites it in place, drops unused weights and pins
input dims for size-dependent repairs (:mod:`.rewrite`); and proves the
result numerically (:mod:`.proof`). What it changed, or why it refused, is a
:class:`RepairReport` (:mod:`.report`); a refused repair writes nothing.

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
import os
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from ..check import (
    INTENTS, NodeContext, bound_attributes, iter_convtranspose, node_context, ort_version,
    static_findings,
)
from ..errors import ConvtError
from ..onnxbase import (
    apply_input_shapes, default_opset, infer_shapes, input_shapes_arg, resolve_model,
)
from .plan import AxisPlan, attrs_for_intent, plan_axis, plan_node
from .portable import make_portable
from .proof import prove_dynamic, prove_node, prove_whole_model
from .report import NodePlan, RepairRefused, RepairReport
from .targets import TargetsNotExact, apply_target_forms, retarget, target_info, target_names

if TYPE_CHECKING:
    import onnx
from .rewrite import (
    drop_unused_weights, insert_pending, needs_pinning, pin_inputs, replaced_weight,
    rewrite_dynamic, rewrite_node,
)

__all__ = ["NodePlan", "RepairRefused", "RepairReport", "plan_axis", "repair_model"]

REPAIR_CODES = ("CT001", "CT002", "CT005", "CT008", "CT010", "CT011", "CT012", "CT013", "CT014", "CT015")
BROKEN_CODES = ("CT003", "CT004", "CT006")


def repair_model(model: str | os.PathLike[str] | onnx.ModelProto, intent: str,
                 input_shapes: Mapping[str, Sequence[int | None]] | Sequence[str] | None = None,
                 *, seed: int = 0, name: str | None = None,
                 form: str = "compact", targets: Sequence[str] | None = None
                 ) -> tuple[onnx.ModelProto, RepairReport]:
    """Return ``(repaired ModelProto, report)``; ``model`` is a path or a ModelProto (not modified).

    ``input_shapes`` is what :func:`~convt_tools.check.check_model` takes.
    When a rewrite is exact only at the given input size (``output_shape``,
    or a plan that differs at other sizes), the repaired model's graph inputs
    get the given dims fixed, all but dim 0 (the batch), so onnxruntime
    refuses other sizes instead of computing something else; the report's
    notes say so.

    ``form``: ``compact`` (default) writes each rewritten node as one
    ConvTranspose (pads may be asymmetric); ``portable`` then turns every
    ConvTranspose with asymmetric explicit pads into symmetric pads plus one
    constant Slice (:mod:`.portable`), before the whole-model proof.

    ``targets`` (runtime names of check's table): then the result is also rewritten into
    the form every named runtime runs exactly (:mod:`.targets`: group split, bias as an
    Add, as each runtime's entry of the reading table declares) and proven on every
    installed one (``report.targets``); a target on which it is not exact refuses.

    Raises :class:`RepairRefused` (with the partial report as ``.report``)
    when a node cannot be rewritten exactly or the proof fails,
    :class:`ConvtError` for unreadable input.
    """
    if intent not in INTENTS:
        raise ConvtError(f"intent: got {intent!r}; expected one of {', '.join(INTENTS)}.",
                         field="intent")
    if form not in ("portable", "compact"):
        raise ConvtError(f"form: got {form!r}; expected one of portable, compact.",
                         field="form")
    original, label = resolve_model(model, name)
    given = input_shapes_arg(input_shapes)
    repaired = copy.deepcopy(original)
    shaped = apply_input_shapes(repaired, given)
    report = RepairReport(label, intent, ort_version())
    work: list[tuple[NodeContext, NodePlan, list[AxisPlan], list[tuple[int, ...]]]] = []
    try:
        _repair_into(original, repaired, shaped, given, intent, seed, report, work, form)
        if targets:
            repaired = _retarget(repaired, given, targets, seed, report)
    except RepairRefused as exc:
        report.refusal = str(exc)
        report.nodes = [plan for _, plan, _, _ in work]
        exc.report = report
        raise
    return repaired, report


def _retarget(repaired: onnx.ModelProto, given: dict[str, tuple[int | None, ...]],
              targets: Sequence[str], seed: int, report: RepairReport) -> onnx.ModelProto:
    """:func:`.targets.retarget` of the proven repair, at the given input shapes."""
    names = target_names(list(targets))
    try:
        _, notes, proof = retarget(apply_input_shapes(repaired, given), names, seed)
    except TargetsNotExact as exc:
        report.targets = {"names": list(names), **exc.proof.to_dict()}
        raise RepairRefused(str(exc), field="target") from None
    # the rewrites on the model as repaired (the given shapes were only for the proof)
    final = copy.deepcopy(repaired)
    apply_target_forms(final, names)
    report.targets = target_info(names, notes, proof)
    return final


def _repair_into(original: onnx.ModelProto, repaired: onnx.ModelProto, shaped: onnx.ModelProto,
                 given: dict[str, tuple[int | None, ...]], intent: str, seed: int,
                 report: RepairReport, work: list[Any], form: str = "compact") -> None:
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
        plan, axes, sizes = plan_node(ctx, todo, intent, opset, rng)
        work.append((ctx, plan, axes, sizes))
    pending: list[tuple[Any, int, Any]] = []
    replaced: list[tuple[str, Any, str, NodePlan]] = []
    for ctx, plan, axes, sizes in work:
        attrs, _ = attrs_for_intent(ctx.attrs, plan.codes)
        original_node = copy.deepcopy(ctx.ref.node)
        if plan.new.get("form") == "dynamic":
            nodes = rewrite_dynamic(repaired, ctx, plan, attrs, intent, pending)
            where = replaced_weight(ctx, original_node.input[1]) if plan.kernel_padding else None
            if where is not None:
                replaced.append((*where, plan))
            prove_dynamic(ctx, original_node, nodes, plan, attrs, intent, sizes, opset, rng)
            report.nodes.append(plan)
            continue
        new_w = rewrite_node(repaired, ctx, plan, axes, pending)
        where = replaced_weight(ctx, original_node.input[1]) if plan.kernel_padding else None
        if where is not None:
            replaced.append((*where, plan))
        prove_node(ctx, original_node, ctx.ref.graph.node[ctx.ref.index], plan, attrs, intent,
                   sizes, new_w, opset, rng)
        report.nodes.append(plan)
    insert_pending(pending)
    drop_unused_weights(repaired, replaced)
    if not work:
        report.notes.append(
            f"nothing repaired: {unchecked} ConvTranspose node(s) could not be checked (see "
            f"untouched)" if unchecked else
            "nothing to repair: no runtime-dependent ConvTranspose node")
    if needs_pinning(original, [(ctx, plan) for ctx, plan, _, _ in work]):
        report.notes += pin_inputs(repaired, given)
    if form == "portable":
        report.notes += [f"portable form: {c}" for c in make_portable(repaired)]
    report.whole_model = prove_whole_model(apply_input_shapes(original, given),
                                           apply_input_shapes(repaired, given), intent, rng)

