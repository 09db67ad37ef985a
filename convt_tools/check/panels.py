"""``convt check --html``: per risky node and per axis, a picture of the windows in play.

Each panel (:mod:`convt_tools.pictures`) shows, at one probe size of the
node's reading matrix (:mod:`.matrix`), the full output ``L + output_padding``,
the window the ONNX spec text gives (:func:`.windows.intent_windows`,
``onnx-spec``) as the intended one, and the window each judged runtime
computes there (measured, else documented); a refused or unknown reading is a
row with its reason. Nothing here derives a window: they come from the
matrix and from :mod:`.windows`.
"""

from __future__ import annotations

from ..pictures import AxisPanel, Row, Section, axis_panel, html_document
from .attrs import SAME, ConvTAttrs
from .matrix import NodeMatrix
from .readings import Reading
from .report import CheckReport
from .windows import axis_name, intent_windows

__all__ = ["check_html", "node_panels"]


def _form(attrs: ConvTAttrs, i: int) -> str:
    """How the node fixes axis ``i``'s window, in words."""
    if attrs.output_shape is not None:
        return f"output_shape {attrs.output_shape[i]}"
    if attrs.auto_pad in SAME or attrs.auto_pad == "VALID":
        return f"auto_pad {attrs.auto_pad}"
    begin, end = attrs.pads_pair(i)
    return f"pads {begin} | {end}"


def _row(label: str, reading: Reading, i: int) -> Row:
    if reading.status == "window" and reading.windows is not None:
        return Row(label, reading.windows[i])
    return Row(label, None, reading.status + (f": {reading.note}" if reading.note else ""))


def node_panels(attrs: ConvTAttrs, matrix: NodeMatrix) -> tuple[AxisPanel, ...]:
    """One panel per probe size and spatial axis (key ``size<j>-<axis>``): the ONNX spec's
    window intended, one row per judged runtime (``name (measured)`` or ``(documented)``)."""
    by_name = {e.runtime: e for e in matrix.entries}
    judged = [by_name[n] for n in matrix.chosen if n in by_name]
    panels = []
    for j, size in enumerate(matrix.sizes):
        spec = intent_windows(attrs, size, "onnx-spec")
        for i, n in enumerate(size):
            axis = axis_name(i, attrs.rank)
            rows = tuple(_row(f"{e.runtime} ({e.source.split(' ')[0].rstrip(':')})",
                              e.readings[j], i) for e in judged)
            caption = (f"at input {list(size)}: kernel {attrs.kernel[i]}, stride "
                       f"{attrs.strides[i]}, dilation {attrs.dilations[i]}, {_form(attrs, i)}")
            panels.append(axis_panel(f"size{j}-{axis}", axis, n, attrs.kernel[i],
                                     attrs.strides[i], attrs.dilations[i],
                                     attrs.output_padding[i], Row("ONNX spec", spec[i]), rows,
                                     caption))
    return tuple(panels)


def check_html(report: CheckReport, fail_on: str = "error") -> str:
    """The self-contained HTML report: one section per node (``id`` ``node-<k>``, ``k`` its
    position in the report), its findings and readings in words, and its panels
    (:func:`node_panels`; risky nodes only: the others are read the same way everywhere)."""
    c = report.counts()
    lines = [f"{len(report.nodes)} ConvTranspose node(s), onnxruntime {report.onnxruntime}; "
             f"{'FAIL' if report.failed(fail_on) else 'PASS'} (fail-on {fail_on}): "
             f"{c['error']} error(s), {c['warning']} warning(s), {c['info']} info",
             *(f"note: {n}" for n in report.notes)]
    sections = []
    for k, node in enumerate(report.nodes):
        words = [f"input {'unknown' if node.input_shape is None else list(node.input_shape)}"]
        words += [f"{f.severity.upper()} {f.code} {f.slug}: {f.message}" for f in node.findings]
        words += [f"reading: {r}" for r in node.reading_lines]
        if not node.panels:
            words.append("no picture: not a risky node (or its attributes are bound at the "
                         "call site), so no reading matrix")
        sections.append(Section(f"node-{k}", f"[{node.graph}] node {node.name!r} "
                                f"(index {node.index})", tuple(words), node.panels))
    return html_document(f"convt check: {report.model}", sections, lines)
