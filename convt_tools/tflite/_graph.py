"""The TFLite graph of one transposed convolution (any rank, layout, groups, dilation).

From a compact :class:`~convt_tools.op.ConvTransposeOp` (per-axis ONNX pads,
output_padding and zero taps, group, activation) and ONNX-layout weights
``W (C_in, C_out/group, *k)``, ``B (C_out,)``, with a fixed input shape in the
op's layout::

    input [-> TRANSPOSE to channels_last] [-> RESHAPE (N, 1, W, C): 1-D]
      [-> SPLIT on channels: groups]
      -> TRANSPOSE_CONV (2-D; weights OHWI) | CONV_3D_TRANSPOSE (3-D; weights DHWOI)
         output_shape int32 input 0, weights input 1, data input 2, bias input 3,
         SAME or VALID (:mod:`._plan`), relu/relu6 fused (2-D, one group)
      [-> CONCATENATION: groups] [-> STRIDED_SLICE: the exact window]
      [-> RESHAPE back: 1-D] [-> TRANSPOSE back] [-> activation operators]

Unknown dims (``None`` in the input shape: the batch, H, W) make the model
dynamic: ``output_shape`` is computed from ``SHAPE(input)`` per axis as
``in * s + c`` (``c`` a constant of the plan, which does not depend on
``in``), 1-D uses ``EXPAND_DIMS``/``SQUEEZE``, and the crop ``STRIDED_SLICE``
counts its end from the end (constant); ``resize_tensor_input`` then works at
any size (tests/test_tflite_export.py measures several).

Dilation is expressed by a dense kernel with zero taps between the taps
(``(k - 1) * d + 1`` long, exact: zero taps add exact zeros), so every
operator runs with dilation 1. Weights (and bias) are float32, or float16
constants followed by ``DEQUANTIZE`` (TF's float16 form) for float16 layers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from ..errors import ConvtError
from ..geometry import Window, natural_length
from ..io import check_allocation
from ..op import ConvTransposeOp
from ._activations import FUSED, apply_activation, check_activation
from ._builder import Graph
from ._plan import ConvPlan, plan_axes

__all__ = ["TfliteModel", "build_tflite", "dense_kernel"]

INPUT_NAME = "input"
OUTPUT_NAME = "output"


@dataclass
class TfliteModel:
    """A serialised ``.tflite`` model and what the reader should know about it."""

    data: bytes
    ops: list[str]
    padding: str
    input_shape: tuple[int | None, ...]     # None: unknown (a dynamic model)
    output_shape: tuple[int | None, ...]
    notes: list[str] = field(default_factory=list)
    # The layer's float type the output is judged in (float16 for float16 layers: float16
    # weights, float16-rounded input fed as float32); input/output tensors are float32.
    dtype: str = "float32"
    input_name: str = INPUT_NAME


INT32_MAX = 2**31 - 1   # TFLite tensor dims and the output_shape input are int32


def dense_kernel(w: np.ndarray, op: ConvTransposeOp,
                 dilation_field: str = "dilation_rate") -> np.ndarray:
    """``W`` with ``op``'s zero taps, then its dilation expressed by zero taps between taps
    (refused, naming ``dilation_field``, where that kernel is too big to hold)."""
    taps = [k + b + a for k, (b, a) in zip(w.shape[2:], op.taps)]
    dense_shape = [*w.shape[:2], *((k - 1) * d + 1 for k, d in zip(taps, op.dilations))]
    if max(dense_shape[2:], default=1) > INT32_MAX:
        raise ConvtError(f"{dilation_field}: the dilated kernel {tuple(dense_shape[2:])} "
                         f"(dilation as zero taps) exceeds LiteRT's int32 dims.",
                         field=dilation_field)
    check_allocation(dense_shape, np.float32, dilation_field,
                     f"the dilated kernel {tuple(dense_shape)} (dilation as zero taps, as "
                     f"TRANSPOSE_CONV has no dilation)")
    w = np.pad(w, [(0, 0), (0, 0), *op.taps]) if any(b or a for b, a in op.taps) else w
    if all(d == 1 for d in op.dilations):
        return w
    shape = [*w.shape[:2], *((k - 1) * d + 1 for k, d in zip(w.shape[2:], op.dilations))]
    dense = np.zeros(shape, dtype=w.dtype)
    steps = tuple(slice(None, None, d) for d in op.dilations)
    dense[(slice(None), slice(None)) + steps] = w
    return dense


def _windows(op: ConvTransposeOp, spatial: Sequence[int], kernel: Sequence[int]) -> list[Window]:
    """The kept window of each axis on the dense kernel's natural output."""
    out = []
    for n, k, s, a in zip(spatial, kernel, op.strides, op.axes):
        nat = natural_length(n, k, s, 1)
        out.append(Window(a.pad_begin, nat + a.output_padding - a.pad_begin - a.pad_end))
    return out


class _Writer:
    def __init__(self, g: Graph, float16: bool) -> None:
        self.g = g
        self.float16 = float16

    def weight(self, name: str, value: np.ndarray) -> int:
        """A float constant; float16 + DEQUANTIZE for float16 layers."""
        if not self.float16:
            return self.g.const(name, value.astype(np.float32))
        half = self.g.const(f"{name}_fp16", value.astype(np.float16), np.float16)
        out = self.g.tensor(name, value.shape)
        self.g.op("DEQUANTIZE", [half], [out])
        return out

    def ints(self, name: str, values: Sequence[int | None]) -> int:
        """An int32 constant (every value known)."""
        return self.g.const(name, np.asarray(values, dtype=np.int32), np.int32)

    def transpose(self, x: int, perm: Sequence[int], name: str) -> int:
        shape = self.g.shape_of(x)
        out = self.g.tensor(name, [shape[p] for p in perm])
        self.g.op("TRANSPOSE", [x, self.ints(f"{name}_perm", perm)], [out],
                  self.g.s.TransposeOptionsT(), "TransposeOptions")
        return out

    def expand_unit_height(self, x: int) -> int:
        """(N, W, C) -> (N, 1, W, C): RESHAPE when every dim is known, else EXPAND_DIMS."""
        n, w, c = self.g.shape_of(x)
        if None not in (n, w, c):
            return self.reshape(x, [n, 1, w, c], "unit_height")  # type: ignore[list-item]
        out = self.g.tensor("unit_height", [n, 1, w, c])
        self.g.op("EXPAND_DIMS", [x, self.g.const("unit_axis", np.int32(1), np.int32)], [out],
                  self.g.s.ExpandDimsOptionsT(), "ExpandDimsOptions")
        return out

    def drop_unit_height(self, y: int) -> int:
        """(N, 1, W, C) -> (N, W, C): RESHAPE when every dim is known, else SQUEEZE."""
        n, _, w, c = self.g.shape_of(y)
        if None not in (n, w, c):
            return self.reshape(y, [n, w, c], "drop_unit_height")  # type: ignore[list-item]
        out = self.g.tensor("drop_unit_height", [n, w, c])
        opts = self.g.s.SqueezeOptionsT()
        opts.squeezeDims = [1]
        self.g.op("SQUEEZE", [y], [out], opts, "SqueezeOptions")
        return out

    def output_shape(self, x: int, lengths: Sequence[int | None], strides: Sequence[int],
                     offsets: Sequence[int], channels: int) -> int:
        """The int32 ``output_shape`` input: a constant, or from ``SHAPE(x)`` where a dim
        of ``x`` is unknown (axis length ``in * s + offset``)."""
        xs = self.g.shape_of(x)
        if None not in xs:
            return self.ints("output_shape", [xs[0], *lengths, channels])
        g = self.g
        shape = g.tensor("input_shape", [len(xs)], np.int32)
        so = g.s.ShapeOptionsT()
        so.outType = g.s.TensorType.INT32
        g.op("SHAPE", [x], [shape], so, "ShapeOptions")

        def dim(i: int) -> int:
            out = g.tensor(f"input_dim{i}", [1], np.int32)
            g.op("STRIDED_SLICE", [shape, self.ints(f"dim{i}_b", [i]),
                                   self.ints(f"dim{i}_e", [i + 1]), self.ints(f"dim{i}_s", [1])],
                 [out], g.s.StridedSliceOptionsT(), "StridedSliceOptions")
            return out

        parts = [dim(0) if xs[0] is None else self.ints("batch", [xs[0]])]
        for i, (n, s, c) in enumerate(zip(lengths, strides, offsets), start=1):
            if xs[i] is not None:
                parts.append(self.ints(f"length{i}", [n]))
                continue
            scaled = g.tensor(f"length{i}_scaled", [1], np.int32)
            g.op("MUL", [dim(i), self.ints(f"stride{i}", [s])], [scaled], g.s.MulOptionsT(),
                 "MulOptions")
            length = g.tensor(f"length{i}", [1], np.int32)
            g.op("ADD", [scaled, self.ints(f"offset{i}", [c])], [length], g.s.AddOptionsT(),
                 "AddOptions")
            parts.append(length)
        parts.append(self.ints("channels", [channels]))
        out = g.tensor("output_shape", [len(xs)], np.int32)
        co = g.s.ConcatenationOptionsT()
        co.axis = 0
        g.op("CONCATENATION", parts, [out], co, "ConcatenationOptions")
        return out

    def reshape(self, x: int, shape: Sequence[int], name: str) -> int:
        out = self.g.tensor(name, shape)
        opts = self.g.s.ReshapeOptionsT()
        opts.newShape = [int(d) for d in shape]
        self.g.op("RESHAPE", [x, self.ints(f"{name}_shape", shape)], [out], opts,
                  "ReshapeOptions")
        return out


def _conv(wr: _Writer, x: int, shape_t: int, w: np.ndarray, b: np.ndarray | None,
          plan: ConvPlan, lengths: Sequence[int | None], strides: Sequence[int], fused: str,
          tag: str) -> int:
    """One TRANSPOSE_CONV / CONV_3D_TRANSPOSE of dense ONNX-layout ``w`` (one group)."""
    g, s = wr.g, wr.g.s
    rank = w.ndim - 2
    out = g.tensor(f"conv{tag}", [g.shape_of(x)[0], *lengths, int(w.shape[1])])
    act = getattr(s.ActivationFunctionType, fused)
    pad = getattr(s.Padding, plan.padding)
    bias_t = -1 if b is None else wr.weight(f"conv{tag}_bias", b)
    if rank == 2:
        filt = wr.weight(f"conv{tag}_weights_ohwi", w.transpose(1, 2, 3, 0))
        opts = s.TransposeConvOptionsT()
        opts.padding, opts.strideH, opts.strideW = pad, strides[0], strides[1]
        opts.fusedActivationFunction = act
        g.op("TRANSPOSE_CONV", [shape_t, filt, x, bias_t], [out], opts, "TransposeConvOptions")
        return out
    filt = wr.weight(f"conv{tag}_weights_dhwoi", w.transpose(2, 3, 4, 1, 0))
    o3 = s.Conv3DOptionsT()
    o3.padding, o3.strideD, o3.strideH, o3.strideW = pad, *strides
    o3.dilationDFactor = o3.dilationHFactor = o3.dilationWFactor = 1
    o3.fusedActivationFunction = act
    g.op("CONV_3D_TRANSPOSE", [shape_t, filt, x, bias_t], [out], o3, "Conv3DOptions")
    return out


# A stand-in length for unknown dims while planning: the plan's choices and constants do
# not depend on the input length (see _plan), only the lengths themselves do.
_PLAN_LENGTH = 5


def build_tflite(op: ConvTransposeOp, w: np.ndarray, b: np.ndarray | None,
                 input_shape: Sequence[int | None], *, float16_weights: bool = False,
                 description: str = "convt-tools", prefer: str = "VALID",
                 dilation_field: str = "dilation_rate") -> TfliteModel:
    """The graph of the module docstring; ``input_shape`` in ``op.layout`` (``None``: unknown).

    ``op`` must be compact (no crop Slice: its pads say the window); ``prefer``: the
    padding written where SAME and VALID are both exact (:func:`plan_axes`). Raises
    :class:`ConvtError` for an activation with no exact TFLite form.
    """
    if op.crop_slice is not None:
        raise ConvtError("form: the tflite writer takes the compact form (pads name the "
                         "window); got a crop Slice.", field="form")
    check_activation(op.activation)
    layout, rank, group = op.layout, op.rank, op.group
    shape = tuple(None if d is None else int(d) for d in input_shape)
    dense = dense_kernel(np.asarray(w), op, dilation_field)
    spatial: list[int | None] = list(layout.spatial(shape))
    kernel = list(dense.shape[2:])
    strides = list(op.strides)
    if rank == 1:   # a unit height axis: 1-D through the 2-D operator
        spatial, kernel, strides = [1, *spatial], [1, *kernel], [1, *strides]
        dense = dense[:, :, None]
    rep = [_PLAN_LENGTH if n is None else n for n in spatial]
    windows = _windows(op, rep[-rank:], kernel[-rank:])
    if rank == 1:
        windows = [Window(0, 1), *windows]
    plan = plan_axes(rep, kernel, strides, windows, prefer)
    dense = np.pad(dense, [(0, 0), (0, 0), *((a.taps_before, a.taps_after) for a in plan.axes)])
    offsets = [n - r * st for n, r, st in zip(plan.conv_lengths, rep, strides)]
    lengths = [None if n is None else n * st + c for n, st, c in zip(spatial, strides, offsets)]
    if any(n is not None and n > INT32_MAX for n in lengths):
        raise ConvtError(f"input_shape: got {shape}; the conv's output lengths {lengths} "
                         f"exceed LiteRT's int32 dims (max {INT32_MAX}).", field="input_shape")
    g = Graph()
    wr = _Writer(g, float16_weights)
    x = x_in = g.tensor(INPUT_NAME, shape)
    if layout.to_channels_last is not None:
        x = wr.transpose(x, layout.to_channels_last, "to_channels_last")
    if rank == 1:
        x = wr.expand_unit_height(x)
    conv_rank = max(rank, 2)
    fused = FUSED.get(op.activation, "NONE") if group == 1 and conv_rank == 2 else "NONE"
    cin, cout_g = dense.shape[0] // group, int(dense.shape[1])
    shape_t = wr.output_shape(x, lengths, strides, offsets, cout_g)
    parts = [x]
    if group > 1:
        xs = g.shape_of(x)
        parts = [g.tensor(f"group{i}_input", [*xs[:-1], cin]) for i in range(group)]
        so = g.s.SplitOptionsT()
        so.numSplits = group
        axis = g.const("split_axis", np.int32(conv_rank + 1), np.int32)
        g.op("SPLIT", [axis, x], parts, so, "SplitOptions")
    outs = [_conv(wr, p, shape_t, dense[i * cin:(i + 1) * cin],
                  None if b is None else np.asarray(b)[i * cout_g:(i + 1) * cout_g],
                  plan, lengths, strides, fused, "" if group == 1 else f"_g{i}")
            for i, p in enumerate(parts)]
    y = outs[0]
    if group > 1:
        y = g.tensor("concat", [*g.shape_of(outs[0])[:-1], cout_g * group])
        co = g.s.ConcatenationOptionsT()
        co.axis = conv_rank + 1
        g.op("CONCATENATION", outs, [y], co, "ConcatenationOptions")
    if plan.sliced:
        y = _window_slice(wr, y, plan, spatial)
    if rank == 1:
        y = wr.drop_unit_height(y)
    if layout.from_channels_last is not None:
        y = wr.transpose(y, layout.from_channels_last, "to_layout")
    if fused == "NONE":
        y = apply_activation(g, op.activation, y)
    g.tensors[y].name = OUTPUT_NAME
    data = g.finish([x_in], [y], description)
    return TfliteModel(data, list(g.op_names), plan.padding, shape, tuple(g.shape_of(y)))


def _window_slice(wr: _Writer, y: int, plan: ConvPlan, spatial: Sequence[int | None]) -> int:
    """The constant STRIDED_SLICE keeping ``[begin, begin + length)`` per axis; ends count
    from the end (``-cut``, or the end mask where nothing is cut), so they hold for any
    input length."""
    g = wr.g
    ys = g.shape_of(y)
    cuts = [a.valid_length - a.begin - a.length for a in plan.axes]
    begin = [0, *(a.begin for a in plan.axes), 0]
    end = [0, *(-c for c in cuts), 0]
    end_mask = 1 | (1 << (len(ys) - 1))
    for i, c in enumerate(cuts, start=1):
        if c == 0:
            end_mask |= 1 << i
    out_shape = [ys[0], *(None if n is None else a.length
                          for n, a in zip(spatial, plan.axes)), ys[-1]]
    cut = g.tensor("window", out_shape)
    opts = g.s.StridedSliceOptionsT()
    opts.endMask = end_mask
    g.op("STRIDED_SLICE", [y, wr.ints("window_begin", begin), wr.ints("window_end", end),
                           wr.ints("window_strides", [1] * len(begin))], [cut], opts,
         "StridedSliceOptions")
    return cut
