"""Proof per layer and runtime: the cut run on each runtime against the source layer's reference.

For a paired layer the cut (:func:`._graph.extract`) runs from the path's input
tensor to its output tensor. Its input dims are the ones the whole model fixes
(shape inference: a fixed model's layer stays static, which matters to OpenVINO's
reading of ``SAME_*``/``output_shape``); where a spatial dim is free it runs at two
sizes per axis of both parities (5/6 and 6/5, or the source's recorded size first).
The input is seeded normal values in the cut's layout; the reference is the source
layer (Keras: kernel, bias and activation; torch: the module) on the same values in
the source's layout.

The class of a layer that is not exact comes from the comparison (:func:`classify`):
the runtime's output is tested against what each known error would compute
(the source with its bias dropped, with the node's own edited weight, shifted by one
pixel, without the extra rows' bias, cut short), and the node form only names which
of the equivalent forms it is (explicit pads vs ``auto_pad`` vs ``output_shape``).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import onnx

from ..runtimes import ABORTS_PROCESS, RuntimeRefused, get_runtime, run_isolated
from ._graph import Graph, extract
from ._pair import LayerPath

__all__ = ["ATOL", "Job", "RuntimeResult", "classify", "input_dims", "layer_jobs", "refused_class",
           "run_jobs"]

ATOL = 1e-4
_DEFAULT_SIZES = (5, 6)


@dataclass
class Job:
    """One cut run at one input size: the model, its feed, the reference and how to read it."""

    model: bytes
    feed: dict[str, np.ndarray]
    x_source: np.ndarray          # the same values in the source layout
    reference: np.ndarray
    channels_last_source: bool    # the source layout is channels-last (a Keras default layer)
    error: str | None = None      # the cut could not be built (then nothing runs)
    static_model: bytes | None = None   # the cut with its free dims fixed to this feed's


@dataclass
class RuntimeResult:
    """One layer on one runtime, over its sizes."""

    verdict: str                  # exact, mismatch, refused
    cls: str | None
    max_abs_error: float | None
    reason: str | None = None
    sizes: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"verdict": self.verdict, "class": self.cls,
                               "max_abs_error": self.max_abs_error}
        if self.reason is not None:
            out["reason"] = self.reason
        out["sizes"] = self.sizes
        return out


def _source_input_shape(source: Any) -> tuple[int | None, ...]:
    shape = getattr(source.spec, "input_shape", None)
    if shape is None and source.record is not None:
        shape = getattr(source.record, "input_shape", None)
    if shape is None:
        shape = source.layer.default_input_shape(None)
    return tuple(shape)


def _cl(source: Any) -> bool:
    return getattr(source.spec, "data_format", "channels_first") == "channels_last"


def _to_cf(shape: tuple[Any, ...]) -> tuple[Any, ...]:
    return (shape[0], shape[-1], *shape[1:-1])


def _input_layout(graph: Graph, t_in: str, source: Any, src_shape: tuple[Any, ...]) -> str:
    """``"source"`` or ``"cf"`` (channels-first while the source is channels-last)."""
    if not _cl(source):
        return "source"
    dims = graph.dims(t_in)

    def fits(shape: tuple[Any, ...]) -> bool:
        return dims is not None and len(dims) == len(shape) and all(
            d is None or s is None or d == s for d, s in zip(dims, shape))
    src, cf = fits(src_shape), fits(_to_cf(src_shape))
    if src != cf:
        return "source" if src else "cf"
    return "source" if t_in in graph.graph_inputs else "cf"


def _fill(known: list[int | None], src_shape: tuple[Any, ...], spatial: list[int]
          ) -> list[tuple[int, ...]]:
    base = [k if k is not None else s for k, s in zip(known, src_shape)]
    base[0] = base[0] or 1
    free = [ax for ax in spatial if base[ax] is None]
    for ax, v in enumerate(base):
        if v is None and ax not in spatial:
            raise ValueError(f"the layer's input dim {ax} is unknown")
    if not free:
        return [tuple(int(v) for v in base)]
    out = []
    for start in range(2):
        shape = list(base)
        for j, ax in enumerate(free):
            shape[ax] = _DEFAULT_SIZES[(j + start) % 2]
        out.append(tuple(int(v) for v in shape))
    return out


def input_dims(graph: Graph, path: LayerPath, source: Any
               ) -> tuple[str, list[int | None], tuple[Any, ...]]:
    """``(layout of the cut's input, its dims in the source layout (None: free), the source's
    recorded input shape)``; ``layout`` is ``"source"`` or ``"cf"`` (channels-first data for a
    channels-last source, as tf2onnx keeps it between layers)."""
    rank = source.spec.rank
    src_shape = _source_input_shape(source)
    layout = _input_layout(graph, path.t_in, source, src_shape)
    dims = graph.dims(path.t_in)
    known: list[int | None] = (list(dims) if dims is not None and len(dims) == rank + 2
                               else [None] * (rank + 2))
    if layout == "cf":
        known = [known[0], *known[2:], known[1]]
    ch = -1 if _cl(source) else 1
    if known[ch] is not None and src_shape[ch] is not None and known[ch] != src_shape[ch]:
        # the dims inferred from the model do not hold for the source's layer (a broken
        # upstream layer): the layer is run at the source's own sizes, its dims free
        known = [None] * (rank + 2)
    return layout, known, src_shape


def layer_jobs(graph: Graph, path: LayerPath, source: Any, seed: int) -> list[Job]:
    """The cut of ``path`` at each input size, with its feeds and the source's reference."""
    rank = source.spec.rank
    layout, known, src_shape = input_dims(graph, path, source)
    dims = graph.dims(path.t_in)
    spatial = list(range(1, rank + 1)) if _cl(source) else list(range(2, rank + 2))
    jobs: list[Job] = []
    rng = np.random.default_rng(seed)
    try:
        shapes = _fill(known, src_shape, spatial)
    except ValueError as exc:
        return [Job(b"", {}, np.zeros(0), np.zeros(0), _cl(source), error=str(exc))]
    for shape in shapes:
        x_src = rng.standard_normal(shape).astype(np.float32)
        feed = np.moveaxis(x_src, -1, 1) if layout == "cf" else x_src
        decl: list[int | str] = [int(d) if d is not None else f"d{i}"
                                 for i, d in enumerate(dims if dims is not None
                                                       and len(dims) == rank + 2
                                                       else [None] * (rank + 2))]
        # a declared dim that contradicts the source's layer (a broken upstream layer): free
        if any(isinstance(d, int) and d != s for d, s in zip(decl, feed.shape)):
            decl = [f"d{i}" for i in range(rank + 2)]
        try:
            cut = extract(graph, path.t_in, path.t_out, decl)
        except ValueError as exc:
            return [Job(b"", {}, x_src, np.zeros(0), _cl(source), error=str(exc))]
        static = None
        if any(isinstance(d, str) for d in decl):
            static = extract(graph, path.t_in, path.t_out,
                             [int(v) for v in feed.shape]).SerializeToString()
        ref = np.asarray(source.layer.reference(x_src, source.kernel, source.bias))
        jobs.append(Job(cut.SerializeToString(), {path.t_in: np.ascontiguousarray(feed)}, x_src,
                        ref, _cl(source), static_model=static))
    return jobs


def _run_calls(runtime: str, calls: list[tuple[bytes, dict[str, np.ndarray]]]
               ) -> list[list[np.ndarray] | str]:
    if not calls:
        return []
    if runtime in ABORTS_PROCESS:
        return run_isolated(runtime, calls, threads=1)
    adapter = get_runtime(runtime, threads=1, quiet=True)
    got: list[list[np.ndarray] | str] = []
    for model, feed in calls:
        try:
            got.append(adapter.load(model).run(feed))
        except RuntimeRefused as exc:
            got.append(exc.detail)
    return got


def run_jobs(runtime: str, jobs: list[Job]) -> list[list[np.ndarray] | str]:
    """Each job's outputs on ``runtime`` or its refusal (one line); engines that can abort
    the process (:data:`~convt_tools.runtimes.ABORTS_PROCESS`) run in one child process.

    A cut with free dims that the runtime refuses is run again with its dims fixed to the
    feed's (tract cannot type some runtime-computed Slices symbolically); the refusal
    stands only where the fixed cut is refused too."""
    todo = [j for j in jobs if j.error is None]
    got = _run_calls(runtime, [(j.model, j.feed) for j in todo])
    again = [k for k, (j, g) in enumerate(zip(todo, got))
             if isinstance(g, str) and j.static_model is not None]
    for k, g in zip(again, _run_calls(runtime, [(todo[k].static_model or b"", todo[k].feed)
                                               for k in again])):
        if not isinstance(g, str):
            got[k] = g
    it = iter(got)
    return [next(it) if j.error is None else f"not run: {j.error}" for j in jobs]


# ---------------------------------------------------------------- classification

def _form(path: LayerPath) -> dict[str, Any]:
    return Graph.attrs(path.conv)


def refused_class(path: LayerPath) -> str:
    a = _form(path)
    if any(int(p) < 0 for p in a.get("pads", [])):
        return "negative_pads"
    op, st = a.get("output_padding", []), a.get("strides", [])
    dil = a.get("dilations", [1] * len(op))
    if any(o >= s for o, s in zip(op, st or [1] * len(op))) and any(o > 0 for o in op) \
            and dil is not None:
        return "output_padding_ge_stride"
    return "refused"


def _err(a: np.ndarray, b: np.ndarray) -> float:
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))


def _close(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    return a is not None and b is not None and a.shape == b.shape and _err(a, b) <= ATOL


def _as_source(got: np.ndarray, ref: np.ndarray, cl: bool) -> np.ndarray | None:
    if got.shape == ref.shape:
        return got
    if cl and got.ndim == ref.ndim and np.moveaxis(got, 1, -1).shape == ref.shape:
        return np.moveaxis(got, 1, -1)
    return None


def _shifted(got: np.ndarray, ref: np.ndarray, spatial: list[int]) -> bool:
    for shifts in itertools.product((-1, 0, 1), repeat=len(spatial)):
        if not any(shifts):
            continue
        g = got
        sl = [slice(None)] * ref.ndim
        for ax, sh in zip(spatial, shifts):
            if sh:
                g = np.roll(g, sh, axis=ax)
                sl[ax] = slice(1, -1)
        if _err(g[tuple(sl)], ref[tuple(sl)]) <= ATOL:
            return True
    return False


def _channel_axis_cropped(graph: Graph, path: LayerPath, cut_nodes: list[onnx.NodeProto],
                          rank: int) -> bool:
    """A Slice/Pad on the layer's path acts on axis 1 (the channels of NC... data)."""
    for n in cut_nodes:
        if n.op_type == "Slice" and len(n.input) > 3:
            axes = graph.const(n.input[3])
            if axes is not None and any(int(a) % (rank + 2) == 1 for a in axes.ravel()):
                return True
    return False


def _shape_class(got: np.ndarray, ref: np.ndarray, graph: Graph, path: LayerPath,
                 source: Any, cl: bool) -> str:
    rank = source.spec.rank
    ch_ref = ref.shape[-1] if cl else ref.shape[1]
    ch_got = [got.shape[1], got.shape[-1]] if got.ndim == ref.ndim else []
    if ch_got and ch_ref not in ch_got:
        return "crop_wrong_axes"
    if _channel_axis_cropped(graph, path, path.nodes + _cut_nodes(graph, path), rank):
        return "crop_wrong_axes"
    want_d = tuple(getattr(source.spec, "dilation_rate", None)
                   or getattr(source.spec, "dilation", (1,) * rank))
    got_d = tuple(_form(path).get("dilations", [1] * rank))
    if _nonunit(want_d) != _nonunit(got_d):
        return "dilation_lost"
    conv = _as_source_prefix(got, ref, cl)
    if conv:
        return "output_padding_lost"
    return _crop_form(path) or "values_differ"


def _crop_form(path: LayerPath) -> str | None:
    """The class of a crop the runtime chose itself (SAME_* or output_shape), else None."""
    a = _form(path)
    auto_pad = str(a.get("auto_pad", "NOTSET"))
    if auto_pad == "SAME_LOWER":
        return "auto_pad_same_lower"
    if auto_pad == "SAME_UPPER":
        return "auto_pad_same_upper"
    if a.get("output_shape"):
        return "output_shape_odd_crop"
    return None


def _nonunit(v: tuple[int, ...]) -> list[int]:
    return [int(x) for x in v if int(x) != 1]


def _as_source_prefix(got: np.ndarray, ref: np.ndarray, cl: bool) -> bool:
    """``got`` is ``ref`` cut short at the end of some spatial axes (rows/cols lost)."""
    for g in (got, np.moveaxis(got, 1, -1) if cl else got):
        if g.ndim != ref.ndim or any(a > b for a, b in zip(g.shape, ref.shape)):
            continue
        sl = tuple(slice(0, n) for n in g.shape)
        if g.shape != ref.shape and _err(g, ref[sl]) <= ATOL:
            return True
    return False


def _cut_nodes(graph: Graph, path: LayerPath) -> list[onnx.NodeProto]:
    """Slice/Pad nodes reading the path's tensors (tf2onnx's runtime-computed crops)."""
    tensors = {o for n in path.nodes for o in n.output}
    return [c for t in tensors for c in graph.consumers.get(t, [])
            if c.op_type in ("Slice", "Pad") and c.input and c.input[0] == t]


def classify(got: np.ndarray, job: Job, graph: Graph, path: LayerPath, source: Any,
             node_weight_reference: Callable[[], np.ndarray | None]) -> tuple[str, str | None,
                                                                               float | None]:
    """``(verdict, class, max abs error)`` of one run (module docstring)."""
    ref, cl = job.reference, job.channels_last_source
    g = _as_source(got, ref, cl)
    if g is None:
        return "mismatch", _shape_class(got, ref, graph, path, source, cl), None
    err = _err(g, ref)
    if err <= ATOL:
        return "exact", None, err
    rank = source.spec.rank
    spatial = list(range(1, rank + 1)) if cl else list(range(2, rank + 2))
    if path.relation != "exact" and _close(g, node_weight_reference()):
        return "mismatch", path.relation, err
    if source.bias is not None and np.any(source.bias != 0) and _close(
            g, np.asarray(source.layer.reference(job.x_source, source.kernel,
                                                 np.zeros_like(source.bias)))):
        return "mismatch", "bias_dropped", err
    if _shifted(g, ref, spatial):
        return "mismatch", _crop_form(path) or "crop_side", err
    if _tail_only(g, ref, spatial, source):
        return "mismatch", "bias_missing_in_padded_rows", err
    return "mismatch", "values_differ", err


def _tail_only(g: np.ndarray, ref: np.ndarray, spatial: list[int], source: Any) -> bool:
    """Wrong only in the last ``stride - 1`` rows/cols of the spatial axes (Keras's extra rows)."""
    strides = tuple(getattr(source.spec, "strides", None) or source.spec.stride)
    diff = np.abs(g.astype(np.float64) - ref) > ATOL
    tail = np.zeros(ref.shape, bool)
    for ax, s in zip(spatial, strides):
        sl = [slice(None)] * ref.ndim
        sl[ax] = slice(max(ref.shape[ax] - max(int(s) - 1, 1), 0), None)
        tail[tuple(sl)] = True
    return bool(diff.any() and not (diff & ~tail).any())
