"""``convt translate``: exact Keras <-> PyTorch transposed-convolution translations.

:mod:`.plan` decides the target (per-axis window matching, documented there),
:mod:`.proof` converts weights and proves the translation on the NumPy
reference, :mod:`.snippet` writes pasteable Python.
"""

from __future__ import annotations

from typing import Any

from ..errors import ConvtError
from .plan import KerasLayer, Translation, keras_to_torch, torch_to_keras

__all__ = ["KerasLayer", "Translation", "keras_layer_from_spec", "keras_to_torch",
           "torch_to_keras", "translate", "translate_spec"]


def keras_layer_from_spec(spec: Any) -> KerasLayer:
    """The translation's view of a parsed Keras spec (any rank with Keras's field names)."""
    if getattr(spec, "data_format", "channels_last") != "channels_last":
        note = "channels_first"
    else:
        note = "channels_last"
    compute = getattr(spec, "dtype", "float32")
    variable = getattr(spec, "variable_dtype", compute)
    if compute != variable:
        raise ConvtError(f"dtype: the layer's mixed precision policy (computes in {compute}, "
                         f"{variable} weights) has no single torch module dtype; translate "
                         f"supports the float32, float64, float16 and bfloat16 policies (torch "
                         f"mixed precision is torch.autocast around a float32 module).",
                         field="dtype")
    op = spec.output_padding
    return KerasLayer(filters=spec.filters, kernel_size=tuple(spec.kernel_size),
                      strides=tuple(spec.strides), padding=spec.padding,
                      output_padding=None if op is None else tuple(op),
                      dilation_rate=tuple(spec.dilation_rate), use_bias=spec.use_bias,
                      activation=spec.activation, data_format=note, dtype=compute)


def translate(spec: Any, to: str, in_channels: int | None = None) -> Translation:
    """Translate a Keras spec to torch (``in_channels`` required) or a torch spec to Keras."""
    if to not in ("torch", "keras"):
        raise ConvtError(f"to: got {to!r}; expected torch or keras.", field="to")
    if spec.framework == to:
        raise ConvtError(f"to: the config is already a {to} config; translate to the other "
                         f"framework.", field="to")
    if to == "keras":
        return torch_to_keras(spec)
    if in_channels is None:
        raise ConvtError("in_channels: a Keras config does not say how many input channels the "
                         "layer has, and torch needs it; give --in-channels, --weights, or a "
                         "config with a build_config input shape.", field="in_channels")
    layer = keras_layer_from_spec(spec)
    from .snippet import TORCH_ACTIVATIONS

    if layer.activation not in TORCH_ACTIVATIONS:
        raise ConvtError(f"activation: {layer.activation!r} has no torch translation; "
                         f"translate supports {', '.join(sorted(TORCH_ACTIVATIONS))}.",
                         field="activation")
    return keras_to_torch(layer, in_channels)


# The package-level name (``convt_tools.translate_spec``): ``convt_tools.translate``
# is this subpackage once imported, so the function is re-exported under another name.
translate_spec = translate
