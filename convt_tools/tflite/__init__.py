"""LiteRT (TensorFlow Lite) export without TensorFlow: see :mod:`._graph` and :mod:`._plan`.

The writer needs the optional extra ``[litert]`` (ai-edge-litert's schema
module and flatbuffers), imported on first use; nothing here imports it at
import time.
"""

from __future__ import annotations

from ._export import export_keras_tflite, export_op_tflite, fixed_shape
from ._graph import TfliteModel, build_tflite, dense_kernel
from ._plan import AxisPlan, ConvPlan, plan_axes, same_begin
from ._schema import LITERT_EXTRA

__all__ = ["LITERT_EXTRA", "AxisPlan", "ConvPlan", "TfliteModel", "build_tflite",
           "dense_kernel", "export_keras_tflite", "export_op_tflite", "fixed_shape", "plan_axes",
           "same_begin"]
