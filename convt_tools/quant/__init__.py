"""Quantized (QDQ) ConvTranspose: parse the Q/DQ around a node, the int8 reference, and
the int8 QDQ export.

* :func:`parse_qdq` / :func:`model_qdq_nodes`: a ConvTranspose node's
  QuantizeLinear / DequantizeLinear neighbours (weights through
  DequantizeLinear with int8/uint8 integers, an int32 bias through
  DequantizeLinear, activations Q -> DQ on the input and the output) as a
  :class:`QdqConvTranspose` of :class:`QParams` (per tensor, per axis, opset-21
  blocked) and the node's :class:`ConvAttrs`, at every rank and group.
* :func:`weight_granularity`: what the stored weight scales mean for the node's
  group count (per output channel, per input channel, shared across groups...).
* :func:`int8_reference`: ONNX Q/DQ simulated exactly (round half to even,
  saturation) around :func:`convt_tools.reference.conv_transpose` in float64;
  :func:`compare_lsb`: a runtime's output in LSB of the output scale, rounding
  ties counted.
* Making QDQ models (``export --quantize``, ``repair``): :mod:`._quantize`
  (symmetric weight scales per output channel, MinMax activation parameters,
  int32 bias at ``x_scale * w_scale``), :mod:`._forms` (the weight forms and
  which one each target runtime reads: :data:`TARGETS`, :func:`choose_form`),
  :mod:`._weights` (:func:`quantize_weights` into a form), :mod:`._calibration`
  (calibration batches) and :mod:`._qdq_build` (:func:`quantize_model`, a float
  one-ConvTranspose model to its QDQ model; :func:`replace_conv`).

Nothing here runs an engine or imports onnx at import time (the builder's
names, :data:`_LAZY`, load on first use).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_getattr

from ._calibration import SEEDED_BATCH, check_calibration, load_calibration, seeded_calibration
from ._forms import (
    BLOCKED_MIN_OPSET, DEFAULT_TARGETS, FORMS, TARGETS, TargetReading, choose_form, int8_faults,
    parse_targets,
)
from ._granularity import (
    IntegerEvidence, WeightGranularity, integer_evidence, output_channel_index,
    weight_granularity,
)
from ._params import INT_RANGES, QParams, QuantError, int_range
from ._parse import (
    ConvAttrs, GraphIndex, QdqConvTranspose, model_qdq_nodes, parse_qdq, read_conv_attrs,
)
from ._quantize import (
    INT8, INT32, QTYPES, UINT8, QType, activation_params, bias_int32, out_channel_view,
    weight_scales,
)
from ._reference import (
    TIE_BAND, LsbComparison, QuantResult, compare_lsb, dequantize, int8_reference, quantize,
)
from ._weights import QuantizedWeights, WeightPart, quantize_weights, relayout

if TYPE_CHECKING:
    from ._qdq_build import (
        ActivationParams, QuantizeInfo, conv_node, float_weights, model_reference, neighbourhood,
        quantize_model, replace_conv,
    )

# The builder imports onnx at module level: it loads on first use of one of its names.
_LAZY = dict.fromkeys(("ActivationParams", "QuantizeInfo", "conv_node", "float_weights",
                       "model_reference", "neighbourhood", "quantize_model", "replace_conv"),
                      "._qdq_build")


__getattr__ = lazy_getattr(__name__, globals(), _LAZY)


__all__ = [
    "BLOCKED_MIN_OPSET", "DEFAULT_TARGETS", "FORMS", "INT8", "INT32", "INT_RANGES", "QTYPES",
    "SEEDED_BATCH", "TARGETS", "TIE_BAND", "UINT8", "ActivationParams", "ConvAttrs",
    "GraphIndex", "IntegerEvidence", "LsbComparison", "QParams", "QType", "QdqConvTranspose",
    "QuantError", "QuantResult", "QuantizeInfo", "QuantizedWeights", "TargetReading",
    "WeightGranularity", "WeightPart", "activation_params", "bias_int32", "check_calibration",
    "choose_form", "compare_lsb", "conv_node", "dequantize", "float_weights", "int8_faults",
    "int8_reference", "int_range", "integer_evidence", "load_calibration", "model_qdq_nodes",
    "model_reference",
    "neighbourhood", "out_channel_view", "output_channel_index", "parse_qdq", "parse_targets",
    "quantize", "quantize_model", "quantize_weights", "read_conv_attrs", "relayout",
    "replace_conv", "seeded_calibration", "weight_granularity", "weight_scales",
]
