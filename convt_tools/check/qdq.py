"""QDQ ConvTranspose: findings CT040-CT049, and the node's ``quantization`` / ``execution``.

For a ConvTranspose node with Q/DQ around it (:func:`convt_tools.quant.parse_qdq`):

* CT040 (warning): weight scales per INPUT channel (axis 0 with C_in scales):
  output channel ``co`` mixes ``C_in/group`` scales. Per output channel is
  axis 1 for group 1, axis 0 for depthwise multiplier 1, opset-21 blocked axis
  0 with ``block_size = C_in/group`` for other groups. (TensorRT's convention,
  NVIDIA/TensorRT#2380: info when TensorRT is the only runtime judged.)
* CT041 (warning): axis-1 scales shared across groups (``C_out/group`` values
  for ``C_out`` output channels; what quantize_static writes for grouped layers).
* CT042 (warning): a depthwise layer's per-axis scale collapsed to one value.
* CT043 (warning): bias scale != ``x_scale * w_scale`` of the same output
  channel, or no such product exists (weight scale not constant per output
  channel), or a nonzero bias zero point.
* CT044 (error): a zero point of the wrong type, out of its integers' range, or
  wrapped (a uint8 128 stored as int8 -128: on weights the integers pile up at
  both ends of ``q - zp``, small weights of either sign; a warning on an input not
  produced by a non-negative op, whose negatives saturate to 0 - right only for
  inputs that are never negative).
* CT045 (error): a per-axis or blocked scale whose length does not fit its
  axis (``onnx.checker`` full check passes it; runtimes refuse it).
* CT046 (warning): the stored integers were not made with the stored scales
  (:func:`convt_tools.quant.integer_evidence`), with the evidence.
* CT047 (warning, as CT020-CT022) / CT048 (error) / CT049 (info): a judged runtime refuses the
  node / computes it wrongly (known fault) / runs it in float
  (:mod:`.qdq_readings`).

Nodes without Q/DQ get none of these and no ``quantization`` entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ..quant import (
    GraphIndex, QdqConvTranspose, QParams, QuantError, WeightGranularity, integer_evidence,
    output_channel_index, parse_qdq, weight_granularity,
)
from .graph import NodeRef
from .readings import RUNTIMES
from .qdq_readings import QdqExecution, qdq_execution, zero_point_problem
from .report import Finding

__all__ = ["QdqReport", "qdq_report"]

# ops whose output is never negative: an int8 zero point of -128 after them is right
_NON_NEGATIVE = {"Relu", "Sigmoid", "Softmax", "Abs", "Exp", "Softplus", "HardSigmoid"}
_REL = 1e-5   # bias scale vs x_scale * w_scale (float32 products)
# wrapped int8 weights: small weights of both signs at both ends of q - zp (fraction each)
_WRAPPED_TAILS = 0.3


@dataclass
class QdqReport:
    """A QDQ node's findings, ``quantization`` and ``execution`` (JSON-ready dicts)."""

    qdq: QdqConvTranspose
    findings: list[Finding]
    quantization: dict[str, Any]
    execution: dict[str, dict[str, str]]


def qdq_report(ref: NodeRef, x_shape: Sequence[int | None] | None, opset: int,
               runtimes: Sequence[str], indexes: dict[str, GraphIndex] | None = None
               ) -> QdqReport | None:
    """The node's QDQ report, judged on ``runtimes``; None for a node without Q/DQ.

    ``indexes``: the graphs' :class:`~convt_tools.quant.GraphIndex` by graph path, filled
    here (one per graph for a whole model's check).
    """
    cache = {} if indexes is None else indexes
    index = cache.get(ref.graph_path)
    if index is None or index.graph is not ref.graph:
        index = cache[ref.graph_path] = GraphIndex(ref.graph, ref.constants)
    q = parse_qdq(index, ref.node, ref.label, None if x_shape is None else len(x_shape))
    if not q.quantized:
        return None
    findings: list[Finding] = []
    gran = None
    if q.w is not None and q.w_shape is not None and len(q.w_shape) >= 3:
        gran = weight_granularity(q.w, q.w_shape, q.attrs.group)
        findings += _weight_findings(q, gran, runtimes)
    findings += _length_findings(q)
    findings += _zero_point_findings(q, index)
    findings += _bias_findings(q)
    execution = {r: qdq_execution(r, q, gran, opset) for r in _all_runtimes(runtimes)}
    findings += _execution_findings({r: execution[r] for r in runtimes})
    return QdqReport(q, findings, _quantization(q, gran),
                     {r: e.to_dict() for r, e in execution.items()})


def _all_runtimes(judged: Sequence[str]) -> list[str]:
    return list(dict.fromkeys([*RUNTIMES, *judged]))


def _weight_findings(q: QdqConvTranspose, g: WeightGranularity, runtimes: Sequence[str]
                     ) -> list[Finding]:
    assert q.w is not None and q.w_shape is not None
    cin, cpo = q.w_shape[0], q.w_shape[1]
    group = q.attrs.group
    cpi = cin // max(group, 1)
    right = ("axis 1" if group == 1 else f"opset-21 blocked DequantizeLinear axis 0, block_size "
             f"{cpi} (= C_in/group), scale shape [{group}, {cpo}, k...]")
    out: list[Finding] = []
    if g.meaning == "per_input_channel":
        sev = "info" if tuple(runtimes) == ("tensorrt",) else ""
        out.append(Finding("CT040", f"weight scales per input channel ({g.detail}); per output "
                           f"channel for group {group} is {right} (TensorRT's int8 deconvolution "
                           f"takes axis 0: NVIDIA/TensorRT#2380)", sev))
    elif g.meaning == "axis1_shared_across_groups":
        out.append(Finding("CT041", f"{g.detail} (what onnxruntime's quantize_static writes for "
                           f"grouped layers); per output channel is {right}"))
    elif g.meaning == "per_tensor" and q.w.scale.ndim == 1 and group > 1 \
            and group == cin and cpo == 1:
        out.append(Finding("CT042", f"depthwise layer ({group} groups) with a per-axis weight "
                           f"scale of one value on axis {q.w.axis}: every channel shares one "
                           f"scale; per output channel is axis 0 with {cin} scales (or {right})"))
    if q.w_int is not None:
        ev = integer_evidence(q.w, q.w_int, group, g.meaning)
        if ev is not None and not ev.consistent:
            made = (f"per {ev.made.replace('per_', '').replace('_', ' ')}" if ev.made
                    else "with another scale (no slicing reaches the type's limit)")
            out.append(Finding("CT046", f"the weight integers were made {made}, not with the "
                               f"stored {g.meaning.replace('_', ' ')} scales: {ev.describe()}; "
                               f"MinMax quantization makes every slice that shares a scale reach "
                               f"the type's limit (127; 64 with reduce_range)"))
    return out


def _length_findings(q: QdqConvTranspose) -> list[Finding]:
    out = []
    for role, p, arr in (("W", q.w, q.w_int), ("B", q.b, q.b_int)):
        if p is None or arr is None:
            continue
        try:
            p.expand(tuple(arr.shape))
        except QuantError as exc:
            out.append(Finding("CT045", f"{role}'s DequantizeLinear: {exc} onnx.checker's full "
                               f"check passes this; onnxruntime, OpenVINO and tract refuse it"))
    return out


def _zero_point_findings(q: QdqConvTranspose, index: GraphIndex) -> list[Finding]:
    out = []
    roles: list[tuple[str, QParams | None, str | None]] = [
        ("W", q.w, q.w.dtype if q.w else None), ("B", q.b, q.b.dtype if q.b else None),
        ("X", q.x, q.x_quantize.dtype if q.x_quantize else None),
        ("Y", q.y_dequantize, q.y.dtype if q.y else None)]
    for role, p, ints in roles:
        problem = zero_point_problem(p, ints)
        if p is not None and problem:
            assert p.zero_point is not None
            vals = sorted({int(v) for v in p.zero_point.ravel()})[:4]
            out.append(Finding("CT044", f"{role}'s {p.node}: zero point {vals} of type "
                               f"{p.zp_dtype} on {ints} integers: {problem} (onnxruntime and "
                               f"tract refuse it; OpenVINO runs it)"))
    if q.w is not None and q.w_int is not None and q.w.dtype == "int8" \
            and q.w.zero_point is not None and np.all(q.w.zero_point == -128):
        d = q.w_int.astype(np.int64) + 128
        top, bottom = float(np.mean(d >= 192)), float(np.mean(d <= 63))
        if min(top, bottom) >= _WRAPPED_TAILS:
            out.append(Finding("CT044", f"W's {q.w.node}: int8 zero point -128 with the integers "
                               f"piled at both ends ({top:.0%} of q - zp >= 192, {bottom:.0%} "
                               f"<= 63): uint8 weights with zero point 128 stored as int8 "
                               f"(wrapped); the dequantized weights are all >= 0 and small "
                               f"weights of either sign land at the two ends"))
    if q.x is not None and q.x.dtype == "int8" and q.x.zero_point is not None \
            and np.any(q.x.zero_point == -128):
        src = q.x_quantize.node if q.x_quantize else q.x.node
        qnode = index.producer.get(src)
        before = index.producer.get(qnode.input[0]) if qnode is not None and qnode.input else None
        if before is None or before.op_type not in _NON_NEGATIVE:
            what = before.op_type if before is not None else "a graph input"
            out.append(Finding("CT044", f"X's {q.x.node}: int8 zero point -128 on an input not "
                               f"produced by a non-negative op ({what}): negative inputs "
                               f"saturate to 0; right only if the input is never negative, "
                               f"else a uint8 zero point 128 stored as int8 (wrapped)",
                               "warning"))
    return out


def _bias_findings(q: QdqConvTranspose) -> list[Finding]:
    if q.b is None or q.b_int is None or q.w is None or q.w_shape is None or q.x is None:
        return []
    try:
        bs, bz = q.b.expand(tuple(q.b_int.shape))
        ws, _ = q.w.expand(q.w_shape)
    except QuantError:
        return []   # CT045 says why
    out = []
    if np.any(bz):
        out.append(Finding("CT043", f"B's {q.b.node}: nonzero bias zero point "
                           f"{sorted({int(v) for v in np.ravel(bz)})[:4]}; int32 bias is "
                           f"symmetric (zero point 0)"))
    if not q.x.per_tensor:
        return out
    c_out = q.w_shape[1] * q.attrs.group
    oc = output_channel_index(q.w_shape, q.attrs.group).ravel()
    full = np.broadcast_to(ws, q.w_shape).ravel()
    per_oc = np.full(c_out, np.nan)
    constant = True
    for c in range(c_out):
        vals = np.unique(full[oc == c])
        constant &= vals.size == 1
        per_oc[c] = vals[0]
    b_scale = np.broadcast_to(bs, (c_out,)) if np.ndim(bs) <= 1 else None
    if b_scale is None:
        return out
    if not constant:
        out.append(Finding("CT043", f"B's {q.b.node}: bias scale cannot be x_scale * w_scale: "
                           f"the weight scale is not constant within an output channel (bias "
                           f"scale {_few(b_scale)})"))
        return out
    want = float(q.x.scale.ravel()[0]) * per_oc
    rel = np.abs(b_scale - want) / np.maximum(np.abs(want), 1e-30)
    bad = np.flatnonzero(rel > _REL)
    if bad.size:
        c = int(bad[0])
        out.append(Finding("CT043", f"B's {q.b.node}: bias scale != x_scale * w_scale in "
                           f"{bad.size} of {c_out} output channel(s) (channel {c}: "
                           f"{b_scale[c]:.6g} vs {want[c]:.6g}, ratio {b_scale[c] / want[c]:.4g})"))
    return out


def _few(a: np.ndarray) -> str:
    v = [f"{x:.4g}" for x in np.ravel(a)[:4]]
    return "[" + ", ".join(v) + (", ...]" if np.size(a) > 4 else "]")


def _execution_findings(judged: dict[str, QdqExecution]) -> list[Finding]:
    out = []
    refused = {r: e for r, e in judged.items() if e.mode == "refused"}
    if refused:
        out.append(Finding("CT047", "refused by " + "; ".join(
            f"{r} ({e.note})" for r, e in refused.items())))
    faulty = {r: e for r, e in judged.items() if e.fault}
    if faulty:
        out.append(Finding("CT048", "computed wrongly by " + "; ".join(
            f"{r}: {e.fault}" for r, e in faulty.items())))
    floats = [r for r, e in judged.items() if e.mode == "float"]
    if floats:
        out.append(Finding("CT049", f"run in float (DequantizeLinear -> float ConvTranspose -> "
                           f"QuantizeLinear), not int8, by {', '.join(floats)}"))
    return out


def _params_dict(p: QParams | None) -> dict[str, Any] | None:
    if p is None:
        return None
    return {"node": p.node, "granularity": p.granularity,
            "axis": None if p.per_tensor else p.axis, "block_size": p.block_size,
            "dtype": p.dtype, "zero_point_dtype": p.zp_dtype, "scales": int(p.scale.size),
            "scale": [float(v) for v in p.scale.ravel()[:8]],
            "zero_point": None if p.zero_point is None
            else sorted({int(v) for v in p.zero_point.ravel()})[:8]}


def _quantization(q: QdqConvTranspose, g: WeightGranularity | None) -> dict[str, Any]:
    weight = _params_dict(q.w)
    if weight is not None and g is not None and q.w is not None:
        weight["meaning"] = g.meaning
        weight["detail"] = g.detail
        weight["group"] = q.attrs.group
        if q.w_int is not None:
            ev = integer_evidence(q.w, q.w_int, q.attrs.group, g.meaning)
            weight["integers_made"] = None if ev is None else ev.made
    return {"input": _params_dict(q.x), "weight": weight, "bias": _params_dict(q.b),
            "output": _params_dict(q.y), "notes": list(q.notes)}
