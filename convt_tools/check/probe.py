"""Running one ConvTranspose alone in onnxruntime and naming what it computed.

Owns the numeric evidence:

* :func:`single_node_model` / :func:`run_ort`: the node alone (attributes
  untouched), float32, W and B as initializers, on the CPU provider; any load
  or run failure is :class:`OrtRefused` with onnxruntime's first line.
* :func:`identify_window`: the window ``(begin, length)`` per axis (see
  :mod:`convt_tools.check.windows`) with ``y == apply_window(F, b, window)``,
  ``F`` the float64 NumPy full output; the named interpretations are tried
  first, then every ``begin`` in ``[min(0, L-O) - 8, max(0, L-O) + 8]``.
  Equality is :func:`close`: ``|y - ref| <= 1e-4 * (1 + max|ref|)``.
* :func:`numeric_check`: CT030 (which interpretations onnxruntime matched),
  CT031 (skipped, and why), CT032 (no window explains the output), CT033
  (onnxruntime refuses the node). Nodes of any spatial rank are probed, at batch 1 and
  the known input size; an unknown spatial size gets the stand-in
  :data:`STAND_IN` only when there is no ``output_shape`` (then the crop does
  not depend on it). Nodes inside model-local functions are probed like any
  other when their shapes are known (bound from agreeing call sites, see
  :mod:`convt_tools.check.shapes`); not when an attribute is bound at the
  call site.

Memory is bounded: :func:`probe_elements` (the largest of X, the full output
``F`` and ``Y`` at batch 1) must stay within :data:`MAX_PROBE_ELEMENTS`. Above
it a node whose crop does not depend on the input size (explicit pads,
VALID, SAME: ``T = K - s + op``) is probed at the stand-in size instead; an
``output_shape`` node is skipped (CT031). Running out of memory anyway is a
CT031, never an exception.
"""

from __future__ import annotations

import copy
import math
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from ..errors import ConvtError
from .attrs import ConvTAttrs, bound_attributes
from .context import NodeContext
from .graph import NodeRef
from .report import Finding
from .windows import (
    Window, apply_window, describe_windows, full_output, intent_windows, interpretation_words,
    interpretations, odd_extra_side,
)

if TYPE_CHECKING:
    from ..runtimes import Runtime

__all__ = [
    "MAX_PROBE_ELEMENTS", "STAND_IN", "OrtRefused", "close", "identify_window", "make_model", "max_abs_diff",
    "numeric_check", "ort_version", "probe_elements", "probe_ort", "probe_shape", "run_ort",
    "single_node_model",
]


class OrtRefused(Exception):
    """onnxruntime would not load or run a node; the message says why."""


def _ort() -> Runtime:
    """The onnxruntime adapter on CPU, logging only fatal errors (refusals are evidence)."""
    from ..runtimes import get_runtime

    return get_runtime("onnxruntime", quiet=True)


def ort_version() -> str:
    """The installed onnxruntime version."""
    return _ort().engine_version()


def single_node_model(node: Any, x_shape: Sequence[int], w: np.ndarray,
                      b: np.ndarray | None, opset: int) -> Any:
    """``node`` alone (its attributes untouched), float32, W and B as initializers.

    Inputs are renamed ``x``, ``w``, ``b``; the output is ``y``.
    """
    from onnx import helper, numpy_helper

    attrs = [copy.deepcopy(a) for a in node.attribute]
    inputs = ["x", "w"] + (["b"] if b is not None else [])
    new = helper.make_node("ConvTranspose", inputs, ["y"], name=node.name or "convt")
    new.attribute.extend(attrs)
    inits = [numpy_helper.from_array(np.asarray(w, np.float32), "w")]
    if b is not None:
        inits.append(numpy_helper.from_array(np.asarray(b, np.float32), "b"))
    graph = helper.make_graph(
        [new], "convt_probe",
        [helper.make_tensor_value_info("x", 1, list(x_shape))],
        [helper.make_tensor_value_info("y", 1, None)], inits)
    return make_model(graph, opset)


def make_model(graph: Any, opset: int) -> Any:
    """A model around ``graph`` with the default-domain ``opset`` and a fitting IR version."""
    from onnx import helper

    ops = [helper.make_opsetid("", max(opset, 11))]
    model = helper.make_model(graph, opset_imports=ops)
    model.ir_version = max(7, helper.find_min_ir_version_for(ops, ignore_unknown=True))
    return model


def run_ort(model: Any, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    """Run ``model`` on onnxruntime's CPU provider (through :mod:`convt_tools.runtimes`);
    any load/run failure becomes :class:`OrtRefused` with onnxruntime's first line."""
    from ..runtimes import RuntimeRefused

    try:
        return _ort().load(model).run(feeds)
    except RuntimeRefused as exc:
        raise OrtRefused(exc.detail) from None


def close(a: np.ndarray, b: np.ndarray) -> bool:
    """Same shape and ``|a - b| <= 1e-4 * (1 + max|b|)`` (float32 vs float64 reference)."""
    if a.shape != b.shape:
        return False
    if a.size == 0:
        return True
    tol = 1e-4 * (1.0 + float(np.max(np.abs(b))))
    return bool(np.max(np.abs(a.astype(np.float64) - b)) <= tol)


def max_abs_diff(a: np.ndarray, b: np.ndarray) -> float | None:
    """Largest absolute difference (None if shapes differ; 0.0 when empty)."""
    if a.shape != b.shape:
        return None
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))) if a.size else 0.0


def identify_window(y: np.ndarray, full: np.ndarray, b: np.ndarray | None,
                    named: Mapping[str, Sequence[Window]]) -> tuple[Window, ...] | None:
    """The window that reproduces ``y`` from ``full``: named ones first, then a search."""
    for windows in named.values():
        if tuple(w.length for w in windows) == y.shape[2:] and close(y, apply_window(full, b, windows)):
            return tuple(windows)
    # Any sane crop is within a kernel plus a stride of either end: search only there.
    import itertools

    reach = 8 if y.ndim <= 4 else 4
    spans = [range(min(0, lf - o) - reach, max(0, lf - o) + reach + 1)
             for o, lf in zip(y.shape[2:], full.shape[2:])]
    for begins in itertools.product(*spans):
        windows = tuple(Window(b0, o) for b0, o in zip(begins, y.shape[2:]))
        if close(y, apply_window(full, b, windows)):
            return windows
    return None


def probe_ort(ref: NodeRef, attrs: ConvTAttrs, x_shape: Sequence[int], w: np.ndarray,
              b: np.ndarray | None, opset: int, rng: np.random.Generator
              ) -> tuple[tuple[Window, ...] | None, np.ndarray, np.ndarray]:
    """Run the node alone in onnxruntime on seeded ``x``; return (window, x, y).

    Raises :class:`OrtRefused` when onnxruntime will not run it.
    """
    x = rng.standard_normal(tuple(x_shape)).astype(np.float32)
    model = single_node_model(ref.node, x_shape, w, b, opset)
    y = run_ort(model, {"x": x})[0]
    full = full_output(x, w, attrs)
    sizes = tuple(x_shape[2:])
    return identify_window(y, full, b, interpretations(attrs, sizes)), x, y


STAND_IN = 5
MAX_PROBE_ELEMENTS = 2 ** 24
MAX_PROBE_W_ELEMENTS = 2 ** 22


def probe_elements(attrs: ConvTAttrs, c_in: int, c_out: int, sizes: Sequence[int]) -> int:
    """Elements (batch 1) of the largest of X, the full output F and Y at ``sizes``."""
    x = c_in * math.prod(sizes)
    lengths = [max(attrs.natural_length(i, n) + attrs.output_padding[i], w.length)
               for i, (n, w) in enumerate(zip(sizes, intent_windows(attrs, sizes, "onnx-spec")))]
    return max(x, c_out * math.prod(lengths))


def probe_shape(ctx: NodeContext) -> tuple[tuple[int, ...] | None, str]:
    """The input shape to probe the node at and a note, or None and the reason.

    Known spatial sizes are used as they are; unknown ones are replaced by a
    stand-in (5) only when the node has no output_shape (then the crop does
    not depend on the size). A known size whose probe would exceed
    :data:`MAX_PROBE_ELEMENTS` is replaced by the stand-in under the same
    condition (the note says so), else skipped. The batch is always 1.
    """
    a = ctx.attrs
    if a is None:
        return None, "the attributes are malformed"
    fn = ctx.ref.function
    inside = (f" (the node is inside model-local function {fn!r}, whose inputs are bound at "
              f"each call site; its call sites do not all pass the same shape)") if fn else ""
    bound = bound_attributes(ctx.ref.node)
    if bound:
        return None, (f"attribute(s) {sorted(bound)} are bound at each call site of function "
                      f"{fn!r}")
    if ctx.w_shape is None:
        return None, "the shape of W is unknown" + inside
    c_in = int(ctx.c_in if ctx.c_in is not None else ctx.w_shape[0])
    c_out = int(ctx.w_shape[1]) * a.group
    sizes = ctx.sizes or (None,) * a.rank
    if any(n is None for n in sizes):
        if a.output_shape is not None:
            return None, ("the input spatial size is unknown and output_shape makes the crop "
                          "depend on it; " + (inside.strip(" ()") if fn else
                                              "the reading matrix measures it at stand-in "
                                              "sizes (give --input-shape for one size)"))
        sizes = tuple(STAND_IN if n is None else n for n in sizes)
    known = tuple(int(n) for n in sizes if n is not None)   # every one, after the stand-ins
    need = probe_elements(a, c_in, c_out, known)
    if need <= MAX_PROBE_ELEMENTS:
        return (1, c_in, *known), ""
    at = f"at input {[1, c_in, *known]} the probe needs {need} elements, above the cap of " \
         f"{MAX_PROBE_ELEMENTS}"
    if a.output_shape is not None:
        return None, (f"{at}, and output_shape makes the crop depend on the input size, so a "
                      f"smaller stand-in would not show it (a smaller --input-shape is "
                      f"possible only where the model leaves the input size free)")
    stand = (STAND_IN,) * a.rank
    if probe_elements(a, c_in, c_out, stand) > MAX_PROBE_ELEMENTS:
        cause = ("too many channels" if c_in * math.prod(stand) > MAX_PROBE_ELEMENTS
                 or c_out > MAX_PROBE_ELEMENTS else
                 "the output is too long for the strides, dilations and kernel")
        return None, f"{at}, even at the stand-in size {list(stand)} ({cause})"
    return (1, c_in, *stand), (f"probed at the stand-in size {list(stand)}: {at}, and this "
                               f"node's crop does not depend on the input size")


def numeric_check(ctx: NodeContext, opset: int,
                  rng: np.random.Generator) -> tuple[list[Finding], dict[str, Any] | None]:
    """Run the node alone in onnxruntime and say which interpretation it matched.

    Runs even on illegal nodes: onnxruntime's refusal message is evidence too.
    """
    shape, why = probe_shape(ctx)
    if shape is None:
        return [Finding("CT031", f"numeric check skipped: {why}")], None
    try:
        findings, info = _numeric_check_at(ctx, shape, opset, rng)
    except MemoryError:
        return [Finding("CT031", f"numeric check skipped: out of memory probing at input "
                        f"{list(shape)}")], None
    if why and info is not None:
        info["stand_in_reason"] = why
        findings = [Finding(f.code, f"{f.message} ({why})", f.severity) for f in findings]
    return findings, info


def _numeric_check_at(ctx: NodeContext, shape: tuple[int, ...], opset: int,
                      rng: np.random.Generator) -> tuple[list[Finding], dict[str, Any] | None]:
    """:func:`numeric_check` at a given probe shape (already within the cap)."""
    a = ctx.attrs
    assert a is not None
    # Seeded random W and B, never the model's: a zero or symmetric kernel would make
    # different windows give the same output (and claim a reading it cannot show).
    assert ctx.w_shape is not None   # numeric_check runs only where W's shape is known
    w_shape = tuple(int(d) for d in ctx.w_shape)
    if math.prod(w_shape) > MAX_PROBE_W_ELEMENTS and w_shape[0] % a.group == 0:
        # A fixed probe budget: the window does not depend on the channel counts, so a
        # big node is probed with one channel per group (C_in = C_out = group).
        w_shape = (a.group, 1, *w_shape[2:])
        shape = (shape[0], a.group, *shape[2:])
    w = rng.standard_normal(w_shape).astype(np.float32)
    b = None
    if len(ctx.ref.node.input) > 2 and ctx.ref.node.input[2]:
        b = rng.standard_normal(w_shape[1] * a.group).astype(np.float32)
    try:
        window, x, y = probe_ort(ctx.ref, a, shape, w, b, opset, rng)
    except OrtRefused as exc:
        return [Finding("CT033", f"onnxruntime {ort_version()} refuses to run this node alone: "
                        f"{exc}")], {"input_shape": list(shape), "onnxruntime": "refused",
                                     "reason": str(exc)}
    except ConvtError as exc:
        return [Finding("CT031", f"numeric check skipped: the reference cannot evaluate it "
                        f"({exc})")], None
    sizes = shape[2:]
    naturals = [a.natural_length(i, n) for i, n in enumerate(sizes)]
    named = interpretations(a, sizes)
    info: dict[str, Any] = {"input_shape": list(shape), "stand_in": ctx.sizes != tuple(sizes),
                            "output_shape": list(y.shape),
                            "interpretations": {k: describe_windows(v, naturals)
                                                for k, v in named.items()}}
    if window is None:
        info["onnxruntime"] = "unexplained"
        return [Finding("CT032", f"onnxruntime {ort_version()} output {list(y.shape)} at input "
                        f"{list(shape)} matches no window of the full transposed convolution "
                        f"(expected per spec: {describe_windows(named['onnx-spec'], naturals)})")], info
    full = full_output(x, w, a)
    lookalike = sorted({k for k, v in named.items() if tuple(v) != window
                        and tuple(u.length for u in v) == tuple(y.shape[2:])
                        and close(y, apply_window(full, b, v))})
    if lookalike:
        info["onnxruntime"] = "undetermined"
        return [Finding("CT030", f"numeric check at input {list(shape)}: undetermined: the probe "
                        f"output fits {describe_windows(window, naturals)} and also "
                        f"{', '.join(interpretation_words(k, a) for k in lookalike)}; they cannot "
                        f"be told apart here")], info
    matched = [k for k, v in named.items() if tuple(v) == window]
    info["onnxruntime"] = describe_windows(window, naturals)
    info["matches"] = matched
    return [Finding("CT030", _numeric_sentence(a, shape, window, naturals, named, matched))], info


def _numeric_sentence(a: ConvTAttrs, shape: Sequence[int], window: Sequence[Window],
                      naturals: Sequence[int], named: Mapping[str, Sequence[Window]],
                      matched: list[str]) -> str:
    head = (f"numeric check at input {list(shape)}: onnxruntime {ort_version()} computes "
            f"{describe_windows(window, naturals)}")
    if len(named) == 1:
        return head + (" = the spec formula" if matched else " (differs from the spec formula)")
    same_as = ", ".join(interpretation_words(m, a) for m in matched)
    odd = odd_extra_side(window, naturals)
    text = f"{head}" + (f" (it {odd})" if odd else "")
    text += f", as {same_as}" if same_as else ", matching none of the named interpretations"
    others: dict[tuple[Window, ...], list[str]] = {}
    for k, v in named.items():
        if k not in matched:
            others.setdefault(tuple(v), []).append(interpretation_words(k, a))
    if others:
        text += "; differs from " + " | ".join(
            f"{' and '.join(who)}: {describe_windows(v, naturals)}" for v, who in others.items())
    return text
