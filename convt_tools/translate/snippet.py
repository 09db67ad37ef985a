"""Pasteable Python for a translation: the target module/layers plus their crop.

torch target: ``conv`` (an ``nn.ConvTranspose{n}d``) and ``forward(x)`` on
``(N, C, *spatial)`` (a channels_last Keras input is ``x.permute(0, n+1, 1, ..., n)``),
with the slice and the activation. Keras target: ``model``, a ``keras.Sequential``
(channels_last) of the ``Conv{n}DTranspose`` and, where needed, ``Cropping{n}D``.
Each snippet says how to load the converted weights written by ``--weights``.
"""

from __future__ import annotations

from .plan import KerasLayer, Translation

__all__ = ["TORCH_ACTIVATIONS", "keras_snippet", "torch_snippet"]

# Keras activation (table name) -> torch expression of ``y`` (channels-first);
# ``{dim}`` is the channel dim Keras's axis -1 maps to (channels_last Keras: 1).
TORCH_ACTIVATIONS: dict[str, str] = {
    "linear": "y", "relu": "torch.relu(y)", "relu6": "F.relu6(y)",
    "leaky_relu": "F.leaky_relu(y, 0.2)", "elu": "F.elu(y)", "celu": "F.celu(y)",
    "selu": "F.selu(y)", "sigmoid": "torch.sigmoid(y)", "tanh": "torch.tanh(y)",
    "exponential": "torch.exp(y)", "softplus": "F.softplus(y)", "softsign": "F.softsign(y)",
    "silu": "F.silu(y)", "gelu": "F.gelu(y)", "hard_sigmoid": "F.hardsigmoid(y)",
    "hard_silu": "F.hardswish(y)", "hard_tanh": "F.hardtanh(y)",
    "hard_shrink": "F.hardshrink(y, 0.5)", "soft_shrink": "F.softshrink(y, 0.5)",
    "tanh_shrink": "F.tanhshrink(y)", "mish": "F.mish(y)", "log_sigmoid": "F.logsigmoid(y)",
    "softmax": "torch.softmax(y, dim={dim})", "log_softmax": "torch.log_softmax(y, dim={dim})",
    "glu": "F.glu(y, dim={dim})",
}


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
    lines += ["", "", "def forward(x):", f"    \"\"\"{doc}.\"\"\"", "    y = conv(x)"]
    sl = _slice(tr.crop)
    if sl:
        lines.append(f"    {sl}  # Keras crops the odd extra row at the END")
    act = TORCH_ACTIVATIONS.get(tr.keras.activation)
    if act is None:
        lines.append(f"    # apply Keras's {tr.keras.activation!r} activation here (no torch "
                     f"built-in with the same definition)")
    elif act != "y":
        dim = 1 if tr.keras.data_format == "channels_last" else -1
        lines.append(f"    y = {act.format(dim=dim)}")
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
