"""``convt verify --html report.html``: the report as HTML, a section per layer and a
picture per axis, drawn by :mod:`convt_tools.pictures` (the library ``convt shape --svg``
and ``convt check --html`` draw with).

Each layer is a section (``id`` ``layer-<k>``, ``k`` its position in the report) headed
by the source layer's name, its verdict and error class, with a line per runtime (its
verdict and class). Each picture draws, for one spatial axis of the layer at the first
size verified (:func:`convt_tools.verify._reading.layer_windows`): the ConvTranspose
node's natural full output ``[0, L)`` (plus its ``output_padding`` rows), the source
layer's window (the rows Keras/torch keep: the intended row, ``source``) and each
runtime's documented reading of the node (a row labelled with the runtime: same or
differs; a refusal is written, not drawn). Panel ids are ``layer-<k>-<axis>``.
"""

from __future__ import annotations

from typing import Any

from ..check.windows import axis_name
from ..geometry import Window
from ..pictures import AxisPanel, Row, Section, axis_panel, html_document

__all__ = ["SOURCE_ROW", "layer_panels", "report_html"]

SOURCE_ROW = "source"   # the intended row's label: the source layer's window


def _row(label: str, window: Any) -> Row:
    """``[begin, length]`` as a drawn window, else the status (``refused``) written."""
    if isinstance(window, list):
        return Row(label, Window(int(window[0]), int(window[1])))
    return Row(label, None, str(window))


def layer_panels(windows: list[dict[str, Any]]) -> tuple[AxisPanel, ...]:
    """One panel per axis of a layer's ``windows`` (``VerifyReport.to_dict()``'s)."""
    rank = len(windows)
    return tuple(
        axis_panel(axis_name(i, rank), axis_name(i, rank), int(a["input_length"]),
                   int(a["kernel"]), int(a["stride"]), int(a["dilation"]),
                   int(a["output_padding"]), _row(SOURCE_ROW, a["source"]),
                   tuple(_row(rt, w) for rt, w in a["runtimes"].items()))
        for i, a in enumerate(windows))


def report_html(report: dict[str, Any]) -> str:
    """The whole report (``VerifyReport.to_dict()``) as one HTML page (module doc)."""
    sections = []
    for k, lay in enumerate(report["layers"]):
        cls = f" ({lay['class']})" if lay["class"] else ""
        lines = [f"ONNX node(s): {', '.join(lay['onnx_nodes']) or 'none'}"]
        lines += [f"{rt}: {r['verdict']}" + (f" ({r['class']})" if r["class"] else "")
                  for rt, r in lay["runtimes"].items()]
        sections.append(Section(f"layer-{k}", f"{lay['source_layer']}: {lay['verdict']}{cls}",
                                tuple(lines), layer_panels(lay.get("windows") or [])))
    return html_document(f"convt verify {report['model']}", sections,
                         [f"source {report['source']}; runtimes {', '.join(report['runtimes'])}"])
