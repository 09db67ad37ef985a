"""The dynamic repair form: exact at every input size, for ``output_shape`` nodes.

An ``output_shape`` node fixes the output length ``O`` while its natural
length ``L = (n-1)*s + K`` grows with the input length ``n``; no fixed pads
give ``O`` at every ``n``, so when the model leaves ``n`` free the window is
computed from the input's shape at run time::

    n      = Shape(X)[2:]                         (int64, per spatial axis)
    L      = (n - 1) * s + K
    T      = L + c - O                            (c = output_padding for onnx-spec/ort, 0 for tf)
    T'     = T, or max(T, 0) (tf, ort)
    half   = floor(T' / 2)                        = (T' + 2M) / 2 - M, M = O + 1 (no negative
                                                   operand reaches the integer Div)
    begin  = half (tf; SAME_UPPER) or T' - half (NOTSET/SAME_LOWER with onnx-spec or ort)
    F      = ConvTranspose(X, W') with pads 0, no bias, W' = W with zero taps
             (tb, ta) per axis (:func:`dynamic_taps`): F shifted by tb*d, zero rows after
    Y      = Slice(F, begin + tb*d, begin + tb*d + O) + B

The zero taps cover every zero row any input size needs, so no Pad is needed
(tract 0.23 refuses a Pad whose pads are computed). Where W is not a
constant (no taps can be added) the zero rows come from
``Pad(F, max(-begin, 0), max(begin + O - L, 0))`` instead.

Every constant is a ``Constant`` node (valid in graphs and function bodies).
``tf`` is TensorFlow's split of ``L - O`` (:func:`convt_tools.geometry.tf_split`),
``onnx-spec`` the spec's (:func:`convt_tools.geometry.onnx_spec_begin`), ``ort``
onnxruntime 1.32's reading from :mod:`convt_tools.check.readings`; the proof
(:func:`dynamic_proof_sizes`) runs the rewritten nodes at several input
sizes, both parities of ``T`` included, against the reference for the intent
(and, for ``ort``, the original node in onnxruntime).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from ..check import ConvTAttrs
from ..check.probe import make_model
from ..check.sizes import crop_total
from ..geometry import onnx_spec_begin, zero_taps

if TYPE_CHECKING:
    import onnx

__all__ = ["DYNAMIC_FORM", "dynamic_begin", "dynamic_nodes", "dynamic_proof_sizes"]

DYNAMIC_FORM = "dynamic: Shape -> arithmetic -> Slice on the full output (+ bias)"


def _output_shape(a: ConvTAttrs) -> tuple[int, ...]:
    """The node's ``output_shape`` (spatial): the dynamic form is for nodes that set it."""
    if a.output_shape is None:
        raise ValueError("the dynamic form needs a node with an output_shape attribute")
    return a.output_shape


def dynamic_begin(a: ConvTAttrs, intent: str, i: int, n: int) -> int:
    """``begin`` on axis ``i`` at input length ``n``: what :func:`dynamic_nodes` computes."""
    o = _output_shape(a)[i]
    t = a.natural_length(i, n) - o + (0 if intent == "tf" else a.output_padding[i])
    if intent in ("tf", "ort"):
        t = max(t, 0)
    return onnx_spec_begin(t, upper=intent == "tf" or a.auto_pad == "SAME_UPPER")


def dynamic_proof_sizes(a: ConvTAttrs, intent: str, known: Sequence[int | None]) -> list[tuple[int, ...]]:
    """Input sizes to prove at: from the first length with ``T >= 0`` on, four in a row
    (both parities), plus one with ``T < 0`` (zero rows) unless the intent is ``ort``
    (onnxruntime refuses most of those). Known axes keep their length."""
    firsts = []
    for i in range(a.rank):
        n = 1
        while crop_total(a, i, n) < 0:
            n += 1
        firsts.append(n)
    steps = [0, 1, 2, 3] + ([-1] if intent != "ort" and min(firsts) > 1 else [])
    out = []
    for k in steps:
        size = tuple(int(n) if n is not None else max(1, first + k)
                     for n, first in zip(known, firsts))
        if size not in out:
            out.append(size)
    return out


def dynamic_taps(a: ConvTAttrs, intent: str) -> list[tuple[int, int]]:
    """Zero kernel taps ``(before, after)`` per axis that make the Pad unnecessary.

    ``begin(n)`` never decreases with ``n`` and grows by at most ``s`` per
    step while ``L`` grows by exactly ``s``, so the zero rows needed before
    (``-begin``) and after (``begin + O - L``) are largest at ``n = 1``;
    ``ceil(rows / d)`` taps cover them at every size.
    """
    out = []
    for i in range(a.rank):
        b1 = dynamic_begin(a, intent, i, 1)
        before = max(0, -b1)
        after = max(0, b1 + _output_shape(a)[i] - a.natural_length(i, 1))
        d = a.dilations[i]
        out.append((zero_taps(before, d), zero_taps(after, d)))
    return out


def dynamic_nodes(a: ConvTAttrs, intent: str, node: onnx.NodeProto, prefix: str,
                  padded_w: str | None = None,
                  taps: Sequence[tuple[int, int]] | None = None) -> list[Any]:
    """The node list replacing ``node`` (same inputs, same output name), in order.

    With ``padded_w`` (the name of W with :func:`dynamic_taps` zero taps) the
    full output is computed with it, shifted by ``taps_before * d``, and no
    Pad is needed (tract 0.23 cannot run a Pad whose pads are computed);
    without it, zero rows come from a Pad.
    """
    from onnx import TensorProto, helper

    r = a.rank
    x, w = node.input[0], node.input[1]
    b = node.input[2] if len(node.input) > 2 and node.input[2] else ""
    out_name = node.output[0]
    nodes: list[Any] = []

    def name(tag: str) -> str:
        return f"{prefix}_{tag}"

    def const(tag: str, values: Sequence[int]) -> str:
        nm = name(tag)
        nodes.append(helper.make_node("Constant", [], [nm], name=nm, value=helper.make_tensor(
            nm, TensorProto.INT64, [len(values)], [int(v) for v in values])))
        return nm

    def op(kind: str, inputs: Sequence[str], tag: str, **kw: Any) -> str:
        nm = name(tag)
        nodes.append(helper.make_node(kind, list(inputs), [nm], name=nm, **kw))
        return nm

    o = [int(v) for v in _output_shape(a)]
    c = [0 if intent == "tf" else a.output_padding[i] for i in range(r)]
    shape = op("Shape", [x], "shape")
    n = op("Slice", [shape, const("c_lo", [2]), const("c_hi", [2 + r]), const("c_ax", [0])], "n")
    lengths = op("Add", [op("Mul", [op("Sub", [n, const("one", [1] * r)], "n1"),
                                    const("s", a.strides)], "ns"),
                         const("k", [a.effective_kernel(i) for i in range(r)])], "L")
    t = op("Add", [lengths, const("c_minus_o", [c[i] - o[i] for i in range(r)])], "T")
    zeros = const("zeros", [0] * r)
    if intent in ("tf", "ort"):
        t = op("Max", [t, zeros], "Tpos")
    m = [oo + 1 for oo in o]
    half = op("Sub", [op("Div", [op("Add", [t, const("two_m", [2 * v for v in m])], "Tm"),
                                 const("two", [2] * r)], "Tm2"), const("m", m)], "half")
    upper = intent == "tf" or a.auto_pad == "SAME_UPPER"
    begin = half if upper else op("Sub", [t, half], "begin")
    o_c = const("o", o)
    attrs: dict[str, Any] = {"strides": list(a.strides), "dilations": list(a.dilations),
             "pads": [0] * (2 * r), "kernel_shape": list(a.kernel)}
    if a.group != 1:
        attrs["group"] = a.group
    if padded_w is not None and taps is not None:
        attrs["kernel_shape"] = [a.kernel[i] + sum(taps[i]) for i in range(r)]
        padded = op("ConvTranspose", [x, padded_w], "full", **attrs)
        start = op("Add", [begin, const("shift", [taps[i][0] * a.dilations[i]
                                                  for i in range(r)])], "start")
    else:
        before = op("Max", [op("Neg", [begin], "negb"), zeros], "before")
        after = op("Max", [op("Sub", [op("Add", [begin, o_c], "bo"), lengths], "boL"), zeros],
                   "after")
        nc = const("nc", [0, 0])
        pads = op("Concat", [nc, before, nc, after], "pads", axis=0)
        full = op("ConvTranspose", [x, w], "full", **attrs)
        padded = op("Pad", [full, pads], "padded", mode="constant")
        start = op("Add", [begin, before], "start")
    stop = op("Add", [start, o_c], "stop")
    axes = const("axes", list(range(2, 2 + r)))
    if not b:
        nodes.append(helper.make_node("Slice", [padded, start, stop, axes], [out_name],
                                      name=node.name or name("y")))
        return nodes
    sliced = op("Slice", [padded, start, stop, axes], "sliced")
    bias_shape = const("bias_shape", [-1] + [1] * r)
    bias = op("Reshape", [b, bias_shape], "bias")
    nodes.append(helper.make_node("Add", [sliced, bias], [out_name], name=node.name or name("y")))
    return nodes


def dynamic_model(nodes: Sequence[onnx.NodeProto], x_name: str, out_name: str, c_in: int, rank: int,
                  w_name: str, w: np.ndarray, b_name: str, b: np.ndarray | None,
                  opset: int) -> Any:
    """The node list alone in a model (symbolic spatial dims), W and B as initializers."""
    from onnx import helper, numpy_helper

    inits = [numpy_helper.from_array(np.asarray(w, np.float32), w_name)]
    if b is not None and b_name:
        inits.append(numpy_helper.from_array(np.asarray(b, np.float32), b_name))
    graph = helper.make_graph(
        list(nodes), "convt_dynamic",
        [helper.make_tensor_value_info(x_name, 1, [1, c_in] + [f"d{i}" for i in range(rank)])],
        [helper.make_tensor_value_info(out_name, 1, None)], inits)
    return make_model(graph, max(opset, 13))
