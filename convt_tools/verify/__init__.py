"""``convt verify``: every transposed-conv layer of a converted ONNX model proven against its source.

:func:`verify_model` takes the source layers (:func:`convt_tools.sources.resolve_sources`
of a saved Keras model or a torch model description, with their weights) and the
converted model, and for each layer:

1. pairs it with the ConvTranspose whose weight equals the source weight in ONNX
   layout, exactly or after a recognisable edit, plus the nodes on its data path
   (:mod:`._pair`; names only as hints);
2. cuts the layer out (with the runtime-computed shape subgraphs it needs) and runs it
   on each runtime at the model's input size, or at sizes of both parities where the
   dims are free, against the source layer's reference (:mod:`._proof`);
3. names the error from the comparison (:data:`CLASSES`);
4. for ``auto_pad`` SAME_* and ``output_shape`` nodes, compares each runtime's documented
   reading (:mod:`convt_tools.check.readings`) with the source's window at every input
   length the model allows (:mod:`._reading`; the layer's ``reading``).

The report (:class:`VerifyReport`) is what ``convt verify --json`` prints:
``layers[]`` with ``source_layer``, ``onnx_nodes``, ``verdict`` (``exact``,
``mismatch``, ``refused``, ``unpaired``; the worst over the runtimes: mismatch >
refused > exact), ``class`` (the class on the first named runtime that is not exact),
``runtimes`` {name: {verdict, class, max_abs_error[, reason]}}; and
``unpaired_nodes[]``. ``failed`` is True unless every layer is exact on every runtime.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Sequence
from xml.etree import ElementTree as ET

import numpy as np

from ..errors import ConvtError
from ..io import xml_safe
from ..junit import junit_document, junit_suite
from ..onnxbase import load_model
from ._graph import Graph
from ._pair import LayerPath, pair_layers, weight_relation
from ._proof import (ATOL, Job, RuntimeResult, classify, input_dims, layer_jobs, refused_class,
                     run_jobs)
from ._reading import layer_windows, reading_argument

__all__ = ["ATOL", "CLASSES", "LayerVerdict", "VerifyReport", "pair_layers", "verify_model",
           "weight_relation"]

# The error classes (the list, plus output_padding_ge_stride measured on real
# torch exports: onnxruntime refuses output_padding >= stride, legal in torch below dilation).
CLASSES = ("crop_side", "output_padding_lost", "negative_pads", "auto_pad_same_lower",
           "auto_pad_same_upper", "output_shape_odd_crop", "crop_wrong_axes", "kernel_flipped",
           "layout_swapped", "group_slicing", "bias_dropped", "bias_missing_in_padded_rows",
           "dilation_lost", "output_padding_ge_stride", "values_differ", "refused")
_RANK = {"exact": 0, "refused": 1, "mismatch": 2}


@dataclass
class LayerVerdict:
    """One source layer: its nodes and its result per runtime."""

    source_layer: str
    onnx_nodes: list[str]
    runtimes: dict[str, RuntimeResult]
    paired_by: list[str] = field(default_factory=list)
    weight_relation: str | None = None
    note: str | None = None
    reading: dict[str, Any] | None = None    # _reading.reading_argument (SAME_*/output_shape)
    windows: list[dict[str, Any]] | None = None   # _reading.layer_windows (the pictures)

    @property
    def verdict(self) -> str:
        if not self.onnx_nodes:
            return "unpaired"
        if not self.runtimes:
            return "exact"
        return max((r.verdict for r in self.runtimes.values()), key=_RANK.__getitem__)

    @property
    def cls(self) -> str | None:
        for r in self.runtimes.values():
            if r.verdict != "exact":
                return r.cls
        return None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"source_layer": self.source_layer, "onnx_nodes": self.onnx_nodes,
                               "verdict": self.verdict, "class": self.cls,
                               "runtimes": {k: v.to_dict() for k, v in self.runtimes.items()},
                               "paired_by": ["weight " + (self.weight_relation or "")]
                               + self.paired_by if self.onnx_nodes else []}
        if self.note:
            out["note"] = self.note
        if self.reading is not None:
            out["reading"] = self.reading
        if self.windows is not None:
            out["windows"] = self.windows
        return out


@dataclass
class VerifyReport:
    """What :func:`verify_model` found (module docstring)."""

    source: str
    model: str
    runtimes: list[str]
    layers: list[LayerVerdict]
    unpaired_nodes: list[str]

    @property
    def failed(self) -> bool:
        return any(lay.verdict != "exact" for lay in self.layers)

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "model": self.model, "runtimes": self.runtimes,
                "atol": ATOL, "layers": [lay.to_dict() for lay in self.layers],
                "unpaired_nodes": self.unpaired_nodes, "failed": self.failed}

    def to_text(self) -> str:
        lines = [f"verify {self.model} against {self.source} on {', '.join(self.runtimes)}"]
        for lay in self.layers:
            lines.append(f"  {lay.source_layer}: {lay.verdict}"
                         + (f" ({lay.cls})" if lay.cls else "")
                         + (f"  nodes: {', '.join(lay.onnx_nodes)}" if lay.onnx_nodes else ""))
            for name, r in lay.runtimes.items():
                extra = (f" max abs error {r.max_abs_error:.3g}" if r.max_abs_error is not None
                         else "")
                why = f": {r.reason}" if r.reason else ""
                lines.append(f"    {name}: {r.verdict}{f' ({r.cls})' if r.cls else ''}{extra}{why}")
            if lay.note:
                lines.append(f"    note: {lay.note}")
        for n in self.unpaired_nodes:
            lines.append(f"  unpaired ConvTranspose node (no source layer explains it): {n}")
        lines.append("FAILED" if self.failed else "every layer exact on every runtime")
        return "\n".join(lines)

    def junit_xml(self) -> bytes:
        """One testcase per layer per runtime, plus one per unpaired node."""
        cases = [(lay, name, r) for lay in self.layers for name, r in lay.runtimes.items()]
        unpaired = [lay for lay in self.layers if lay.verdict == "unpaired"]
        fails = sum(r.verdict != "exact" for _, _, r in cases) + len(unpaired) + len(
            self.unpaired_nodes)
        suite = junit_suite("convt verify", len(cases) + len(unpaired) + len(self.unpaired_nodes),
                            fails)
        for lay, name, r in cases:
            case = ET.SubElement(suite, "testcase", classname=xml_safe(name),
                                 name=xml_safe(lay.source_layer))
            if r.verdict != "exact":
                ET.SubElement(case, "failure", type=xml_safe(r.cls or r.verdict),
                              message=xml_safe(r.reason or f"{r.verdict}: {r.cls} "
                                               f"(max abs error {r.max_abs_error})"))
        for lay in unpaired:
            case = ET.SubElement(suite, "testcase", classname="pairing",
                                 name=xml_safe(lay.source_layer))
            ET.SubElement(case, "failure", type="unpaired",
                          message="no ConvTranspose node holds this layer's weight")
        for n in self.unpaired_nodes:
            case = ET.SubElement(suite, "testcase", classname="pairing", name=xml_safe(n))
            ET.SubElement(case, "failure", type="unpaired_node",
                          message="no source layer explains this ConvTranspose")
        return junit_document(suite)


def _node_weight_reference(graph: Graph, path: LayerPath, source: Any, job: Job
                           ) -> np.ndarray | None:
    """The source layer computed with the node's own W and B (the edited weight's output)."""
    w_src, _ = source.layer.weights_to_onnx(source.kernel, source.bias)
    w = graph.const(path.conv.input[1])
    if w is None or w.size != np.asarray(w_src).size:
        return None
    b = graph.const(path.conv.input[2]) if len(path.conv.input) > 2 and path.conv.input[2] \
        else None
    kernel, bias = source.layer.weights_from_onnx(w.reshape(np.asarray(w_src).shape),
                                                  b if b is not None else source.bias)
    try:
        return np.asarray(source.layer.reference(job.x_source, kernel, bias))
    except ConvtError:
        return None


def _result(outcomes: list[tuple[Any, Job]], graph: Graph, path: LayerPath,
            source: Any) -> RuntimeResult:
    verdicts: list[tuple[str, str | None, float | None, str | None]] = []
    sizes: list[dict[str, Any]] = []
    for got, job in outcomes:
        shape = list(job.x_source.shape)
        if isinstance(got, str):
            verdicts.append(("refused", None, None, got))
            sizes.append({"input_shape": shape, "verdict": "refused"})
            continue
        v, c, e = classify(got[0], job, graph, path, source,
                           functools.partial(_node_weight_reference, graph, path, source, job))
        verdicts.append((v, c, e, None))
        sizes.append({"input_shape": shape, "verdict": v, "class": c,
                      "max_abs_error": None if e is None else float(f"{e:.3g}"),
                      "output_shape": list(got[0].shape),
                      "expected_shape": list(job.reference.shape)})
    worst = max(verdicts, key=lambda t: _RANK[t[0]])
    errs = [e for _, _, e, _ in verdicts if e is not None]
    cls = worst[1] if worst[0] != "refused" else refused_class(path)
    return RuntimeResult(worst[0], cls, float(f"{max(errs):.3g}") if errs else None,
                         worst[3], sizes)


def _cl(source: Any) -> bool:
    return getattr(source.spec, "data_format", "channels_first") == "channels_last"


def _fixed_lengths(graph: Graph, path: LayerPath, source: Any) -> list[int | None]:
    """The spatial input lengths of the layer that the model fixes (None: free)."""
    _, known, _ = input_dims(graph, path, source)
    rank = source.spec.rank
    return known[1:rank + 1] if _cl(source) else known[2:rank + 2]


def verify_model(sources: Sequence[Any], model_path: str, runtimes: Sequence[str], *,
                 source_name: str = "", seed: int = 0) -> VerifyReport:
    """Pair, cut, run and classify every source layer on ``runtimes`` (module docstring).

    ``sources``: :class:`~convt_tools.sources.LayerSource` objects with weights.
    """
    for src in sources:
        if src.kernel is None:
            raise ConvtError(f"source: {src.label!r} carries no weights; verify pairs layers "
                             f"by their weights (give the model with its weights, or "
                             f"--weights).", field="source")
    model = load_model(model_path)
    graph = Graph(model)
    pairing = pair_layers(graph, list(sources))
    all_jobs: list[tuple[int, Job]] = []
    for i, (src, path) in enumerate(zip(sources, pairing.paths)):
        if path is not None:
            all_jobs += [(i, j) for j in layer_jobs(graph, path, src, seed + i)]
    per_runtime = {rt: run_jobs(rt, [j for _, j in all_jobs]) for rt in runtimes}
    layers = []
    for i, (src, path) in enumerate(zip(sources, pairing.paths)):
        name = str(getattr(src.record, "path", src.label))
        if path is None:
            layers.append(LayerVerdict(name, [], {}, note="no ConvTranspose node holds this "
                                       "layer's weight (exactly or flipped, swapped, "
                                       "group-permuted)"))
            continue
        idx = [k for k, (li, _) in enumerate(all_jobs) if li == i]
        jobs = [all_jobs[k][1] for k in idx]
        note = next((j.error for j in jobs if j.error), None)
        results = {}
        for rt in runtimes:
            if note is not None:
                results[rt] = RuntimeResult("refused", "refused", None, f"not run: {note}")
            else:
                results[rt] = _result([(per_runtime[rt][k], all_jobs[k][1]) for k in idx],
                                      graph, path, src)
        fixed = _fixed_lengths(graph, path, src)
        windows = None
        if jobs and jobs[0].error is None:
            rank = src.spec.rank
            shape = jobs[0].x_source.shape
            lengths = shape[1:rank + 1] if _cl(src) else shape[2:rank + 2]
            windows = layer_windows(path, src, runtimes, [int(n) for n in lengths],
                                    all(f is not None for f in fixed))
        layers.append(LayerVerdict(name, [n.name for n in path.nodes], results, path.hints,
                                   path.relation, note,
                                   reading_argument(graph, path, src, runtimes, fixed), windows))
    return VerifyReport(source_name, model_path, list(runtimes), layers,
                        [n.name for n in pairing.unpaired_nodes])
