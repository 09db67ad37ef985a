"""Quantized (int8 QDQ) ConvTranspose: quantization arithmetic, weight forms, QDQ export.

- :mod:`._quantize`: scales, zero points, round half to even, saturation,
  symmetric weights, int32 bias (:func:`quantize`, :func:`weight_scales`,
  :func:`activation_params`, :func:`bias_int32`).
- :mod:`._forms`: the weight forms of a QDQ ConvTranspose and which one each
  target runtime reads (:data:`TARGETS`, :func:`choose_form`).
- :mod:`._weights`: :func:`quantize_weights` into a form.
- :mod:`._calibration`: calibration batches (:func:`load_calibration`,
  :func:`seeded_calibration`).
- :mod:`._qdq_build`: :func:`quantize_model`, a float one-ConvTranspose model
  to its QDQ model.
"""

from __future__ import annotations

from ._calibration import SEEDED_BATCH, load_calibration, seeded_calibration
from ._forms import DEFAULT_TARGETS, FORMS, TARGETS, TargetReading, choose_form, parse_targets
from ._qdq_build import (
    ActivationParams, QuantizeInfo, conv_node, float_weights, quantize_model,
)
from ._quantize import (
    INT8, INT32, QTYPES, UINT8, QType, activation_params, bias_int32, dequantize,
    out_channel_view, quantize, round_half_even, weight_scales,
)
from ._weights import QuantizedWeights, WeightPart, quantize_weights

__all__ = [
    "DEFAULT_TARGETS", "FORMS", "INT8", "INT32", "QTYPES", "SEEDED_BATCH", "TARGETS", "UINT8",
    "ActivationParams", "QType", "QuantizeInfo", "QuantizedWeights", "TargetReading",
    "WeightPart", "activation_params", "bias_int32", "choose_form", "conv_node", "dequantize",
    "float_weights", "load_calibration", "out_channel_view", "parse_targets", "quantize",
    "quantize_model", "quantize_weights", "round_half_even", "seeded_calibration",
    "weight_scales",
]
