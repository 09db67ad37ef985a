"""The reading argument for ``auto_pad`` SAME_* and ``output_shape`` nodes, beyond the sizes run.

Such a node fixes the output length and leaves the crop's start to the runtime, and
how a runtime reads it can depend on the input length (through the sign, small values
and parity of the crop total) and on whether the model's spatial dims are static.
:mod:`convt_tools.check.readings` documents each runtime's reading as windows on the
natural full output; here they are compared with the *source layer's* window
(Keras: its crop plan; torch: ``(padding, L + output_padding - 2 * padding)``) at every
input length the model allows: the fixed lengths of a static model, else 1 to
:data:`MAX_LENGTH` on every axis (beyond every pad and stride of a node, where the
readings only repeat per parity: :mod:`convt_tools.check.sizes`).
"""

from __future__ import annotations

from typing import Any, Sequence

from ..check.attrs import SAME, read_attrs
from ..check.readings import RUNTIMES, documented_reading
from ..geometry import Window, natural_length
from ._graph import Graph
from ._pair import LayerPath

__all__ = ["MAX_LENGTH", "reading_argument"]

MAX_LENGTH = 16


def _source_windows(source: Any, n: Sequence[int]) -> tuple[Window, ...]:
    spec = source.spec
    out = []
    if spec.framework == "keras":
        for i, c in enumerate(spec.crop_plan()):
            nat = natural_length(n[i], spec.kernel_size[i], spec.strides[i], spec.dilation_rate[i])
            out.append(Window(c.begin, nat + c.extend - c.begin - c.end))
    else:
        for i in range(spec.rank):
            nat = natural_length(n[i], spec.kernel_size[i], spec.stride[i], spec.dilation[i])
            p = spec.padding[i]
            out.append(Window(p, nat + spec.output_padding[i] - 2 * p))
    return tuple(out)


def reading_argument(graph: Graph, path: LayerPath, source: Any, runtimes: Sequence[str],
                     fixed: Sequence[int | None] | None) -> dict[str, Any] | None:
    """Per runtime: does its documented reading of the node give the source's window at every
    allowed input length? None for nodes with explicit pads (read alike by the table).
    ``runtimes`` empty: every runtime of the documented table.

    ``fixed``: the spatial input lengths the model fixes (None: free)."""
    a = Graph.attrs(path.conv)
    auto_pad = str(a.get("auto_pad", "NOTSET"))
    if auto_pad not in SAME and not a.get("output_shape"):
        return None
    rank = source.spec.rank
    w = graph.const(path.conv.input[1])
    attrs, _ = read_attrs(path.conv, None if w is None else w.shape, rank + 2)
    if attrs is None or attrs.rank != rank:
        return None
    given = list(fixed) if fixed is not None else [None] * rank
    static = all(f is not None for f in given)
    if static:
        lengths = [[int(f or 0) for f in given]]
    else:
        lengths = [[n if given[i] is None else int(given[i] or 0) for i in range(rank)]
                   for n in range(1, MAX_LENGTH + 1)]
    form = f"auto_pad {auto_pad}" if auto_pad in SAME else f"output_shape {a['output_shape']}"
    result: dict[str, Any] = {"form": form, "static_dims": static,
                              "lengths": "the model's" if static else f"1 to {MAX_LENGTH}",
                              "runtimes": {}}
    for rt in runtimes or RUNTIMES:
        if rt not in RUNTIMES:
            continue
        differ, refused, unknown = [], [], []
        for n in lengths:
            r = documented_reading(rt, attrs, n, static=static)
            if r.status == "refused":
                refused.append(n[0] if not static else n)
            elif r.status != "window" or r.windows is None:
                unknown.append(n[0] if not static else n)
            elif tuple(r.windows) != _source_windows(source, n):
                differ.append(n[0] if not static else n)
        verdict = ("mismatch" if differ else "refused" if refused else
                   "unknown" if unknown else "exact")
        entry: dict[str, Any] = {"documented": verdict}
        if differ:
            entry["differs_at"] = differ
        if refused:
            entry["refused_at"] = refused
        result["runtimes"][rt] = entry
    return result


def layer_windows(path: LayerPath, source: Any, runtimes: Sequence[str],
                  lengths: Sequence[int], static: bool) -> list[dict[str, Any]] | None:
    """Per spatial axis at input ``lengths``: the node's kernel, stride, dilation and
    output_padding, its natural full length ``L``, the source's window and each runtime's
    documented reading of the ConvTranspose node (``[begin, length]``, or
    ``"refused"``/``"unknown"``), for the pictures (:mod:`convt_tools.verify.html`)."""
    rank = source.spec.rank
    w_shape = None
    attrs, _ = read_attrs(path.conv, w_shape, rank + 2)
    if attrs is None or attrs.rank != rank:
        return None
    src = _source_windows(source, lengths)
    readings = {rt: documented_reading(rt, attrs, list(lengths), static=static)
                for rt in runtimes if rt in RUNTIMES}
    axes = []
    for i in range(rank):
        per: dict[str, Any] = {}
        for rt, r in readings.items():
            if r.status == "window" and r.windows is not None:
                per[rt] = [r.windows[i].begin, r.windows[i].length]
            else:
                per[rt] = r.status
        axes.append({"input_length": int(lengths[i]), "kernel": attrs.kernel[i],
                     "stride": attrs.strides[i], "dilation": attrs.dilations[i],
                     "output_padding": attrs.output_padding[i],
                     "natural": attrs.natural_length(i, int(lengths[i])),
                     "source": [src[i].begin, src[i].length], "runtimes": per})
    return axes
