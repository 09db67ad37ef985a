"""The exporter's rank-generic description (convt_tools.op.ConvTransposeOp) beyond Keras.

A torch spec (or any producer) describes its layer as layout + kernel shape,
strides, dilations, per-axis OnnxAxis (pads, output_padding, zero taps), group
and activation. Here such descriptions are made from arbitrary windows
(geometry.express: negative begins and long extensions need zero taps), with
groups, for ranks 1-3 and both layouts, and the graph from
exporter.build_graph run in onnxruntime must equal the loop-by-definition
oracle (tests/support/oracles.window) on that window. float32 vs float64 oracle:
rtol = atol = 1e-5 (tiny sums).
"""

from __future__ import annotations

import numpy as np
import pytest

from support.runners import run_onnx_model
from convt_tools import geometry as G
from convt_tools.exporter import build_graph
from convt_tools.op import ConvTransposeOp
from convt_tools.spec import Layout
from support.oracles import window

import onnx  # noqa: E402


@pytest.mark.parametrize(("rank", "fmt", "group", "begins", "lengths"), [
    (1, "channels_first", 2, (-2,), (11,)),          # zero rows at the start: taps before
    (1, "channels_last", 1, (1,), (14,)),            # extension beyond s-1: taps after
    (2, "channels_last", 2, (0, -1), (7, 9)),
    (3, "channels_first", 1, (1, 0, -1), (4, 6, 5)),
    (3, "channels_last", 3, (2, 1, 0), (3, 5, 7)),
])
def test_build_graph_from_a_description_equals_the_definition(
        rank: int, fmt: str, group: int, begins: tuple, lengths: tuple) -> None:
    rng = np.random.default_rng(rank * 10 + group)
    kernel = (3, 2, 2)[:rank]
    strides = (2, 1, 2)[:rank]
    dilations = (1,) * rank
    sizes = (4, 3, 3)[:rank]
    c_in, cog = 2 * group, 2
    axes = tuple(G.express(G.Window(b, n), G.natural_length(m, k, s, d), s, d)
                 for b, n, m, k, s, d in zip(begins, lengths, sizes, kernel, strides, dilations))
    layout = Layout(rank, fmt)
    op = ConvTransposeOp(layout=layout, kernel_shape=kernel, strides=strides,
                         dilations=dilations, axes=axes, group=group)
    w = rng.standard_normal((c_in, cog, *kernel)).astype(np.float32)
    b = rng.standard_normal(cog * group).astype(np.float32)
    x_cf = rng.standard_normal((2, c_in, *sizes)).astype(np.float32)
    want = window(x_cf, w, b, strides, begins, lengths, dilations, group)
    if not layout.channels_first:  # the model takes and gives (N, *spatial, C)
        to_cl = Layout(rank, "channels_first").to_channels_last
        x, want = x_cf.transpose(to_cl), want.transpose(to_cl)
    else:
        x = x_cf
    in_dims = list(x.shape)
    out_dims = list(want.shape)
    graph = build_graph(op, w, b, np.dtype(np.float32), 17, in_dims, out_dims, "op", [])
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)])
    onnx.checker.check_model(model, full_check=True)
    got = run_onnx_model(model, x)[0]
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    attrs = op.attributes()
    assert attrs["kernel_shape"] == G.padded_kernel_shape(kernel, axes)
    assert attrs.get("group", 1) == group
