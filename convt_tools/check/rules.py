"""The attribute rules: each returns :class:`~convt_tools.check.report.Finding` s with codes.

* :func:`legality`, CT001-CT005 and CT008 (errors): what ONNX forbids or
  onnxruntime rejects: negative pads, ``output_padding >= stride`` (CT002;
  CT008 when it is still below the dilation, which PyTorch allows and
  torch.onnx emits), ``kernel_shape`` vs W, ``group`` vs the channels of X,
  W and B (W is ``C_in x C_out/group x k...``, B has ``W.shape[1] * group``
  values), pads together with auto_pad.
* :func:`runtime_dependent`, CT010-CT017: forms whose crop depends on the
  runtime: auto_pad SAME_* (CT010; CT011 when ``K < s``, where the length
  itself is disputed: ``(in-1)*s + K`` vs ``in*s``), auto_pad with
  output_padding (CT012), and ``output_shape``, judged over every input
  size with the documented readings of the chosen runtimes
  (:mod:`.readings`, :mod:`.sizes`): they differ at every size (CT013),
  at some sizes only (CT014, which sizes are said), or agree at every size
  (CT015, a warning: fragile). ``output_shape`` with N and C (CT016) and
  with output_padding (CT017).
* :func:`portability`, CT020-CT023: legal forms some consumers mishandle
  (CT023: 3-D asymmetric pads, TensorRT before sm70).

CT006 (malformed attributes) and CT007 (attributes bound at a function's
call site) come from :mod:`convt_tools.check.attrs`,
CT030-CT035 (numerics and the measured reading matrix) from
:mod:`convt_tools.check.probe` and :func:`convt_tools.check.check_model`.
"""

from __future__ import annotations

from typing import Sequence

from .attrs import SAME, ConvTAttrs
from .context import NodeContext
from .judged import judged_refusals
from .readings import RUNTIMES, documented_reading
from .report import Finding
from .sizes import SizeVerdict, describe_lengths, size_verdict
from .windows import axis_name

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
        if s <= op < d:
            out.append(Finding("CT008", f"output_padding {list(attrs.output_padding)} with "
                               f"strides {list(attrs.strides)} and dilations "
                               f"{list(attrs.dilations)}: {op} >= stride {s} but < dilation {d} "
                               f"on axis {i}: legal in PyTorch and emitted by torch.onnx (zero "
                               f"rows appended at the end), but onnxruntime 1.32 and onnx.reference "
                               f"refuse it (OpenVINO 2026.4 and tract 0.23 compute PyTorch's "
                               f"meaning); repair keeps that meaning"))
            break
        if op >= s:
            out.append(Finding("CT002", f"output_padding {list(attrs.output_padding)} with "
                               f"strides {list(attrs.strides)}: {op} >= {s} on axis {i}; "
                               f"allowed is output_padding < stride (the spec text says "
                               f"'stride/dilation'; onnxruntime<=1.20 computes wrong values, "
                               f"1.32 rejects it)"))
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


def _words(groups: Sequence[Sequence[str]]) -> str:
    return " | ".join(", ".join(g) for g in groups)


def _verdict(attrs: ConvTAttrs, sizes: Sequence[int | None] | None,
             runtimes: Sequence[str]) -> SizeVerdict:
    static = sizes is not None and len(sizes) == attrs.rank and all(n is not None for n in sizes)
    known = sizes if sizes is not None and len(sizes) == attrs.rank else None
    return size_verdict(attrs, known, lambda at: {
        r: documented_reading(r, attrs, at, static, attrs.output_shape_full) for r in runtimes})


def _unknown_runtimes(attrs: ConvTAttrs, sizes: Sequence[int | None] | None,
                      runtimes: Sequence[str]) -> list[str]:
    at = [int(n) if n is not None else 5 for n in (sizes or (None,) * attrs.rank)]
    static = sizes is not None and all(n is not None for n in sizes)
    return [r for r in runtimes
            if documented_reading(r, attrs, at, static, attrs.output_shape_full).status == "unknown"]


def describe_verdict(v: SizeVerdict, attrs: ConvTAttrs, unknown: Sequence[str] = ()) -> str:
    """Which runtimes agree, per class of input lengths (``|`` separates groups that differ)."""
    parts = []
    for i, classes in enumerate(v.axes):
        name = axis_name(i, attrs.rank)
        if len(classes) == 1 and len(classes[0].lengths) == 1 and classes[0].tail is None:
            c = classes[0]
            parts.append(f"{name} (input {c.lengths[0]}): "
                         + ("all agree" if len(c.groups) <= 1 else _words(c.groups)))
            continue
        for c in classes:
            parts.append(f"{name} lengths {describe_lengths(c)}: "
                         + ("all agree" if len(c.groups) <= 1 else _words(c.groups))
                         + (f" (no documented reading for {', '.join(c.unknown)})"
                            if c.unknown else ""))
    text = "; ".join(parts)
    if unknown:
        text += f" (no documented reading for {', '.join(unknown)}; not judged)"
    return text


def runtime_dependent(attrs: ConvTAttrs, sizes: Sequence[int | None] | None,
                      runtimes: Sequence[str] = RUNTIMES) -> list[Finding]:
    """CT010-CT017: forms whose result depends on which runtime runs them.

    The severity follows the documented readings (:mod:`.readings`) of
    ``runtimes`` over every input size (:mod:`.sizes`): an error where they
    differ at some size, a warning where they agree at every size.
    """
    out: list[Finding] = []
    judged = f" on {', '.join(runtimes)}" if tuple(runtimes) != RUNTIMES else ""
    if attrs.auto_pad in SAME or attrs.output_shape is not None:
        verdict = _verdict(attrs, sizes, runtimes)
        detail = describe_verdict(verdict, attrs, _unknown_runtimes(attrs, sizes, runtimes))
        sev = "warning" if verdict.agree_always else "error"
    if attrs.auto_pad in SAME and attrs.output_shape is None:
        if verdict.agree_always:
            head = f"auto_pad {attrs.auto_pad}: every runtime judged{judged} computes the same " \
                   f"crop at every input size"
        else:
            head = f"auto_pad {attrs.auto_pad}: runtimes{judged} compute different crops " \
                   f"({'at every input size' if verdict.agree_never else 'at some input sizes'})"
        out.append(Finding("CT010", f"{head}: {detail}; use explicit pads", sev))
        small = [i for i in range(attrs.rank) if attrs.effective_kernel(i) < attrs.strides[i]]
        if small:
            out.append(Finding("CT011", f"auto_pad {attrs.auto_pad} with effective kernel < stride "
                               f"on axis {small}: onnxruntime, OpenVINO and onnx shape inference "
                               f"give (in-1)*s + K, the spec text, onnx.reference and TensorFlow "
                               f"in*s; tract refuses it", sev))
    if attrs.auto_pad != "NOTSET" and max(attrs.output_padding, default=0) > 0:
        out.append(Finding("CT012", f"auto_pad {attrs.auto_pad} with output_padding "
                           f"{list(attrs.output_padding)}: onnxruntime and onnx shape inference "
                           f"disagree on the output size (tract gives in*s - output_padding)"))
    if attrs.output_shape is not None:
        out.extend(_output_shape_findings(attrs, sizes, verdict, detail, judged))
    return out


def _output_shape_findings(attrs: ConvTAttrs, sizes: Sequence[int | None] | None,
                           verdict: SizeVerdict, detail: str, judged: str) -> list[Finding]:
    shape = list(attrs.output_shape or ())
    known = sizes is not None and all(n is not None for n in sizes)
    where = f"at input {list(sizes or ())}" if known else "(input size not fixed by the model)"
    out: list[Finding] = []
    if attrs.output_shape_full:
        out.append(Finding("CT016", f"output_shape lists N and C ({attrs.rank + 2} values for a "
                           f"{attrs.rank}-D node); the spec wants the spatial dims only: "
                           f"onnxruntime 1.32 and onnx.reference refuse it, tract 0.23 aborts the "
                           f"process, OpenVINO 2026.4 reads the spatial tail "
                           f"(openvinotoolkit/openvino PR #32854)"))
    if max(attrs.output_padding, default=0) > 0:
        out.append(Finding("CT017", f"output_shape {shape} together with output_padding "
                           f"{list(attrs.output_padding)}: the spec's crop total L + op - O counts "
                           f"output_padding (onnxruntime, OpenVINO), TensorFlow's L - O does not, "
                           f"onnx2torch ignores output_shape and keeps output_padding"))
    if verdict.agree_always:
        out.append(Finding("CT015", f"output_shape {shape} {where}: every runtime judged{judged} "
                           f"computes the same window at every input size ({detail}), but pads "
                           f"are recomputed from the input size; prefer explicit pads"))
    elif verdict.agree_never or known:
        out.append(Finding("CT013", f"output_shape {shape} {where}: runtimes{judged} compute "
                           f"different windows at every input size: {detail}"))
    else:
        out.append(Finding("CT014", f"output_shape {shape} {where}: whether runtimes{judged} "
                           f"agree depends on the input size: {detail}; give --input-shape to "
                           f"judge one size, or use explicit pads"))
    return out


def portability(attrs: ConvTAttrs, elem_type: int | None) -> list[Finding]:
    """CT020-CT022: legal forms some consumers mishandle."""
    out: list[Finding] = []
    if attrs.pads is not None and attrs.auto_pad == "NOTSET" and attrs.output_shape is None \
            and min(attrs.pads) >= 0:
        asym = [i for i in range(attrs.rank)
                if attrs.pads_pair(i)[0] != attrs.pads_pair(i)[1]]
        if asym:
            out.append(Finding("CT020", f"asymmetric pads {list(attrs.pads)} (axis {asym}): fine "
                               f"for onnxruntime CPU, OpenVINO and tract; refused by onnx2torch; "
                               f"the onnxruntime CUDA EP runs such nodes on the CPU "
                               f"(microsoft/onnxruntime#11312); OpenCV dnn lacks them"))
            if attrs.rank == 3:
                out.append(Finding("CT023", f"3-D asymmetric pads {list(attrs.pads)}: TensorRT "
                                   f"does not support them on GPUs before sm70; use symmetric "
                                   f"pads plus a Slice"))
    if attrs.group > 1:
        out.append(Finding("CT021", f"group {attrs.group}: onnx.reference 1.23 slices the grouped "
                           f"kernel on the wrong axis (it fails or computes wrong values), so it "
                           f"cannot serve as an oracle for this node; some converters refuse "
                           f"grouped ConvTranspose"))
    if elem_type is not None:
        from onnx import TensorProto

        if elem_type in (TensorProto.DOUBLE, TensorProto.BFLOAT16):
            name = TensorProto.DataType.Name(elem_type).lower()
            out.append(Finding("CT022", f"dtype {name}: onnxruntime's CPU provider has no "
                               f"ConvTranspose kernel for it; use float32 (or float16)"))
    return out


def static_findings(ctx: NodeContext, runtimes: Sequence[str] = RUNTIMES) -> list[Finding]:
    """All attribute-based findings for one node (no numerics), judged on ``runtimes``."""
    out = list(ctx.findings)
    if ctx.attrs is None:
        return out
    out += legality(ctx.attrs, ctx.w_shape, ctx.c_in, ctx.b_shape)
    out += runtime_dependent(ctx.attrs, ctx.sizes, runtimes)
    out += portability(ctx.attrs, ctx.elem_type)
    out += judged_refusals(ctx.attrs, ctx.sizes, runtimes)
    return out
