"""Quantized (QDQ) ConvTranspose: parse the Q/DQ around a node, and the int8 reference.

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

Nothing here runs an engine or imports onnx at import time.
"""

from __future__ import annotations

from ._granularity import (
    IntegerEvidence, WeightGranularity, integer_evidence, output_channel_index,
    weight_granularity,
)
from ._params import INT_RANGES, QParams, QuantError, int_range
from ._parse import (
    ConvAttrs, GraphIndex, QdqConvTranspose, model_qdq_nodes, parse_qdq, read_conv_attrs,
)
from ._reference import (
    TIE_BAND, LsbComparison, QuantResult, compare_lsb, dequantize, int8_reference, quantize,
)

__all__ = [
    "INT_RANGES", "TIE_BAND", "ConvAttrs", "GraphIndex", "IntegerEvidence", "LsbComparison", "QParams",
    "QdqConvTranspose", "QuantError", "QuantResult", "WeightGranularity", "compare_lsb",
    "dequantize", "int8_reference", "int_range", "integer_evidence", "model_qdq_nodes",
    "output_channel_index", "parse_qdq", "quantize", "read_conv_attrs", "weight_granularity",
]
