"""The attribute rules: each returns :class:`~convt_tools.check.report.Finding` s with codes.

* :func:`legality`, CT001-CT005 (errors): what ONNX forbids or onnxruntime
  rejects: negative pads, ``output_padding >= stride``, ``kernel_shape`` vs W,
  ``group`` vs the channels of X, W and B (W is ``C_in x C_out/group x k...``,
  B has ``W.shape[1] * group`` values), pads together with auto_pad.
* :func:`runtime_dependent`, CT010-CT015: forms whose crop depends on the
  runtime: auto_pad SAME_* (CT011 when ``K < s``, where the length itself is
  disputed: ``(in-1)*s + K`` vs ``in*s``), auto_pad with output_padding, and
  ``output_shape``, where the crop total ``T = L + op - O`` decides: unknown
  input size (CT014), interpretations that differ (CT013, e.g. odd ``T``) or
  agree at this size only (CT015). Windows per interpretation:
  :mod:`convt_tools.check.windows`.
* :func:`portability`, CT020-CT022: legal forms some consumers mishandle.

CT006 (malformed attributes) and CT007 (attributes bound at a function's
call site) come from :mod:`convt_tools.check.attrs`,
CT030-CT033 (numerics) from :mod:`convt_tools.check.probe`.
"""

from __future__ import annotations

from typing import Sequence

from .attrs import SAME, ConvTAttrs
from .context import NodeContext
from .report import Finding
from .windows import interpretations

__all__ = ["legality", "portability", "runtime_dependent", "static_findings"]


def legality(attrs: ConvTAttrs, w_shape: Sequence[int] | None, c_in: int | None,
             b_shape: Sequence[int] | None) -> list[Finding]:
    """CT001-CT005: attributes ONNX forbids or onnxruntime rejects."""
    out: list[Finding] = []
    if attrs.pads is not None and min(attrs.pads) < 0:
        out.append(Finding("CT001", f"pads {list(attrs.pads)} has negative values; ONNX requires "
                           f"pads >= 0 and onnxruntime rejects the model at load time "
                           f"(tf2onnx emits these for kernel < stride or 'valid' with "
                           f"output_padding)"))
    for i in range(attrs.rank):
        op, s, d = attrs.output_padding[i], attrs.strides[i], attrs.dilations[i]
        if op >= s:
            out.append(Finding("CT002", f"output_padding {list(attrs.output_padding)} with "
                               f"strides {list(attrs.strides)}: {op} >= {s} on axis {i}; "
                               f"allowed is output_padding < stride (the spec text says "
                               f"'stride/dilation'; onnxruntime<=1.20 computes wrong values, "
                               f"1.32 rejects it{' even with dilation ' + str(d) if d > s else ''})"))
            break
    if attrs.kernel_shape is not None and w_shape is not None and len(w_shape) == attrs.rank + 2 \
            and tuple(w_shape[2:]) != attrs.kernel_shape:
        out.append(Finding("CT003", f"kernel_shape {list(attrs.kernel_shape)} differs from W's "
                           f"spatial dims {list(w_shape[2:])}; they must be equal"))
    out.extend(_group_findings(attrs.group, w_shape, c_in, b_shape))
    if attrs.pads is not None and attrs.auto_pad != "NOTSET":
        out.append(Finding("CT005", f"pads {list(attrs.pads)} given together with auto_pad "
                           f"{attrs.auto_pad}; the spec forbids both (onnxruntime rejects the "
                           f"node); use one of them"))
    return out


def _group_findings(group: int, w_shape: Sequence[int] | None, c_in: int | None,
                    b_shape: Sequence[int] | None) -> list[Finding]:
    if group < 1:
        return [Finding("CT004", f"group {group} must be >= 1")]
    out = []
    if c_in is not None and c_in % group:
        out.append(Finding("CT004", f"group {group} does not divide the {c_in} input channels"))
    if w_shape is not None and c_in is not None and w_shape[0] != c_in:
        out.append(Finding("CT004", f"W has shape {list(w_shape)}; its first dim must equal the "
                           f"{c_in} input channels (layout C_in, C_out/group, k...)"))
    if w_shape is not None and b_shape is not None and tuple(b_shape) != (w_shape[1] * group,):
        out.append(Finding("CT004", f"B has shape {list(b_shape)}; expected "
                           f"[{w_shape[1] * group}] = W.shape[1] * group"))
    return out


def runtime_dependent(attrs: ConvTAttrs, sizes: Sequence[int | None] | None) -> list[Finding]:
    """CT010-CT015: forms whose result depends on which runtime runs them."""
    out: list[Finding] = []
    if attrs.auto_pad in SAME:
        out.append(Finding("CT010", f"auto_pad {attrs.auto_pad}: the crop side was swapped in "
                           f"onnxruntime<=1.12 and differs between runtimes; use explicit pads"))
        small = [i for i in range(attrs.rank) if attrs.effective_kernel(i) < attrs.strides[i]]
        if small:
            out.append(Finding("CT011", f"auto_pad {attrs.auto_pad} with effective kernel < stride "
                               f"on axis {small}: onnxruntime and onnx shape inference give "
                               f"(in-1)*s + K, the spec text and TensorFlow in*s"))
    if attrs.auto_pad != "NOTSET" and max(attrs.output_padding, default=0) > 0:
        out.append(Finding("CT012", f"auto_pad {attrs.auto_pad} with output_padding "
                           f"{list(attrs.output_padding)}: onnxruntime and onnx shape inference "
                           f"disagree on the output size"))
    if attrs.output_shape is not None:
        out.extend(_output_shape_findings(attrs, sizes))
    return out


def _output_shape_findings(attrs: ConvTAttrs, sizes: Sequence[int | None] | None) -> list[Finding]:
    shape = list(attrs.output_shape or ())
    if sizes is None or any(n is None for n in sizes):
        return [Finding("CT014", f"output_shape {shape} with input spatial size "
                        f"{'unknown' if sizes is None else list(sizes)}: the crop total "
                        f"L + op - O (and so where the odd extra goes) depends on it; give "
                        f"--input-shape or use explicit pads")]
    known = [int(n) for n in sizes]  # type: ignore[arg-type]
    named = interpretations(attrs, known)
    totals = [attrs.natural_length(i, n) + attrs.output_padding[i] - shape[i]
              for i, n in enumerate(known)]
    if len({tuple(w) for w in named.values()}) > 1:
        odd = [i for i, t in enumerate(totals) if t % 2]
        why = (f"odd crop total {totals} (axis {odd}): onnxruntime>=1.14 and the spec text put "
               f"the extra at the start, TensorFlow, onnxruntime<=1.13 and TensorRT at the end"
               if odd else f"crop total {totals}: runtimes place the zero rows differently")
        return [Finding("CT013", f"output_shape {shape} at input {known}: {why}")]
    return [Finding("CT015", f"output_shape {shape} at input {known}: even crop total {totals}, "
                    f"so runtimes agree today, but pads are recomputed from the input size "
                    f"(fragile for any other size); prefer explicit pads")]


def portability(attrs: ConvTAttrs, elem_type: int | None) -> list[Finding]:
    """CT020-CT022: legal forms some consumers mishandle."""
    out: list[Finding] = []
    if attrs.pads is not None and attrs.auto_pad == "NOTSET" and attrs.output_shape is None \
            and min(attrs.pads) >= 0:
        asym = [i for i in range(attrs.rank)
                if attrs.pads_pair(i)[0] != attrs.pads_pair(i)[1]]
        if asym:
            out.append(Finding("CT020", f"asymmetric pads {list(attrs.pads)} (axis {asym}): fine "
                               f"for onnxruntime CPU, unsupported by some consumers "
                               f"(onnxruntime CUDA EP, older TensorRT, OpenCV dnn)"))
    if attrs.group > 1:
        out.append(Finding("CT021", f"group {attrs.group}: grouped ConvTranspose is poorly "
                           f"supported (onnx.reference is wrong for it; some converters refuse)"))
    if elem_type is not None:
        from onnx import TensorProto

        if elem_type in (TensorProto.DOUBLE, TensorProto.BFLOAT16):
            name = TensorProto.DataType.Name(elem_type).lower()
            out.append(Finding("CT022", f"dtype {name}: onnxruntime's CPU provider has no "
                               f"ConvTranspose kernel for it; use float32 (or float16)"))
    return out


def static_findings(ctx: NodeContext) -> list[Finding]:
    """All attribute-based findings for one node (no numerics)."""
    out = list(ctx.findings)
    if ctx.attrs is None:
        return out
    out += legality(ctx.attrs, ctx.w_shape, ctx.c_in, ctx.b_shape)
    out += runtime_dependent(ctx.attrs, ctx.sizes)
    out += portability(ctx.attrs, ctx.elem_type)
    return out
