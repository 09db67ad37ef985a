"""``convt repair MODEL.onnx --source SOURCE``: every layer that is not exact rewritten from its source.

For each layer :func:`~convt_tools.verify.verify_model` finds not exact on some named
runtime, the layer's nodes (the cut from its input tensor to its output tensor, shape
arithmetic included where nothing else reads it) are replaced by the export's portable
form of the source layer (:meth:`export_onnx` of the source's framework layer: symmetric
pads plus one constant Slice where a crop is odd, ``output_padding`` for the extra rows,
the bias on the ConvTranspose, the activation), fed by and feeding the same tensors in
the model's own layout (a Transpose on either side where the model keeps channels-first
data for a channels-last source). The weights are the model's, checked against the
source: the node's ``W`` must equal the source's weight exactly or after the edit
pairing recognised (flip, layout swap, group blocks), which the rewrite undoes; the
bias must equal the source's where the model holds one.

Everything else is untouched. The result is proven as verify proves it (every
repaired layer exact on every named runtime); otherwise :class:`RepairFromSourceRefused`
and nothing is written.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import onnx
from onnx import helper

from ..errors import ConvtError
from ..onnxbase import load_model
from . import VerifyReport, verify_model
from ._graph import Graph
from ._pair import LayerPath, pair_layers
from ._proof import input_dims

__all__ = ["RepairFromSourceRefused", "SourceRepairReport", "repair_from_source"]

_MIN_OPSET, _MAX_OPSET = 11, 21


class RepairFromSourceRefused(Exception):
    """The model cannot be repaired from its source; nothing is written."""

    def __init__(self, reason: str, report: dict[str, Any] | None = None) -> None:
        super().__init__(reason)
        self.report = report


@dataclass
class SourceRepairReport:
    """What was rewritten, and the proof after."""

    model: str
    source: str
    rewritten: list[dict[str, Any]]
    before: VerifyReport
    after: VerifyReport | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "source": self.source, "rewritten": self.rewritten,
                "before": self.before.to_dict(),
                "after": None if self.after is None else self.after.to_dict(),
                "notes": self.notes}

    def to_text(self) -> str:
        lines = [f"repair {self.model} from {self.source}"]
        if not self.rewritten:
            lines.append("  every layer already exact on every runtime: nothing rewritten")
        for r in self.rewritten:
            lines.append(f"  {r['source_layer']}: was {r['was']} ({r['class']}); rewritten as "
                         f"{', '.join(r['new_ops'])}; weights: {r['weights']}")
        if self.after is not None:
            lines.append("  after: every repaired layer exact on "
                         + ", ".join(self.after.runtimes))
        return "\n".join(lines)


def _out_layout(graph: Graph, path: LayerPath, source: Any) -> str:
    """Whether the path's output tensor holds source-layout or channels-first data."""
    if getattr(source.spec, "data_format", "channels_first") != "channels_last":
        return "source"
    rank = source.spec.rank
    layout = "cf"   # a ConvTranspose writes N, C, spatial...
    after = path.nodes[path.nodes.index(path.conv) + 1:]
    for n in after:
        if n.op_type == "Transpose":
            perm = list(Graph.attrs(n).get("perm", []))
            if perm == [0, *range(2, rank + 2), 1]:
                layout = "source"
            elif perm == [0, rank + 1, *range(1, rank + 1)]:
                layout = "cf"
    return layout


def _weights(graph: Graph, path: LayerPath, source: Any) -> str:
    """Check the model's W (and B) against the source; say what the rewrite uses."""
    _, b_src = source.layer.weights_to_onnx(source.kernel, source.bias)
    if path.relation not in ("exact", "kernel_flipped", "layout_swapped", "group_slicing"):
        raise RepairFromSourceRefused(f"{path.conv.name}: its weight is not the source's")
    b = graph.const(path.conv.input[2]) if len(path.conv.input) > 2 and path.conv.input[2] \
        else None
    if b is not None and b_src is not None and not np.array_equal(
            np.asarray(b, np.float32).ravel(), np.asarray(b_src, np.float32).ravel()):
        raise RepairFromSourceRefused(f"{path.conv.name}: its bias B differs from the source "
                                      f"layer's bias")
    what = ("the model's W (equal to the source's)" if path.relation == "exact" else
            f"the model's W with the {path.relation.replace('_', ' ')} undone (then equal to "
            f"the source's)")
    if b is None and b_src is not None:
        what += "; the bias the model dropped, from the source"
    return what


def _removable(graph: Graph, path: LayerPath) -> list[onnx.NodeProto]:
    """The cut's nodes that nothing outside the cut reads (the old layer)."""
    members: dict[int, onnx.NodeProto] = {}
    need = [path.t_out]
    seen: set[str] = set()
    while need:
        t = need.pop()
        if not t or t in seen or t == path.t_in or t in graph.inits:
            continue
        seen.add(t)
        n = graph.producer.get(t)
        if n is not None and id(n) not in members:
            members[id(n)] = n
            need.extend(n.input)
    outputs = set(graph.graph_outputs)
    changed = True
    while changed:
        changed = False
        for key, n in list(members.items()):
            for o in n.output:
                if o == path.t_out:
                    continue
                if o in outputs or any(id(c) not in members for c in graph.consumers.get(o, [])):
                    del members[key]
                    changed = True
                    break
    if id(path.conv) not in members:
        raise RepairFromSourceRefused(f"{path.conv.name}: its output is also read outside the "
                                      f"layer; it cannot be replaced alone")
    return list(members.values())


def _replacement(graph: Graph, path: LayerPath, source: Any, opset: int, prefix: str
                 ) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    """The source layer's portable export, renamed under ``prefix``, between the path's tensors."""
    layout, known, _ = input_dims(graph, path, source)
    shape = list(known)
    shape[0] = None
    try:
        sub = source.layer.export_onnx(source.kernel, source.bias, input_shape=tuple(shape),
                                       opset=opset, seed=0, form="portable")
    except ConvtError as exc:
        raise RepairFromSourceRefused(f"{path.conv.name}: the source layer does not export: "
                                      f"{exc}") from None
    g = sub.graph
    rank = source.spec.rank
    in_name, out_name = g.input[0].name, g.output[0].name

    def rename(t: str) -> str:
        return t if not t else f"{prefix}{t}"

    nodes: list[onnx.NodeProto] = []
    src_in = path.t_in
    if layout == "cf":
        src_in = f"{prefix}input_source_layout"
        nodes.append(helper.make_node("Transpose", [path.t_in], [src_in],
                                      name=f"{prefix}to_source_layout",
                                      perm=[0, *range(2, rank + 2), 1]))
    out_cf = _out_layout(graph, path, source) == "cf"
    final = f"{prefix}output_source_layout" if out_cf else path.t_out
    for n in g.node:
        m = onnx.NodeProto()
        m.CopyFrom(n)
        m.name = rename(n.name or f"{n.op_type}_{len(nodes)}")
        for i, t in enumerate(m.input):
            m.input[i] = src_in if t == in_name else rename(t)
        for i, t in enumerate(m.output):
            m.output[i] = final if t == out_name else rename(t)
        nodes.append(m)
    nodes = _cancel_transposes(nodes)
    if out_cf:
        nodes.append(helper.make_node("Transpose", [final], [path.t_out],
                                      name=f"{prefix}to_model_layout",
                                      perm=[0, rank + 1, *range(1, rank + 1)]))
    inits = []
    for t in g.initializer:
        c = onnx.TensorProto()
        c.CopyFrom(t)
        c.name = rename(t.name)
        inits.append(c)
    return nodes, inits


def _cancel_transposes(nodes: list[onnx.NodeProto]) -> list[onnx.NodeProto]:
    """Drop a Transpose followed by its inverse (the model's channels-first data fed to an
    export that starts by transposing to channels-first): readers take the first one's input."""
    for a in nodes:
        if a.op_type != "Transpose":
            continue
        readers = [b for b in nodes if a.output[0] in b.input]
        if len(readers) != 1 or readers[0].op_type != "Transpose":
            continue
        b = readers[0]
        pa, pb = list(Graph.attrs(a).get("perm", [])), list(Graph.attrs(b).get("perm", []))
        if pa and len(pa) == len(pb) and [pa[i] for i in pb] == list(range(len(pa))):
            rest = [n for n in nodes if n is not a and n is not b]
            for n in rest:
                for i, t in enumerate(n.input):
                    if t == b.output[0]:
                        n.input[i] = a.input[0]
            return rest
    return nodes


def _toposort(nodes: list[onnx.NodeProto], available: set[str]) -> list[onnx.NodeProto]:
    done = set(available)
    left = list(nodes)
    out: list[onnx.NodeProto] = []
    while left:
        progress = False
        rest = []
        for n in left:
            if all(not t or t in done for t in n.input):
                out.append(n)
                done.update(n.output)
                progress = True
            else:
                rest.append(n)
        left = rest
        if not progress:
            raise RepairFromSourceRefused("the rewritten graph has a node whose input is never "
                                          f"computed ({left[0].name!r})")
    return out


def _opset(model: onnx.ModelProto) -> int:
    for o in model.opset_import:
        if o.domain in ("", "ai.onnx"):
            return max(_MIN_OPSET, min(int(o.version), _MAX_OPSET))
    return 17


def repair_from_source(sources: Sequence[Any], model_path: str, runtimes: Sequence[str], *,
                       source_name: str = "", seed: int = 0
                       ) -> tuple[onnx.ModelProto, SourceRepairReport]:
    """The repaired model and its report (module docstring); raises
    :class:`RepairFromSourceRefused` where a layer cannot be rewritten or proven."""
    before = verify_model(sources, model_path, runtimes, source_name=source_name, seed=seed)
    unpaired = [lay.source_layer for lay in before.layers if lay.verdict == "unpaired"]
    if unpaired:
        raise RepairFromSourceRefused(f"layer {unpaired[0]!r} has no ConvTranspose node in the "
                                      f"model (unpaired); nothing to rewrite it from",
                                      before.to_dict())
    model = load_model(model_path)
    graph = Graph(model)
    pairing = pair_layers(graph, list(sources))
    report = SourceRepairReport(model_path, source_name, [], before)
    todo = [(i, lay) for i, lay in enumerate(before.layers) if lay.verdict != "exact"]
    if not todo:
        return model, report
    opset = _opset(model)
    remove: list[onnx.NodeProto] = []
    new_nodes: list[onnx.NodeProto] = []
    new_inits: list[onnx.TensorProto] = []
    for i, lay in todo:
        path = pairing.paths[i]
        assert path is not None   # paired (unpaired refused above)
        try:
            what = _weights(graph, path, sources[i])
            old = _removable(graph, path)
            nodes, inits = _replacement(graph, path, sources[i], opset,
                                        f"{path.conv.name or path.conv.output[0]}/convt_repair/")
        except RepairFromSourceRefused as exc:
            raise RepairFromSourceRefused(str(exc), before.to_dict()) from None
        remove += old
        new_nodes += nodes
        new_inits += inits
        report.rewritten.append({"source_layer": lay.source_layer, "was": lay.verdict,
                                 "class": lay.cls, "old_nodes": [n.name for n in old],
                                 "new_nodes": [n.name for n in nodes],
                                 "new_ops": [n.op_type for n in nodes], "weights": what})
    out = onnx.ModelProto()
    out.CopyFrom(model)
    gone = {id(n) for n in remove}
    kept = [n for n in model.graph.node if id(n) not in gone]
    copies = []
    for n in kept:
        c = onnx.NodeProto()
        c.CopyFrom(n)
        copies.append(c)
    available = {i.name for i in model.graph.input} | {t.name for t in model.graph.initializer} \
        | {t.name for t in new_inits}
    ordered = _toposort(copies + new_nodes, available)
    del out.graph.node[:]
    out.graph.node.extend(ordered)
    used = {t for n in ordered for t in n.input}
    keep_inits = [t for t in model.graph.initializer if t.name in used]
    del out.graph.initializer[:]
    out.graph.initializer.extend(keep_inits + new_inits)
    del out.graph.value_info[:]   # shapes the old nodes implied may no longer hold
    out = _with_opset(out, opset)
    report.after = _prove(out, sources, runtimes, source_name, seed, before)
    return out, report


def _with_opset(model: onnx.ModelProto, opset: int) -> onnx.ModelProto:
    for o in model.opset_import:
        if o.domain in ("", "ai.onnx") and o.version < opset:
            o.version = opset
    return model


def _prove(model: onnx.ModelProto, sources: Sequence[Any], runtimes: Sequence[str],
           source_name: str, seed: int, before: VerifyReport) -> VerifyReport:
    with tempfile.TemporaryDirectory(prefix="convt-repair-") as tmp:
        path = os.path.join(tmp, "repaired.onnx")
        onnx.save(model, path)
        after = verify_model(sources, path, runtimes, source_name=source_name, seed=seed)
    bad = [lay for lay in after.layers if lay.verdict != "exact"]
    if bad:
        raise RepairFromSourceRefused(
            f"layer {bad[0].source_layer!r} is still {bad[0].verdict} ({bad[0].cls}) after the "
            f"rewrite on {', '.join(n for n, r in bad[0].runtimes.items() if r.verdict != 'exact')}",
            {"before": before.to_dict(), "after": after.to_dict()})
    return after
