"""The risky forms x intents of repair (tests/support/models.risky) with hand-derived windows.

Shared by test_repair.py and test_repair_portable.py.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

X_SHAPE = (1, 2, 4, 5)

# form -> intent -> (begin_h, begin_w, length_h, length_w) at input 4x5, derived by hand
# (L = (in-1)*s + K; see convt_tools.check). The 'ort' column is what onnxruntime
# 1.32 was measured to compute; forms it refuses to load have no 'ort' column (the
# ort repair of them is refused: ORT_REFUSES).
EXPECTED = {
    "neg_pads_k_lt_s": dict.fromkeys(("tf", "onnx-spec"), (0, 0, 8, 10)),
    "neg_pads_valid_op": dict.fromkeys(("tf", "onnx-spec"), (0, 0, 10, 12)),
    "neg_pads_begin": dict.fromkeys(("tf", "onnx-spec"), (-1, 0, 9, 11)),
    "output_shape_odd": {"tf": (0, 0, 8, 10), "onnx-spec": (1, 1, 8, 10), "ort": (1, 1, 8, 10)},
    "output_shape_odd_upper": dict.fromkeys(("tf", "onnx-spec", "ort"), (0, 0, 8, 10)),
    "same_upper": dict.fromkeys(("tf", "onnx-spec", "ort"), (0, 0, 8, 10)),
    "same_lower": {"tf": (0, 0, 8, 10), "onnx-spec": (1, 1, 8, 10), "ort": (1, 1, 8, 10)},
    "same_upper_k_lt_s": {"tf": (0, 0, 8, 10), "onnx-spec": (-1, -1, 8, 10),
                          "ort": (0, 0, 7, 9)},
    "same_lower_k_lt_s": {"tf": (0, 0, 12, 15), "onnx-spec": (-1, -1, 12, 15),
                          "ort": (0, 0, 10, 13)},
    "same_upper_op": {"tf": (0, 0, 8, 10), "onnx-spec": (1, 1, 8, 10), "ort": (1, 1, 8, 10)},
    "op_ge_stride": dict.fromkeys(("tf", "onnx-spec"), (0, 0, 11, 13)),
    "pads_and_auto_pad": {"tf": (0, 0, 8, 10), "onnx-spec": (0, 0, 8, 10)},
}
CASES = [(f, i) for f, by in sorted(EXPECTED.items()) for i in sorted(by)]
ORT_REFUSES = ("neg_pads_k_lt_s", "neg_pads_valid_op", "neg_pads_begin", "op_ge_stride",
               "pads_and_auto_pad")


def weights(model: onnx.ModelProto) -> tuple[np.ndarray, np.ndarray]:
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    return inits["W"], inits["B"]


def strides(model: onnx.ModelProto) -> list[int]:
    attrs = {a.name: helper.get_attribute_value(a) for a in model.graph.node[0].attribute}
    return list(attrs["strides"])

