"""torch ``ConvTranspose{1,2,3}d`` -> ONNX, in a form onnxruntime runs exactly.

Graph: ``input (N, C_in, *spatial)`` -> one ``ConvTranspose`` -> ``output``;
``W`` is torch's ``weight`` (same layout, no flip), ``B`` its bias,
``group = groups``, explicit ``pads``, ``auto_pad`` NOTSET, never
``output_shape``. Per axis the attributes are
:meth:`TorchConvTransposeSpec.onnx_axes`: torch's own symmetric
``pads (p, p)`` and ``output_padding op`` where ``op < stride``; where
``op >= stride`` (legal in torch when ``op < dilation``, refused by
onnxruntime) the same output window is expressed with a smaller end pad, an
``output_padding`` below the stride, or zero taps appended to ``W`` (exact:
they add exact zeros; the bias still covers the appended rows, as in torch).
The pads do not depend on the input size, so symbolic spatial dims stay exact.
"""

from __future__ import annotations

import json
from typing import Any, Sequence

import numpy as np
import onnx
from onnx import helper

from .. import __version__
from ..errors import ConvtError
from ..exporter import DEFAULT_OPSET, _check_opset
from ..geometry import onnx_output_padding, onnx_pads, padded_kernel_shape
from ..onnx_graph import GraphBuilder
from .compute import check_torch_weights, initialize_torch_weights
from .spec import TorchConvTransposeSpec

__all__ = ["export_torch", "padded_weight"]

INPUT_NAME = "input"
OUTPUT_NAME = "output"
_DIM_NAMES = {1: ("length",), 2: ("height", "width"), 3: ("depth", "height", "width")}


def padded_weight(spec: TorchConvTransposeSpec, weight: np.ndarray,
                  output_padding: Sequence[int] | None = None) -> np.ndarray:
    """``weight`` with the zero taps of :meth:`~TorchConvTransposeSpec.onnx_axes` added."""
    axes = spec.onnx_axes(output_padding)
    widths = [(0, 0), (0, 0)] + [(a.taps_before, a.taps_after) for a in axes]
    return np.pad(weight, widths) if any(a.taps_before or a.taps_after for a in axes) else weight


def _dims(shape: Sequence[int | None], names: Sequence[str]) -> list[int | str]:
    return [n if d is None else int(d) for d, n in zip(shape, names)]


def export_torch(spec: TorchConvTransposeSpec, weight: Any = None, bias: Any = None, *,
                 input_shape: Sequence[int | None] | None = None,
                 output_size: Sequence[int] | None = None, opset: int = DEFAULT_OPSET,
                 seed: int = 0) -> onnx.ModelProto:
    """The ONNX model of ``spec`` (module docstring), float32, batched ``(N, C, *spatial)``.

    ``weight``/``bias`` in torch's layout; without them torch's default init is
    drawn with ``seed``. ``input_shape`` (``None`` = symbolic; default batch,
    channels and every spatial dim symbolic but C) may be unbatched, it is
    exported batched. ``output_size`` fixes ``output_padding`` as
    ``forward(x, output_size)`` does (needs known spatial dims).
    """
    opset = _check_opset(opset)
    notes: list[str] = []
    if weight is None:
        if bias is not None:
            raise ConvtError("bias: got a bias without a weight; give both, or neither.",
                             field="bias")
        weight, bias = initialize_torch_weights(spec, seed)
        notes.append(f"weights drawn with seed {seed} from torch's default init "
                     f"(not trained weights).")
    weight = check_torch_weights(spec, weight, bias).astype(np.float32)
    n = spec.rank
    if input_shape is None:
        input_shape = (None, spec.in_channels) + (None,) * n
    shape = spec.check_input_shape(input_shape)
    if len(shape) == n + 1:
        shape = (1, *shape)
    op = spec.resolve_output_padding(shape, output_size)
    out_shape = spec.output_shape(shape, output_size)
    axes = spec.onnx_axes(op)
    if any(a.pad_end != a.pad_begin or a.taps_after for a in axes):
        notes.append("output_padding >= stride (legal in torch when < dilation) is refused by "
                     "onnxruntime; written as an equivalent asymmetric end pad / smaller "
                     "output_padding / zero kernel taps.")
    g = GraphBuilder(opset, np.float32)
    inputs = [INPUT_NAME, g.const(padded_weight(spec, weight, op), name="W")]
    if spec.bias:
        inputs.append(g.const(np.asarray(bias, np.float32), name="B"))
    attrs: dict[str, Any] = {"kernel_shape": padded_kernel_shape(spec.kernel_size, axes),
                             "strides": list(spec.stride), "dilations": list(spec.dilation),
                             "pads": onnx_pads(axes), "group": spec.groups}
    out_pad = onnx_output_padding(axes)
    if out_pad is not None:
        attrs["output_padding"] = out_pad
    g.op("ConvTranspose", *inputs, name="ConvTranspose", outputs=[OUTPUT_NAME], **attrs)
    names = ("batch", "channels") + _DIM_NAMES[n]
    elem = g.float_enum
    graph = helper.make_graph(
        g.nodes, spec.module.lower(),
        [helper.make_tensor_value_info(INPUT_NAME, elem, _dims(shape, names))],
        [helper.make_tensor_value_info(OUTPUT_NAME, elem,
                                       _dims(out_shape, ("batch", "channels")
                                             + tuple(f"out_{x}" for x in _DIM_NAMES[n])))],
        initializer=g.initializers)
    opsets = [helper.make_opsetid("", opset)]
    ir_version = min(helper.find_min_ir_version_for(opsets), onnx.IR_VERSION)
    model = helper.make_model(graph, opset_imports=opsets, ir_version=ir_version,
                              producer_name="convt-tools", producer_version=__version__,
                              doc_string=f"torch {spec.snippet()}")
    helper.set_model_props(model, {"convt.torch_config": json.dumps(spec.to_config(),
                                                                    sort_keys=True),
                                   "convt.output_padding": json.dumps(list(op)),
                                   "convt.notes": json.dumps(notes)})
    onnx.checker.check_model(model, full_check=True)
    return model
