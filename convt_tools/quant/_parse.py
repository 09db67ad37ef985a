"""Find the Q/DQ nodes around a ConvTranspose node and read their parameters.

The QDQ form (what ``onnxruntime.quantization.quantize_static`` writes, and
the portable hand-made forms)::

    x -> QuantizeLinear -> DequantizeLinear --\\
    W_int8 -> DequantizeLinear ----------------> ConvTranspose -> QuantizeLinear -> DequantizeLinear -> y
    B_int32 -> DequantizeLinear --------------/

Each part is optional: a float ``W`` constant, a float bias, an activation
that is not quantized. :func:`parse_qdq` records what is there, as stored
(:class:`~._params.QParams`), with the node's float attributes
(:class:`ConvAttrs`), at every rank and group. Only constant parameters are
read (initializers or ``Constant`` nodes in scope); a DequantizeLinear whose
integers or scale are computed at run time is not a QDQ weight here.

onnx is never imported: attributes and tensors are read from the protos.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np

from ..onnxbase import tensor_to_array
from ._params import QParams

if TYPE_CHECKING:
    import onnx

    from ..onnxbase import Graph

__all__ = ["ConvAttrs", "GraphIndex", "QdqConvTranspose", "model_qdq_nodes", "parse_qdq",
           "read_conv_attrs"]

_DEFAULT_DOMAINS = ("", "ai.onnx")


@dataclass(frozen=True)
class ConvAttrs:
    """A ConvTranspose node's float attributes, defaults filled from the weight's rank.

    ``pads`` is ``[b_1..b_r, e_1..e_r]`` (zeros when absent), ``output_shape``
    None when absent.
    """

    rank: int
    kernel_shape: tuple[int, ...]
    strides: tuple[int, ...]
    dilations: tuple[int, ...]
    pads: tuple[int, ...]
    output_padding: tuple[int, ...]
    group: int
    auto_pad: str
    output_shape: tuple[int, ...] | None

    def explicit_pads(self, spatial: Sequence[int]) -> tuple[int, ...]:
        """The pads the ONNX spec gives at input lengths ``spatial``: ``pads`` as written for
        NOTSET; 0 for VALID; for SAME_* and ``output_shape`` the total
        ``T = (in-1)*s + (k-1)*d + 1 + op - O`` (``O`` = ``in*s`` for SAME) split
        ``T//2`` at the start for SAME_UPPER, ``T - T//2`` otherwise."""
        if self.output_shape is None and self.auto_pad not in ("SAME_UPPER", "SAME_LOWER"):
            return self.pads if self.auto_pad != "VALID" else (0,) * (2 * self.rank)
        begin, end = [], []
        for i, n in enumerate(spatial):
            full = (n - 1) * self.strides[i] + (self.kernel_shape[i] - 1) * self.dilations[i] + 1
            target = self.output_shape[-self.rank:][i] if self.output_shape is not None \
                else n * self.strides[i]
            total = full + self.output_padding[i] - target
            b = total // 2 if self.auto_pad == "SAME_UPPER" else total - total // 2
            begin.append(b)
            end.append(total - b)
        return tuple(begin + end)


@dataclass(frozen=True, eq=False)
class QdqConvTranspose:
    """One ConvTranspose node and the Q/DQ around it, as stored.

    ``x``: the DequantizeLinear feeding X (None: X is not dequantized there);
    ``x_quantize``: the QuantizeLinear feeding that DQ (None when absent);
    ``w`` / ``w_int``: W's DequantizeLinear and its stored integers (None: W is
    not a dequantized constant; ``w_float`` then holds a float constant W);
    ``b`` / ``b_int`` likewise for the bias (``b_float``: a float constant B);
    ``y``: the QuantizeLinear reading the output (None: the output stays
    float); ``y_dequantize``: the DequantizeLinear after it.
    ``notes``: what was seen but not understood (a non-constant scale, ...).
    """

    name: str
    attrs: ConvAttrs
    x: QParams | None = None
    x_quantize: QParams | None = None
    w: QParams | None = None
    w_int: np.ndarray | None = None
    w_float: np.ndarray | None = None
    b: QParams | None = None
    b_int: np.ndarray | None = None
    b_float: np.ndarray | None = None
    y: QParams | None = None
    y_dequantize: QParams | None = None
    notes: tuple[str, ...] = field(default=())

    @property
    def quantized(self) -> bool:
        """Any Q/DQ around the node (a QDQ node rather than a float one)."""
        return any(p is not None for p in (self.x, self.w, self.b, self.y))

    @property
    def w_shape(self) -> tuple[int, ...] | None:
        w = self.w_int if self.w_int is not None else self.w_float
        return None if w is None else tuple(int(d) for d in w.shape)

    @property
    def weight(self) -> np.ndarray | None:
        """W as the graph computes it: dequantized (float64) or the float constant."""
        if self.w is not None and self.w_int is not None:
            s, z = self.w.expand(self.w_int.shape)
            return (self.w_int.astype(np.float64) - z) * s
        return None if self.w_float is None else self.w_float.astype(np.float64)

    @property
    def bias(self) -> np.ndarray | None:
        """B as the graph computes it: dequantized (float64), the float constant, or None."""
        if self.b is not None and self.b_int is not None:
            s, z = self.b.expand(self.b_int.shape)
            return (self.b_int.astype(np.float64) - z) * s
        return None if self.b_float is None else self.b_float.astype(np.float64)


class GraphIndex:
    """Producers, consumers and constants of one graph (or function body), built once."""

    def __init__(self, graph: Graph, constants: Mapping[str, onnx.TensorProto] | None = None
                 ) -> None:
        self.graph = graph
        self.producer: dict[str, onnx.NodeProto] = {}
        self.consumers: dict[str, list[onnx.NodeProto]] = {}
        consts: dict[str, onnx.TensorProto] = dict(constants or {})
        for t in getattr(graph, "initializer", ()):
            consts.setdefault(t.name, t)
        for node in graph.node:
            for o in node.output:
                self.producer[o] = node
            for i in node.input:
                self.consumers.setdefault(i, []).append(node)
            if node.op_type == "Constant" and node.domain in _DEFAULT_DOMAINS:
                for a in node.attribute:
                    if a.name == "value" and a.HasField("t"):
                        consts[node.output[0]] = a.t
        self.constants = consts
        self._arrays: dict[str, np.ndarray] = {}

    def array(self, name: str) -> np.ndarray | None:
        """The constant ``name`` as an array (cached), None when it is not a constant."""
        if not name or name not in self.constants:
            return None
        if name not in self._arrays:
            self._arrays[name] = tensor_to_array(self.constants[name])
        return self._arrays[name]

    def op(self, name: str, op_type: str) -> onnx.NodeProto | None:
        node = self.producer.get(name)
        if node is None or node.op_type != op_type or node.domain not in _DEFAULT_DOMAINS:
            return None
        return node


def _attr_ints(node: onnx.NodeProto, name: str) -> tuple[int, ...] | None:
    for a in node.attribute:
        if a.name == name:
            return tuple(int(v) for v in a.ints)
    return None


def _attr_int(node: onnx.NodeProto, name: str, default: int) -> int:
    for a in node.attribute:
        if a.name == name:
            return int(a.i)
    return default


def _attr_str(node: onnx.NodeProto, name: str, default: str) -> str:
    for a in node.attribute:
        if a.name == name:
            return a.s.decode("utf-8", "replace")
    return default


def read_conv_attrs(node: onnx.NodeProto, w_shape: tuple[int, ...] | None,
                    rank: int | None = None) -> ConvAttrs:
    """:class:`ConvAttrs` of ``node``; the rank from ``kernel_shape``, W, or ``rank``."""
    ks = _attr_ints(node, "kernel_shape")
    r = len(ks) if ks else (len(w_shape) - 2 if w_shape is not None else rank or 2)
    kernel = ks if ks else (tuple(w_shape[2:]) if w_shape is not None else (1,) * r)
    return ConvAttrs(
        rank=r, kernel_shape=tuple(kernel),
        strides=_attr_ints(node, "strides") or (1,) * r,
        dilations=_attr_ints(node, "dilations") or (1,) * r,
        pads=_attr_ints(node, "pads") or (0,) * (2 * r),
        output_padding=_attr_ints(node, "output_padding") or (0,) * r,
        group=_attr_int(node, "group", 1),
        auto_pad=_attr_str(node, "auto_pad", "NOTSET"),
        output_shape=_attr_ints(node, "output_shape"))


def _params(index: GraphIndex, node: onnx.NodeProto, dtype: str | None,
            notes: list[str]) -> QParams | None:
    """The parameters of Q/DQ ``node``; None (with a note) when they are not constants."""
    inputs = list(node.input) + ["", ""]
    scale = index.array(inputs[1])
    zp = index.array(inputs[2]) if inputs[2] else None
    if scale is None or (inputs[2] and zp is None):
        notes.append(f"{node.op_type} {node.name or node.output[0]!r}: scale or zero point is "
                     f"not a constant; not read as QDQ")
        return None
    zp_type = None if zp is None else str(zp.dtype)
    return QParams(node=node.name or node.output[0], scale=np.asarray(scale),
                   zero_point=None if zp is None else np.asarray(zp),
                   axis=_attr_int(node, "axis", 1), block_size=_attr_int(node, "block_size", 0),
                   dtype=dtype or zp_type or "uint8")


def _dequantized_constant(index: GraphIndex, name: str, notes: list[str]
                          ) -> tuple[QParams | None, np.ndarray | None, np.ndarray | None]:
    """``(params, integers, float constant)`` of an input: a DQ of a constant, or a constant."""
    dq = index.op(name, "DequantizeLinear")
    if dq is None:
        return None, None, index.array(name)
    ints = index.array(dq.input[0])
    if ints is None:
        notes.append(f"DequantizeLinear {dq.name or dq.output[0]!r} reads a computed tensor; "
                     f"not read as a QDQ constant")
        return None, None, None
    return _params(index, dq, str(ints.dtype), notes), ints, None


def parse_qdq(index: GraphIndex, node: onnx.NodeProto, label: str = "",
              x_rank: int | None = None) -> QdqConvTranspose:
    """The Q/DQ around ConvTranspose ``node`` of ``index``'s graph (module doc)."""
    notes: list[str] = []
    inputs = list(node.input) + ["", "", ""]
    w, w_int, w_float = _dequantized_constant(index, inputs[1], notes)
    b, b_int, b_float = (_dequantized_constant(index, inputs[2], notes) if inputs[2]
                         else (None, None, None))
    x = xq = None
    dq = index.op(inputs[0], "DequantizeLinear")
    if dq is not None:
        q = index.op(dq.input[0], "QuantizeLinear")
        xq = _params(index, q, None, notes) if q is not None else None
        zp = index.array(dq.input[2]) if len(dq.input) > 2 and dq.input[2] else None
        x = _params(index, dq, xq.dtype if xq is not None else (
            str(zp.dtype) if zp is not None else None), notes)
    y = ydq = None
    users = index.consumers.get(node.output[0], []) if node.output else []
    if len(users) == 1 and users[0].op_type == "QuantizeLinear" \
            and users[0].domain in _DEFAULT_DOMAINS:
        y = _params(index, users[0], None, notes)
        after = index.consumers.get(users[0].output[0], [])
        if len(after) == 1 and after[0].op_type == "DequantizeLinear":
            ydq = _params(index, after[0], y.dtype if y is not None else None, notes)
    w_shape = None
    for arr in (w_int, w_float):
        if arr is not None:
            w_shape = tuple(int(d) for d in arr.shape)
    attrs = read_conv_attrs(node, w_shape, None if x_rank is None else x_rank - 2)
    return QdqConvTranspose(label or node.name or "ConvTranspose", attrs, x, xq, w, w_int,
                            w_float, b, b_int, b_float, y, ydq, tuple(notes))


def model_qdq_nodes(model: onnx.ModelProto) -> list[tuple[onnx.NodeProto, QdqConvTranspose]]:
    """Every ConvTranspose node of the main graph with its Q/DQ (graph order)."""
    index = GraphIndex(model.graph)
    out = []
    for i, node in enumerate(model.graph.node):
        if node.op_type == "ConvTranspose" and node.domain in _DEFAULT_DOMAINS:
            out.append((node, parse_qdq(index, node, node.name or f"#{i}")))
    return out
