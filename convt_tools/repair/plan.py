"""Planning: from a node's attributes and the intent's window to explicit attributes.

The chosen intent (``tf``, ``onnx-spec`` or ``ort``, see :mod:`convt_tools.check`)
gives a per-axis window ``(begin, length)`` on the natural full output of
length ``L``; :func:`plan_axis` expresses it with explicit non-negative pads,
``auto_pad`` NOTSET and no ``output_shape``::

    zb = ceil(max(-begin, 0) / d)        zero kernel taps prepended (a shift)
    pb = begin + zb * d                  >= 0
    E  = L + zb*d - pb - length          = pe - op
    E >= 0            -> pe = E, op = 0
    0 < -E <= s - 1   -> pe = 0, op = -E (zero rows appended, bias lands on them)
    -E > s - 1        -> append ze = ceil((-E - (s-1)) / d) zero kernel taps,
                         then E' = E + ze*d as above

That rule, the pads list and the padded kernel shape are
:mod:`convt_tools.geometry`'s (``express``, ``onnx_pads``,
``onnx_output_padding``, ``padded_kernel_shape``); this module only chooses
the windows and the sizes. Zero kernel taps add exact zeros, so the padded
kernel reproduces a negative ``begin`` or an extension beyond ``stride - 1``
exactly.

:func:`plan_node` makes the plan at the sizes the proof will use: the real
input size when known and within :data:`~convt_tools.check.MAX_PROBE_ELEMENTS`,
else, for forms whose pads do not depend on the size, the stand-in sizes
:data:`STAND_INS` (the plans must agree); ``output_shape`` without a usable
real size is refused. A plan made at the real size is marked
``size_dependent`` when it differs at the stand-in sizes. For ``ort`` the
window is measured in onnxruntime; a node it refuses is refused. Pads next to
``auto_pad`` (CT005) are dropped: ``auto_pad`` wins.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from ..check import (
    MAX_PROBE_ELEMENTS, ConvTAttrs, NodeContext, OrtRefused, Window, describe_windows,
    intent_windows, ort_version, probe_elements, probe_ort,
)
from ..geometry import (
    OnnxAxis, express, onnx_output_padding, onnx_pads, padded_kernel_shape,
)
from .dynamic import DYNAMIC_FORM, dynamic_proof_sizes
from .report import NodePlan, RepairRefused, ort_refuses

if TYPE_CHECKING:
    import onnx

STAND_INS = ((5, 6, 7), (8, 9, 6))  # per spatial axis; each axis differs in parity between the two


def stand_ins(rank: int) -> list[tuple[int, ...]]:
    """The two stand-in input sizes for a ``rank``-D node (:data:`STAND_INS` cut to the rank)."""
    return [tuple((pair * rank)[:rank]) for pair in STAND_INS]
DROP = ("auto_pad", "output_shape", "pads", "output_padding", "kernel_shape")


AxisPlan = OnnxAxis  # explicit attributes for one axis (see convt_tools.geometry)


def plan_axis(window: Window, natural: int, s: int, d: int) -> AxisPlan:
    """Express ``window`` on an axis with natural length ``natural``: :func:`geometry.express`."""
    return express(window, natural, s, d)


def attrs_for_intent(attrs: ConvTAttrs, codes: Sequence[str]) -> tuple[ConvTAttrs, list[str]]:
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
        real = tuple(int(n) for n in sizes if n is not None)
        need = probe_elements(a, int(w_shape[0]), int(w_shape[1]) * a.group, real)
        if need <= MAX_PROBE_ELEMENTS:
            return [real], ""
        why = (f"proving it at the real input size {list(real)} needs {need} elements, above "
               f"the cap of {MAX_PROBE_ELEMENTS}")
        if a.output_shape is not None:
            raise RepairRefused(
                f"node {label!r}: output_shape {list(a.output_shape)} makes its pads depend on "
                f"the input size, and {why}; nothing written.", field="input_shape")
        return stand_ins(a.rank), (f"planned and proven at stand-in sizes {stand_ins(a.rank)}: "
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
                   zip(sizes or (None,) * a.rank, pair)) for pair in stand_ins(a.rank)]
    return stand, (f"input size unknown: planned at stand-in sizes {stand}; this form's pads "
                   f"do not depend on the size")


def _windows(ctx: NodeContext, attrs: ConvTAttrs, intent: str, size: tuple[int, ...],
             w_probe: np.ndarray, b_probe: np.ndarray | None, opset: int,
             rng: np.random.Generator, codes: Sequence[str]) -> tuple[tuple[Window, ...], str]:
    """The target windows at ``size`` and a note on where they came from."""
    if intent != "ort":
        return intent_windows(attrs, size, intent), ""
    if "CT005" in codes:
        raise ort_refuses(ctx, "pads together with auto_pad")
    c_in = w_probe.shape[0]
    try:
        window, _, _ = probe_ort(ctx.ref, attrs, (1, c_in, *size), w_probe, b_probe, opset, rng)
    except OrtRefused as exc:
        raise ort_refuses(ctx, str(exc)) from None
    if window is None:
        raise RepairRefused(f"node {ctx.ref.label!r}: onnxruntime's output at input size {size} "
                            f"matches no window of the transposed convolution; refusing to guess.",
                            field="intent")
    return window, f"onnxruntime {ort_version()} measured at input size {list(size)}"


def plan_node(ctx: NodeContext, codes: list[str], intent: str, opset: int,
              rng: np.random.Generator
              ) -> tuple[NodePlan, list[AxisPlan], list[tuple[int, ...]]]:
    """Plan ``ctx``'s node for ``codes``: ``(plan, per-axis plans, sizes to prove at)``."""
    a0 = ctx.attrs
    ref = ctx.ref
    if a0 is None:
        raise RepairRefused(f"node {ref.label!r}: its attributes are malformed.", field="model")
    attrs, notes = attrs_for_intent(a0, codes)
    w_shape = ctx.w_shape
    if w_shape is None:
        raise RepairRefused(f"node {ref.label!r} in {ref.graph_path}: the shape of W is unknown"
                            + (f" (an input of function {ref.function!r} whose call sites do "
                               f"not all pass one known shape)" if ref.function else "")
                            + "; nothing written.", field="model")
    sizes0 = ctx.sizes or (None,) * attrs.rank
    if attrs.output_shape is not None and any(n is None for n in sizes0) and not ref.function:
        return _dynamic_plan(ctx, codes, intent, opset, notes)
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
    new: dict[str, list[int]] = {"pads": onnx_pads(axes)}
    output_padding = onnx_output_padding(axes)
    if output_padding is not None:
        new["output_padding"] = output_padding
    padding = [[p.taps_before, p.taps_after] for p in axes]
    new["kernel_shape"] = padded_kernel_shape(attrs.kernel, axes)
    old = {k: v for k, v in _attr_dict(ref.node).items() if k in DROP}
    plan = NodePlan(ref.graph_path, ref.label, ref.index, codes, old, new,
                    padding if any(map(any, padding)) else None, shown, notes,
                    size_dependent=size_dependent)
    return plan, axes, sizes


def _dynamic_plan(ctx: NodeContext, codes: list[str], intent: str, opset: int,
                  notes: list[str]) -> tuple[NodePlan, list[AxisPlan], list[tuple[int, ...]]]:
    """output_shape with a free input size: the dynamic form (:mod:`.dynamic`), no pinning."""
    a = ctx.attrs
    ref = ctx.ref
    assert a is not None
    if opset < 11:
        raise RepairRefused(f"node {ref.label!r}: output_shape with a free input size needs the "
                            f"dynamic form (Pad and Slice with tensor inputs, opset >= 11); the "
                            f"model's opset is {opset}; give --input-shape to pin a size.",
                            field="model")
    sizes = dynamic_proof_sizes(a, intent, ctx.sizes or (None,) * a.rank)
    notes.append(f"input size free in the model: the window is computed from the input's shape "
                 f"at run time ({DYNAMIC_FORM}); exact at every input size, proven at "
                 f"{[list(s) for s in sizes]}")
    old = {k: v for k, v in _attr_dict(ref.node).items() if k in DROP}
    plan = NodePlan(ref.graph_path, ref.label, ref.index, codes, old,
                    {"form": "dynamic", "output_shape": list(a.output_shape or ())}, None,
                    "per input size (see the form)", notes, form=DYNAMIC_FORM)
    return plan, [], sizes


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
    for size in stand_ins(attrs.rank):
        try:
            other = _axis_plans(ctx, attrs, intent, size, w_probe, b_probe, opset, rng, codes)[0]
        except RepairRefused:
            return True
        if other != axes:
            return True
    return False


def _attr_dict(node: onnx.NodeProto) -> dict[str, Any]:
    from onnx import helper

    out = {}
    for a in node.attribute:
        v = helper.get_attribute_value(a)
        out[a.name] = (v.decode() if isinstance(v, bytes) else
                       list(v) if isinstance(v, (list, tuple)) else v)
    return out
