"""``convt verify --html report.html``: per layer and axis, a small SVG of the windows.

Each picture draws, for one spatial axis of one layer at the first size verified: the
ConvTranspose's natural full output ``[0, L)`` (grey), the source layer's window (the
rows Keras/torch keep; blue) and each runtime's documented reading of the node
(green where it is the source's window, red where it differs; a refusal is written,
not drawn). Rows are ``SCALE`` pixels wide; a window's rectangle starts at
``x = LEFT + begin * SCALE`` and is ``length * SCALE`` wide (rows beyond ``L`` are
zero rows a runtime appends). Every rectangle carries ``data-begin`` and
``data-length`` so that the picture can be checked against the computed windows.
"""

from __future__ import annotations

from html import escape
from typing import Any

__all__ = ["LEFT", "SCALE", "axis_svg", "report_html"]

SCALE = 12
LEFT = 110
_ROW = 22


def _rect(y: int, begin: int, length: int, colour: str, role: str) -> str:
    x = LEFT + begin * SCALE
    return (f'<rect x="{x}" y="{y}" width="{max(length, 0) * SCALE}" height="{_ROW - 6}" '
            f'fill="{colour}" data-role="{escape(role)}" data-begin="{begin}" '
            f'data-length="{length}"/>')


def axis_svg(axis: dict[str, Any], name: str) -> str:
    """One axis's picture (module docstring)."""
    rows = [("full output", [0, axis["natural"]], "#bbbbbb", "natural"),
            ("source", axis["source"], "#3b6fd4", "source")]
    for rt, w in axis["runtimes"].items():
        colour = "#2e9e4f" if w == axis["source"] else "#d43b3b"
        rows.append((rt, w, colour, f"runtime:{rt}"))
    spans = [0, axis["natural"]] + [w[0] + w[1] for _, w, _, _ in rows if isinstance(w, list)]
    width = LEFT + (max(spans) + 2) * SCALE
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" '
             f'height="{_ROW * len(rows) + 24}" data-axis="{escape(name)}">',
             f'<text x="4" y="14" font-size="12">axis {escape(name)}: input length '
             f'{axis["input_length"]}, L = {axis["natural"]}</text>']
    for k, (label, w, colour, role) in enumerate(rows):
        y = 22 + k * _ROW
        parts.append(f'<text x="4" y="{y + 12}" font-size="11">{escape(label)}</text>')
        if isinstance(w, list):
            parts.append(_rect(y, int(w[0]), int(w[1]), colour, role))
        else:
            parts.append(f'<text x="{LEFT}" y="{y + 12}" font-size="11" '
                         f'data-role="{escape(role)}" data-status="{escape(str(w))}">'
                         f'{escape(str(w))}</text>')
    parts.append("</svg>")
    return "".join(parts)


def report_html(report: dict[str, Any]) -> str:
    """The whole report (``VerifyReport.to_dict()``) as one HTML page, a panel per layer."""
    out = ["<!DOCTYPE html><html><head><meta charset='utf-8'><title>convt verify</title>"
           "</head><body>",
           f"<h1>convt verify {escape(str(report['model']))}</h1>",
           f"<p>source {escape(str(report['source']))}; runtimes "
           f"{escape(', '.join(report['runtimes']))}</p>"]
    for lay in report["layers"]:
        out.append(f"<section class='layer' data-layer='{escape(lay['source_layer'])}'>"
                   f"<h2>{escape(lay['source_layer'])}: {escape(lay['verdict'])}"
                   f"{' (' + escape(lay['class']) + ')' if lay['class'] else ''}</h2>")
        for rt, r in lay["runtimes"].items():
            out.append(f"<p>{escape(rt)}: {escape(r['verdict'])}"
                       f"{' (' + escape(str(r['class'])) + ')' if r['class'] else ''}</p>")
        for i, axis in enumerate(lay.get("windows") or []):
            out.append(axis_svg(axis, str(i)))
        out.append("</section>")
    out.append("</body></html>")
    return "\n".join(out)
