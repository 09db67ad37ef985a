"""Pasteable Python for a translation: the target module/layers plus their crop.

torch target: ``conv`` (an ``nn.ConvTranspose{n}d``) and ``forward(x)`` on
``(N, C, *spatial)`` (a channels_last Keras input is ``x.permute(0, n+1, 1, ..., n)``),
with the slice and the activation. Keras target: ``model``, a ``keras.Sequential``
(channels_last) of the ``Conv{n}DTranspose`` and, where needed, ``Cropping{n}D``.
Each snippet says how to load the converted weights written by ``--weights``.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from .plan import KerasLayer, Translation

__all__ = ["TORCH_ACTIVATIONS", "TORCH_ACTIVATIONS_NUMPY", "TORCH_HELPERS", "keras_snippet",
           "torch_activation_dim", "torch_activation_numpy", "torch_snippet"]

# Keras activation (table name) -> torch expression of ``y`` (channels-first);
# ``{dim}`` is the channel dim Keras's axis -1 maps to (channels_last Keras: 1).
# Every name of convt_tools.activations.ACTIVATIONS has an entry (a test runs each
# in real torch against the NumPy table); a name without one is refused by
# ``translate`` rather than left as a comment.
TORCH_ACTIVATIONS: dict[str, str] = {
    "linear": "y", "relu": "torch.relu(y)", "relu6": "F.relu6(y)",
    "leaky_relu": "F.leaky_relu(y, 0.2)", "elu": "F.elu(y)", "celu": "F.celu(y)",
    "selu": "F.selu(y)", "sigmoid": "torch.sigmoid(y)", "tanh": "torch.tanh(y)",
    "exponential": "torch.exp(y)",
    # log(1 + exp(y)) exactly: F.softplus returns y itself above its threshold 20
    "softplus": "torch.logaddexp(y, torch.zeros_like(y))", "softsign": "F.softsign(y)",
    "silu": "F.silu(y)", "gelu": "F.gelu(y)", "hard_sigmoid": "F.hardsigmoid(y)",
    "hard_silu": "F.hardswish(y)", "hard_tanh": "F.hardtanh(y)",
    "hard_shrink": "F.hardshrink(y, 0.5)", "soft_shrink": "F.softshrink(y, 0.5)",
    "tanh_shrink": "F.tanhshrink(y)", "mish": "F.mish(y)", "log_sigmoid": "F.logsigmoid(y)",
    "squareplus": "(y + torch.sqrt(y * y + 4)) / 2",
    "sparse_plus": "torch.where(y <= -1, torch.zeros_like(y), "
                   "torch.where(y < 1, 0.25 * (y + 1) ** 2, y))",
    "sparse_sigmoid": "torch.clamp(0.5 * (y + 1), 0, 1)",
    "softmax": "torch.softmax(y, dim={dim})", "log_softmax": "torch.log_softmax(y, dim={dim})",
    "glu": "F.glu(y, dim={dim})",
    "sparsemax": "sparsemax(y, dim={dim})",
}

# Helper functions a snippet defines before ``forward`` (torch has no built-in).
TORCH_HELPERS: dict[str, str] = {
    "sparsemax": '''def sparsemax(y, dim):
    """Keras 3's sparsemax over dim: max(y - tau, 0)."""
    z = torch.sort(y, dim=dim, descending=True).values
    c = torch.cumsum(z, dim=dim)
    shape = [1] * y.dim()
    shape[dim] = y.shape[dim]
    r = torch.arange(1, y.shape[dim] + 1, dtype=y.dtype, device=y.device).reshape(shape)
    support = z - (c - 1) / r > 0
    k = support.sum(dim=dim, keepdim=True).to(y.dtype)
    tau = (torch.where(support, c, torch.zeros_like(c)).sum(dim=dim, keepdim=True) - 1) / k
    return torch.clamp(y - tau, min=0)
''',
}


def _np_sig(y: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(y))
    return np.where(y >= 0, 1 / (1 + e), e / (1 + e))


def _np_relu6(y: np.ndarray) -> np.ndarray:
    return np.clip(y, 0, 6)


def _np_softmax(y: np.ndarray, dim: int) -> np.ndarray:
    e = np.exp(y - y.max(axis=dim, keepdims=True))
    return e / e.sum(axis=dim, keepdims=True)


def _np_glu(y: np.ndarray, dim: int) -> np.ndarray:
    a, b = np.split(y, 2, axis=dim)
    return a * _np_sig(b)


def _np_sparsemax(y: np.ndarray, dim: int) -> np.ndarray:
    z = -np.sort(-y, axis=dim)
    c = np.cumsum(z, axis=dim)
    shape = [1] * y.ndim
    shape[dim] = y.shape[dim]
    r = np.arange(1, y.shape[dim] + 1, dtype=y.dtype).reshape(shape)
    support = z - (c - 1) / r > 0
    k = support.sum(axis=dim, keepdims=True).astype(y.dtype)
    tau = (np.where(support, c, 0).sum(axis=dim, keepdims=True) - 1) / k
    return np.maximum(y - tau, 0)


_SELU = (1.6732632423543772848170429916717, 1.0507009873554804934193349852946)
_ERF = np.vectorize(math.erf, otypes=[np.float64])

# The NumPy twin of each TORCH_ACTIVATIONS expression, written after torch's own
# definition of the function it calls (not Keras's): what the translation proof
# runs as the torch side. ``(y, dim) -> array``, y channels-first float64.
TORCH_ACTIVATIONS_NUMPY: dict[str, Callable[[np.ndarray, int], np.ndarray]] = {
    "linear": lambda y, d: y,
    "relu": lambda y, d: np.maximum(y, 0),
    "relu6": lambda y, d: _np_relu6(y),
    "leaky_relu": lambda y, d: np.where(y >= 0, y, 0.2 * y),
    "elu": lambda y, d: np.where(y > 0, y, np.expm1(np.minimum(y, 0))),
    "celu": lambda y, d: np.maximum(y, 0) + np.minimum(0, np.expm1(np.minimum(y, 0))),
    "selu": lambda y, d: _SELU[1] * (np.maximum(y, 0)
                                     + np.minimum(0, _SELU[0] * np.expm1(np.minimum(y, 0)))),
    "sigmoid": lambda y, d: _np_sig(y),
    "tanh": lambda y, d: np.tanh(y),
    "exponential": lambda y, d: np.exp(y),
    "softplus": lambda y, d: np.logaddexp(y, 0),
    "softsign": lambda y, d: y / (1 + np.abs(y)),
    "silu": lambda y, d: y * _np_sig(y),
    "gelu": lambda y, d: 0.5 * y * (1 + _ERF(y / math.sqrt(2.0))),
    "hard_sigmoid": lambda y, d: _np_relu6(y + 3) / 6,
    "hard_silu": lambda y, d: y * _np_relu6(y + 3) / 6,
    "hard_tanh": lambda y, d: np.clip(y, -1, 1),
    "hard_shrink": lambda y, d: np.where((y > 0.5) | (y < -0.5), y, 0),
    "soft_shrink": lambda y, d: np.where(y > 0.5, y - 0.5, np.where(y < -0.5, y + 0.5, 0)),
    "tanh_shrink": lambda y, d: y - np.tanh(y),
    "mish": lambda y, d: y * np.tanh(np.log1p(np.exp(y))),
    "log_sigmoid": lambda y, d: -np.logaddexp(-y, 0),
    "squareplus": lambda y, d: (y + np.sqrt(y * y + 4)) / 2,
    "sparse_plus": lambda y, d: np.where(y <= -1, 0, np.where(y < 1, 0.25 * (y + 1) ** 2, y)),
    "sparse_sigmoid": lambda y, d: np.clip(0.5 * (y + 1), 0, 1),
    "softmax": _np_softmax,
    "log_softmax": lambda y, d: ((y - y.max(axis=d, keepdims=True))
                                 - np.log(np.exp(y - y.max(axis=d, keepdims=True))
                                          .sum(axis=d, keepdims=True))),
    "glu": _np_glu,
    "sparsemax": _np_sparsemax,
}


def torch_activation_dim(data_format: str) -> int:
    """The torch dim that Keras's activation axis -1 is on a channels-first tensor."""
    return 1 if data_format == "channels_last" else -1


def torch_activation_numpy(name: str, y_cf: np.ndarray, data_format: str) -> np.ndarray:
    """What the snippet's activation line computes, in NumPy (torch's definitions)."""
    return TORCH_ACTIVATIONS_NUMPY[name](y_cf, torch_activation_dim(data_format))


def _v(t: tuple[int, ...]) -> str:
    return str(tuple(t)) if len(t) > 1 else f"({t[0]},)"


def _slice(crop: tuple[tuple[int, int], ...]) -> str | None:
    if not any(b or e for b, e in crop):
        return None
    parts = [":", ":"] + [f"{b or ''}:{-e if e else ''}" for b, e in crop]
    return "y = y[" + ", ".join(parts) + "]"


def torch_snippet(tr: Translation, weights_path: str | None = None) -> str:
    """The torch target of ``tr`` (Keras -> torch) as Python source."""
    spec = tr.torch
    n = spec.rank
    lines = ["import numpy as np", "import torch", "from torch import nn",
             "import torch.nn.functional as F", "", f"conv = {spec.snippet()}"]
    if weights_path:
        lines += [f"state = np.load({weights_path!r})  # weight (in, out, k...), bias",
                  "conv.load_state_dict({k: torch.from_numpy(state[k]) for k in state.files})"]
    perm = ", ".join(map(str, (0, n + 1, *range(1, n + 1))))
    doc = f"x: (N, {spec.in_channels}, *spatial)"
    if tr.keras.data_format == "channels_last":
        doc += f"; from a channels_last Keras input use x.permute({perm})"
    helper = TORCH_HELPERS.get(tr.keras.activation)
    if helper:
        lines += ["", "", helper.rstrip("\n")]
    lines += ["", "", "def forward(x):", f"    \"\"\"{doc}.\"\"\"", "    y = conv(x)"]
    sl = _slice(tr.crop)
    if sl:
        lines.append(f"    {sl}  # Keras crops the odd extra row at the END")
    act = TORCH_ACTIVATIONS[tr.keras.activation]   # translate() refuses names without one
    if act != "y":
        dim = torch_activation_dim(tr.keras.data_format)
        lines.append(f"    y = {act.format(dim=dim)}  # Keras activation {tr.keras.activation!r}")
    lines.append("    return y")
    return "\n".join(lines) + "\n"


def _keras_layer_source(layer: KerasLayer) -> str:
    args = [str(layer.filters), _v(layer.kernel_size)]
    if any(s != 1 for s in layer.strides):
        args.append(f"strides={_v(layer.strides)}")
    args.append(f"padding={layer.padding!r}")
    if layer.output_padding is not None:
        args.append(f"output_padding={_v(layer.output_padding)}")
    if any(d != 1 for d in layer.dilation_rate):
        args.append(f"dilation_rate={_v(layer.dilation_rate)}")
    if not layer.use_bias:
        args.append("use_bias=False")
    if layer.activation != "linear":
        args.append(f"activation={layer.activation!r}")
    if layer.dtype != "float32":
        args.append(f"dtype={layer.dtype!r}")
    return f"layers.{layer.class_name}({', '.join(args)})"


def keras_snippet(tr: Translation, weights_path: str | None = None) -> str:
    """The Keras target of ``tr`` (torch -> Keras) as Python source (channels_last)."""
    layer = tr.keras
    n = layer.rank
    spatial = ", ".join(["None"] * n)
    lines = ["import numpy as np", "import keras", "from keras import layers", "",
             "model = keras.Sequential([",
             f"    keras.Input(shape=({spatial}, {tr.torch.in_channels})),  # channels_last",
             f"    {_keras_layer_source(layer)},"]
    if any(b or e for b, e in tr.crop):
        crop = tr.crop[0] if n == 1 else tuple(tr.crop)
        lines.append(f"    layers.Cropping{n}D({crop}),")
    lines.append("])")
    if weights_path:
        lines += [f"w = np.load({weights_path!r})  # kernel (k..., out, in), bias",
                  "model.layers[0].set_weights([w[k] for k in (\"kernel\", \"bias\") "
                  "if k in w.files])"]
    perm = ", ".join(map(str, (0, *range(2, n + 2), 1)))
    lines.append(f"# a torch input (N, C, *spatial) goes in as x.transpose({perm}); the output "
                 f"comes back channels_last")
    return "\n".join(lines) + "\n"
