"""Pairing: each source transposed-conv layer with the ONNX nodes that implement it.

The proof of a pair is the weight: the ConvTranspose whose ``W`` equals the
source layer's weight in ONNX layout (``layer.weights_to_onnx``), exactly or
after a recognisable edit (spatially flipped, C_in/C_out swapped, group blocks
permuted; a 1-D layer run as a 2-D ConvTranspose holds the same values with a
unit axis). Names (Keras layer name, torch qualname in node or initializer
names, dynamo's ``pkg.torch.onnx.name_scopes`` metadata) only break ties and
are reported as ``paired_by`` hints.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx

from ._graph import ARITH, DATA_FORWARD, LAYOUT_BACK, Graph

__all__ = ["LayerPath", "Pairing", "activation_ops", "pair_layers", "weight_relation"]

# Keras activation -> the ONNX op types that compute it as one node.
_ACTIVATION_OPS: dict[str, frozenset[str]] = {
    "linear": frozenset(), "relu": frozenset({"Relu"}), "tanh": frozenset({"Tanh"}),
    "sigmoid": frozenset({"Sigmoid"}), "elu": frozenset({"Elu"}), "selu": frozenset({"Selu"}),
    "softplus": frozenset({"Softplus"}), "softsign": frozenset({"Softsign"}),
    "leaky_relu": frozenset({"LeakyRelu"}), "relu6": frozenset({"Clip"}),
    "hard_sigmoid": frozenset({"HardSigmoid"}), "gelu": frozenset({"Gelu"}),
    "exponential": frozenset({"Exp"}), "mish": frozenset({"Mish"}),
}


def activation_ops(layer: Any) -> frozenset[str]:
    """The op types of the source layer's own activation (torch modules have none)."""
    return _ACTIVATION_OPS.get(str(getattr(layer.spec, "activation", "linear")), frozenset())


@dataclass
class LayerPath:
    """The nodes of one paired layer: the ConvTranspose, the cut's input and output."""

    conv: onnx.NodeProto
    t_in: str
    t_out: str
    nodes: list[onnx.NodeProto]
    relation: str                 # exact, kernel_flipped, layout_swapped, group_slicing
    hints: list[str] = field(default_factory=list)


@dataclass
class Pairing:
    """Per source index its :class:`LayerPath` (or None); the ConvTranspose nodes no layer explains."""

    paths: list[LayerPath | None]
    unpaired_nodes: list[onnx.NodeProto]


def _nonunit(shape: tuple[int, ...]) -> list[int]:
    return [d for d in shape if d != 1]


def _as(w: np.ndarray, shape: tuple[int, ...]) -> np.ndarray | None:
    """``w`` reshaped to ``shape`` where only unit axes differ (a 1-D kernel run as 2-D)."""
    if w.shape == shape:
        return w
    if w.size == int(np.prod(shape)) and _nonunit(w.shape) == _nonunit(shape):
        return w.reshape(shape)
    return None


def _same(a: np.ndarray | None, b: np.ndarray) -> bool:
    return a is not None and a.shape == b.shape and bool(np.array_equal(a, b))


def _zero_taps(w: np.ndarray, w_src: np.ndarray) -> bool:
    """``w`` is ``w_src`` with zero kernel taps added on some spatial axes (how an exporter
    writes torch's output_padding >= stride, legal below dilation, for onnxruntime)."""
    if w.ndim != w_src.ndim or w.shape[:2] != w_src.shape[:2] or w.shape == w_src.shape \
            or any(a < b for a, b in zip(w.shape[2:], w_src.shape[2:])):
        return False
    ranges = [range(a - b + 1) for a, b in zip(w.shape[2:], w_src.shape[2:])]
    for offsets in itertools.product(*ranges):
        sl = (slice(None), slice(None), *(slice(o, o + n) for o, n in
                                          zip(offsets, w_src.shape[2:])))
        if np.array_equal(w[sl], w_src):
            rest = w.copy()
            rest[sl] = 0
            return not rest.any()
    return False


def weight_relation(w_node: np.ndarray, w_src: np.ndarray, groups: int = 1) -> str | None:
    """How the node's ``W`` relates to the source's ONNX-layout weight: ``exact``,
    ``kernel_flipped``, ``layout_swapped``, ``group_slicing``, or None (unrelated)."""
    w_src = np.asarray(w_src, dtype=np.float32)
    w = _as(np.asarray(w_node, dtype=np.float32), w_src.shape)
    if _same(w, w_src) or _zero_taps(np.asarray(w_node, dtype=np.float32), w_src):
        return "exact"
    spatial = tuple(range(2, w_src.ndim))
    if _same(w, np.flip(w_src, axis=spatial)):
        return "kernel_flipped"
    swapped = np.swapaxes(w_src, 0, 1)
    if _same(_as(np.asarray(w_node, dtype=np.float32), swapped.shape), swapped):
        return "layout_swapped"
    if w is not None and groups > 1 and w_src.shape[0] % groups == 0:
        blocks = np.split(w_src, groups, axis=0)
        orders = (itertools.permutations(range(groups)) if groups <= 4 else
                  ([(i + r) % groups for i in range(groups)] for r in range(1, groups)))
        for order in orders:
            if list(order) != list(range(groups)) and _same(
                    w, np.concatenate([blocks[i] for i in order], axis=0)):
                return "group_slicing"
    return None


def _hints(graph: Graph, node: onnx.NodeProto, source: Any) -> list[str]:
    """Names that point at the source layer (reported, never the proof)."""
    record = source.record
    name = str(getattr(record, "name", "") or "")
    path = str(getattr(record, "path", "") or "")
    found = []
    if name and (f"/{name}_1/" in node.name or f"/{path}/" in node.name
                 or node.name.startswith(f"/{path.replace('.', '/')}")):
        found.append("node name")
    w_name = node.input[1] if len(node.input) > 1 else ""
    if path and (w_name.startswith(f"{path}.") or f"/{name}_1/" in w_name):
        found.append("weight name")
    for prop in node.metadata_props:
        if prop.key == "pkg.torch.onnx.name_scopes" and f"'{path}'" in prop.value:
            found.append("name_scopes metadata")
    return found


def _path(graph: Graph, conv: onnx.NodeProto, acts: frozenset[str]) -> tuple[str, str, list]:
    """(input tensor, output tensor, nodes) of the layer around ``conv`` (module docstring)."""
    nodes = [conv]
    t_in = conv.input[0]
    while t_in not in graph.graph_inputs:
        prod = graph.producer.get(t_in)
        if prod is None or prod.op_type not in LAYOUT_BACK or len(graph.data_inputs(prod)) != 1:
            break
        nodes.insert(0, prod)
        t_in = graph.data_inputs(prod)[0]
    t_out = conv.output[0]
    while t_out not in graph.graph_outputs:
        nxt = []
        for c in graph.consumers.get(t_out, []):
            data = graph.data_inputs(c)
            follows = (c.op_type in DATA_FORWARD and bool(c.input) and c.input[0] == t_out) \
                or (c.op_type in ARITH | acts and data == [t_out])
            if follows:
                nxt.append(c)
        if len(nxt) != 1 or nxt[0].op_type == "ConvTranspose":
            break
        nodes.append(nxt[0])
        t_out = nxt[0].output[0]
    return t_in, t_out, nodes


def pair_layers(graph: Graph, sources: list[Any]) -> Pairing:
    """Pair each source with a ConvTranspose (exact weights first, then edits; hints break ties)."""
    convs = [n for n in graph.model.graph.node if n.op_type == "ConvTranspose"]
    weights: dict[int, np.ndarray | None] = {
        id(c): graph.const(c.input[1]) if len(c.input) > 1 else None for c in convs}
    relations: dict[tuple[int, int], str] = {}
    for i, src in enumerate(sources):
        if src.kernel is None:
            continue
        w_src, _ = src.layer.weights_to_onnx(src.kernel, src.bias)
        groups = int(getattr(src.spec, "groups", 1) or 1)
        for c in convs:
            w = weights[id(c)]
            if w is not None:
                rel = weight_relation(w, np.asarray(w_src), groups)
                if rel is not None:
                    relations[(i, id(c))] = rel
    taken: set[int] = set()
    chosen: list[onnx.NodeProto | None] = [None] * len(sources)
    for want_exact in (True, False):
        for i in range(len(sources)):
            if chosen[i] is not None:
                continue
            cands = [c for c in convs if id(c) not in taken and (i, id(c)) in relations
                     and (relations[(i, id(c))] == "exact") == want_exact]
            if not cands:
                continue
            cands.sort(key=lambda c: -len(_hints(graph, c, sources[i])))
            chosen[i] = cands[0]
            taken.add(id(cands[0]))
    paths: list[LayerPath | None] = []
    for i, src in enumerate(sources):
        conv = chosen[i]
        if conv is None:
            paths.append(None)
            continue
        t_in, t_out, nodes = _path(graph, conv, activation_ops(src.layer))
        paths.append(LayerPath(conv, t_in, t_out, nodes, relations[(i, id(conv))],
                               _hints(graph, conv, src)))
    return Pairing(paths, [c for c in convs if id(c) not in taken])
