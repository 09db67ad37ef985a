"""PyTorch ``nn.ConvTranspose1d/2d/3d``: constructor arguments, torch's rules, shapes.

Checked against real torch 2.13 (``fixtures/torch/``, ``fixtures/torch_invalid.json``).
Per spatial axis, with ``in`` the input length, ``k`` kernel, ``s`` stride,
``d`` dilation, ``p`` (symmetric) padding and ``op`` output_padding::

    K = (k - 1) * d + 1                   effective kernel   (geometry.effective_kernel)
    L = (in - 1) * s + K                  natural length     (geometry.natural_length)
    O = L - 2p + op                       torch's output length (must be >= 1)

Output row ``o`` is natural row ``o + p``; rows at or beyond ``L`` are zeros
before the bias. That is exactly ONNX ``ConvTranspose`` with ``pads = [p..., p...]``,
``output_padding = [op...]``, ``group = groups`` and ``W`` = torch's ``weight``
``(in, out/groups, k...)`` unchanged.

torch's rules (its own wording in the errors): ``op`` must be smaller than
either ``s`` or ``d`` (so ``op >= s`` is legal when ``d > op``); ``padding_mode``
``zeros`` only; no string padding; ``groups`` divides both channel counts;
``forward(x, output_size)`` replaces ``op`` by ``output_size - (L - 2p)`` and
accepts only ``op`` in ``[0, s - 1]`` (the stride, not the dilation).

Standard library only, so ``convt shape`` stays fast.
"""

from __future__ import annotations

import numbers
import os
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from ..errors import ConvtError, fail
from ..spec.parse import read_config_json as read_json_config  # one strict JSON reader
from ..geometry import (OnnxAxis, effective_kernel, explicit_window, natural_length,
                        torch_express, torch_output_length)
from ..pictures import AxisPanel, Row, axis_panel

__all__ = ["TORCH_MODULES", "TorchConvTransposeSpec", "is_torch_kwargs", "load_torch_config",
           "parse_torch_config", "read_json_config"]

TORCH_MODULES = {1: "ConvTranspose1d", 2: "ConvTranspose2d", 3: "ConvTranspose3d"}
_RANKS = {name.lower(): rank for rank, name in TORCH_MODULES.items()}
# torch's per-axis names in its C++ messages (1-D modules run as 2-D there).
_AXIS_NAMES = {1: ("width",), 2: ("height", "width"), 3: ("depth", "height", "width")}
_PER_AXIS = ("kernel_size", "stride", "padding", "output_padding", "dilation")
_KWARGS = {"in_channels", "out_channels", "kernel_size", "stride", "padding", "output_padding",
           "groups", "bias", "dilation", "padding_mode", "device", "dtype"}
_META = {"framework", "module"}
_DTYPES = {"float32": "float32", "torch.float32": "float32", "float": "float32",
           "torch.float": "float32", "float64": "float64", "torch.float64": "float64",
           "double": "float64", "torch.double": "float64", "float16": "float16",
           "torch.float16": "float16", "half": "float16", "torch.half": "float16",
           "bfloat16": "bfloat16", "torch.bfloat16": "bfloat16"}


def _is_int(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


@dataclass(frozen=True)
class TorchConvTransposeSpec:
    """A validated ``nn.ConvTranspose{rank}d`` configuration (torch's argument names)."""

    rank: int
    in_channels: int
    out_channels: int
    kernel_size: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    output_padding: tuple[int, ...]
    dilation: tuple[int, ...]
    groups: int = 1
    bias: bool = True
    dtype: str = "float32"

    framework = "torch"      # the layer protocol (convt_tools.layer.LayerSpec)

    # ---- identity ------------------------------------------------------
    @property
    def module(self) -> str:
        """``ConvTranspose1d``/``2d``/``3d``."""
        return TORCH_MODULES[self.rank]

    @property
    def class_name(self) -> str:
        """The module's class name (the layer protocol's ``class_name``)."""
        return self.module

    # ---- the layer protocol (convt_tools.layer) ---------------------------
    def default_input_shape(self, in_channels: int | None = None, *,
                            dynamic_batch: bool = True) -> tuple[int | None, ...]:
        """``(None, in_channels, None...)``: torch configs record no input shape."""
        return (None, self.in_channels) + (None,) * self.rank

    def weights_to_onnx(self, kernel: Any, bias: Any) -> tuple[Any, Any]:
        """torch's ``weight (C_in, C_out/groups, *k)`` is ONNX's ``W`` unchanged."""
        return kernel, bias

    def weights_from_onnx(self, w: Any, b: Any) -> tuple[Any, Any]:
        """ONNX ``W`` is torch's ``weight`` unchanged."""
        return w, b

    def kernel_in_channels(self, kernel: Any) -> int:
        """``C_in`` of a torch weight: its first axis."""
        return int(kernel.shape[0])

    input_shape = None       # torch configs record no input shape

    def input_channels(self, shape: Sequence[int | None]) -> int | None:
        """The channel dim of ``(N, C, ...)`` or unbatched ``(C, ...)``."""
        return shape[-self.rank - 1]

    def split_input_shape(self, shape: Sequence[int | None], in_channels: int | None = None
                          ) -> tuple[int | None, int | None, tuple[int | None, ...]]:
        """``(batch, channels, spatial)`` of a checked input shape (unbatched: batch 1)."""
        shape = self.check_input_shape(shape)
        if len(shape) == self.rank + 1:
            shape = (1, *shape)
        return shape[0], shape[1], tuple(shape[2:])

    def missing_input_shape(self) -> ConvtError:
        """The error for a command that needs an input shape and got none."""
        return ConvtError("input_shape: missing; give --input-shape N,C,... (torch layout), "
                          "with None or ? for unknown dims.", field="input_shape")

    def shape_report(self, input_shape: Sequence[int | None],
                     output_size: Sequence[int] | None = None) -> dict[str, Any]:
        """What ``convt shape`` prints: ``json``, ``explain``, ``text``, ``stderr`` lines."""
        shape = tuple(input_shape)
        out = self.output_shape(shape, output_size)
        op = self.resolve_output_padding(shape, output_size) if output_size is not None \
            else self.output_padding
        axes = self.onnx_axes(op)
        info = {"framework": "torch", "module": self.module, "input_shape": list(shape),
                "output_shape": list(out), "output_padding": list(op),
                "config": self.to_config(), "onnx": self.onnx_attrs(op),
                "onnxruntime_form": [a.__dict__ for a in axes]}
        from ..spec.derivation import format_shape

        return {"json": info, "explain": self.explain(shape, output_size),
                "text": format_shape(out),
                "stderr": []}

    def axis_panels(self, input_shape: Sequence[int | None],
                    output_size: Sequence[int] | None = None,
                    stand_in: int = 4) -> tuple[AxisPanel, ...]:
        """Per spatial axis, a picture (:mod:`convt_tools.pictures`) of the full output
        ``L + op`` and the window torch keeps, ``(p, L - 2p + op)``
        (:func:`~convt_tools.geometry.explicit_window` with pads ``(p, p)``); ``op`` as
        :meth:`resolve_output_padding` gives it. An unknown input length is drawn at
        ``stand_in`` (the window's crops do not depend on it)."""
        shape = self.check_input_shape(input_shape)
        ops = self.resolve_output_padding(shape, output_size)
        panels = []
        for axis, n, k, s, d, p, o in zip(self.axis_names, shape[-self.rank:], self.kernel_size,
                                          self.stride, self.dilation, self.padding, ops):
            length = stand_in if n is None else n
            caption = (f"kernel {k}, stride {s}, dilation {d}, padding {p}, output_padding {o}"
                       + (f"; input length unknown, drawn at {stand_in} (the crop does not "
                          f"depend on it)" if n is None else ""))
            window = explicit_window(natural_length(length, k, s, d), p, p, o)
            panels.append(axis_panel(axis, axis, length, k, s, d, o,
                                     Row(f"{self.module} keeps", window), caption=caption))
        return tuple(panels)

    @property
    def axis_names(self) -> tuple[str, ...]:
        """Spatial axis names (``depth``, ``height``, ``width``) as torch's messages use them."""
        return _AXIS_NAMES[self.rank] if self.rank > 1 else ("length",)

    def weight_shape(self) -> tuple[int, ...]:
        """torch's ``weight`` layout ``(in_channels, out_channels/groups, k...)``."""
        return (self.in_channels, self.out_channels // self.groups, *self.kernel_size)

    def to_config(self) -> dict[str, Any]:
        """The constructor kwargs plus ``framework`` and ``module`` (JSON-able, round-trips)."""
        return {"framework": "torch", "module": self.module, "in_channels": self.in_channels,
                "out_channels": self.out_channels, "kernel_size": list(self.kernel_size),
                "stride": list(self.stride), "padding": list(self.padding),
                "output_padding": list(self.output_padding), "groups": self.groups,
                "bias": self.bias, "dilation": list(self.dilation), "padding_mode": "zeros",
                "dtype": self.dtype}

    def snippet(self) -> str:
        """``nn.ConvTranspose2d(...)`` as Python source (defaults omitted, ints where uniform)."""
        def v(t: tuple[int, ...]) -> str:
            return str(t[0]) if len(set(t)) == 1 else str(tuple(t))
        parts = [str(self.in_channels), str(self.out_channels), f"kernel_size={v(self.kernel_size)}"]
        for name, val, default in (("stride", self.stride, 1), ("padding", self.padding, 0),
                                   ("output_padding", self.output_padding, 0),
                                   ("dilation", self.dilation, 1)):
            if any(x != default for x in val):
                parts.append(f"{name}={v(val)}")
        if self.groups != 1:
            parts.append(f"groups={self.groups}")
        if not self.bias:
            parts.append("bias=False")
        if self.dtype != "float32":
            parts.append(f"dtype=torch.{self.dtype}")
        return f"nn.{self.module}({', '.join(parts)})"

    # ---- shapes --------------------------------------------------------
    def effective_kernel(self) -> tuple[int, ...]:
        """``K = (k-1)*d + 1`` per axis."""
        return tuple(effective_kernel(k, d) for k, d in zip(self.kernel_size, self.dilation))

    def check_input_shape(self, input_shape: Sequence[int | None]) -> tuple[int | None, ...]:
        """torch's input rules: ``(N, C, *spatial)`` or unbatched ``(C, *spatial)``.

        ``C`` must equal ``in_channels``; spatial dims >= 1 (batch 0 is fine);
        ``None`` means unknown. Returns the shape as a tuple.
        """
        shape = tuple(input_shape)
        n = self.rank
        if len(shape) not in (n + 1, n + 2) or not all(d is None or (_is_int(d) and d >= 0)
                                                        for d in shape):
            raise ConvtError(
                f"input_shape: got {list(shape)}; {self.module} expects {n + 1}D (unbatched) or "
                f"{n + 2}D (batched) input: (N, C, {', '.join(self.axis_names)}) with "
                f"non-negative integers or None.", field="input_shape")
        c = shape[-n - 1]
        if c is not None and c != self.in_channels:
            raise ConvtError(f"input_shape: expected input{list(shape)} to have "
                             f"{self.in_channels} channels, but got {c} channels instead.",
                             field="input_shape")
        if any(d == 0 for d in shape[-n:]):
            raise ConvtError(f"input_shape: only zero batch or zero channel inputs are "
                             f"supported, but got input shape: {list(shape)}.", field="input_shape")
        return shape

    def resolve_output_padding(self, input_shape: Sequence[int | None],
                               output_size: Sequence[int] | None = None) -> tuple[int, ...]:
        """The ``output_padding`` a forward call uses (torch's ``_output_padding``).

        Without ``output_size``: the constructor's. With it (``n`` or ``n + 2``
        entries, the batch/channel ones then ignored): ``output_size - (L - 2p)``,
        which must lie in ``[0, stride - 1]`` on every axis.
        """
        shape = self.check_input_shape(input_shape)
        if output_size is None:
            return self.output_padding
        n = self.rank
        size = list(output_size)
        lead = len(shape) - n
        if len(size) == lead + n:
            size = size[lead:]
        if len(size) != n or not all(_is_int(v) for v in size):
            raise ConvtError(f"output_size: got {list(output_size)}; {self.module}: for "
                             f"{len(shape)}D input, output_size must have {n} or {lead + n} "
                             f"integers.", field="output_size")
        spatial = shape[-n:]
        if any(v is None for v in spatial):
            raise ConvtError("output_size: needs a known input length on every spatial axis.",
                             field="output_size")
        known = [v for v in spatial if v is not None]   # every one, after the check above
        mins = [natural_length(i, k, s, d) - 2 * p for i, k, s, d, p in
                zip(known, self.kernel_size, self.stride, self.dilation, self.padding)]
        maxs = [m + s - 1 for m, s in zip(mins, self.stride)]
        if any(not lo <= v <= hi for v, lo, hi in zip(size, mins, maxs)):
            raise ConvtError(f"output_size: requested an output size of {size}, but valid sizes "
                             f"range from {mins} to {maxs} (for an input of {list(spatial)}).",
                             field="output_size")
        return tuple(v - lo for v, lo in zip(size, mins))

    def output_shape(self, input_shape: Sequence[int | None],
                     output_size: Sequence[int] | None = None) -> tuple[int | None, ...]:
        """torch's output shape: ``O = (in-1)*s + K - 2p + op`` per axis (``None`` stays ``None``)."""
        shape = self.check_input_shape(input_shape)
        op = self.resolve_output_padding(shape, output_size)
        n = self.rank
        out: list[int | None] = []
        for i, k, s, d, p, o in zip(shape[-n:], self.kernel_size, self.stride, self.dilation,
                                    self.padding, op):
            out.append(None if i is None else torch_output_length(i, k, s, d, p, o))
        if any(o is not None and o < 1 for o in out):
            given = " x ".join(str(v) for v in shape[-n:])
            calc = " x ".join(str(v) for v in out)
            raise ConvtError(f"padding: given input size per channel: ({given}). Calculated output "
                             f"size per channel: ({calc}). Output size is too small (padding "
                             f"{list(self.padding)} crops 2*padding rows per axis).", field="padding")
        return (*shape[:-n - 1], self.out_channels, *out)

    def explain(self, input_shape: Sequence[int | None],
                output_size: Sequence[int] | None = None) -> str:
        """The per-axis derivation, in words and numbers."""
        shape = self.check_input_shape(input_shape)
        op = self.resolve_output_padding(shape, output_size)
        out = self.output_shape(shape, output_size)
        lines = [f"{self.snippet()}: input {list(shape)} -> output {list(out)}"]
        n = self.rank
        for name, i, k, s, d, p, o, y in zip(self.axis_names, shape[-n:], self.kernel_size,
                                             self.stride, self.dilation, self.padding, op,
                                             out[-n:]):
            K = effective_kernel(k, d)
            src = "output_size" if output_size is not None else "output_padding"
            ni = "in" if i is None else str(i)
            nat = "unknown" if i is None else str(natural_length(i, k, s, d))
            lines += [f"{name}: kernel {k}, stride {s}, dilation {d}, padding {p}, {src} -> op {o}",
                      f"  effective kernel K = (k-1)*d + 1 = {K}",
                      f"  natural length L = (in-1)*s + K = ({ni}-1)*{s} + {K} = {nat}",
                      f"  torch length O = L - 2p + op = {nat} - {2 * p} + {o} = "
                      f"{'unknown' if y is None else y}",
                      f"  crop {p} at the start, {p - o} at the end" if o <= p else
                      f"  crop {p} at the start; {o - p} zero row(s) appended at the end "
                      f"(the bias applies to them)"]
        return "\n".join(lines)

    # ---- ONNX ----------------------------------------------------------
    def onnx_attrs(self, output_padding: Sequence[int] | None = None) -> dict[str, Any]:
        """The ONNX ``ConvTranspose`` torch computes: symmetric ``pads``, ``output_padding``, ``group``.

        Exact per the ONNX spec, but onnxruntime refuses ``output_padding >= stride``;
        :meth:`onnx_axes` gives the form it accepts.
        """
        op = list(self.output_padding if output_padding is None else output_padding)
        attrs: dict[str, Any] = {"kernel_shape": list(self.kernel_size), "strides": list(self.stride),
                                 "dilations": list(self.dilation),
                                 "pads": list(self.padding) * 2, "group": self.groups}
        if any(op):
            attrs["output_padding"] = op
        return attrs

    def onnx_op(self, output_padding: Sequence[int] | None = None) -> Any:
        """The rank-generic :class:`~convt_tools.op.ConvTransposeOp` the exporter builds
        (channels_first, :meth:`onnx_axes`, ``group``, no activation)."""
        from ..op import ConvTransposeOp
        from ..spec.layout import Layout

        return ConvTransposeOp(layout=Layout(self.rank, "channels_first"),
                               kernel_shape=self.kernel_size, strides=self.stride,
                               dilations=self.dilation, axes=self.onnx_axes(output_padding),
                               group=self.groups)

    def onnx_axes(self, output_padding: Sequence[int] | None = None) -> tuple[OnnxAxis, ...]:
        """Per axis, explicit ONNX attributes onnxruntime accepts, exact for torch.

        Axes with ``op < stride`` keep torch's own form (``pads (p, p)``,
        ``output_padding op``: what ``torch.onnx`` writes). Where ``op >= stride``
        (legal in torch when ``op < dilation``), the same window (natural row
        ``p`` onwards, ``L - 2p + op`` rows) is re-expressed by
        :func:`geometry.express`: a smaller end pad, an output_padding below the
        stride, or zero kernel taps appended at the end (``taps_after``).
        """
        op = self.output_padding if output_padding is None else tuple(output_padding)
        axes = []
        for k, s, d, p, o in zip(self.kernel_size, self.stride, self.dilation, self.padding, op):
            if o < s:
                axes.append(OnnxAxis(p, p, o, 0, 0))
            else:
                axes.append(torch_express(k, s, d, p, o))
        return tuple(axes)


# --------------------------------------------------------------------------
# Parsing (torch's checks and wording)
# --------------------------------------------------------------------------

def _tuple(name: str, value: Any, n: int, module: str) -> tuple[int, ...]:
    if _is_int(value):
        return (int(value),) * n
    if isinstance(value, (list, tuple)) and all(_is_int(v) for v in value):
        if len(value) == n:
            return tuple(int(v) for v in value)
        if len(value) == 1 and name != "kernel_size":
            return (int(value[0]),) * n
        raise ConvtError(f"{name}: expected {name} to be a single integer value or a list of {n} "
                         f"values to match the convolution dimensions, but got {name}="
                         f"{list(value)} ({module}).", field=name)
    if name == "padding" and isinstance(value, str):
        raise ConvtError(f"padding: got {value!r}; {module} has no string padding ('same'/'valid' "
                         f"exist only for forward convolutions; torch fails at forward with a "
                         f"TypeError); expected a non-negative integer or a tuple of {n}.",
                         field="padding")
    raise fail(name, value, f"expected an integer or a list of {n} integers")


def _axis_text(prefix: str, values: tuple[int, ...], rank: int) -> str:
    names = _AXIS_NAMES[rank]
    if rank == 1:
        values = (0 if prefix == "output_padding" else 1, *values)
        names = ("height", "width")
    return " ".join(f"{prefix}_{a}: {v}" for a, v in zip(names, values))


def _rank_of(obj: Mapping[str, Any], rank_hint: int | None) -> int:
    module = obj.get("module")
    if module is not None:
        if not isinstance(module, str) or module.split(".")[-1].lower() not in _RANKS:
            raise fail("module", module, "expected ConvTranspose1d, ConvTranspose2d or "
                       "ConvTranspose3d")
        return _RANKS[module.split(".")[-1].lower()]
    k = obj.get("kernel_size")
    if isinstance(k, (list, tuple)) and len(k) in (1, 2, 3):
        return len(k)            # torch's weight is (in, out/groups, *kernel_size)
    for name in _PER_AXIS:
        v = obj.get(name)
        if isinstance(v, (list, tuple)) and len(v) in (2, 3):
            return len(v)
    if rank_hint is not None:
        return rank_hint
    raise ConvtError("module: cannot tell the rank; give \"module\": \"ConvTranspose1d\"/\"2d\"/"
                     "\"3d\", a tuple kernel_size, or an input shape.", field="module")


def is_torch_kwargs(obj: Any) -> bool:
    """Whether a parsed JSON value is a torch config, by its keys: ``"framework": "torch"``,
    a ``ConvTranspose{1,2,3}d`` ``module``, or torch's argument names and none of Keras's."""
    if not isinstance(obj, dict):
        return False
    module = obj.get("module")
    if isinstance(module, str) and module.split(".")[-1].lower().startswith("convtranspose"):
        return True
    return obj.get("framework") == "torch" or (
        "in_channels" in obj and "out_channels" in obj and "filters" not in obj
        and "config" not in obj)


def parse_torch_config(obj: Any, *, rank: int | None = None) -> TorchConvTransposeSpec:
    """Validate torch constructor kwargs (optionally with ``framework``/``module`` keys).

    The rank comes from ``module``, else from a tuple-valued per-axis argument,
    else from ``rank`` (e.g. the input shape's rank minus 2). Errors use torch's
    wording and name the argument.
    """
    if not isinstance(obj, Mapping):
        raise fail("config", type(obj).__name__, "expected a JSON object of ConvTranspose kwargs")
    framework = obj.get("framework", "torch")
    if framework != "torch":
        raise fail("framework", framework, "expected \"torch\" for a torch config")
    unknown = sorted(set(obj) - _KWARGS - _META)
    if unknown:
        raise ConvtError(f"config: unknown key(s) {', '.join(map(repr, unknown))}; a torch config "
                         f"holds {', '.join(sorted(_KWARGS | _META))}.", field=unknown[0])
    for key in ("in_channels", "out_channels", "kernel_size"):
        if key not in obj:
            raise ConvtError(f"{key}: missing; torch's ConvTranspose needs in_channels, "
                             f"out_channels and kernel_size.", field=key)
    n = _rank_of(obj, rank)
    module = TORCH_MODULES[n]
    for key in ("in_channels", "out_channels"):
        if not _is_int(obj[key]) or obj[key] < 1:
            raise fail(key, obj[key], "expected an integer >= 1")
    groups = obj.get("groups", 1)
    if not _is_int(groups) or groups < 1:
        raise ConvtError(f"groups: got {groups!r}; groups must be a positive integer.",
                         field="groups")
    for key in ("in_channels", "out_channels"):
        if obj[key] % groups:
            raise ConvtError(f"groups: {key} must be divisible by groups (got {key}={obj[key]}, "
                             f"groups={groups}).", field="groups")
    mode = obj.get("padding_mode", "zeros")
    if mode != "zeros":
        raise ConvtError(f"padding_mode: got {mode!r}; Only \"zeros\" padding mode is supported "
                         f"for {module}.", field="padding_mode")
    bias = obj.get("bias", True)
    if not isinstance(bias, bool):
        raise fail("bias", bias, "expected true or false")
    dtype = obj.get("dtype")
    if dtype is not None and _DTYPES.get(str(dtype)) is None:
        raise fail("dtype", dtype, "expected null, float32, float64, float16 or bfloat16 (torch "
                   "names too)")
    vals = {key: _tuple(key, obj.get(key, default), n, module) for key, default in
            (("kernel_size", None), ("stride", 1), ("padding", 0), ("output_padding", 0),
             ("dilation", 1))}
    k, s, p, op, d = (vals[x] for x in ("kernel_size", "stride", "padding", "output_padding",
                                        "dilation"))
    if min(k) < 1:
        raise ConvtError(f"kernel_size: kernel size should be greater than zero, but got "
                         f"{_axis_text('kernel', k, n)}.", field="kernel_size")
    if min(s) < 1:
        raise ConvtError(f"stride: non-positive stride is not supported (got {list(s)}).",
                         field="stride")
    if min(d) < 1:
        raise ConvtError(f"dilation: dilation should be greater than zero, but got "
                         f"{_axis_text('dilation', d, n)}.", field="dilation")
    if min(p) < 0:
        raise ConvtError(f"padding: negative padding is not supported (got {list(p)}).",
                         field="padding")
    if min(op) < 0:
        raise ConvtError(f"output_padding: negative output_padding is not supported (got "
                         f"{list(op)}).", field="output_padding")
    if any(o >= si and o >= di for o, si, di in zip(op, s, d)):
        raise ConvtError(f"output_padding: output padding must be smaller than either stride or "
                         f"dilation, but got {_axis_text('output_padding', op, n)} "
                         f"{_axis_text('stride', s, n)} {_axis_text('dilation', d, n)}.",
                         field="output_padding")
    return TorchConvTransposeSpec(rank=n, in_channels=int(obj["in_channels"]),
                                  out_channels=int(obj["out_channels"]), kernel_size=k, stride=s,
                                  padding=p, output_padding=op, dilation=d, groups=int(groups),
                                  bias=bias, dtype=_DTYPES.get(str(dtype), "float32"))


def load_torch_config(path: str | os.PathLike[str], *, rank: int | None = None
                      ) -> TorchConvTransposeSpec:
    """Read and validate a torch config file (see :func:`parse_torch_config`)."""
    return parse_torch_config(read_json_config(path), rank=rank)
