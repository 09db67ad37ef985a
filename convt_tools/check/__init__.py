"""``convt check``: find runtime-dependent and illegal ConvTranspose nodes in ONNX models.

:func:`check_model` loads the model (untrusted: :func:`convt_tools.onnxbase.load_model`),
fixes the given input shapes and runs shape inference
(:func:`convt_tools.onnxbase.infer_shapes`), then for every ConvTranspose
node, subgraphs included (:mod:`.graph`), parses its
attributes (:mod:`.attrs`), gathers what is known about it (:mod:`.context`),
applies the rules (:mod:`.rules`) and, unless ``numeric=False``, runs it alone
in onnxruntime to see which crop window it computes (:mod:`.probe`). The
windows themselves, ``y[o] = F[o + begin] + bias`` on the natural full output
``F`` of length ``L = (in - 1) * s + K`` and the ``tf`` / ``onnx-spec`` /
``swapped`` choices of ``begin``, are in :mod:`.windows`; findings and their
text / JSON / JUnit rendering in :mod:`.report`.

The names below are re-exported so ``from convt_tools.check import X`` works
for every public name of the submodules that other code uses.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from .attrs import AUTO_PADS, SAME, ConvTAttrs, _attributes_json, bound_attributes, read_attrs
from .context import NodeContext, node_context
from ..onnxbase import (
    apply_input_shapes, default_opset, infer_shapes, load_model, parse_input_shapes,
    resolve_model, skeleton,
)
from .graph import NodeRef, iter_convtranspose, tensor_array
from .matrix import (
    NodeMatrix, PendingMatrix, is_risky, node_matrix, prepare_matrix, probe_sizes, run_pending,
)
from .readings import RUNTIMES, documented_reading, runtime_names
from .qdq import qdq_report
from .panels import check_html, node_panels
from .probe import (
    MAX_PROBE_ELEMENTS, STAND_IN, OrtRefused, close, identify_window, make_model, max_abs_diff,
    numeric_check, ort_version, probe_elements, probe_ort, probe_shape, run_ort,
    single_node_model,
)
from .report import CODES, FAIL_LEVELS, SEVERITIES, CheckReport, Finding, NodeReport
from .rules import legality, portability, runtime_dependent, static_findings
from .windows import (
    INTENTS, Window, apply_window, describe_windows, full_output, intent_windows,
    interpretation_words, interpretations, odd_extra_side,
)

if TYPE_CHECKING:
    import onnx

__all__ = [
    "CODES", "RUNTIMES", "CheckReport", "ConvTAttrs", "Finding", "NodeRef", "NodeReport", "Window",
    "check_html", "check_model", "intent_windows", "iter_convtranspose", "load_model",
    "parse_input_shapes",
]


def check_model(model: str | os.PathLike[str] | onnx.ModelProto,
                input_shapes: Mapping[str, Sequence[int | None]] | Sequence[str] | None = None,
                *, numeric: bool = True, seed: int = 0, name: str | None = None,
                runtimes: str | Sequence[str] | None = None) -> CheckReport:
    """Check every ConvTranspose node of ``model`` (a path or a ModelProto).

    Nodes in subgraphs and in the bodies of model-local functions
    (``model.functions``, graph path ``function:<domain>.<name>``) are checked
    too.

    Returns a :class:`CheckReport`; raises :class:`ConvtError` for unreadable
    input. ``input_shapes`` (``{input_name: dims}``, ``""`` for the only
    input; or a list of ``"NAME=DIMS"`` strings as ``--input-shape`` takes
    them) fixes graph-input shapes for shape inference and numeric checks.
    Known dims must be positive integers; ``None``, ``-1`` or ``"?"`` mean
    unknown. Anything else is a :class:`ConvtError` naming ``input_shape``.

    ``runtimes`` (names of :data:`~.readings.RUNTIMES`, a list or a
    comma-separated string; default all) are the runtimes the verdict is
    judged on: a node they all read the same way at every input size is not
    an error. Every risky node (:func:`~.matrix.is_risky`) gets a reading
    matrix: measured on each installed runtime (:mod:`.runners`) when
    ``numeric``, from the documented table for the others.
    """
    # Bounded memory on big models: external data is read only for the ConvTranspose
    # weights (and only with numeric), shape inference runs on a copy without big bytes.
    model, label = resolve_model(model, name, lazy=True)
    shaped = apply_input_shapes(skeleton(model), input_shapes)
    shapes, types, err = infer_shapes(shaped)
    report = CheckReport(label, ort_version(), [])
    if err:
        report.notes.append(f"onnx shape inference failed ({err}); shapes come from declared "
                            f"value_info only")
    chosen = runtime_names(runtimes)
    if runtimes is not None:
        report.notes.append(f"judged on: {', '.join(chosen)}")
    rng = np.random.default_rng(seed)
    opset = default_opset(model)
    pending: list[tuple[NodeReport, NodeContext, PendingMatrix]] = []
    indexes: dict[str, Any] = {}   # QDQ: one graph index per graph path
    for ref in iter_convtranspose(model):
        # The probe draws its own weights (probe.py): the model's are never read here.
        ctx = node_context(ref, shapes.get(ref.graph_path, {}), types.get(ref.graph_path, {}),
                           weights=False)
        findings = static_findings(ctx, chosen)
        info = None
        if numeric:
            more, info = numeric_check(ctx, opset, rng)
            findings += more
        qdq = qdq_report(ref, ctx.x_shape, opset, chosen, indexes)
        if qdq is not None:
            findings += qdq.findings
        node = NodeReport(ref.graph_path, ref.label, ref.index, ctx.x_shape,
                          _attributes_json(ref.node), findings, info)
        if qdq is not None:
            node.quantization, node.execution = qdq.quantization, qdq.execution
        if is_risky(ctx) and ctx.w_shape is not None and not bound_attributes(ref.node):
            pending.append((node, ctx, _prepare(ctx, opset, rng, chosen, numeric)))
        report.nodes.append(node)
    for (node, ctx, _), matrix in zip(pending, run_pending([p for _, _, p in pending])):
        _add_matrix(node, ctx, matrix, chosen)
    return report


STAND_INS = ((5, 6, 7), (8, 9, 6))


def _prepare(ctx: NodeContext, opset: int, rng: np.random.Generator, chosen: Sequence[str],
             measure: bool) -> PendingMatrix:
    """The node's matrix jobs at the probe sizes (measured only within the probe cap)."""
    a = ctx.attrs
    assert a is not None and ctx.w_shape is not None
    sizes = probe_sizes(ctx, [tuple((p * a.rank)[:a.rank]) for p in STAND_INS])
    c_in = int(ctx.c_in if ctx.c_in is not None else ctx.w_shape[0])
    c_out = int(ctx.w_shape[1]) * a.group
    if max(probe_elements(a, c_in, c_out, s) for s in sizes) > MAX_PROBE_ELEMENTS:
        measure = False
    return prepare_matrix(ctx, opset, rng, chosen, sizes, measure=measure)


def _add_matrix(node: NodeReport, ctx: NodeContext, matrix: NodeMatrix,
                chosen: Sequence[str]) -> None:
    """The node's reading matrix, and CT034/CT035 from what it measured."""
    a = ctx.attrs
    assert a is not None
    sizes = matrix.sizes
    naturals = [[a.natural_length(i, n) for i, n in enumerate(s)] for s in sizes]
    node.readings = matrix.to_dict(naturals)
    node.reading_lines = matrix.lines(naturals)
    node.panels = node_panels(a, matrix)
    severe = {f.code for f in node.findings if f.severity == "error"}
    runtime_codes = {"CT010", "CT011", "CT013", "CT014", "CT016", "CT001", "CT002", "CT008",
                     "CT005", "CT033"}
    by_name = {e.runtime: e for e in matrix.entries}
    for j, size in enumerate(sizes):
        computed: dict[object, list[str]] = {}
        for name in chosen:
            r = by_name[name].readings[j]
            if r.status == "window":
                computed.setdefault(r.key(), []).append(name)
        if len(computed) > 1 and not severe & runtime_codes:
            node.findings.append(Finding(
                "CT034", f"measured at input {list(size)}: the runtimes judged compute "
                f"different windows: " + " | ".join(", ".join(g) for g in computed.values())))
            break
    odd = [e.runtime for e in matrix.entries if e.note]
    if odd:
        node.findings.append(Finding("CT035", f"measured readings of {', '.join(odd)} differ from "
                                     f"the documented table at these sizes (the measurement is "
                                     f"reported; the size-independent verdict uses the table)"))
