"""Proof: every repair is run and compared before anything is returned.

:func:`prove_node` runs the repaired node alone in onnxruntime on seeded
inputs at the planned sizes; it must equal the NumPy reference under the
intent, and for ``ort`` the original node run in onnxruntime. The proof is
bounded like ``convt check``'s probe
(:data:`~convt_tools.check.MAX_PROBE_ELEMENTS`): the sizes come from the plan
(stand-ins above the cap, see :mod:`.plan`). :func:`prove_whole_model` then
requires the repaired model to pass ``onnx.checker`` (unless the original
fails it too) and to run on seeded inputs; for ``ort`` its outputs must equal
the original's. The whole-model run is skipped when an input has unknown dims
or a tensor is above :data:`WHOLE_MODEL_MAX_ELEMENTS`. A failure raises
:class:`~.report.RepairRefused`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from ..check import (
    MAX_PROBE_ELEMENTS, ConvTAttrs, NodeContext, OrtRefused, apply_window, close, full_output,
    intent_windows, max_abs_diff, run_ort, single_node_model,
)
from ..errors import first_line
from ..onnxbase import infer_shapes
from .dynamic import dynamic_model
from .report import NodePlan, RepairRefused, ort_refuses

if TYPE_CHECKING:
    import onnx


def prove_node(ctx: NodeContext, original_node: onnx.NodeProto, repaired_node: onnx.NodeProto, plan: NodePlan,
               attrs: ConvTAttrs,
               intent: str, sizes: Sequence[tuple[int, ...]], new_w: np.ndarray | None,
               opset: int, rng: np.random.Generator) -> None:
    """Run the repaired node and compare with the intent reference (and original ORT for ort)."""
    w = ctx.w if ctx.w is not None else rng.standard_normal(ctx.w_shape).astype(np.float32)
    b = ctx.b
    if b is None and ctx.b_shape is not None:
        b = rng.standard_normal(ctx.b_shape).astype(np.float32)
    w_new = w
    if plan.kernel_padding:
        if new_w is None:
            raise ValueError(f"node {plan.name!r}: a kernel padding plan without the padded kernel")
        w_new = new_w
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
                raise ort_refuses(ctx, str(exc)) from None
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


def prove_dynamic(ctx: NodeContext, original_node: onnx.NodeProto,
                  nodes: Sequence[onnx.NodeProto], plan: NodePlan,
                  attrs: ConvTAttrs, intent: str, sizes: Sequence[tuple[int, ...]], opset: int,
                  rng: np.random.Generator) -> None:
    """Run the dynamic form (one model, symbolic spatial dims) at every size in ``sizes``.

    It must equal the NumPy reference under the intent (``ort``: the original
    node in onnxruntime) at each size: the same rewritten graph serves them all.
    """
    node = original_node
    if ctx.w_shape is None:
        raise ValueError(f"node {plan.name!r}: the dynamic form needs the kernel's shape")
    w = rng.standard_normal(ctx.w_shape).astype(np.float32)
    has_b = len(node.input) > 2 and bool(node.input[2])
    b = rng.standard_normal(int(ctx.w_shape[1]) * attrs.group).astype(np.float32) \
        if has_b else None
    c_in = int(w.shape[0])
    w_name, w_used = node.input[1], w
    if plan.kernel_padding:
        w_name = str(plan.new["padded_w"])
        w_used = np.pad(w, [(0, 0), (0, 0)] + [tuple(t) for t in plan.kernel_padding])
    model = dynamic_model(nodes, node.input[0], node.output[0], c_in, attrs.rank, w_name,
                          w_used, node.input[2] if has_b else "", b, opset)
    for size in sizes:
        shape = (1, c_in, *size)
        x = rng.standard_normal(shape).astype(np.float32)
        try:
            y = run_ort(model, {node.input[0]: x})[0]
        except OrtRefused as exc:
            raise RepairRefused(f"node {plan.name!r}: onnxruntime refuses the dynamic form at "
                                f"input {list(shape)} ({exc}); nothing written.",
                                field="model") from None
        vs_orig = _original_diff(node, shape, w, b, x, y, opset)
        if intent == "ort":
            try:
                want = run_ort(single_node_model(node, shape, w, b, opset),
                               {"x": x})[0].astype(np.float64)
            except OrtRefused as exc:
                raise ort_refuses(ctx, str(exc)) from None
        else:
            want = apply_window(full_output(x, w, attrs), b, intent_windows(attrs, size, intent))
        diff = max_abs_diff(y, want)
        plan.proof.append({"input_shape": list(shape), "output_shape": list(y.shape),
                           "max_abs_diff_vs_intent": diff,
                           "max_abs_diff_vs_original_ort": vs_orig})
        if diff is None or not close(y, want):
            raise RepairRefused(
                f"node {plan.name!r}: the dynamic form does not reproduce intent {intent} at "
                f"input {list(shape)} (output {list(y.shape)} vs {list(want.shape)}, max diff "
                f"{diff}); nothing written.", field="intent")


def _original_diff(node: onnx.NodeProto, shape: Sequence[int], w: np.ndarray, b: np.ndarray | None,
                   x: np.ndarray, y: np.ndarray, opset: int) -> float | None:
    try:
        orig = run_ort(single_node_model(node, shape, w, b, opset), {"x": x})[0]
    except OrtRefused:
        return None
    return max_abs_diff(y, orig)


WHOLE_MODEL_MAX_ELEMENTS = 4 * MAX_PROBE_ELEMENTS


@dataclass(frozen=True)
class _NotRun:
    """Why the whole-model run is skipped."""

    why: str


def _seeded_feeds(model: onnx.ModelProto, rng: np.random.Generator) -> dict[str, np.ndarray] | _NotRun:
    """Seeded inputs for a whole-model run, or why not.

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
        known = [d for d in dims if d is not None]
        if len(known) != len(dims):
            return _NotRun("graph inputs have unknown dims (give --input-shape)")
        dims_of[vi.name] = known
    shapes, _, _ = infer_shapes(model)
    sizes = {k: math.prod(1 if d is None else d for d in v) for k, v in shapes["main"].items()}
    sizes.update({k: math.prod(v) for k, v in dims_of.items()})
    big = max(sizes.items(), key=lambda kv: kv[1], default=("", 0))
    if big[1] > WHOLE_MODEL_MAX_ELEMENTS:
        return _NotRun(f"tensor {big[0]!r} has {big[1]} elements, above the cap of "
                       f"{WHOLE_MODEL_MAX_ELEMENTS} for a whole-model run")
    feeds = {}
    for vi in model.graph.input:
        if vi.name not in dims_of:
            continue
        tt = vi.type.tensor_type
        shape = dims_of[vi.name]
        dtype = helper.tensor_dtype_to_np_dtype(tt.elem_type)
        if np.issubdtype(dtype, np.floating):
            feeds[vi.name] = rng.standard_normal(shape).astype(dtype)
        else:
            feeds[vi.name] = np.zeros(shape, dtype=dtype)
    return feeds


def prove_whole_model(original: onnx.ModelProto, repaired: onnx.ModelProto, intent: str,
                      rng: np.random.Generator) -> dict[str, Any]:
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
            out["checker"] = f"failed, as the original does ({first_line(exc)})"
        else:
            raise RepairRefused(f"model: the repaired model fails onnx.checker "
                                f"({first_line(exc)}); nothing written.", field="model") from None
    feeds = _seeded_feeds(original, rng)
    if isinstance(feeds, _NotRun):
        out["summary"] = f"not run: {feeds.why}"
        return out
    try:
        new = run_ort(repaired, feeds)
    except OrtRefused as exc:
        raise RepairRefused(f"model: onnxruntime cannot run the repaired model ({exc}); "
                            f"nothing written.", field="model") from None
    try:
        old = run_ort(original, feeds)
    except OrtRefused as exc:
        out["summary"] = (f"repaired model runs; the original does not load/run in "
                          f"onnxruntime ({exc})")
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
