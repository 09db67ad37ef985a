"""``convt validate --model MODEL`` with no config: every ConvTranspose node of a model made
elsewhere, against the reference of its own ONNX semantics, on each runtime.

For each ConvTranspose node of the main graph (:func:`convt_tools.quant.model_qdq_nodes`):

1. the node is cut out with the Q/DQ around it (:func:`node_model`): X's
   QuantizeLinear -> DequantizeLinear, W's and B's DequantizeLinear, the
   ConvTranspose with its attributes, the output QuantizeLinear ->
   DequantizeLinear; their constants; the model's opsets and IR version. Its
   one input is the tensor the first kept node reads;
2. the input has the node's inferred X shape (unknown dims: batch 1, C_in from
   W, spatial 5) and seeded values: standard normal for a float node; for a
   QDQ node uniform over X's representable range ``[(qmin - zp)*s, (qmax - zp)*s]``
   (integers over ``[qmin, qmax]`` when X is given as integers);
3. the reference is the node's ONNX meaning: :func:`convt_tools.reference.conv_transpose`
   in float64 for a float node; :func:`convt_tools.quant.int8_reference` (Q/DQ
   simulated exactly) for a QDQ node;
4. each runtime runs the cut-out model; a float node is judged with validate's
   default tolerance (:mod:`.tolerance`), a QDQ node ending in QuantizeLinear in
   LSB of the output scale (:func:`convt_tools.quant.compare_lsb`; default 1 LSB;
   rounding ties counted in the result's notes).

One :class:`~convt_tools.validate.ValidationResult` per node x runtime, named
``<model>:<node>``; a runtime that refuses the node gives an ``ERROR`` result,
a node whose Q/DQ parameters do not fit its tensors (no defined meaning) an
``ERROR`` on every runtime saying why.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from ..errors import ConvtError
from ..onnxbase import infer_shapes, resolve_model
from ..quant import (
    GraphIndex, QdqConvTranspose, QuantError, compare_lsb, int8_reference, parse_qdq,
)
from ..reference import conv_transpose
from ..runtimes import RuntimeRefused
from . import ValidationResult
from .tolerance import Tolerance, resolve_tolerance

if TYPE_CHECKING:
    import onnx

__all__ = ["DEFAULT_LSB", "node_model", "validate_model_nodes"]

DEFAULT_LSB = 1.0
_SPATIAL_DEFAULT = 5


def _kept_nodes(index: GraphIndex, q: QdqConvTranspose, node: onnx.NodeProto
                ) -> list[onnx.NodeProto]:
    """The Q/DQ nodes of ``q`` and ``node`` itself, in graph order."""
    names = {p.node for p in (q.x, q.x_quantize, q.w, q.b, q.y, q.y_dequantize) if p is not None}
    keep = []
    for n in index.graph.node:
        if n is node or (n.op_type in ("QuantizeLinear", "DequantizeLinear")
                         and (n.name or (n.output[0] if n.output else "")) in names):
            keep.append(n)
    return keep


def node_model(model: onnx.ModelProto, index: GraphIndex, node: onnx.NodeProto,
               q: QdqConvTranspose, x_shape: Sequence[int], x_dtype: Any = np.float32
               ) -> tuple[onnx.ModelProto, str, int]:
    """``(model, input name, input element type)``: ``node`` cut out with its Q/DQ (module doc).

    Built from copies of the model's own protos (onnx is not imported here).
    """
    kept = _kept_nodes(index, q, node)
    sub = type(model)()
    sub.ir_version = model.ir_version
    sub.opset_import.extend(model.opset_import)
    sub.producer_name = "convt validate --model (one node cut out)"
    g = sub.graph
    g.name = f"node_{node.name or 'convtranspose'}"
    produced = {o for n in kept for o in n.output}
    first_input = ""
    for n in kept:
        g.node.add().CopyFrom(n)
        for name in n.input:
            if not name or name in produced or any(t.name == name for t in g.initializer):
                continue
            if name in index.constants:
                t = g.initializer.add()
                t.CopyFrom(index.constants[name])
                t.name = name
            elif not first_input:
                first_input = name
    if not first_input:
        raise ConvtError(f"model: ConvTranspose {node.name!r} reads no graph tensor; nothing to "
                         f"validate.", field="model")
    elem = {np.dtype(v): k for k, v in _FLOATS.items()}.get(np.dtype(x_dtype), 1)
    if q.x is not None and q.x_quantize is None:
        elem = _ELEM.get(q.x.dtype, 3)
    vi = g.input.add()
    vi.name = first_input
    vi.type.tensor_type.elem_type = elem
    for d in x_shape:
        vi.type.tensor_type.shape.dim.add().dim_value = int(d)
    out = kept[-1].output[0]
    vo = g.output.add()
    vo.name = out
    return sub, first_input, elem


# ONNX float element types a float node may read (TensorProto.DataType values)
_FLOATS = {1: np.float32, 10: np.float16, 11: np.float64}

# ONNX element types of the integer types (TensorProto.DataType values)
_ELEM = {"uint8": 2, "int8": 3, "uint16": 4, "int16": 5, "int32": 6}


def _x_shape(shapes: dict[str, tuple[int | None, ...]], node: onnx.NodeProto,
             q: QdqConvTranspose) -> tuple[tuple[int, ...], str]:
    known = shapes.get(node.input[0]) if node.input else None
    r = q.attrs.rank
    w = q.w_shape
    default = (1, w[0] if w else 1, *([_SPATIAL_DEFAULT] * r))
    if known is None or len(known) != r + 2:
        return default, f"default {list(default)} (the model does not fix X's shape)"
    dims = tuple(int(k) if k is not None and k > 0 else d for k, d in zip(known, default))
    filled = any(k is None or k <= 0 for k in known)
    return dims, ("the model's inferred X shape" + (" (unknown dims filled: batch 1, spatial "
                                                     f"{_SPATIAL_DEFAULT})" if filled else ""))


def _input(q: QdqConvTranspose, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    if q.x_quantize is not None:
        s, z = q.x_quantize.expand(shape)
        lo = (q.x_quantize.qmin - z) * s
        hi = (q.x_quantize.qmax - z) * s
        return (lo + (hi - lo) * rng.random(shape)).astype(np.float32)
    if q.x is not None:
        return rng.integers(q.x.qmin, q.x.qmax + 1, shape).astype(q.x.dtype)
    return rng.standard_normal(shape).astype(np.float32)


def validate_model_nodes(model: str | os.PathLike[str] | onnx.ModelProto, adapters: list[Any],
                         *, seed: int = 0, lsb: float = DEFAULT_LSB, rtol: float | None = None,
                         atol: float | None = None, name: str | None = None
                         ) -> list[list[ValidationResult]]:
    """One list of results (one per adapter) per ConvTranspose node of ``model`` (module doc)."""
    proto, label = resolve_model(model, name)
    shapes_by_path, types_by_path, _ = infer_shapes(proto)
    shapes = shapes_by_path.get("main", {})
    types = types_by_path.get("main", {})
    index = GraphIndex(proto.graph)
    groups: list[list[ValidationResult]] = []
    nodes = [(i, n) for i, n in enumerate(proto.graph.node)
             if n.op_type == "ConvTranspose" and n.domain in ("", "ai.onnx")]
    if not nodes:
        raise ConvtError(f"model: {label!r} has no ConvTranspose node in its main graph; "
                         f"nothing to validate.", field="model")
    for i, node in nodes:
        q = parse_qdq(index, node, node.name or f"#{i}")
        shape, source = _x_shape(shapes, node, q)
        x = _input(q, shape, np.random.default_rng([seed, i]))
        if not q.quantized and node.input and types.get(node.input[0]) in _FLOATS:
            x = x.astype(_FLOATS[types[node.input[0]]])   # a float16 / float64 node
        groups.append(_node_results(proto, index, node, q, x, source, adapters, lsb, rtol, atol,
                                    f"{label}:{q.name}"))
    return groups


def _node_results(proto: onnx.ModelProto, index: GraphIndex, node: onnx.NodeProto,
                  q: QdqConvTranspose, x: np.ndarray, source: str, adapters: list[Any],
                  lsb: float, rtol: float | None, atol: float | None, name: str
                  ) -> list[ValidationResult]:
    notes: list[str] = list(q.notes)
    error = ""
    ref_y: np.ndarray | None = None
    tol = Tolerance(0.0, 0.0, "")
    qref = None
    weights = "the model's own constants (W, B and Q/DQ parameters)"
    try:
        if q.quantized:
            qref = int8_reference(q, x)
            ref_y = qref.y
            if qref.out_params is not None:
                scale = float(np.max(qref.out_params.scale))
                unit = "output integers" if not qref.dequantized else f"output scale {scale:.6g}"
                tol = Tolerance(lsb * (scale if qref.dequantized else 1.0), 0.0,
                                f"{lsb:g} LSB of the {unit} (int8 reference: Q/DQ simulated "
                                f"exactly, round half to even, saturation)")
            else:
                tol = resolve_tolerance(np.dtype(np.float32), x.astype(np.float64),
                                        _keras_kernel(q), q.bias, float(np.max(np.abs(ref_y))),
                                        rtol, atol)
            notes.append(f"reference rounding ties: {qref.x_ties} at the input, {qref.y_ties} "
                         f"at the output; {qref.saturated} output element(s) saturated")
        else:
            w = q.weight
            if w is None:
                raise QuantError(f"{q.name}: W is not a constant; validate needs it.",
                                 field="model")
            a = q.attrs
            ref_y = conv_transpose(x.astype(np.float64), w, q.bias, strides=a.strides,
                                   dilations=a.dilations, pads=a.explicit_pads(x.shape[2:]),
                                   output_padding=a.output_padding, group=a.group)
            tol = resolve_tolerance(x.dtype, x.astype(np.float64), _keras_kernel(q),
                                    q.bias, float(np.max(np.abs(ref_y))) if ref_y.size else 0.0,
                                    rtol, atol)
    except (QuantError, ConvtError) as exc:
        error = f"the node has no defined ONNX meaning: {exc}"
    sub, in_name, _ = node_model(proto, index, node, q, x.shape, x.dtype)
    results = []
    for rt in adapters:
        r = ValidationResult(name=name, passed=False, input_shape=tuple(x.shape),
                             input_source=source,
                        reference_shape=tuple(ref_y.shape) if ref_y is not None else (),
                        model_shape=None, dtype=str(x.dtype), tolerance=tol,
                        weights_source=weights, providers=[], notes=list(notes),
                        runtime=rt.name, runtime_version=rt.version())
        results.append(_judge(r, rt, sub, in_name, x, ref_y, qref, tol, lsb, error))
    return results


def _keras_kernel(q: QdqConvTranspose) -> np.ndarray:
    """W in the layout the tolerance formula counts (``k..., C_out/group, C_in``)."""
    w = q.weight
    assert w is not None
    return np.moveaxis(np.moveaxis(w, 0, -1), 0, -2)


def _judge(r: ValidationResult, rt: Any, sub: Any, in_name: str, x: np.ndarray,
           ref_y: np.ndarray | None, qref: Any, tol: Tolerance, lsb: float, error: str
           ) -> ValidationResult:
    if error:
        r.error = r.message = error
        return r
    try:
        got = np.asarray(rt.load(sub).run({in_name: x})[0])
    except RuntimeRefused as exc:
        r.error = r.message = exc.reason
        return r
    assert ref_y is not None
    r.model_shape = tuple(got.shape)
    if got.shape != ref_y.shape:
        r.message = f"output shape {list(got.shape)} != reference {list(ref_y.shape)}"
        return r
    diff = np.abs(got.astype(np.float64) - ref_y)
    r.max_abs_error = float(diff.max()) if diff.size else 0.0
    r.max_rel_error = float((diff / np.maximum(np.abs(ref_y), 1e-30)).max()) if diff.size else 0.0
    if diff.size:
        r.worst_index = tuple(int(i) for i in np.unravel_index(int(np.argmax(diff)), diff.shape))
    if qref is not None and qref.out_params is not None:
        c = compare_lsb(got, qref, lsb)
        r.passed = c.passed
        r.notes.append(f"LSB: {c.describe()}")
        r.message = "" if c.passed else f"{c.over} element(s) beyond {lsb:g} LSB: {c.describe()}"
        return r
    bound = tol.atol + tol.rtol * np.abs(ref_y)
    over = int(np.count_nonzero(~(diff <= bound)))
    r.passed = over == 0
    r.message = "" if r.passed else (f"{over} element(s) beyond atol + rtol*|reference|; max abs "
                                     f"error {r.max_abs_error:.3g}")
    return r
