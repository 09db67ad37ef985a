"""convt-tools: exact shapes, ONNX export and verification for Keras Conv1D/2D/3DTranspose.

The public API is re-exported here; heavy modules (onnx, onnxruntime) are
imported only when one of their names is first used.
"""

from __future__ import annotations

__version__ = "0.1.0"

from ._lazy import lazy_getattr as _lazy_getattr
from .activations import ACTIVATIONS, apply_activation
from .errors import ConvtError
from .spec import (
    AxisCrop,
    Conv2DTransposeSpec,
    ConvTransposeSpec,
    crop_for_axis,
    keras_output_length,
    load_config,
    make_spec,
    parse_config,
    parse_shape,
)

# name -> module, imported on first attribute access (PEP 562).
_LAZY = {
    "export_spec": "exporter",
    "save_model": "onnxbase",
    "initialize_weights": "initializers",
    "load_weights": "weights",
    "conv_transpose": "reference",
    "conv_transpose_channels_last": "reference",
    "keras_conv2d_transpose": "reference",
    "keras_conv_transpose": "reference",
    "KerasConvTranspose": "reference",
    "validate_spec": "validate",
    "validate_model": "validate",
    "validate_runtimes": "validate",
    "check_model": "check",
    "repair_model": "repair",
    "TorchConvTransposeSpec": "torchconv.spec",
    "parse_torch_config": "torchconv.spec",
    "load_torch_config": "torchconv.spec",
    "torch_conv_transpose": "torchconv.compute",
    "export_torch": "torchconv.export",
    "validate_torch": "validate.torch_layer",
    "translate_spec": "translate",
    "solve_sizes": "solve",
    "open_model": "saved.model",
    "SavedModel": "saved.model",
}

__getattr__ = _lazy_getattr(__name__, globals(), {k: f".{v}" for k, v in _LAZY.items()})

__all__ = [
    "ACTIVATIONS", "AxisCrop", "Conv2DTransposeSpec", "ConvTransposeSpec", "ConvtError",
    "__version__",
    "apply_activation", "crop_for_axis", "keras_output_length", "load_config", "make_spec",
    "parse_config", "parse_shape", *_LAZY,
]
