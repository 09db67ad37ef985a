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
they add exact zeros; the bias still covers the appended rows, as in torch);
a smaller end pad is written in the portable form (symmetric pads plus a
constant crop ``Slice``), which onnx2torch also runs.
The pads do not depend on the input size, so symbolic spatial dims stay exact.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Sequence

import numpy as np
import onnx
from onnx import helper

from .. import __version__
from ..errors import ConvtError
from ..exporter import DEFAULT_OPSET, build_graph, check_opset
from ..geometry import OnnxAxis, PortableAxis, portable_slice
from ..io import cast_checked
from ..layer import input_shape as layer_input_shape
from ..onnxbase import uses_external_data
from ..op import ConvTransposeOp
from ..tflite import TfliteModel, export_op_tflite
from .compute import check_torch_weights, initialize_torch_weights
from .spec import TorchConvTransposeSpec

__all__ = ["export_torch", "torch_tflite"]

_DIM_NAMES = {1: ("length",), 2: ("height", "width"), 3: ("depth", "height", "width")}


def _dims(shape: Sequence[int | None], names: Sequence[str]) -> list[int | str]:
    return [n if d is None else int(d) for d, n in zip(shape, names)]


def _portable(conv: ConvTransposeOp) -> ConvTransposeOp:
    """``conv`` with symmetric pads: an asymmetric axis keeps ``min(begin, end)`` and the
    rest becomes a constant crop ``Slice`` (the portable form; onnx2torch refuses
    asymmetric pads). The window is the same on every input length."""
    if all(a.pad_begin == a.pad_end for a in conv.axes):
        return conv
    parts = [PortableAxis(min(a.pad_begin, a.pad_end), a.output_padding,
                          a.pad_begin - min(a.pad_begin, a.pad_end),
                          a.pad_end - min(a.pad_begin, a.pad_end)) for a in conv.axes]
    cut = portable_slice(parts, 2)
    axes = tuple(OnnxAxis(p.pad, p.pad, p.output_padding, a.taps_before, a.taps_after)
                 for p, a in zip(parts, conv.axes))
    return dataclasses.replace(conv, axes=axes, crop_slice=None if cut is None
                               else (tuple(cut[0]), tuple(cut[1]), tuple(cut[2])))


def _weights(spec: TorchConvTransposeSpec, weight: Any, bias: Any, seed: int,
             notes: list[str]) -> tuple[np.ndarray, np.ndarray | None]:
    """float32 ``(weight, bias)``: the given ones checked, or torch's default init drawn
    with ``seed`` (noted in ``notes``)."""
    if weight is None:
        if bias is not None:
            raise ConvtError("bias: got a bias without a weight; give both, or neither.",
                             field="bias")
        weight, bias = initialize_torch_weights(spec, seed)
        notes.append(f"weights drawn with seed {seed} from torch's default init "
                     f"(not trained weights).")
    weight = cast_checked(check_torch_weights(spec, weight, bias), np.float32, "weight")
    if bias is not None:
        bias = cast_checked(bias, np.float32, "bias")
    return weight, bias


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
    opset = check_opset(opset)
    notes: list[str] = []
    weight, bias = _weights(spec, weight, bias, seed, notes)
    n = spec.rank
    shape = spec.check_input_shape(layer_input_shape(spec, input_shape))
    if len(shape) == n + 1:
        shape = (1, *shape)
    op = spec.resolve_output_padding(shape, output_size)
    out_shape = spec.output_shape(shape, output_size)
    conv = _portable(spec.onnx_op(op))
    if conv.crop_slice is not None or any(a.taps_after for a in conv.axes):
        notes.append("output_padding >= stride (legal in torch when < dilation) is refused by "
                     "onnxruntime; written as an equivalent smaller end pad (symmetric pads "
                     "plus a constant Slice) / smaller output_padding / zero kernel taps.")
    names = ("batch", "channels") + _DIM_NAMES[n]
    out_names = ("batch", "channels") + tuple(f"out_{x}" for x in _DIM_NAMES[n])
    graph = build_graph(conv, weight, None if not spec.bias else np.asarray(bias, np.float32),
                        np.dtype(np.float32), opset, _dims(shape, names),
                        _dims(out_shape, out_names), spec.module.lower(), notes,
                        dilation_field="dilation")
    opsets = [helper.make_opsetid("", opset)]
    ir_version = min(helper.find_min_ir_version_for(opsets), onnx.IR_VERSION)
    model = helper.make_model(graph, opset_imports=opsets, ir_version=ir_version,
                              producer_name="convt-tools", producer_version=__version__,
                              doc_string=f"torch {spec.snippet()}")
    helper.set_model_props(model, {"convt.torch_config": json.dumps(spec.to_config(),
                                                                    sort_keys=True),
                                   "convt.output_padding": json.dumps(list(op)),
                                   "convt.notes": json.dumps(notes)})
    if not uses_external_data(model):
        # As export_spec: weights above the external-data threshold are held outside
        # the proto (external_data.py); save_model checks the written model.
        onnx.checker.check_model(model, full_check=True)
    return model


def torch_tflite(spec: TorchConvTransposeSpec, weight: Any = None, bias: Any = None, *,
                 input_shape: Sequence[int | None] | None = None,
                 output_size: Sequence[int] | None = None, seed: int = 0,
                 dynamic: bool = False) -> TfliteModel:
    """The ``.tflite`` model of ``spec`` (:mod:`convt_tools.tflite`), float32, batched
    (``dynamic``: unknown dims stay unknown, :func:`convt_tools.tflite.export_op_tflite`).

    Weights as :func:`export_torch` (torch's layout, or torch's default init
    drawn with ``seed``); the window is :meth:`TorchConvTransposeSpec.onnx_op`'s
    compact form; groups become SPLIT, one TRANSPOSE_CONV per group, CONCATENATION.
    """
    notes: list[str] = []
    weight, bias = _weights(spec, weight, bias, seed, notes)
    b = bias if spec.bias else None
    shape = spec.check_input_shape(layer_input_shape(spec, input_shape))
    if len(shape) == spec.rank + 1:
        shape = (1, *shape)
    op = spec.resolve_output_padding(shape, output_size)
    return export_op_tflite(spec.onnx_op(op), weight, b, shape,
                            description=f"convt-tools: torch {spec.snippet()}", notes=notes,
                            dynamic=dynamic, dilation_field="dilation")
