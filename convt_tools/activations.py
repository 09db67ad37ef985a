"""The activation table shared by the exporter and the reference evaluator.

One row per Keras 3 activation (by its ``keras.activations`` name): the exact
Keras math in NumPy, and a builder that emits the same math as ONNX ops.
Because both sides read this one table they cannot drift apart. Constants
follow Keras 3's own NumPy backend (``keras/src/backend/numpy/nn.py``), not
ONNX's defaults (ONNX ``HardSigmoid`` defaults to the Keras 2 alpha 0.2,
``LeakyRelu`` to 0.01).

Every function acts on the layer output *as Keras lays it out*: axis -1 is the
channel axis for ``channels_last`` and the WIDTH axis for ``channels_first``
(that is what ``softmax``, ``log_softmax``, ``glu`` and ``sparsemax`` act on).

No import of onnx here: builders only call the small :class:`GraphOps`
interface, which :class:`convt_tools.onnxbase.GraphBuilder` implements.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Protocol

from .errors import ConvtError

if TYPE_CHECKING:
    import numpy as np
else:
    class _LazyNumpy:
        """numpy, imported on first use: ``convt shape`` reads this table's names only."""

        def __getattr__(self, name: str) -> Any:
            return getattr(importlib.import_module("numpy"), name)

    np = _LazyNumpy()

__all__ = ["ACTIVATIONS", "ALIASES", "Activation", "GraphOps", "UNSUPPORTED",
           "apply_activation", "canonical_activation"]


class GraphOps(Protocol):
    """What an activation builder may use to emit ONNX nodes."""

    opset: int
    float_enum: int  # onnx.TensorProto enum of the graph's float dtype

    def op(self, op_type: str, *inputs: str, **attrs: Any) -> str:
        """Add a node with one output; return its name."""

    def op_multi(self, op_type: str, *inputs: str, n_out: int, **attrs: Any) -> list[str]:
        """Add a node with ``n_out`` outputs; return their names."""

    def const(self, value: object, dtype: str | None = None) -> str:
        """A constant initializer; ``dtype`` None means the graph's float dtype."""


@dataclass(frozen=True)
class Activation:
    """One row: the Keras name, its math, NumPy and ONNX implementations."""

    name: str
    formula: str
    numpy: Callable[[np.ndarray], np.ndarray]
    onnx: Callable[[GraphOps, str], str]


# ---------------------------------------------------------------- NumPy side

def _c(x: np.ndarray, v: float) -> np.ndarray:
    """A constant in x's dtype (keeps float32 math in float32)."""
    return np.asarray(v, dtype=x.dtype)


def _np_gelu(x: np.ndarray) -> np.ndarray:
    """``x * (erf(x / sqrt(2)) + 1) / 2`` evaluated as ``0.5 * x * erfc(-x / sqrt(2))``.

    Same function; the erfc form keeps the negative tail accurate (no
    ``erf + 1`` cancellation) and ``0.5 * x`` cannot overflow. Computed in
    float64 with the exact ``math.erfc``, then cast to ``x.dtype``.
    """
    x64 = x.astype(np.float64)
    # asarray, not .astype: on a 0-d input frompyfunc returns a bare Python float
    erfc = np.asarray(np.frompyfunc(math.erfc, 1, 1)(-x64 / math.sqrt(2.0)), dtype=np.float64)
    return (0.5 * x64 * erfc).astype(x.dtype)


def _np_sigmoid(x: np.ndarray) -> np.ndarray:
    # 1 / (1 + exp(-x)), written without overflow for large |x|.
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype)


def _np_softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(x, _c(x, 0.0))


def _np_elu(x: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    return np.where(x >= 0, x, _c(x, alpha) * np.expm1(np.minimum(x, 0)))


def _np_hard_sigmoid(x: np.ndarray) -> np.ndarray:
    return np.clip(x / _c(x, 6.0) + _c(x, 0.5), 0, 1).astype(x.dtype)


def _np_softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True)) if x.shape[-1] else x
    return e / e.sum(axis=-1, keepdims=True)


def _np_log_softmax(x: np.ndarray) -> np.ndarray:
    if not x.shape[-1]:
        return x
    m = x - x.max(axis=-1, keepdims=True)
    return m - np.log(np.exp(m).sum(axis=-1, keepdims=True))


def _np_glu(x: np.ndarray) -> np.ndarray:
    n = x.shape[-1]
    if n % 2:
        raise ConvtError(f"activation: 'glu' needs an even last axis, got length {n}.",
                         field="activation")
    return x[..., : n // 2] * _np_sigmoid(x[..., n // 2:])


def _np_sparsemax(x: np.ndarray) -> np.ndarray:
    # Keras 3's formula, as in all its backends:
    #   z = sort(x, desc); c = cumsum(z); r = 1..n
    #   support = z - (c - 1) / r > 0;  k = sum(support)
    #   tau = (sum(c where support) - 1) / k;  y = max(x - tau, 0)
    if not x.shape[-1]:
        return x
    z = -np.sort(-x, axis=-1)
    c = np.cumsum(z, axis=-1)
    r = np.arange(1, x.shape[-1] + 1, dtype=x.dtype)
    support = z - (c - 1) / r > 0
    k = support.sum(axis=-1, keepdims=True).astype(x.dtype)
    tau = (np.where(support, c, 0).sum(axis=-1, keepdims=True) - 1) / k
    return np.maximum(x - tau, 0).astype(x.dtype)


# ----------------------------------------------------------------- ONNX side

def _reduce_sum_last(g: GraphOps, x: str) -> str:
    """ReduceSum over axis -1, keepdims (axes is an input from opset 13)."""
    if g.opset >= 13:
        return g.op("ReduceSum", x, g.const([-1], "int64"), keepdims=1)
    return g.op("ReduceSum", x, axes=[-1], keepdims=1)


def _last_dim(g: GraphOps, x: str) -> str:
    """Length of axis -1 as an int64 scalar (works for symbolic dims)."""
    return g.op("Gather", g.op("Shape", x), g.const(-1, "int64"), axis=0)


def _o_hard_sigmoid(g: GraphOps, x: str) -> str:
    # clip(x / 6 + 0.5, 0, 1): Keras 3's own expression (ONNX HardSigmoid
    # would compute x * (1/6) + 0.5, one rounding different).
    y = g.op("Add", g.op("Div", x, g.const(6.0)), g.const(0.5))
    return g.op("Clip", y, g.const(0.0), g.const(1.0))


def _o_sigmoid_mul(g: GraphOps, x: str) -> str:
    return g.op("Mul", x, g.op("Sigmoid", x))


def _o_gelu(g: GraphOps, x: str) -> str:
    if g.opset >= 20:
        return g.op("Gelu", x, approximate="none")
    # (x / 2) * (erf(x / sqrt(2)) + 1): the exact erf form for opsets without
    # Gelu; halving first keeps x near the dtype's maximum finite.
    e = g.op("Erf", g.op("Div", x, g.const(math.sqrt(2.0))))
    return g.op("Mul", g.op("Mul", x, g.const(0.5)), g.op("Add", e, g.const(1.0)))


def _o_mish(g: GraphOps, x: str) -> str:
    if g.opset >= 18:
        return g.op("Mish", x)
    return g.op("Mul", x, g.op("Tanh", g.op("Softplus", x)))


def _o_glu(g: GraphOps, x: str) -> str:
    # a * sigmoid(b) with a, b the two halves of axis -1: an equal two-way Split,
    # which needs no Shape arithmetic (tract cannot evaluate the Shape/Div/Slice
    # form at symbolic sizes). Opset 18 requires num_outputs when no split sizes.
    extra = {"num_outputs": 2} if g.opset >= 18 else {}
    a, b = g.op_multi("Split", x, n_out=2, axis=-1, **extra)
    return g.op("Mul", a, g.op("Sigmoid", b))


def _o_sparsemax(g: GraphOps, x: str) -> str:
    # Keras 3's formula (see _np_sparsemax), with TopK as a descending sort.
    n = _last_dim(g, x)
    z = g.op_multi("TopK", x, g.op("Reshape", n, g.const([1], "int64")), n_out=2,
                   axis=-1, largest=1, sorted=1)[0]
    # exclusive/reverse written out: onnx2torch 1.5 defaults reverse to 1 (ONNX: 0).
    c = g.op("CumSum", z, g.const(-1, "int64"), exclusive=0, reverse=0)
    r = g.op("Range", g.const(1.0), g.op("Add", g.op("Cast", n, to=g.float_enum),
                                         g.const(1.0)), g.const(1.0))
    support = g.op("Greater", g.op("Sub", z, g.op("Div", g.op("Sub", c, g.const(1.0)), r)),
                   g.const(0.0))
    k = _reduce_sum_last(g, g.op("Cast", support, to=g.float_enum))
    csum = _reduce_sum_last(g, g.op("Where", support, c, g.const(0.0)))
    tau = g.op("Div", g.op("Sub", csum, g.const(1.0)), k)
    return g.op("Max", g.op("Sub", x, tau), g.const(0.0))


def _o_squareplus(g: GraphOps, x: str) -> str:
    y = g.op("Add", x, g.op("Sqrt", g.op("Add", g.op("Mul", x, x), g.const(4.0))))
    return g.op("Div", y, g.const(2.0))


def _o_sparse_plus(g: GraphOps, x: str) -> str:
    sq = g.op("Mul", g.const(0.25), g.op("Pow", g.op("Add", x, g.const(1.0)), g.const(2.0)))
    inner = g.op("Where", g.op("Less", x, g.const(1.0)), sq, x)
    # Where(x <= -1, 0, inner) with x <= -1 as Less or Equal (LessOrEqual needs
    # opset 12); NaN fails both tests and flows through inner as NaN, as in Keras.
    m1 = g.const(-1.0)
    le = g.op("Or", g.op("Less", x, m1), g.op("Equal", x, m1))
    return g.op("Where", le, g.const(0.0), inner)


def _o_sparse_sigmoid(g: GraphOps, x: str) -> str:
    half = g.op("Mul", g.const(0.5), g.op("Add", x, g.const(1.0)))
    return g.op("Clip", half, g.const(0.0), g.const(1.0))


def _o_hard_shrink(g: GraphOps, x: str) -> str:
    # Where instead of Shrink (onnx2torch has no Shrink converter); NaN -> 0 as Shrink and Keras.
    keep = g.op("Greater", g.op("Abs", x), g.const(0.5))
    return g.op("Where", keep, x, g.const(0.0))


def _o_soft_shrink(g: GraphOps, x: str) -> str:
    # Shrink(lambd=0.5, bias=0.5) written with Where (see _o_hard_shrink); NaN -> 0.
    low = g.op("Where", g.op("Less", x, g.const(-0.5)), g.op("Add", x, g.const(0.5)),
               g.const(0.0))
    return g.op("Where", g.op("Greater", x, g.const(0.5)),
                g.op("Sub", x, g.const(0.5)), low)


def _unary(op_type: str, **attrs: object) -> Callable[[GraphOps, str], str]:
    return lambda g, x: g.op(op_type, x, **attrs)


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946

_ROWS = [
    Activation("linear", "x", lambda x: x, lambda g, x: x),
    Activation("relu", "max(x, 0)", lambda x: np.maximum(x, _c(x, 0)), _unary("Relu")),
    Activation("relu6", "min(max(x, 0), 6)", lambda x: np.clip(x, 0, 6).astype(x.dtype),
               lambda g, x: g.op("Clip", x, g.const(0.0), g.const(6.0))),
    Activation("leaky_relu", "max(x, 0.2 * x)", lambda x: np.maximum(x, _c(x, 0.2) * x),
               _unary("LeakyRelu", alpha=0.2)),
    Activation("elu", "x if x >= 0 else expm1(x)", _np_elu, _unary("Elu", alpha=1.0)),
    # celu with Keras's default alpha = 1 is exactly elu.
    Activation("celu", "max(x, 0) + expm1(min(x, 0))", _np_elu, _unary("Elu", alpha=1.0)),
    Activation("selu", f"{_SELU_SCALE} * elu(x, {_SELU_ALPHA})",
               lambda x: _c(x, _SELU_SCALE) * _np_elu(x, _SELU_ALPHA),
               _unary("Selu", alpha=_SELU_ALPHA, gamma=_SELU_SCALE)),
    Activation("sigmoid", "1 / (1 + exp(-x))", _np_sigmoid, _unary("Sigmoid")),
    Activation("tanh", "tanh(x)", lambda x: np.tanh(x), _unary("Tanh")),
    Activation("exponential", "exp(x)", lambda x: np.exp(x), _unary("Exp")),
    Activation("softplus", "log(1 + exp(x))", _np_softplus, _unary("Softplus")),
    Activation("softsign", "x / (1 + |x|)", lambda x: x / (_c(x, 1) + np.abs(x)),
               _unary("Softsign")),
    Activation("silu", "x * sigmoid(x)", lambda x: x * _np_sigmoid(x), _o_sigmoid_mul),
    Activation("gelu", "x * (erf(x / sqrt(2)) + 1) / 2", _np_gelu, _o_gelu),
    Activation("hard_sigmoid", "clip(x / 6 + 0.5, 0, 1)", _np_hard_sigmoid, _o_hard_sigmoid),
    Activation("hard_silu", "x * hard_sigmoid(x)", lambda x: x * _np_hard_sigmoid(x),
               lambda g, x: g.op("Mul", x, _o_hard_sigmoid(g, x))),
    Activation("hard_tanh", "clip(x, -1, 1)", lambda x: np.clip(x, -1, 1).astype(x.dtype),
               lambda g, x: g.op("Clip", x, g.const(-1.0), g.const(1.0))),
    Activation("hard_shrink", "x if |x| > 0.5 else 0",
               lambda x: np.where(np.abs(x) > 0.5, x, _c(x, 0)),
               _o_hard_shrink),
    Activation("soft_shrink", "x - 0.5 if x > 0.5, x + 0.5 if x < -0.5, else 0",
               lambda x: np.where(x > 0.5, x - _c(x, 0.5),
                                  np.where(x < -0.5, x + _c(x, 0.5), _c(x, 0))),
               _o_soft_shrink),
    Activation("tanh_shrink", "x - tanh(x)", lambda x: x - np.tanh(x),
               lambda g, x: g.op("Sub", x, g.op("Tanh", x))),
    Activation("mish", "x * tanh(softplus(x))", lambda x: x * np.tanh(_np_softplus(x)), _o_mish),
    Activation("log_sigmoid", "-softplus(-x)", lambda x: -_np_softplus(-x),
               lambda g, x: g.op("Neg", g.op("Softplus", g.op("Neg", x)))),
    Activation("squareplus", "(x + sqrt(x^2 + 4)) / 2",
               lambda x: (x + np.sqrt(x * x + _c(x, 4))) / _c(x, 2), _o_squareplus),
    Activation("sparse_plus", "0 if x <= -1, (x + 1)^2 / 4 if x < 1, else x",
               lambda x: np.where(x <= -1, _c(x, 0),
                                  np.where(x < 1, _c(x, 0.25) * (x + 1) ** 2, x)).astype(x.dtype),
               _o_sparse_plus),
    Activation("sparse_sigmoid", "clip((x + 1) / 2, 0, 1)",
               lambda x: np.clip(_c(x, 0.5) * (x + 1), 0, 1).astype(x.dtype), _o_sparse_sigmoid),
    Activation("softmax", "exp(x) / sum(exp(x)) over axis -1", _np_softmax,
               _unary("Softmax", axis=-1)),
    Activation("log_softmax", "x - log(sum(exp(x))) over axis -1", _np_log_softmax,
               _unary("LogSoftmax", axis=-1)),
    Activation("glu", "a * sigmoid(b), (a, b) = halves of axis -1", _np_glu, _o_glu),
    Activation("sparsemax", "max(x - tau, 0), Keras 3's tau over axis -1", _np_sparsemax,
               _o_sparsemax),
]

ACTIVATIONS: dict[str, Activation] = {row.name: row for row in _ROWS}
ALIASES: dict[str | None, str] = {"swish": "silu", "hard_swish": "hard_silu", None: "linear"}
# Keras names that cannot be used as a layer's activation string.
UNSUPPORTED: dict[str, str] = {
    "threshold": "keras.activations.threshold needs explicit threshold and default_value "
                 "arguments, so a layer with activation='threshold' fails in Keras itself",
}


def canonical_activation(name: str | None) -> str:
    """Map a Keras activation name (or alias, or None) to its table key."""
    key = ALIASES.get(name, name)
    if isinstance(key, str) and key in ACTIVATIONS:
        return key
    if isinstance(key, str) and key in UNSUPPORTED:
        raise ConvtError(f"activation: got {name!r}; {UNSUPPORTED[key]}.", field="activation")
    allowed = ", ".join(sorted(set(ACTIVATIONS) | {a for a in ALIASES if a}))
    raise ConvtError(f"activation: got {name!r}; expected one of {allowed}.", field="activation")


def apply_activation(name: str, x: np.ndarray) -> np.ndarray:
    """Apply the NumPy side of the table to ``x`` laid out as Keras lays it out."""
    return ACTIVATIONS[canonical_activation(name)].numpy(x)
