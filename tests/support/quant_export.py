"""Layers and helpers for the int8 QDQ export/repair tests (issue 20).

The semantic space: spatial rank 1-3 x ``g1`` (group 1, C_in 4, C_out 6), ``grp``
(groups 2, C_in 4, C_out 6: 2 input and 3 output channels per group), ``dw``
(depthwise, 4 channels, groups 4); kernel 3, stride 2, padding 1, output_padding 1.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

RANKS = (1, 2, 3)
KINDS = ("g1", "grp", "dw")
SPATIAL = {1: (7,), 2: (5, 4), 3: (3, 4, 3)}
_CHANNELS = {"g1": (4, 6, 1), "grp": (4, 6, 2), "dw": (4, 4, 4)}


def torch_config(rank: int, kind: str, *, bias: bool = True) -> dict[str, Any]:
    """A torch ``ConvTranspose{rank}d`` config of ``kind`` (module docstring)."""
    c_in, c_out, groups = _CHANNELS[kind]
    return {"framework": "torch", "module": f"ConvTranspose{rank}d", "in_channels": c_in,
            "out_channels": c_out, "kernel_size": 3, "stride": 2, "padding": 1,
            "output_padding": 1, "groups": groups, "bias": bias}


def write_config(tmp: Path, config: dict[str, Any], name: str = "layer.json") -> Path:
    path = tmp / name
    path.write_text(json.dumps(config))
    return path


def input_shape(rank: int, kind: str, batch: int = 1) -> tuple[int, ...]:
    return (batch, _CHANNELS[kind][0], *SPATIAL[rank])


def seeded_input(shape: tuple[int, ...], seed: int = 1) -> np.ndarray:
    """A seeded float32 input drawn like the seeded calibration (standard normal)."""
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def shape_arg(shape: tuple[int, ...]) -> str:
    return ",".join(str(d) for d in shape)


def reference_output(model: Any, x: np.ndarray) -> Any:
    """The int8 reference of an exported channels-first QDQ model
    (:func:`convt_tools.quant.model_reference`)."""
    from convt_tools.quant import model_reference

    return model_reference(model, x)
