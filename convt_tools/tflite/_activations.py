"""Keras activations as TFLite builtin operators (a registry; anything else is refused).

``FUSED``: activations TRANSPOSE_CONV fuses exactly (``fused_activation_function``),
as TF's own converter fuses them (fixtures/tflite: relu -> RELU, relu6 -> RELU6).
``SEPARATE``: one or two builtin operators on the layer's output, in the
Keras layout (softmax-like rows act on axis -1 as in Keras); the same
operators TF's converter emits (sigmoid -> LOGISTIC, tanh -> TANH, gelu ->
GELU approximate=False, measured in fixtures/tflite).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ..errors import ConvtError
from ._builder import Graph

__all__ = ["FUSED", "SEPARATE", "apply_activation", "check_activation"]

FUSED: dict[str, str] = {"relu": "RELU", "relu6": "RELU6"}


@dataclass(frozen=True)
class _Row:
    ops: tuple[str, ...]
    build: Callable[[Graph, int, str], int]


def _unary(name: str, options: Callable[[Any], tuple[Any, str]] | None = None
           ) -> Callable[[Graph, int, str], int]:
    def build(g: Graph, x: int, prefix: str) -> int:
        out = g.tensor(f"{prefix}{name.lower()}", g.shape_of(x))
        opts, kind = options(g.s) if options is not None else (None, None)
        g.op(name, [x], [out], opts, kind)
        return out
    return build


def _leaky(s: Any) -> tuple[Any, str]:
    o = s.LeakyReluOptionsT()
    o.alpha = 0.2            # Keras's leaky_relu default negative_slope
    return o, "LeakyReluOptions"


def _gelu(s: Any) -> tuple[Any, str]:
    o = s.GeluOptionsT()
    o.approximate = False    # Keras's gelu activation: the erf form
    return o, "GeluOptions"


def _softmax(s: Any) -> tuple[Any, str]:
    o = s.SoftmaxOptionsT()
    o.beta = 1.0
    return o, "SoftmaxOptions"


def _silu(g: Graph, x: int, prefix: str) -> int:
    sig = _unary("LOGISTIC")(g, x, prefix)
    out = g.tensor(f"{prefix}silu", g.shape_of(x))
    g.op("MUL", [x, sig], [out], g.s.MulOptionsT(), "MulOptions")
    return out


def _binary(g: Graph, name: str, a: int, b: int, prefix: str, tag: str) -> int:
    out = g.tensor(f"{prefix}{tag}", g.shape_of(a))
    opts = getattr(g.s, f"{name.title()}OptionsT")()
    g.op(name, [a, b], [out], opts, f"{name.title()}Options")
    return out


def _hard_sigmoid(g: Graph, x: int, prefix: str) -> int:
    """Keras 3's ``relu6(x + 3) / 6``."""
    three = g.const(f"{prefix}three", np.float32(3.0))
    r6 = _unary("RELU6")(g, _binary(g, "ADD", x, three, prefix, "plus3"), prefix)
    return _binary(g, "MUL", r6, g.const(f"{prefix}sixth", np.float32(1.0 / 6.0)), prefix,
                   "hard_sigmoid")


def _softsign(g: Graph, x: int, prefix: str) -> int:
    """``x / (1 + |x|)``."""
    one = g.const(f"{prefix}one", np.float32(1.0))
    den = _binary(g, "ADD", _unary("ABS")(g, x, prefix), one, prefix, "one_plus_abs")
    return _binary(g, "DIV", x, den, prefix, "softsign")


SEPARATE: dict[str, _Row] = {
    "hard_sigmoid": _Row(("ADD", "RELU6", "MUL"), _hard_sigmoid),
    "softsign": _Row(("ABS", "ADD", "DIV"), _softsign),
    "relu": _Row(("RELU",), _unary("RELU")),
    "relu6": _Row(("RELU6",), _unary("RELU6")),
    "sigmoid": _Row(("LOGISTIC",), _unary("LOGISTIC")),
    "tanh": _Row(("TANH",), _unary("TANH")),
    "elu": _Row(("ELU",), _unary("ELU")),
    "exponential": _Row(("EXP",), _unary("EXP")),
    "leaky_relu": _Row(("LEAKY_RELU",), _unary("LEAKY_RELU", _leaky)),
    "gelu": _Row(("GELU",), _unary("GELU", _gelu)),
    "hard_silu": _Row(("HARD_SWISH",), _unary("HARD_SWISH")),
    "hard_tanh": _Row(("RELU_N1_TO_1",), _unary("RELU_N1_TO_1")),
    "silu": _Row(("LOGISTIC", "MUL"), _silu),
    "softmax": _Row(("SOFTMAX",), _unary("SOFTMAX", _softmax)),
    "log_softmax": _Row(("LOG_SOFTMAX",), _unary("LOG_SOFTMAX")),
}


def check_activation(name: str) -> None:
    """Refuse an activation with no exact TFLite form, naming it and the ones that have one."""
    if name != "linear" and name not in SEPARATE:
        raise ConvtError(
            f"activation: got {name!r}; the tflite export has no exact LiteRT builtin form "
            f"for it; supported: linear, {', '.join(sorted(SEPARATE))} (export the layer with "
            f"activation 'linear' and apply {name} outside the model, or use ONNX).",
            field="activation")


def apply_activation(g: Graph, name: str, x: int) -> int:
    """``name`` as separate operators on tensor ``x`` (``linear``: ``x`` itself)."""
    check_activation(name)
    if name == "linear":
        return x
    return SEPARATE[name].build(g, x, "act_")
