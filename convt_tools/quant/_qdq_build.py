"""Turn a float one-ConvTranspose model (the exporter's) into its int8 QDQ model.

:func:`quantize_model` keeps every node of the float model and replaces the
ConvTranspose by its QDQ neighbourhood (new nodes through
:class:`~convt_tools.onnxbase.GraphBuilder`)::

    x -> QuantizeLinear -> DequantizeLinear --\\
    W_q (int8) -> DequantizeLinear -------------> ConvTranspose -> QuantizeLinear
    B_q (int32) -> DequantizeLinear -----------/      -> DequantizeLinear -> (the float
                                                          model's next node: crop Slice,
                                                          layout Transpose, activation)

The ``split`` form puts ``Split`` (channel axis) before and ``Concat`` after
one such neighbourhood per group (group-1 nodes; same scales everywhere).
Q/DQ sit right at the ConvTranspose, so the crop Slice and layout Transposes
move quantized values unchanged and the activation runs in float on the
dequantized output.

Calibration (MinMax, :func:`~._quantize.activation_params`): the input range
is that of the calibration batch; the output range that of the float
ConvTranspose's own output (before crop and activation: what its
QuantizeLinear sees), computed with :func:`convt_tools.reference.conv_transpose`
from the node's attributes and the float ``W``/``B``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from ..errors import ConvtError
from ..onnxbase import GraphBuilder, default_opset
from ..reference import conv_transpose
from ._forms import DEFAULT_TARGETS, choose_form, int8_faults
from ._quantize import QTYPES, QType, activation_params
from ._parse import model_qdq_nodes
from ._reference import QuantResult, int8_reference
from ._weights import QuantizedWeights, WeightPart, quantize_weights

__all__ = ["ActivationParams", "QuantizeInfo", "conv_node", "float_weights",
           "model_reference", "neighbourhood", "quantize_model", "replace_conv"]


@dataclass(frozen=True)
class ActivationParams:
    """A Q -> DQ pair's parameters."""

    scale: np.float32
    zero_point: int
    qtype: QType

    def as_json(self) -> dict[str, Any]:
        return {"scale": float(self.scale), "zero_point": self.zero_point,
                "type": self.qtype.name}


@dataclass
class QuantizeInfo:
    """What :func:`quantize_model` did: the form, parameters, calibration and notes."""

    form: str
    targets: tuple[str, ...]
    x: ActivationParams
    y: ActivationParams
    weights: QuantizedWeights
    calibration: str
    notes: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        part = self.weights.parts[0]
        return {
            "form": self.form, "targets": list(self.targets),
            "weight_granularity": "per_tensor" if self.form == "per_tensor" else
            "per_input_channel" if self.form == "axis0_in" else "per_output_channel",
            "weight_axis": part.axis, "weight_block_size": part.block_size,
            "nodes": len(self.weights.parts),
            "input": self.x.as_json(), "output": self.y.as_json(),
            "bias": "int32, scale x_scale*w_scale" if part.bias_q is not None else None,
            "calibration": self.calibration, "notes": self.notes,
        }


def conv_node(model: onnx.ModelProto) -> tuple[int, onnx.NodeProto]:
    """The one ConvTranspose of ``model``'s main graph (index, node); else a ConvtError."""
    found = [(i, n) for i, n in enumerate(model.graph.node) if n.op_type == "ConvTranspose"]
    if len(found) != 1:
        raise ConvtError(f"model: holds {len(found)} ConvTranspose nodes in its main graph; "
                         f"expected exactly one (a one-layer model).", field="model")
    return found[0]


def _attrs(node: onnx.NodeProto, rank: int) -> dict[str, Any]:
    at = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    if at.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET") or "output_shape" in at:
        raise ConvtError("model: the ConvTranspose uses auto_pad or output_shape; run "
                         "convt repair first (explicit pads).", field="model")
    return {"strides": list(at.get("strides", [1] * rank)),
            "dilations": list(at.get("dilations", [1] * rank)),
            "pads": list(at.get("pads", [0] * 2 * rank)),
            "output_padding": list(at.get("output_padding", [0] * rank)),
            "group": int(at.get("group", 1))}


def float_weights(model: onnx.ModelProto, node: onnx.NodeProto
                  ) -> tuple[np.ndarray, np.ndarray | None]:
    """The float ``W``/``B`` initializers the ConvTranspose reads (float64)."""
    inits = {t.name: t for t in model.graph.initializer}
    names = list(node.input[1:3])
    missing = [n for n in names if n and n not in inits]
    if missing:
        raise ConvtError(f"model: ConvTranspose input {missing[0]!r} is not a float "
                         f"initializer; expected constant float weights.", field="model")
    w = numpy_helper.to_array(inits[names[0]]).astype(np.float64)
    b = numpy_helper.to_array(inits[names[1]]).astype(np.float64) \
        if len(names) > 1 and names[1] else None
    return w, b


def _conv_input(model: onnx.ModelProto, node: onnx.NodeProto, x: np.ndarray) -> np.ndarray:
    """The ConvTranspose's input for graph input ``x``: the graph input itself, or it
    through the exporter's layout Transpose."""
    want = node.input[0]
    if want == model.graph.input[0].name:
        return x
    producer = next((n for n in model.graph.node if want in n.output), None)
    if producer is None or producer.op_type != "Transpose" \
            or producer.input[0] != model.graph.input[0].name:
        raise ConvtError("model: the ConvTranspose's input is neither the graph input nor "
                         "its layout Transpose; expected a model made by convt export.",
                         field="model")
    perm = [int(p) for p in helper.get_attribute_value(producer.attribute[0])]
    return np.transpose(x, perm)


def _act(builder: GraphBuilder, name: str, p: ActivationParams, tag: str) -> str:
    scale = builder.const(np.float32(p.scale), name=f"{tag}_scale")
    zp = builder.const(np.asarray(p.zero_point, p.qtype.dtype), dtype=p.qtype.dtype,
                       name=f"{tag}_zero_point")
    q = builder.op("QuantizeLinear", name, scale, zp, name=f"{tag}_QuantizeLinear")
    return builder.op("DequantizeLinear", q, scale, zp, name=f"{tag}_DequantizeLinear")


def _weight_dq(builder: GraphBuilder, part: WeightPart, suffix: str) -> list[str]:
    q = builder.const(part.q, dtype=np.int8, name=f"W_quantized{suffix}")
    scale = builder.const(part.scale, dtype=np.float32, name=f"W_scale{suffix}")
    zp = builder.const(part.zero_point, dtype=np.int8, name=f"W_zero_point{suffix}")
    attrs: dict[str, int] = {}
    if part.axis is not None:
        attrs["axis"] = part.axis
    if part.block_size:
        attrs["block_size"] = part.block_size
    out = [builder.op("DequantizeLinear", q, scale, zp, name=f"W_DequantizeLinear{suffix}",
                      **attrs)]
    if part.bias_q is not None and part.bias_scale is not None:
        bq = builder.const(part.bias_q, dtype=np.int32, name=f"B_quantized{suffix}")
        bs = builder.const(part.bias_scale, dtype=np.float32, name=f"B_scale{suffix}")
        battrs = {"axis": 0} if part.bias_scale.ndim else {}
        out.append(builder.op("DequantizeLinear", bq, bs, name=f"B_DequantizeLinear{suffix}",
                              **battrs))
    return out


def _conv(builder: GraphBuilder, node: onnx.NodeProto, x: str, part: WeightPart, suffix: str,
          x_p: ActivationParams | None, y_p: ActivationParams | None, conv_name: str) -> str:
    """One QDQ ConvTranspose ``conv_name`` (x Q/DQ when ``x_p``, W/B DQ, the node, y Q/DQ
    when ``y_p``); returns its last output."""
    xdq = x if x_p is None else _act(builder, x, x_p, f"x{suffix}")
    inputs = [xdq, *_weight_dq(builder, part, suffix)]
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    attrs["group"] = part.group
    y = builder.op("ConvTranspose", *inputs, name=conv_name, **attrs)
    return y if y_p is None else _act(builder, y, y_p, f"y{suffix}")


def _drop_unused(model: onnx.ModelProto, candidates: set[str]) -> None:
    """Remove the DequantizeLinear nodes producing ``candidates`` and the initializers among
    their inputs (and ``candidates``) that nothing reads any more."""
    graph = model.graph
    outputs = {o.name for o in graph.output}
    while True:
        used = {i for n in graph.node for i in n.input} | outputs
        dead = [n for n in graph.node if n.op_type == "DequantizeLinear"
                and n.output[0] in candidates and n.output[0] not in used]
        if not dead:
            break
        for n in dead:
            candidates.update(i for i in n.input if i)
            graph.node.remove(n)
    used = {i for n in graph.node for i in n.input} | outputs
    kept = [t for t in graph.initializer if t.name in used or t.name not in candidates]
    graph.ClearField("initializer")
    graph.initializer.extend(kept)


# Tensor and node names the builder writes (a suffix keeps them unique in a model).
_NAMES = ("W_quantized", "W_scale", "W_zero_point", "W_DequantizeLinear", "B_quantized", "B_scale",
          "B_DequantizeLinear", "x_scale", "x_zero_point", "x_QuantizeLinear",
          "x_DequantizeLinear", "y_scale", "y_zero_point", "y_QuantizeLinear",
          "y_DequantizeLinear", "split_sizes", "Split_groups", "Concat_groups",
          "W_quantized_g0", "x_g0_scale")


def replace_conv(model: onnx.ModelProto, index: int, qw: QuantizedWeights,
                 x_p: ActivationParams | None, y_p: ActivationParams | None) -> None:
    """Replace ConvTranspose ``model.graph.node[index]`` by ``qw``'s nodes, in place.

    The new nodes read the old node's input and write its output name. With
    ``x_p``/``y_p`` each new ConvTranspose gets its own input/output Q -> DQ
    (the export; the ``split`` form in a repair, where requantizing a
    dequantized value at the same parameters is exact); without them, only
    W/B DequantizeLinear are new. The old W/B (their DequantizeLinear and
    initializers) are removed where nothing else reads them.
    """
    node = model.graph.node[index]
    taken = {t.name for t in model.graph.initializer} | {n.name for n in model.graph.node} \
        | {o for n in model.graph.node for o in n.output}
    prefix, k = "q_", 1
    while any(t.startswith(prefix) for t in taken):   # fresh names stay unique (SSA)
        k += 1
        prefix = f"q{k}_"
    builder = GraphBuilder(default_opset(model), np.float32, prefix=prefix)
    suffix, n = "", 1
    while any(f"{base}{suffix}" in taken for base in _NAMES):   # quantize_static's names
        n += 1
        suffix = f"_{n}"
    x = node.input[0]
    label = node.name or "ConvTranspose"
    if qw.form == "split":
        sizes = builder.const([p.in_channels[1] - p.in_channels[0] for p in qw.parts],
                              dtype=np.int64, name=f"split_sizes{suffix}")
        pieces = builder.op_multi("Split", x, sizes, n_out=len(qw.parts), axis=1,
                                  name=f"Split_groups{suffix}")
        outs = [_conv(builder, node, piece, part, f"_g{i}{suffix}", x_p, y_p, f"{label}_g{i}")
                for i, (piece, part) in enumerate(zip(pieces, qw.parts))]
        builder.op("Concat", *outs, axis=1, name=f"Concat_groups{suffix}")
    else:
        _conv(builder, node, x, qw.parts[0], suffix, x_p, y_p, label)
    builder.nodes[-1].output[0] = node.output[0]     # the old node's consumers read it
    old = {n for n in node.input[1:3] if n}
    nodes = list(model.graph.node)
    model.graph.ClearField("node")
    model.graph.node.extend(nodes[:index] + builder.nodes + nodes[index + 1:])
    model.graph.initializer.extend(builder.initializers)
    _drop_unused(model, old)


def _set_metadata(model: onnx.ModelProto, info: QuantizeInfo) -> None:
    props = {p.key: p.value for p in model.metadata_props}
    notes = json.loads(props.get("convt.notes", "[]")) + info.notes
    props["convt.notes"] = json.dumps(notes)
    props["convt.quantization"] = json.dumps(info.as_json(), sort_keys=True)
    helper.set_model_props(model, props)


def quantize_model(model: onnx.ModelProto, calibration: np.ndarray, *,
                   per_channel: bool = True, activations: str | None = None,
                   targets: tuple[str, ...] = DEFAULT_TARGETS,
                   calibration_source: str = "given") -> tuple[onnx.ModelProto, QuantizeInfo]:
    """The int8 QDQ model of the float one-ConvTranspose ``model`` (module docstring).

    ``calibration``: a batch for the graph input (already checked against
    it). ``per_channel``: weights per output channel in the form the
    ``targets`` read (:func:`~._forms.choose_form`), else per tensor;
    ``activations``: ``int8`` (symmetric, zero point 0) or ``uint8``
    (asymmetric); None: int8, except uint8 where a target's int8 kernel is
    known to be wrong for this layer (:func:`~._forms.int8_faults`; noted).
    ``model`` is not modified.
    """
    if activations is not None and activations not in QTYPES:
        raise ConvtError(f"activations: got {activations!r}; expected one of "
                         f"{', '.join(QTYPES)}.", field="activations")
    out = onnx.ModelProto()
    out.CopyFrom(model)
    index, node = conv_node(out)
    w, b = float_weights(out, node)
    rank = w.ndim - 2
    attrs = _attrs(node, rank)
    group = attrs["group"]
    x = _conv_input(out, node, np.asarray(calibration, np.float64))
    y = conv_transpose(x, w, b, strides=attrs["strides"], dilations=attrs["dilations"],
                       pads=attrs["pads"], output_padding=attrs["output_padding"], group=group)
    form, notes = choose_form(w.shape[0], w.shape[1] * group, group, per_channel=per_channel,
                              targets=targets, opset=default_opset(out))
    faults = int8_faults(targets, form, group, attrs["strides"], attrs["dilations"])
    if activations is None:
        activations = "uint8" if faults else "int8"
        notes += [f"activations uint8 (runs in float there): {f}" for f in faults]
    elif activations == "int8":
        notes += [f"warning: int8 activations asked; {f}" for f in faults]
    qtype = QTYPES[activations]
    x_p = ActivationParams(*activation_params(float(x.min()), float(x.max()), qtype), qtype)
    y_p = ActivationParams(*activation_params(float(y.min()) if y.size else 0.0,
                                              float(y.max()) if y.size else 0.0, qtype), qtype)
    qw = quantize_weights(w, b, group, x_p.scale, form)
    replace_conv(out, index, qw, x_p, y_p)
    info = QuantizeInfo(form, targets, x_p, y_p, qw, calibration_source, notes)
    _set_metadata(out, info)
    onnx.checker.check_model(out, full_check=True)
    return out, info


def _producers(graph: onnx.GraphProto) -> dict[str, onnx.NodeProto]:
    return {o: n for n in graph.node for o in n.output}


def neighbourhood(model: onnx.ModelProto, start: str, end: str, c_in: int,
                  rank: int) -> onnx.ModelProto:
    """The part of ``model`` from float tensor ``start`` to float tensor ``end`` as a model
    whose input is ``start`` ``(N, c_in, *spatial)`` (symbolic sizes) and output ``end``:
    the nodes ``end`` depends on back to ``start``, with the initializers they read. A
    tensor on the way that is neither produced nor a constant is a ConvtError."""
    producers = _producers(model.graph)
    inits = {t.name: t for t in model.graph.initializer}
    keep: list[onnx.NodeProto] = []
    todo, seen = [end], set()
    while todo:
        name = todo.pop()
        if name in seen or name == start or name in inits or not name:
            continue
        seen.add(name)
        node = producers.get(name)
        if node is None:
            raise ConvtError(f"model: tensor {name!r} between {start!r} and {end!r} is a graph "
                             f"input; the QDQ neighbourhood is not self-contained.",
                             field="model")
        if node not in keep:
            keep.append(node)
            todo.extend(node.input)
    order = [n for n in model.graph.node if n in keep]
    used = {i for n in order for i in n.input}
    graph = helper.make_graph(
        order, "qdq_neighbourhood",
        [helper.make_tensor_value_info(start, onnx.TensorProto.FLOAT,
                                       ["n", c_in, *[f"s{i}" for i in range(rank)]])],
        [helper.make_tensor_value_info(end, onnx.TensorProto.FLOAT, None)],
        [t for name, t in inits.items() if name in used])
    sub = helper.make_model(graph, opset_imports=list(model.opset_import),
                            ir_version=model.ir_version)
    return sub


def model_reference(model: onnx.ModelProto, x: np.ndarray) -> QuantResult:
    """The int8 reference of a QDQ neighbourhood (:func:`neighbourhood`) or of an exported
    channels-first model for input ``x``: one QDQ ConvTranspose, or a group split
    (``Split`` of the input, one QDQ node per group, ``Concat``) joined on the channels."""
    nodes = model_qdq_nodes(model)
    if len(nodes) == 1:
        return int8_reference(nodes[0][1], x)
    per_in = x.shape[1] // len(nodes)
    parts = [int8_reference(q, x[:, i * per_in:(i + 1) * per_in])
             for i, (_, q) in enumerate(nodes)]

    def cat(name: str) -> np.ndarray:
        return np.concatenate([getattr(p, name) for p in parts], axis=1)

    return QuantResult(cat("y"), cat("y_float"), cat("y_int"), sum(p.x_ties for p in parts),
                       sum(p.y_ties for p in parts), cat("tie_mask"), parts[0].out_params,
                       sum(p.saturated for p in parts))
