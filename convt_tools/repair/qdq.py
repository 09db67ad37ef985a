"""``convt repair`` of QDQ ConvTranspose nodes (int8; issue 20): no ``--intent`` needed.

The meaning of a QDQ ConvTranspose is the float layer's; what can be fixed
depends on what the model determines.

Without a float source (:func:`repair_qdq` with ``float_source=None``) only
what the model itself determines exactly is rewritten:

- a weight zero point of the wrong type whose value fits the weights' type
  (e.g. a uint8 0 on int8 weights) gets that type;
- weights whose scales are shared across groups (axis 1, ``C_out/group``
  scales), a depthwise weight collapsed to one per-axis scale, or a
  per-output-channel form a named target refuses (blocked DequantizeLinear on
  tract) are re-expressed per output channel in the form the targets read
  (:func:`~convt_tools.quant.choose_form`) with the same integers: identical
  dequantized values (checked);
- a bias whose scale is not ``x_scale * w_scale`` per output channel gets that
  scale, its integers requantized from its dequantized values (each moves by
  at most half a step of the new scale; the report gives the largest move).

Everything else is refused with the reason: integers made with scales other
than those stored (:func:`~convt_tools.quant.integer_evidence`: the scales
that made them are not in the model), per-input-channel scales (the layout
is not a per-output-channel one, and their values differ within output
channels), a zero point outside its type or one of ``-128`` in int8 (a uint8
``128`` reinterpreted), parameters that do not fit their tensor.

With a float source (:class:`FloatSource`: the float ONNX model the QDQ model
was quantized from, or a Keras/torch layer's weights; matched to the QDQ nodes
by name, else in order), each node's weights are requantized per
output channel in the targets' form (:func:`~convt_tools.quant.quantize_weights`),
the bias int32 at ``x_scale * w_scale``; activation scales are kept.

Proof, before anything is returned: each repaired neighbourhood (from the
float input of its input QuantizeLinear to its output DequantizeLinear) runs
on every named target that is installed, on seeded inputs, and must be within
1 LSB of the output scale of :func:`~convt_tools.quant.model_reference` (the
fake-quant reference); with a float source, every output channel's
dequantized weights must be within half a step of the float ones. A failure
raises :class:`~.report.RepairRefused`; nothing is written then.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx

from ..errors import ConvtError
from ..onnxbase import default_opset, resolve_model
from ..quant import (
    BLOCKED_MIN_OPSET, DEFAULT_TARGETS, INT8, TARGETS, UINT8, ActivationParams, GraphIndex,
    QdqConvTranspose, QParams, QuantizedWeights, WeightPart, bias_int32, choose_form,
    compare_lsb, dequantize, float_weights, int8_faults, integer_evidence, model_reference,
    neighbourhood, out_channel_view, parse_qdq, quantize_weights, relayout, replace_conv,
    weight_granularity,
)
from ..runtimes import ADAPTERS, RuntimeRefused, RuntimeUnavailable, get_runtime
from .report import RepairRefused

__all__ = ["FloatSource", "QdqNodeRepair", "QdqRepairReport", "has_qdq_convtranspose",
           "repair_qdq"]

#: A repaired node must be this close to the fake-quant reference (LSB of the output scale).
TOLERANCE_LSB = 1.0
#: Input spatial size for a proof where the model leaves it unknown.
STAND_IN = 5
PROOF_BATCH = 2


@dataclass(frozen=True)
class FloatSource:
    """The float weights a QDQ model was quantized from: ``(name, W, B)`` per ConvTranspose
    (ONNX layout ``W (C_in, C_out/group, *k)``), matched to the QDQ nodes by name, else in
    order."""

    label: str
    layers: tuple[tuple[str, np.ndarray, np.ndarray | None], ...]

    @classmethod
    def from_onnx(cls, model: onnx.ModelProto, label: str) -> FloatSource:
        """Every ConvTranspose of a float ONNX model's main graph (constant float W/B)."""
        convs = [n for n in model.graph.node if n.op_type == "ConvTranspose"]
        if not convs:
            raise ConvtError(f"float: {label!r} has no ConvTranspose node; expected the float "
                             f"model the QDQ model was quantized from.", field="float")
        return cls(label, tuple((n.name, *float_weights(model, n)) for n in convs))

    def weights(self, name: str, position: int, w_shape: tuple[int, ...]
                ) -> tuple[np.ndarray, np.ndarray | None]:
        """The float ``(W, B)`` of QDQ node ``name`` (the ``position``-th ConvTranspose, with
        weights of ``w_shape``): the one layer of that name, else the one layer of that
        weight shape, else the one at ``position``."""
        named = [(w, b) for layer, w, b in self.layers if layer and layer == name]
        shaped = [(w, b) for _, w, b in self.layers if tuple(w.shape) == tuple(w_shape)]
        for found in (named, shaped):
            if len(found) == 1:
                return found[0]
        if position < len(self.layers):
            return self.layers[position][1], self.layers[position][2]
        raise ConvtError(f"float: {self.label!r} has {len(self.layers)} ConvTranspose layer(s); "
                         f"none matches QDQ node {name!r} by name, weight shape {list(w_shape)} "
                         f"or position {position}.", field="float")


@dataclass
class QdqNodeRepair:
    """One QDQ ConvTranspose: what its weights meant, what was changed, the proof."""

    name: str
    before: str
    form: str | None = None
    changes: list[str] = field(default_factory=list)
    proof: list[dict[str, Any]] = field(default_factory=list)
    weight_max_steps: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"node": self.name, "weights_before": self.before, "form": self.form,
                "changes": self.changes, "proof": self.proof,
                "weight_max_error_in_steps": self.weight_max_steps}


@dataclass
class QdqRepairReport:
    """What :func:`repair_qdq` did (or why it refused)."""

    model: str
    float_source: str | None
    targets: tuple[str, ...]
    nodes: list[QdqNodeRepair] = field(default_factory=list)
    untouched: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    refusal: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "kind": "qdq", "float": self.float_source,
                "targets": list(self.targets), "refused": self.refusal is not None,
                "reason": self.refusal, "nodes": [n.to_dict() for n in self.nodes],
                "untouched": self.untouched, "notes": self.notes}

    def to_text(self) -> str:
        lines = [f"QDQ repair of {self.model}"
                 + (f" from float {self.float_source}" if self.float_source else "")
                 + f" for {', '.join(self.targets)}"]
        for n in self.nodes:
            lines.append(f"  {n.name}: weights {n.before} -> form {n.form}")
            lines += [f"    - {c}" for c in n.changes]
            lines += [f"    proof {p['runtime']}: {p['result']}" for p in n.proof]
        lines += [f"  untouched: {u}" for u in self.untouched]
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def has_qdq_convtranspose(model: onnx.ModelProto) -> bool:
    """Whether any ConvTranspose of the main graph reads dequantized weights."""
    index = GraphIndex(model.graph)
    return any(parse_qdq(index, n).w is not None for n in model.graph.node
               if n.op_type == "ConvTranspose")


def _per_tensor(p: QParams | None, what: str, name: str) -> ActivationParams:
    if p is None or not p.per_tensor:
        raise RepairRefused(f"node {name!r}: the {what} is not quantized per tensor (Q -> DQ "
                            f"with one scale); a QDQ repair needs its scale.", field="model")
    qtype = UINT8 if p.dtype == "uint8" else INT8
    zp = 0 if p.zero_point is None else int(np.asarray(p.zero_point).reshape(-1)[0])
    return ActivationParams(np.float32(np.asarray(p.scale).reshape(-1)[0]), zp, qtype)


def _scales_per_out_channel(q: QdqConvTranspose, group: int) -> np.ndarray:
    """The weight scale of each output channel (the scales must be constant within each)."""
    assert q.w is not None and q.w_int is not None
    scale, _ = q.w.expand(tuple(q.w_int.shape))
    full = np.broadcast_to(scale, q.w_int.shape)
    per = out_channel_view(np.ascontiguousarray(full), group)
    return per.reshape(per.shape[0], -1)[:, 0].astype(np.float32)


def _refuse(name: str, why: str) -> RepairRefused:
    return RepairRefused(f"node {name!r}: {why}; nothing written.", field="model")


def _check_zero_point(q: QdqConvTranspose, name: str, changes: list[str]) -> None:
    """Refuse zero points the model does not determine; note a type that can be fixed."""
    assert q.w is not None and q.w_int is not None
    zp = q.w.zero_point
    if zp is None:
        return
    ints = np.asarray(q.w_int)
    lo, hi = (np.iinfo(ints.dtype).min, np.iinfo(ints.dtype).max)
    values = np.asarray(zp).astype(np.int64)
    if values.min() < lo or values.max() > hi:
        raise _refuse(name, f"the weight zero point {values.reshape(-1)[:4].tolist()} "
                      f"({zp.dtype}) lies outside the weights' type {ints.dtype} [{lo}, {hi}], "
                      f"so the dequantized weights are undefined; give --float")
    if ints.dtype == np.int8 and (values == -128).any():
        raise _refuse(name, "a weight zero point of -128 on int8 weights is what a uint8 zero "
                      "point 128 becomes when reinterpreted as int8; which one was meant is not "
                      "in the model; give --float")
    if zp.dtype != ints.dtype:
        changes.append(f"weight zero point type {zp.dtype} -> {ints.dtype} (folded into the "
                       f"integers, value {values.reshape(-1)[:4].tolist()})")


def _check_activations(q: QdqConvTranspose, name: str) -> None:
    """Refuse an int8 activation zero point of -128: a wrapped uint8 128 or a deliberate
    non-negative range, which the model does not say."""
    for what, p in (("input", q.x), ("output", q.y)):
        if p is not None and p.zero_point is not None and p.dtype == "int8" \
                and (np.asarray(p.zero_point) == -128).any():
            raise _refuse(name, f"the {what} zero point is -128 in int8: either a uint8 zero "
                          f"point 128 reinterpreted (negative values then saturate to 0) or a "
                          f"range meant to be non-negative; which one is not in the model, and "
                          f"repair keeps activation parameters; re-quantize the activations "
                          f"(convt export --quantize from the float layer)")


def _avoid_int8_faults(q: QdqConvTranspose, name: str, group: int, form: str,
                       targets: tuple[str, ...], opset: int, x_p: ActivationParams | None,
                       rep: QdqNodeRepair) -> str:
    """``form``, or ``blocked`` where a target's int8 kernel would compute ``form`` wrongly
    (:func:`~convt_tools.quant.int8_faults`; blocked DequantizeLinear runs in float there);
    refused where blocked is not available (a target refuses it, or opset < 21)."""
    if x_p is None or x_p.qtype is not INT8 or x_p.zero_point != 0 or (form == "per_tensor" \
            and group > 1):
        return form
    faults = int8_faults(targets, form, group, list(q.attrs.strides), list(q.attrs.dilations))
    if not faults:
        return form
    refusing = [t for t in targets if not TARGETS[t].blocked]
    if refusing or opset < BLOCKED_MIN_OPSET:
        why = f"{', '.join(refusing)} refuse(s) it" if refusing else f"the model's opset is {opset}"
        raise _refuse(name, f"{faults[0]}; blocked DequantizeLinear (same values, run in float "
                      f"there) is not available ({why}), and repair keeps the int8 activation "
                      f"parameters; drop {', '.join(refusing) or 'openvino'} from --target or "
                      f"re-export (convt export --quantize gives such layers uint8 activations)")
    rep.changes.append(f"weights as blocked DequantizeLinear so that OpenVINO runs the node in "
                       f"float: {faults[0]}")
    return "blocked"


def _without_float(q: QdqConvTranspose, name: str, group: int, targets: tuple[str, ...],
                   opset: int, x_p: ActivationParams | None,
                   rep: QdqNodeRepair) -> QuantizedWeights | None:
    """The node's weights re-expressed (same integers), or None when nothing needs fixing."""
    assert q.w is not None and q.w_int is not None
    gran = weight_granularity(q.w, tuple(q.w_int.shape), group)
    rep.before = gran.meaning
    if gran.meaning in ("invalid", "other"):
        raise _refuse(name, f"the weight scales {gran.detail}")
    _check_zero_point(q, name, rep.changes)
    if gran.meaning == "per_input_channel" and "tensorrt" not in targets:
        raise _refuse(name, f"{gran.detail}; per-input-channel scales differ within output "
                      f"channels, so no per-output-channel form holds the same values; give "
                      f"--float (or --target tensorrt, which reads them)")
    evidence = integer_evidence(q.w, q.w_int, group, gran.meaning)
    if evidence is not None and not evidence.consistent:
        raise _refuse(name, f"the integers were made {evidence.made or 'with other scales'} "
                      f"but are stored under {gran.meaning} scales ({evidence.describe()}): "
                      f"the scales that made them are not in the model; give --float")
    if gran.meaning == "per_input_channel":
        rep.form = "axis0_in"
        rep.changes.append("weights per input channel kept: TensorRT's form")
        return None
    c_in, per_out = q.w_int.shape[0], q.w_int.shape[1]
    s_co = _scales_per_out_channel(q, group)
    # one scale declared per axis (a 1-element axis scale) on a grouped layer: collapsed
    collapsed = gran.meaning == "per_tensor" and group > 1 and np.asarray(q.w.scale).ndim == 1
    if gran.meaning == "per_tensor" and not collapsed:
        form = "per_tensor"
    else:
        form, notes = choose_form(c_in, per_out * group, group, per_channel=True,
                                  targets=targets, opset=opset)
        rep.changes += notes
    form = _avoid_int8_faults(q, name, group, form, targets, opset, x_p, rep)
    stored_ok = (gran.meaning == "per_output_channel" and _stored_form(q, group) == form) or \
        form == "per_tensor"
    if not stored_ok:
        rep.changes.append(f"weights {gran.meaning} ({gran.detail}) re-expressed as {form} "
                           f"with the same integers and identical dequantized values")
    bias_q, bias_s = _bias(q, s_co, x_p, name, rep.changes)
    _, zp = q.w.expand(tuple(q.w_int.shape))
    ints = np.asarray(q.w_int).astype(np.int64) - np.broadcast_to(zp, q.w_int.shape).astype(
        np.int64)
    if zp.any():
        # OpenVINO computes a nonzero weight zero point wrongly with int8 activations at zero
        # point 0 for group 1 (fixtures/quant: 131-136 LSB).
        ov_fault = "openvino" in targets and group == 1 and x_p is not None \
            and x_p.qtype is INT8 and x_p.zero_point == 0
        if not (ov_fault or rep.changes or not stored_ok):
            return None
        if ints.min() < INT8.qmin or ints.max() > INT8.qmax:
            raise _refuse(name, f"the weights are asymmetric (zero point "
                          f"{np.unique(zp).astype(int)[:4].tolist()}) and q - zero_point leaves int8, so "
                          f"they cannot be re-expressed with zero point 0 and the same values"
                          + ("; OpenVINO computes this form wrongly with int8 activations at "
                             "zero point 0" if ov_fault else "") + "; give --float")
        rep.changes.append(f"weight zero point {np.unique(zp).astype(int)[:4].tolist()} folded into the "
                           f"integers (q - zero_point fits int8; same values)"
                           + ("; OpenVINO computes a nonzero weight zero point wrongly with "
                              "int8 activations at zero point 0" if ov_fault else ""))
    if stored_ok and not rep.changes:
        return None
    rep.form = form
    ints = ints.astype(np.int8)
    if form == "per_tensor":
        return quantized_per_tensor(ints, s_co[0], bias_q, bias_s, group)
    return relayout(ints, s_co, bias_q, bias_s, group, form)


def quantized_per_tensor(q: np.ndarray, scale: np.float32, bias_q: np.ndarray | None,
                         bias_s: np.ndarray | None, group: int) -> QuantizedWeights:
    """Per-tensor integers and scale as :class:`QuantizedWeights` (zero point 0)."""
    c_in, c_out = q.shape[0], q.shape[1] * group
    bs = None if bias_s is None else np.asarray(bias_s, np.float32).reshape(-1)[:1].reshape(()) \
        if np.unique(bias_s).size == 1 else bias_s
    part = WeightPart(q, np.asarray(scale, np.float32).reshape(()), np.zeros((), np.int8), None,
                      None, bias_q, bs, group, (0, c_in), (0, c_out))
    return QuantizedWeights("per_tensor", (part,), group)


def _stored_form(q: QdqConvTranspose, group: int) -> str:
    """The per-output-channel form the weights are stored in (:data:`~convt_tools.quant.FORMS`)."""
    assert q.w is not None
    if q.w.block_size:
        return "blocked"
    return "axis1" if q.w.norm_axis(len(q.w_int.shape) if q.w_int is not None else 4) == 1 \
        else "axis0_out"


def _bias(q: QdqConvTranspose, s_co: np.ndarray, x_p: ActivationParams | None, name: str,
          changes: list[str]) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The int32 bias at ``x_scale * w_scale`` (requantized from its values where its scale
    differs); ``(None, None)`` without a quantized bias."""
    if q.b is None or q.b_int is None:
        if q.b_float is not None:
            raise _refuse(name, "the bias is a float constant; a QDQ repair keeps quantized "
                          "biases only")
        return None, None
    if x_p is None:
        raise _refuse(name, "the input is not dequantized per tensor, so x_scale * w_scale is "
                      "not defined")
    want = (np.float32(x_p.scale) * s_co).astype(np.float32)
    values = q.bias
    assert values is not None
    scale, zp = q.b.expand(tuple(q.b_int.shape))
    stored = np.broadcast_to(scale, q.b_int.shape).astype(np.float32)
    if np.array_equal(stored, want) and not np.asarray(zp).any():
        return np.asarray(q.b_int).astype(np.int32), want
    new = bias_int32(values, want)
    moved = float(np.max(np.abs(dequantize(new, QParams("B", want, None, 0, 0, "int32"))
                                - values) / want.astype(np.float64)))
    changes.append(f"bias scale {_short(stored)} -> x_scale*w_scale {_short(want)}; integers "
                   f"requantized from the bias values (largest move {moved:.3g} step)")
    return new, want


def _short(a: np.ndarray) -> str:
    flat = np.asarray(a).reshape(-1)
    text = ", ".join(f"{v:.4g}" for v in flat[:3])
    return f"[{text}{', ...' if flat.size > 3 else ''}]"


def _with_float(q: QdqConvTranspose, name: str, group: int, targets: tuple[str, ...],
                opset: int, x_p: ActivationParams, w: np.ndarray, b: np.ndarray | None,
                rep: QdqNodeRepair) -> QuantizedWeights:
    assert q.w_int is not None
    if tuple(w.shape) != tuple(q.w_int.shape):
        raise ConvtError(f"float: node {name!r} has weights {list(w.shape)} in the float model "
                         f"and {list(q.w_int.shape)} in the QDQ model; expected the model it "
                         f"was quantized from.", field="float")
    if q.w is not None:
        rep.before = weight_granularity(q.w, tuple(q.w_int.shape), group).meaning
    form, notes = choose_form(w.shape[0], w.shape[1] * group, group, per_channel=True,
                              targets=targets, opset=opset)
    form = _avoid_int8_faults(q, name, group, form, targets, opset, x_p, rep)
    rep.form = form
    rep.changes += notes
    rep.changes.append(f"weights requantized per output channel from the float model "
                       f"(form {form}); bias int32 at x_scale*w_scale; activation scales kept")
    qw = quantize_weights(w, b if q.b is not None or q.b_float is not None else None, group,
                          x_p.scale, form)
    d = qw.dequantized()
    step = np.abs(out_channel_view(w, group)).reshape(w.shape[1] * group, -1).max(1)
    scales = np.array([np.max(s) for s in _out_channel_scales(qw)])
    err = np.abs(out_channel_view(d - w, group)).reshape(len(step), -1).max(1)
    rep.weight_max_steps = float(np.max(err / scales))
    if rep.weight_max_steps > 0.5 + 1e-6:
        raise _refuse(name, f"requantized weights are {rep.weight_max_steps:.3g} steps from the "
                      f"float ones (more than half a step)")
    return qw


def _out_channel_scales(qw: QuantizedWeights) -> list[np.ndarray]:
    """Each output channel's weight scale (per-output-channel forms)."""
    out: list[np.ndarray] = []
    for part in qw.parts:
        full = np.broadcast_to(part.params.expand(tuple(part.q.shape))[0], part.q.shape)
        per = out_channel_view(np.ascontiguousarray(full), part.group)
        out += list(per.reshape(per.shape[0], -1))
    return out


def _prove(model: onnx.ModelProto, node_name: str, q: QdqConvTranspose, c_in: int,
           targets: tuple[str, ...], rng: np.random.Generator, rep: QdqNodeRepair) -> None:
    """Run the repaired neighbourhood on each installed target against the reference."""
    index = GraphIndex(model.graph)
    start = _float_input(index, node_name)
    end = _float_output(index, node_name)
    rank = q.attrs.rank
    sub = neighbourhood(model, start, end, c_in, rank)
    x = rng.standard_normal((PROOF_BATCH, c_in, *(STAND_IN,) * rank))
    if q.x is not None:   # inside the calibrated range and a bit beyond (saturation)
        x *= float(np.max(q.x.scale)) * 40
    ref = model_reference(sub, x)
    for name in targets:
        if name not in ADAPTERS:
            rep.proof.append({"runtime": name, "result": "not runnable here (documented only)"})
            continue
        try:
            get_runtime(name).version()
        except RuntimeUnavailable:
            rep.proof.append({"runtime": name, "result": "not installed: not proven"})
            continue
        try:
            y = get_runtime(name).run(sub, {start: x.astype(np.float32)})[0]
        except RuntimeRefused as exc:
            raise _refuse(rep.name, f"{name} refuses the repaired node ({exc})") from None
        cmp = compare_lsb(y, ref, TOLERANCE_LSB)
        rep.proof.append({"runtime": name, "result": cmp.describe(), "max_lsb": cmp.max_lsb,
                          "passed": cmp.passed})
        if not cmp.passed:
            raise _refuse(rep.name, f"{name} computes the repaired node {cmp.describe()} from "
                          f"the fake-quant reference")


def _float_input(index: GraphIndex, name: str) -> str:
    """The float tensor the node's input Q/DQ (and a group split's Split) start from."""
    node = next(n for n in index.graph.node if n.name == name)
    t = node.input[0]
    while True:
        producer = index.producer.get(t)
        if producer is None or producer.op_type not in ("DequantizeLinear", "QuantizeLinear",
                                                        "Split"):
            return t
        t = producer.input[0]


def _float_output(index: GraphIndex, name: str) -> str:
    """The tensor the node's output Q/DQ (and a group split's Concat) end in."""
    node = next(n for n in index.graph.node if n.name == name)
    t = node.output[0]
    while True:
        users = index.consumers.get(t, [])
        if len(users) != 1 or users[0].op_type not in ("QuantizeLinear", "DequantizeLinear",
                                                       "Concat"):
            return t
        t = users[0].output[0]


def repair_qdq(model: Any, *, float_source: FloatSource | None = None,
               targets: tuple[str, ...] = DEFAULT_TARGETS,
               seed: int = 0, name: str | None = None) -> tuple[onnx.ModelProto, QdqRepairReport]:
    """Return ``(repaired ModelProto, report)`` (module docstring); ``model`` is not modified.

    Raises :class:`RepairRefused` (with the partial report as ``.report``)
    when a node cannot be repaired or the proof fails.
    """
    original, label = resolve_model(model, name)
    repaired = copy.deepcopy(original)
    report = QdqRepairReport(label, None if float_source is None else float_source.label,
                             targets)
    try:
        _repair_into(repaired, float_source, targets, seed, report)
    except RepairRefused as exc:
        report.refusal = str(exc)
        exc.report = report  # type: ignore[assignment]
        raise
    onnx.checker.check_model(repaired, full_check=True)
    return repaired, report


def _repair_into(model: onnx.ModelProto, float_source: FloatSource | None,
                 targets: tuple[str, ...], seed: int, report: QdqRepairReport) -> None:
    rng = np.random.default_rng(seed)
    opset = default_opset(model)
    for i, node in enumerate(model.graph.node):   # names address nodes across rewrites
        if node.op_type == "ConvTranspose" and not node.name:
            node.name = f"ConvTranspose_{i}"
    names = [n.name for n in model.graph.node if n.op_type == "ConvTranspose"]
    for position, name in enumerate(names):
        index = GraphIndex(model.graph)
        at = next(i for i, n in enumerate(model.graph.node) if n.name == name)
        q = parse_qdq(index, model.graph.node[at], name)
        if q.w is None or q.w_int is None:
            report.untouched.append(f"{name} (weights not dequantized: a float node)")
            continue
        group = q.attrs.group
        rep = QdqNodeRepair(name, "unknown")
        x_p = _per_tensor(q.x, "input", name) if q.x is not None else None
        _check_activations(q, name)
        if float_source is not None:
            if x_p is None:
                raise _refuse(name, "the input is not dequantized per tensor")
            w, b = float_source.weights(name, position, tuple(q.w_int.shape))
            qw: QuantizedWeights | None = _with_float(q, name, group, targets, opset, x_p, w, b,
                                                      rep)
        else:
            qw = _without_float(q, name, group, targets, opset, x_p, rep)
            before = q.weight
            if qw is not None and (before is None or not np.array_equal(qw.dequantized(), before)):
                raise _refuse(name, "the re-expressed weights do not dequantize to the same "
                              "values")
        if qw is None:
            report.untouched.append(f"{name} (weights {rep.before}, already in a form "
                                    f"{', '.join(targets)} read)")
            continue
        split = qw.form == "split"
        y_p = _per_tensor(q.y, "output", name) if split else None
        if split and x_p is None:
            raise _refuse(name, "a group split needs the input's Q -> DQ parameters")
        replace_conv(model, at, qw, x_p if split else None, y_p)
        _prove(model, f"{name}_g0" if split else name, q, q.w_int.shape[0], targets, rng, rep)
        report.nodes.append(rep)
    if not report.nodes:
        report.notes.append("nothing to repair: every QDQ ConvTranspose is already in a form "
                            "the targets read")

