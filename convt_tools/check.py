"""``convt check``: find runtime-dependent and illegal ConvTranspose nodes in ONNX models.

Every ConvTranspose result is a *window* on the natural full output. Per
spatial axis, with ``in`` the input length, ``K = (k-1)*d + 1``::

    L = (in - 1) * s + K                 natural full length
    F[p], 0 <= p < L                     the full transposed convolution (no bias)
    F[p] = 0 for p < 0 or p >= L         zero rows outside (bias still added)
    y[o] = F[o + begin] + bias,  0 <= o < length

so a node is fully described by ``(begin, length)`` per axis. Explicit pads
give ``begin = pb``, ``length = L + op - pb - pe``; ``auto_pad`` SAME_* and
``output_shape`` fix the length and leave ``begin`` to the implementation,
which is where runtimes disagree. The interpretations used here:

* ``tf`` (TensorFlow/Keras): ``T = L - O``; ``begin = T // 2`` if ``T >= 0``
  (odd extra cropped at the END) else ``0`` (zero rows appended at the end).
  For SAME, ``O = in * s``.
* ``onnx-spec`` (ONNX Operators.md ConvTranspose, opset 11/22 text as
  shipped in onnx 1.23): ``T = L + op - O``; SAME_UPPER: ``begin = T // 2``
  (extra at the end); NOTSET/SAME_LOWER: ``begin = T - T // 2`` (extra at the
  start). ``//`` is floor division, as in ``onnx.reference`` (it matters for
  ``T < 0``, e.g. SAME with ``K < s``).
* ``ort``: what the installed onnxruntime computes, found by running the
  node alone and matching its output against every window.

Models are untrusted: external-data locations must stay inside the model's
folder (checked before any external file is opened).
"""

from __future__ import annotations

import copy
import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

import numpy as np

from .errors import ConvtError

__all__ = [
    "CODES", "CheckReport", "ConvTAttrs", "Finding", "NodeRef", "NodeReport", "Window",
    "check_model", "intent_windows", "iter_convtranspose", "load_model",
    "parse_input_shapes",
]

SEVERITIES = ("info", "warning", "error")
FAIL_LEVELS = ("error", "warning", "info", "never")
INTENTS = ("tf", "onnx-spec", "ort")
SAME = ("SAME_UPPER", "SAME_LOWER")
AUTO_PADS = ("NOTSET", "VALID", *SAME)

# code -> (slug, default severity)
CODES: dict[str, tuple[str, str]] = {
    "CT001": ("negative-pads", "error"),
    "CT002": ("output-padding-ge-stride", "error"),
    "CT003": ("kernel-shape-mismatch", "error"),
    "CT004": ("group-mismatch", "error"),
    "CT005": ("pads-with-auto-pad", "error"),
    "CT006": ("malformed-attribute", "error"),
    "CT010": ("auto-pad-same", "error"),
    "CT011": ("auto-pad-same-kernel-lt-stride", "error"),
    "CT012": ("auto-pad-with-output-padding", "error"),
    "CT013": ("output-shape-ambiguous-crop", "error"),
    "CT014": ("output-shape-unknown-input", "error"),
    "CT015": ("output-shape-fragile", "warning"),
    "CT020": ("asymmetric-pads", "warning"),
    "CT021": ("grouped", "warning"),
    "CT022": ("dtype-no-ort-cpu-kernel", "warning"),
    "CT030": ("numeric-check", "info"),
    "CT031": ("numeric-check-skipped", "info"),
    "CT032": ("onnxruntime-unexplained", "error"),
    "CT033": ("onnxruntime-rejects-node", "error"),
}

_DIM_NAMES = ("H", "W", "D3", "D4")


# --------------------------------------------------------------------------
# Loading untrusted models
# --------------------------------------------------------------------------

def _import_onnx() -> Any:
    import onnx

    return onnx


def _graph_tensors(graph: Any) -> Iterator[Any]:
    """Every TensorProto stored in ``graph`` and its subgraphs (initializers, attributes)."""
    yield from graph.initializer
    for sp in graph.sparse_initializer:
        yield sp.values
        yield sp.indices
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors
            if attr.HasField("sparse_tensor"):
                yield attr.sparse_tensor.values
                yield attr.sparse_tensor.indices
            if attr.HasField("g"):
                yield from _graph_tensors(attr.g)
            for g in attr.graphs:
                yield from _graph_tensors(g)


def _model_tensors(model: Any) -> Iterator[Any]:
    yield from _graph_tensors(model.graph)
    for fn in model.functions:
        for node in fn.node:
            for attr in node.attribute:
                if attr.HasField("t"):
                    yield attr.t
                yield from attr.tensors
                if attr.HasField("g"):
                    yield from _graph_tensors(attr.g)


def check_external_locations(model: Any, folder: Path) -> int:
    """Refuse external-data locations that leave ``folder``; return how many tensors use it.

    Rejected: absolute paths, drive letters, ``..`` components, and paths whose
    real path (symlinks resolved) is outside ``folder``. Nothing is opened.
    """
    onnx = _import_onnx()
    root = folder.resolve()
    count = 0
    for t in _model_tensors(model):
        entries = {e.key: e.value for e in t.external_data}
        if t.data_location != onnx.TensorProto.EXTERNAL and not entries:
            continue
        count += 1
        loc = entries.get("location", "")
        parts = Path(loc.replace("\\", "/")).parts
        bad = (not loc or os.path.isabs(loc) or loc.startswith(("/", "\\"))
               or (len(loc) > 1 and loc[1] == ":") or ".." in parts)
        if not bad:
            real = (root / loc).resolve()
            bad = real != root and root not in real.parents
        if bad:
            raise ConvtError(
                f"model: tensor {t.name!r} has external-data location {loc!r}, which is not a "
                f"relative path inside the model's folder; refusing to read it.", field="model")
    return count


def load_model(path: str | os.PathLike[str]) -> Any:
    """Load an untrusted ONNX model; any failure is a one-sentence :class:`ConvtError`.

    Parses with ``load_external_data=False``, checks every external-data
    location (:func:`check_external_locations`), then loads the external data.
    """
    onnx = _import_onnx()
    p = Path(path)
    if not p.is_file():
        raise ConvtError(f"model: {str(path)!r} is not a readable file.", field="model")
    try:
        model = onnx.load(str(p), load_external_data=False)
    except Exception as exc:  # protobuf DecodeError and friends
        raise ConvtError(f"model: {str(path)!r} is not a valid ONNX model "
                         f"({type(exc).__name__}: {_first_line(exc)}).", field="model") from None
    if model.ir_version <= 0 or not model.HasField("graph"):
        raise ConvtError(f"model: {str(path)!r} is not a valid ONNX model (no IR version or "
                         f"no graph; truncated or not ONNX).", field="model")
    if check_external_locations(model, p.parent):
        from onnx.external_data_helper import load_external_data_for_model
        try:
            load_external_data_for_model(model, str(p.parent))
        except Exception as exc:
            raise ConvtError(f"model: cannot load the external data of {str(path)!r} "
                             f"({type(exc).__name__}: {_first_line(exc)}).",
                             field="model") from None
    return model


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


# --------------------------------------------------------------------------
# Walking graphs
# --------------------------------------------------------------------------

@dataclass
class NodeRef:
    """A ConvTranspose node and where it lives.

    ``graph_path`` is ``main`` or ``main/<node>.<attr>[i]`` for subgraphs;
    ``constants`` maps names visible in that scope to their TensorProtos
    (initializers of this and enclosing graphs, and Constant nodes).
    """

    graph_path: str
    graph: Any
    index: int
    node: Any
    constants: dict[str, Any]
    const_owner: dict[str, Any]

    @property
    def label(self) -> str:
        return self.node.name or f"#{self.index}"


def _node_label(node: Any, i: int) -> str:
    return node.name or f"{node.op_type}#{i}"


def _subgraphs(node: Any) -> Iterator[tuple[str, Any]]:
    for attr in node.attribute:
        if attr.HasField("g"):
            yield attr.name, attr.g
        for j, g in enumerate(attr.graphs):
            yield f"{attr.name}[{j}]", g


def iter_graphs(graph: Any, path: str = "main") -> Iterator[tuple[str, Any]]:
    """``(path, graph)`` for ``graph`` and every nested subgraph, depth first."""
    yield path, graph
    for i, node in enumerate(graph.node):
        for name, sub in _subgraphs(node):
            yield from iter_graphs(sub, f"{path}/{_node_label(node, i)}.{name}")


def iter_convtranspose(model: Any) -> list[NodeRef]:
    """Every ConvTranspose node (default domain), subgraphs included, in graph order."""
    out: list[NodeRef] = []

    def walk(graph: Any, path: str, consts: dict[str, Any], owner: dict[str, Any]) -> None:
        consts = dict(consts)
        owner = dict(owner)
        for t in graph.initializer:
            consts[t.name] = t
            owner[t.name] = graph
        for node in graph.node:
            if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
                for attr in node.attribute:
                    if attr.name == "value" and attr.HasField("t"):
                        consts[node.output[0]] = attr.t
        for i, node in enumerate(graph.node):
            if node.op_type == "ConvTranspose" and node.domain in ("", "ai.onnx"):
                out.append(NodeRef(path, graph, i, node, consts, owner))
            for name, sub in _subgraphs(node):
                walk(sub, f"{path}/{_node_label(node, i)}.{name}", consts, owner)

    walk(model.graph, "main", {}, {})
    return out


def default_opset(model: Any) -> int:
    """The model's default-domain opset version (11 when absent)."""
    for op in model.opset_import:
        if op.domain in ("", "ai.onnx"):
            return int(op.version)
    return 11


# --------------------------------------------------------------------------
# Attributes
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class ConvTAttrs:
    """A ConvTranspose node's attributes, normalised per spatial axis.

    ``pads`` is None when the attribute is absent; ``output_shape`` holds
    only the spatial entries.
    """

    rank: int
    auto_pad: str
    pads: tuple[int, ...] | None
    output_padding: tuple[int, ...]
    output_shape: tuple[int, ...] | None
    strides: tuple[int, ...]
    dilations: tuple[int, ...]
    kernel_shape: tuple[int, ...] | None
    kernel: tuple[int, ...]
    group: int

    def effective_kernel(self, i: int) -> int:
        """``K = (k - 1) * d + 1`` on axis ``i``."""
        return (self.kernel[i] - 1) * self.dilations[i] + 1

    def natural_length(self, i: int, n: int) -> int:
        """``L = (in - 1) * s + K`` on axis ``i``."""
        return (n - 1) * self.strides[i] + self.effective_kernel(i)

    def pads_pair(self, i: int) -> tuple[int, int]:
        p = self.pads or (0,) * (2 * self.rank)
        return p[i], p[i + self.rank]


def _attr_map(node: Any) -> dict[str, Any]:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def read_attrs(node: Any, w_shape: Sequence[int] | None,
               x_rank: int | None) -> tuple[ConvTAttrs | None, list["Finding"]]:
    """Parse and normalise; malformed attributes give CT006 (and ``None`` when unusable)."""
    a = _attr_map(node)
    problems: list[Finding] = []
    ks = tuple(int(v) for v in a["kernel_shape"]) if "kernel_shape" in a else None
    if ks is not None:
        rank = len(ks)
    elif w_shape is not None and len(w_shape) >= 3:
        rank = len(w_shape) - 2
    elif x_rank is not None and x_rank >= 3:
        rank = x_rank - 2
    else:
        return None, [Finding("CT006", "no kernel_shape attribute and the shape of W is "
                              "unknown, so the spatial rank cannot be determined")]
    kernel = ks if ks is not None else tuple(int(v) for v in w_shape[2:])  # type: ignore[index]

    def ints(name: str, length: int, default: int) -> tuple[int, ...]:
        if name not in a:
            return (default,) * length
        vals = tuple(int(v) for v in a[name])
        if len(vals) != length:
            problems.append(Finding("CT006", f"{name} {list(vals)} has {len(vals)} values; "
                                    f"expected {length} for a {rank}-D ConvTranspose"))
            vals = (vals + (default,) * length)[:length]
        return vals

    strides = ints("strides", rank, 1)
    dilations = ints("dilations", rank, 1)
    op = ints("output_padding", rank, 0)
    pads = ints("pads", 2 * rank, 0) if "pads" in a else None
    out_shape = None
    if "output_shape" in a:
        raw = tuple(int(v) for v in a["output_shape"])
        if len(raw) in (rank, rank + 2):
            out_shape = raw[-rank:]
        else:
            problems.append(Finding("CT006", f"output_shape {list(raw)} has {len(raw)} values; "
                                    f"expected {rank} (spatial dims only)"))
    auto_pad = a.get("auto_pad", b"NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else str(auto_pad)
    if auto_pad not in AUTO_PADS:
        problems.append(Finding("CT006", f"auto_pad {auto_pad!r} is not one of "
                                f"{', '.join(AUTO_PADS)}"))
        auto_pad = "NOTSET"
    group = int(a.get("group", 1))
    for name, vals in (("strides", strides), ("dilations", dilations), ("kernel_shape", kernel)):
        if min(vals, default=1) < 1:
            problems.append(Finding("CT006", f"{name} {list(vals)} must be >= 1 on every axis"))
    if min(op, default=0) < 0:
        problems.append(Finding("CT006", f"output_padding {list(op)} must be >= 0"))
    usable = not any(f.code == "CT006" for f in problems) or (
        min(strides) >= 1 and min(dilations) >= 1 and min(kernel) >= 1)
    attrs = ConvTAttrs(rank, auto_pad, pads, op, out_shape, strides, dilations, ks, kernel, group)
    return (attrs if usable else None), problems


# --------------------------------------------------------------------------
# Windows and interpretations
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class Window:
    """Output row ``o`` is full position ``o + begin``; ``length`` output rows."""

    begin: int
    length: int

    def crop_end(self, natural: int) -> int:
        """Rows of ``[0, L)`` cut at the end (negative: zero rows appended)."""
        return natural - self.begin - self.length


def _target_length(attrs: ConvTAttrs, i: int, n: int) -> int | None:
    """The length fixed by output_shape or SAME (``in * s``); None for explicit pads/VALID."""
    if attrs.output_shape is not None:
        return attrs.output_shape[i]
    if attrs.auto_pad in SAME:
        return n * attrs.strides[i]
    return None


def intent_windows(attrs: ConvTAttrs, sizes: Sequence[int], intent: str) -> tuple[Window, ...]:
    """Per-axis windows of the node under ``intent`` (``tf``, ``onnx-spec`` or ``swapped``).

    Explicit pads (any sign) and VALID are unambiguous: ``begin = pb`` (0 for
    VALID), ``length = L + op - pb - pe``. Otherwise ``O`` is fixed and:
    ``tf``: ``T = L - O``, ``begin = T // 2`` if ``T >= 0`` else 0;
    ``onnx-spec``: ``T = L + op - O``, SAME_UPPER ``T // 2``, else ``T - T // 2``;
    ``swapped``: onnx-spec with SAME_UPPER and SAME_LOWER exchanged
    (onnxruntime <= 1.12), or for output_shape the odd extra at the end
    (onnxruntime <= 1.13, TensorRT's parser).
    """
    out = []
    for i, n in enumerate(sizes):
        nat = attrs.natural_length(i, n)
        op = attrs.output_padding[i]
        target = _target_length(attrs, i, n)
        if target is None:
            pb, pe = (0, 0) if attrs.auto_pad == "VALID" else attrs.pads_pair(i)
            out.append(Window(pb, nat + op - pb - pe))
            continue
        if intent == "tf":
            t = nat - target
            out.append(Window(t // 2 if t >= 0 else 0, target))
            continue
        t = nat + op - target
        upper = attrs.auto_pad == "SAME_UPPER"
        if intent == "swapped":
            upper = not upper if attrs.auto_pad in SAME else True
        elif intent != "onnx-spec":
            raise ConvtError(f"intent: got {intent!r}; expected one of tf, onnx-spec, ort.",
                             field="intent")
        out.append(Window(t // 2 if upper else t - t // 2, target))
    return tuple(out)


def interpretations(attrs: ConvTAttrs, sizes: Sequence[int]) -> dict[str, tuple[Window, ...]]:
    """Named windows a runtime might compute for this node at these input sizes."""
    if attrs.output_shape is None and attrs.auto_pad not in SAME:
        return {"onnx-spec": intent_windows(attrs, sizes, "onnx-spec")}
    return {
        "tf": intent_windows(attrs, sizes, "tf"),
        "onnx-spec": intent_windows(attrs, sizes, "onnx-spec"),
        "swapped": intent_windows(attrs, sizes, "swapped"),
    }


def interpretation_words(name: str, attrs: ConvTAttrs) -> str:
    """Who computes the named interpretation, in words."""
    if name == "tf":
        return "TensorFlow/Keras"
    if name == "onnx-spec":
        return "the ONNX spec text (onnx 1.23, opset 22)"
    if attrs.output_shape is not None:
        return "onnxruntime<=1.13 and TensorRT's parser (odd extra at the end)"
    return "onnxruntime<=1.12 (SAME sides swapped)"


def odd_extra_side(windows: Sequence[Window], naturals: Sequence[int]) -> str:
    """``" crops the odd extra at the START (H, W)"`` or ``""`` when no axis has an odd crop."""
    sides: dict[str, list[str]] = {}
    for i, (w, nat) in enumerate(zip(windows, naturals)):
        end = w.crop_end(nat)
        if w.begin >= 0 and end >= 0 and (w.begin + end) % 2:
            sides.setdefault("START" if w.begin > end else "END", []).append(_DIM_NAMES[i])
    return "; ".join(f"crops the odd extra at the {side} ({', '.join(axes)})"
                     for side, axes in sides.items())


def describe_windows(windows: Sequence[Window], naturals: Sequence[int]) -> str:
    """``"H: crop 1 at start, 0 at end; W: ..."`` (negative crops are zero rows added)."""
    parts = []
    for i, (w, nat) in enumerate(zip(windows, naturals)):
        end = w.crop_end(nat)
        words = []
        words.append(f"crop {w.begin} at start" if w.begin >= 0
                     else f"add {-w.begin} zero row(s) at start")
        words.append(f"crop {end} at end" if end >= 0 else f"add {-end} zero row(s) at end")
        parts.append(f"{_DIM_NAMES[i]} (L={nat}, out={w.length}): " + ", ".join(words))
    return "; ".join(parts)


# --------------------------------------------------------------------------
# Numerics: running one node
# --------------------------------------------------------------------------

class OrtRefused(Exception):
    """onnxruntime would not load or run a node; the message says why."""


def _ort() -> Any:
    import onnxruntime as ort

    ort.set_default_logger_severity(4)
    return ort


def ort_version() -> str:
    """The installed onnxruntime version."""
    return str(_ort().__version__)


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
    """Run ``model`` on CPU; any load/run failure becomes :class:`OrtRefused`."""
    ort = _ort()
    try:
        opts = ort.SessionOptions()
        opts.log_severity_level = 4
        sess = ort.InferenceSession(model.SerializeToString(), opts,
                                    providers=["CPUExecutionProvider"])
        return sess.run(None, dict(feeds))
    except Exception as exc:
        raise OrtRefused(_first_line(exc)) from None


def full_output(x: np.ndarray, w: np.ndarray, attrs: ConvTAttrs) -> np.ndarray:
    """The natural full output ``F`` (no crop, no bias) from the NumPy reference."""
    from .reference import conv_transpose

    return conv_transpose(np.asarray(x, np.float64), np.asarray(w, np.float64), None,
                          strides=attrs.strides, dilations=attrs.dilations,
                          pads=(0,) * (2 * attrs.rank), output_padding=(0,) * attrs.rank,
                          group=attrs.group)


def apply_window(full: np.ndarray, b: np.ndarray | None,
                 windows: Sequence[Window]) -> np.ndarray:
    """``y[..., o, p] = F[..., o + bh, p + bw]`` (zero outside ``F``) plus bias."""
    (wh, ww) = windows
    n, c, lh, lw = full.shape
    y = np.zeros((n, c, wh.length, ww.length), dtype=full.dtype)
    src_h = (max(wh.begin, 0), min(wh.begin + wh.length, lh))
    src_w = (max(ww.begin, 0), min(ww.begin + ww.length, lw))
    if src_h[0] < src_h[1] and src_w[0] < src_w[1]:
        y[:, :, src_h[0] - wh.begin:src_h[1] - wh.begin, src_w[0] - ww.begin:src_w[1] - ww.begin] = \
            full[:, :, src_h[0]:src_h[1], src_w[0]:src_w[1]]
    if b is not None:
        y = y + np.asarray(b, np.float64)[None, :, None, None]
    return y


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
    oh, ow = y.shape[2:]
    lh, lw = full.shape[2:]
    # Any sane crop is within a kernel plus a stride of either end: search only there.
    (rh, rw) = (lh - oh, lw - ow)
    span_h = range(min(0, rh) - 8, max(0, rh) + 9)
    span_w = range(min(0, rw) - 8, max(0, rw) + 9)
    for bh in span_h:
        for bw in span_w:
            windows = (Window(bh, oh), Window(bw, ow))
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


# --------------------------------------------------------------------------
# Shapes
# --------------------------------------------------------------------------

def parse_input_shapes(items: Iterable[str]) -> dict[str, tuple[int | None, ...]]:
    """``["x=1,3,32,32", ...]`` -> ``{"x": (1, 3, 32, 32)}``; a bare shape maps to ``""``."""
    from .spec import parse_shape

    out: dict[str, tuple[int | None, ...]] = {}
    for item in items:
        name, sep, dims = item.rpartition("=")
        if not sep:
            name, dims = "", item
        out[name.strip()] = parse_shape(dims, "input_shape")
    return out


def _dims(type_proto: Any) -> tuple[int | None, ...] | None:
    if not type_proto.HasField("tensor_type") or not type_proto.tensor_type.HasField("shape"):
        return None
    return tuple(d.dim_value if d.HasField("dim_value") and d.dim_value >= 0 else None
                 for d in type_proto.tensor_type.shape.dim)


def apply_input_shapes(model: Any, shapes: Mapping[str, Sequence[int | None]]) -> Any:
    """A copy of ``model`` whose graph inputs have the given shapes (checked against fixed dims)."""
    from onnx import helper

    model = copy.deepcopy(model)
    inits = {t.name for t in model.graph.initializer}
    inputs = [vi for vi in model.graph.input if vi.name not in inits]
    shapes = dict(shapes)
    if "" in shapes:
        if len(inputs) != 1:
            raise ConvtError(f"input_shape: a shape without a name needs a model with one "
                             f"input; this one has {[vi.name for vi in inputs]}; use NAME=DIMS.",
                             field="input_shape")
        shapes[inputs[0].name] = shapes.pop("")
    by_name = {vi.name: vi for vi in inputs}
    for name, dims in shapes.items():
        vi = by_name.get(name)
        if vi is None:
            raise ConvtError(f"input_shape: got input name {name!r}; the model's inputs are "
                             f"{sorted(by_name)}.", field="input_shape")
        old = _dims(vi.type)
        if old is not None and (len(old) != len(dims) or any(
                o is not None and d is not None and o != d for o, d in zip(old, dims))):
            raise ConvtError(f"input_shape: got {tuple(dims)} for {name!r}, but the model fixes "
                             f"its shape to {old} (None = free); give a compatible shape.",
                             field="input_shape")
        merged = [d if d is not None else (o if old else None)
                  for d, o in zip(dims, old or [None] * len(dims))]
        new = helper.make_tensor_value_info(name, vi.type.tensor_type.elem_type,
                                            [d if d is not None else f"{name}_d{i}"
                                             for i, d in enumerate(merged)])
        vi.CopyFrom(new)
    return model


def infer_shapes(model: Any) -> tuple[dict[str, dict[str, tuple[int | None, ...]]],
                                     dict[str, dict[str, int]], str | None]:
    """Per graph path: value name -> shape and -> elem type, from onnx shape inference.

    Outer-scope values are visible in subgraphs. Returns an error text when
    inference failed (shapes then come from declared inputs/value_info only).
    """
    onnx = _import_onnx()
    error = None
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
    except Exception as exc:
        inferred, error = model, _first_line(exc)
    shapes: dict[str, dict[str, tuple[int | None, ...]]] = {}
    types: dict[str, dict[str, int]] = {}

    def walk(graph: Any, path: str, outer_s: dict, outer_t: dict) -> None:
        s, t = dict(outer_s), dict(outer_t)
        for vi in list(graph.input) + list(graph.value_info) + list(graph.output):
            d = _dims(vi.type)
            if d is not None:
                s[vi.name] = d
            if vi.type.HasField("tensor_type"):
                t[vi.name] = vi.type.tensor_type.elem_type
        for init in graph.initializer:
            s[init.name] = tuple(init.dims)
            t[init.name] = init.data_type
        shapes[path], types[path] = s, t
        for i, node in enumerate(graph.node):
            for name, sub in _subgraphs(node):
                walk(sub, f"{path}/{_node_label(node, i)}.{name}", s, t)

    walk(inferred.graph, "main", {}, {})
    return shapes, types, error


# --------------------------------------------------------------------------
# Findings and reports
# --------------------------------------------------------------------------

@dataclass
class Finding:
    """One finding: a stable ``code`` (see :data:`CODES`), severity and a sentence."""

    code: str
    message: str
    severity: str = ""

    def __post_init__(self) -> None:
        if not self.severity:
            self.severity = CODES[self.code][1]

    @property
    def slug(self) -> str:
        return CODES[self.code][0]

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "name": self.slug, "severity": self.severity,
                "message": self.message}


@dataclass
class NodeReport:
    """The findings for one ConvTranspose node."""

    graph: str
    name: str
    index: int
    input_shape: tuple[int | None, ...] | None
    attributes: dict[str, Any]
    findings: list[Finding] = field(default_factory=list)
    numeric: dict[str, Any] | None = None

    def worst(self) -> str | None:
        sev = [SEVERITIES.index(f.severity) for f in self.findings]
        return SEVERITIES[max(sev)] if sev else None

    def fails(self, fail_on: str) -> list[Finding]:
        return [f for f in self.findings if _at_or_above(f.severity, fail_on)]

    def to_dict(self) -> dict[str, Any]:
        return {"graph": self.graph, "name": self.name, "index": self.index,
                "input_shape": None if self.input_shape is None else list(self.input_shape),
                "attributes": self.attributes,
                "findings": [f.to_dict() for f in self.findings], "numeric": self.numeric}


def _at_or_above(severity: str, fail_on: str) -> bool:
    if fail_on == "never":
        return False
    return SEVERITIES.index(severity) >= SEVERITIES.index(fail_on)


@dataclass
class CheckReport:
    """The result of :func:`check_model`: one :class:`NodeReport` per node."""

    model: str
    onnxruntime: str
    nodes: list[NodeReport]
    notes: list[str] = field(default_factory=list)

    def failed(self, fail_on: str = "error") -> bool:
        """True when any finding is at or above ``fail_on`` (never: always False)."""
        if fail_on not in FAIL_LEVELS:
            raise ConvtError(f"fail_on: got {fail_on!r}; expected one of "
                             f"{', '.join(FAIL_LEVELS)}.", field="fail_on")
        return any(n.fails(fail_on) for n in self.nodes)

    def counts(self) -> dict[str, int]:
        c = {s: 0 for s in SEVERITIES}
        for n in self.nodes:
            for f in n.findings:
                c[f.severity] += 1
        return c

    def to_dict(self, fail_on: str = "error") -> dict[str, Any]:
        return {"model": self.model, "onnxruntime": self.onnxruntime, "fail_on": fail_on,
                "failed": self.failed(fail_on), "counts": self.counts(), "notes": self.notes,
                "nodes": [n.to_dict() for n in self.nodes]}

    def to_text(self, fail_on: str = "error") -> str:
        lines = [f"{self.model}: {len(self.nodes)} ConvTranspose node(s) "
                 f"(onnxruntime {self.onnxruntime})"]
        lines += [f"note: {n}" for n in self.notes]
        for n in self.nodes:
            lines.append(f"[{n.graph}] node {n.name!r} (index {n.index}), input "
                         f"{'unknown' if n.input_shape is None else list(n.input_shape)}")
            if not n.findings:
                lines.append("  ok")
            for f in n.findings:
                lines.append(f"  {f.severity.upper():7s} {f.code} {f.slug}: {f.message}")
        c = self.counts()
        verdict = "FAIL" if self.failed(fail_on) else "PASS"
        lines.append(f"{verdict} (fail-on {fail_on}): {c['error']} error(s), "
                     f"{c['warning']} warning(s), {c['info']} info")
        return "\n".join(lines)

    def junit_xml(self, fail_on: str = "error") -> str:
        """JUnit XML: one testsuite, one testcase per node; a failure per failing node."""
        suite = ET.Element("testsuite", name="convt check", tests=str(len(self.nodes)),
                           failures=str(sum(1 for n in self.nodes if n.fails(fail_on))),
                           errors="0")
        for n in self.nodes:
            case = ET.SubElement(suite, "testcase", classname=f"{self.model}:{n.graph}",
                                 name=f"{n.name} (index {n.index})")
            bad = n.fails(fail_on)
            if bad:
                fail = ET.SubElement(case, "failure", type=bad[0].code,
                                     message="; ".join(f"{f.code} {f.slug}" for f in bad))
                fail.text = "\n".join(f"{f.severity} {f.code}: {f.message}" for f in bad)
            out = ET.SubElement(case, "system-out")
            out.text = "\n".join(f"{f.severity} {f.code}: {f.message}" for f in n.findings) or "ok"
        return ET.tostring(suite, encoding="unicode", xml_declaration=False)


# --------------------------------------------------------------------------
# Rules
# --------------------------------------------------------------------------

def tensor_array(t: Any) -> np.ndarray:
    """A TensorProto as a NumPy array (no external files are read here)."""
    from onnx import numpy_helper

    return numpy_helper.to_array(t)


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


# --------------------------------------------------------------------------
# The per-node check
# --------------------------------------------------------------------------

@dataclass
class NodeContext:
    """What is known about one node: attributes, tensors and shapes."""

    ref: NodeRef
    attrs: ConvTAttrs | None
    x_shape: tuple[int | None, ...] | None
    w: np.ndarray | None
    w_shape: tuple[int, ...] | None
    b: np.ndarray | None
    b_shape: tuple[int, ...] | None
    elem_type: int | None
    findings: list[Finding]

    @property
    def sizes(self) -> tuple[int | None, ...] | None:
        if self.x_shape is None or self.attrs is None or len(self.x_shape) != self.attrs.rank + 2:
            return None
        return self.x_shape[2:]

    @property
    def c_in(self) -> int | None:
        return self.x_shape[1] if self.x_shape is not None and len(self.x_shape) > 1 else None


def node_context(ref: NodeRef, shapes: Mapping[str, tuple[int | None, ...]],
                 types: Mapping[str, int]) -> NodeContext:
    """Collect attributes, constants and inferred shapes for ``ref``."""
    node = ref.node
    names = list(node.input) + ["", "", ""]
    x_name, w_name, b_name = names[0], names[1], names[2]
    w = tensor_array(ref.constants[w_name]) if w_name in ref.constants else None
    b = tensor_array(ref.constants[b_name]) if b_name and b_name in ref.constants else None
    w_shape = tuple(w.shape) if w is not None else _known(shapes.get(w_name))
    b_shape = tuple(b.shape) if b is not None else (_known(shapes.get(b_name)) if b_name else None)
    x_shape = shapes.get(x_name)
    attrs, findings = read_attrs(node, w_shape, None if x_shape is None else len(x_shape))
    elem = types.get(x_name) or (types.get(w_name) if w_name else None)
    return NodeContext(ref, attrs, x_shape, w, w_shape, b, b_shape, elem, findings)


def _known(shape: tuple[int | None, ...] | None) -> tuple[int, ...] | None:
    if shape is None or any(d is None for d in shape):
        return None
    return tuple(int(d) for d in shape)  # type: ignore[arg-type]


def static_findings(ctx: NodeContext) -> list[Finding]:
    """All attribute-based findings for one node (no numerics)."""
    out = list(ctx.findings)
    if ctx.attrs is None:
        return out
    out += legality(ctx.attrs, ctx.w_shape, ctx.c_in, ctx.b_shape)
    out += runtime_dependent(ctx.attrs, ctx.sizes)
    out += portability(ctx.attrs, ctx.elem_type)
    return out


STAND_IN = 5


def probe_shape(ctx: NodeContext) -> tuple[tuple[int, ...] | None, str]:
    """The input shape to probe the node at, or None and the reason.

    Known spatial sizes are used as they are; unknown ones are replaced by a
    stand-in (5) only when the node has no output_shape (then the crop does
    not depend on the size). The batch is always 1.
    """
    a = ctx.attrs
    if a is None:
        return None, "the attributes are malformed"
    if a.rank != 2:
        return None, f"only 2-D ConvTranspose is checked numerically (this one is {a.rank}-D)"
    if ctx.w_shape is None:
        return None, "the shape of W is unknown"
    c_in = ctx.c_in if ctx.c_in is not None else ctx.w_shape[0]
    sizes = ctx.sizes or (None, None)
    if any(n is None for n in sizes):
        if a.output_shape is not None:
            return None, ("the input spatial size is unknown and output_shape makes the crop "
                          "depend on it; give --input-shape")
        sizes = tuple(STAND_IN if n is None else n for n in sizes)
    return (1, int(c_in), *(int(n) for n in sizes)), ""  # type: ignore[arg-type]


def numeric_check(ctx: NodeContext, opset: int,
                  rng: np.random.Generator) -> tuple[list[Finding], dict[str, Any] | None]:
    """Run the node alone in onnxruntime and say which interpretation it matched.

    Runs even on illegal nodes: onnxruntime's refusal message is evidence too.
    """
    shape, why = probe_shape(ctx)
    if shape is None:
        return [Finding("CT031", f"numeric check skipped: {why}")], None
    a = ctx.attrs
    assert a is not None
    w = ctx.w if ctx.w is not None else rng.standard_normal(ctx.w_shape).astype(np.float32)
    b = ctx.b
    if b is None and len(ctx.ref.node.input) > 2 and ctx.ref.node.input[2]:
        b = rng.standard_normal(ctx.w_shape[1] * a.group).astype(np.float32)  # type: ignore[index]
    try:
        window, _, y = probe_ort(ctx.ref, a, shape, w, b, opset, rng)
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


def check_model(model: Any, input_shapes: Mapping[str, Sequence[int | None]] | None = None,
                *, numeric: bool = True, seed: int = 0, name: str | None = None) -> CheckReport:
    """Check every ConvTranspose node of ``model`` (a path or a ModelProto).

    Returns a :class:`CheckReport`; raises :class:`ConvtError` for unreadable
    input. ``input_shapes`` (``{input_name: dims}``, ``""`` for the only
    input) fixes graph-input shapes for shape inference and numeric checks.
    """
    label = name or (str(model) if isinstance(model, (str, os.PathLike)) else "model")
    if isinstance(model, (str, os.PathLike)):
        model = load_model(model)
    shaped = apply_input_shapes(model, input_shapes or {})
    shapes, types, err = infer_shapes(shaped)
    report = CheckReport(label, ort_version(), [])
    if err:
        report.notes.append(f"onnx shape inference failed ({err}); shapes come from declared "
                            f"value_info only")
    rng = np.random.default_rng(seed)
    opset = default_opset(model)
    for ref in iter_convtranspose(model):
        ctx = node_context(ref, shapes.get(ref.graph_path, {}), types.get(ref.graph_path, {}))
        findings = static_findings(ctx)
        info = None
        if numeric:
            more, info = numeric_check(ctx, opset, rng)
            findings += more
        report.nodes.append(NodeReport(ref.graph_path, ref.label, ref.index, ctx.x_shape,
                                       _attributes_json(ref.node), findings, info))
    return report


def _attributes_json(node: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in _attr_map(node).items():
        if isinstance(v, bytes):
            v = v.decode(errors="replace")
        elif isinstance(v, (list, tuple)):
            v = [int(x) if isinstance(x, (int, np.integer)) else str(x) for x in v]
        elif not isinstance(v, (int, float, str)):
            v = str(v)
        out[k] = v
    return out
