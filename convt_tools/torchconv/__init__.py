"""PyTorch ``nn.ConvTranspose1d/2d/3d``: spec, NumPy forward, ONNX export.

Shapes and parsing (:mod:`.spec`) import only the standard library; the
forward pass (:mod:`.compute`) and export (:mod:`.export`) import NumPy/onnx
when used.
"""

from .spec import (
                   TORCH_MODULES,
                   TorchConvTransposeSpec,
                   load_torch_config,
                   parse_torch_config,
                   read_json_config,
)

__all__ = ["TORCH_MODULES", "TorchConvTransposeSpec", "load_torch_config", "parse_torch_config",
           "read_json_config"]
