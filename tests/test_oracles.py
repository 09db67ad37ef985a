"""The shared loop oracle (tests/support/oracles.py) against onnxruntime over ranks 1-3, groups and pads."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from support.oracles import onnx_conv_transpose

CASES = [  # rank, kernel, strides, dilations, pads, output_padding, group
    (1, (3,), (2,), (1,), (1, 0), (1,), 1),
    (1, (2,), (3,), (2,), (0, 2), (0,), 2),
    (2, (3, 2), (2, 1), (1, 2), (1, 0, 0, 1), (1, 0), 2),
    (3, (2, 3, 2), (2, 1, 3), (1, 1, 1), (0, 1, 0, 1, 0, 1), (1, 0, 2), 1),
]


def _ort(x, w, b, **attrs):
    rank = x.ndim - 2
    node = helper.make_node("ConvTranspose", ["x", "W", "B"], ["y"], **attrs)
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x.shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None] * (rank + 2))],
        [numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "B")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("case", CASES, ids=[f"rank{c[0]}-g{c[-1]}-{i}" for i, c in enumerate(CASES)])
def test_oracle_matches_onnxruntime(case, ort_run):
    rank, k, s, d, pads, op, group = case
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 4, *([3] * rank))).astype(np.float32)
    w = rng.standard_normal((4, 3, *k)).astype(np.float32)
    b = rng.standard_normal(3 * group).astype(np.float32)
    attrs = dict(strides=list(s), dilations=list(d), pads=list(pads), output_padding=list(op),
                 group=group, kernel_shape=list(k))
    want = onnx_conv_transpose(x, w, b, strides=s, dilations=d, pads=pads, output_padding=op,
                               group=group)
    got = ort_run(_ort(x, w, b, **attrs), x)[0]
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
