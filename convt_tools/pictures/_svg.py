"""Drawing: one SVG per axis panel, and a standalone SVG document of several panels.

Pure string building, deterministic (same panels, same bytes). Every
untrusted string (layer, node and runtime names, notes) goes through
:func:`convt_tools.io.xml_safe` (characters XML forbids) and
:func:`xml.sax.saxutils.escape` (``<>&"``). Colours are presentation
attributes, not CSS, so a panel looks the same inline in HTML and alone.

Geometry of a panel: natural row ``p`` (any integer; ``[0, L)`` is the
full output ``F``) spans ``x(p) = PLOT_X + (p - lo) * cell`` to
``x(p + 1)``, with ``lo = min(0, every window's begin)`` and ``cell`` chosen
so ``[lo, hi)`` (``hi`` = the furthest end, at least ``L + output_padding``)
fills the plot. A window ``(begin, length)`` is the rectangle from
``x(begin)`` of width ``length * cell``.
"""

from __future__ import annotations

from typing import Iterable, Sequence
from xml.sax.saxutils import escape

from ..geometry import Window
from ..io import xml_safe
from ._model import AxisPanel, Row

__all__ = ["COLOURS", "axis_svg", "svg_document"]

WIDTH = 900
PLOT_X = 222.0
PLOT_W = 370.0
NOTE_X = 604
ROW_H = 30
BAR_H = 16
TOP = 62

# kind -> (fill, stroke, legend text)
COLOURS: dict[str, tuple[str, str, str]] = {
    "full": ("#b8b8b8", "#555555", "full output F (rows 0..L-1)"),
    "op": ("#e4e4e4", "#555555", "output_padding rows (appended to F)"),
    "intended": ("#2f6db5", "#173a63", "intended window"),
    "same": ("#2e9a48", "#17502a", "same window as intended"),
    "differs": ("#d23a2a", "#6d1810", "window differs from intended"),
    "window": ("#7a5bb5", "#3d2d5a", "window (nothing intended to compare)"),
    "crop": ("#f2cf8a", "#9a7420", "rows cropped away"),
    "zeros": ("#ffffff", "#222222", "zero rows outside F"),
}


def _text(value: object) -> str:
    """Element text: XML-safe characters, ``<>&`` escaped."""
    return escape(xml_safe(value))


def _attr(value: object) -> str:
    """An attribute value (double-quoted): XML-safe characters, ``<>&"`` escaped."""
    return escape(xml_safe(value), {'"': "&quot;"})


def _num(value: float) -> str:
    """A coordinate with at most 3 decimals, no trailing zeros, never ``-0``."""
    text = f"{round(value, 3) + 0.0:.3f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


class _Scale:
    """Natural row positions to x coordinates (module doc)."""

    def __init__(self, panel: AxisPanel) -> None:
        wins = [r.window for r in (panel.intended, *panel.rows) if r.window is not None]
        self.lo = min([0] + [w.begin for w in wins])
        self.hi = max([panel.full] + [w.begin + w.length for w in wins])
        self.cell = PLOT_W / max(self.hi - self.lo, 1)
        self.used: set[str] = set()     # the kinds drawn (the legend lists those)

    def x(self, pos: int) -> float:
        return PLOT_X + (pos - self.lo) * self.cell


def _rect(kind: str, row: str, begin: int, length: int, y: float, scale: _Scale,
          tip: str) -> str:
    fill, stroke, _ = COLOURS[kind]
    scale.used.add(kind)
    dash = ' stroke-dasharray="3,2"' if kind in ("zeros", "op") else ""
    dash += ' fill-opacity="0.6"' if kind == "zeros" else ""
    return (f'<rect class="{kind}" data-row="{_attr(row)}" data-begin="{begin}" '
            f'data-length="{length}" x="{_num(scale.x(begin))}" y="{_num(y)}" '
            f'width="{_num(max(length, 0) * scale.cell)}" height="{BAR_H}" fill="{fill}" '
            f'stroke="{stroke}" stroke-width="0.8"{dash}><title>{_text(tip)}</title></rect>')


def _label(x: float, y: float, text: object, *, size: int = 11, anchor: str = "start",
           cls: str = "label", fill: str = "#111111", weight: str = "normal") -> str:
    """A text element; text longer than fits before the right edge (about ``0.6 * size``
    pixels a character) is cut with ``...`` and given whole in a ``<title>`` tooltip."""
    words = str(text)
    room = max(int((WIDTH - x) / (0.6 * size)), 8) if anchor == "start" else len(words)
    shown, tip = words, ""
    if len(words) > room:
        shown, tip = words[:room - 3] + "...", f"<title>{_text(words)}</title>"
    return (f'<text class="{cls}" x="{_num(x)}" y="{_num(y)}" font-family="sans-serif" '
            f'font-size="{size}" font-weight="{weight}" text-anchor="{anchor}" '
            f'fill="{fill}">{tip}{_text(shown)}</text>')


def _rows_text(first: int, length: int) -> str:
    return f"rows {first}..{first + length - 1}" if length > 0 else "no rows"


def _side(rows: int) -> str:
    """A crop at one side: ``"1"`` rows cropped, or ``"+1 zeros"`` for a negative crop."""
    return str(rows) if rows >= 0 else f"+{-rows} zeros"


def _difference(w: Window, intended: Window) -> str:
    """``"starts 1 row later, 1 row shorter"`` (relative to the intended window)."""
    parts = []
    db, dl = w.begin - intended.begin, w.length - intended.length
    if db:
        parts.append(f"starts {abs(db)} row{'s' if abs(db) != 1 else ''} "
                     f"{'later' if db > 0 else 'earlier'}")
    if dl:
        parts.append(f"{abs(dl)} row{'s' if abs(dl) != 1 else ''} "
                     f"{'longer' if dl > 0 else 'shorter'}")
    return "differs: " + ", ".join(parts)


def _window_row(row: Row, kind: str, y: float, panel: AxisPanel, scale: _Scale,
                intended: Window | None) -> list[str]:
    """The row's window, its cropped rows and zero rows, and its notes."""
    out = [_label(6, y + 12, row.label, weight="bold" if kind == "intended" else "normal")]
    w = row.window
    if w is None:
        out.append(_label(PLOT_X, y + 12, row.note or "no window", cls="note", fill="#6d1810"))
        return out
    end, full = w.begin + w.length, panel.full
    crop_start, crop_end = max(min(w.begin, full), 0), min(max(w.crop_end(full), 0), full)
    if crop_start:
        out.append(_rect("crop", row.label, 0, crop_start, y, scale,
                         f"{row.label}: {crop_start} row(s) cropped at the start"))
    if crop_end:
        first = max(end, 0)
        out.append(_rect("crop", row.label, first, crop_end, y, scale,
                         f"{row.label}: {crop_end} row(s) cropped at the end"))
    out.append(_rect(kind, row.label, w.begin, w.length, y, scale,
                     f"{row.label}: begin {w.begin}, length {w.length} "
                     f"(natural {_rows_text(w.begin, w.length)})"))
    if w.begin < 0:     # drawn over the window: those rows are zeros, not F
        out.append(_rect("zeros", row.label, w.begin, min(-w.begin, w.length), y, scale,
                         f"{row.label}: {-w.begin} zero row(s) before F"))
    if end > full:
        first = max(full, w.begin)
        out.append(_rect("zeros", row.label, first, end - first, y, scale,
                         f"{row.label}: {end - first} zero row(s) after the full output"))
    words = f"begin {w.begin}, length {w.length}; crop {_side(w.begin)} | {_side(w.crop_end(full))}"
    out.append(_label(NOTE_X, y + 12, words, size=10, cls="note"))
    if kind == "differs" and intended is not None:
        out.append(_label(NOTE_X, y + 24, _difference(w, intended), size=10, cls="diff",
                          fill=COLOURS["differs"][0], weight="bold"))
    elif kind == "same":
        out.append(_label(NOTE_X, y + 24, "same as intended", size=10, cls="diff",
                          fill=COLOURS["same"][1]))
    if row.note:
        out.append(_label(PLOT_X, y + BAR_H + 11, row.note, size=9, cls="note", fill="#444444"))
    return out


def _ruler(panel: AxisPanel, scale: _Scale, y: float) -> list[str]:
    out = [f'<line x1="{_num(scale.x(scale.lo))}" y1="{_num(y)}" x2="{_num(scale.x(scale.hi))}" '
           f'y2="{_num(y)}" stroke="#333333" stroke-width="0.8"/>']
    placed: list[float] = []
    for pos in sorted({scale.lo, 0, panel.natural, panel.full, scale.hi}):
        x = scale.x(pos)
        out.append(f'<line x1="{_num(x)}" y1="{_num(y - 4)}" x2="{_num(x)}" y2="{_num(y + 4)}" '
                   f'stroke="#333333" stroke-width="0.8"/>')
        if all(abs(x - p) >= 26 for p in placed):
            out.append(_label(x, y - 6, pos, size=10, anchor="middle", cls="tick"))
            placed.append(x)
    return out


def _legend(y: float, used: set[str]) -> list[str]:
    """A swatch and its words for every kind drawn (in :data:`COLOURS` order)."""
    out = []
    for i, kind in enumerate(k for k in COLOURS if k in used):
        x, yy = 6 + (i % 4) * 224, y + (i // 4) * 16
        fill, stroke, words = COLOURS[kind]
        dash = ' stroke-dasharray="3,2"' if kind in ("zeros", "op") else ""
        out.append(f'<rect class="swatch" x="{x}" y="{_num(yy)}" width="14" height="10" '
                   f'fill="{fill}" stroke="{stroke}" stroke-width="0.8"{dash}/>')
        out.append(_label(x + 18, yy + 9, words, size=10, cls="legend"))
    return out


def panel_height(panel: AxisPanel) -> int:
    """Pixels: title, ruler, the full-output row, one row per window, the legend."""
    return TOP + (2 + len(panel.rows)) * ROW_H + 2 * 16 + 8


def axis_svg(panel: AxisPanel, panel_id: str | None = None) -> str:
    """One ``<svg>`` element (no XML declaration) drawing ``panel``; ``id`` = ``panel_id``
    (default ``panel.key``).

    Rows, top to bottom: the full output (``class="full"`` over ``[0, L)``,
    ``class="op"`` over the ``output_padding`` rows), the intended window
    (``class="intended"``), then each row (``class="same"`` or
    ``"differs"``; ``"window"`` when nothing is intended). Cropped rows are
    ``class="crop"``, zero rows outside the full output ``class="zeros"``.
    Every such ``rect`` carries ``data-row`` (the row's label),
    ``data-begin`` and ``data-length`` (natural rows).
    """
    scale = _Scale(panel)
    height = panel_height(panel)
    pid = panel.key if panel_id is None else panel_id
    title = (f"{panel.axis}: input {panel.input_length}, natural length L = {panel.natural}"
             + (f", output_padding {panel.output_padding}" if panel.output_padding else ""))
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" id="{_attr(pid)}" class="axis-panel" '
             f'width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" role="img" '
             f'aria-label="{_attr(title)}">',
             f"<title>{_text(title)}</title>",
             f'<rect class="background" x="0" y="0" width="{WIDTH}" height="{height}" '
             f'fill="#ffffff"/>',
             _label(6, 16, title, size=12, cls="title", weight="bold"),
             _label(6, 30, panel.caption, size=10, cls="caption", fill="#444444")]
    parts += _ruler(panel, scale, TOP - 14)
    y = float(TOP)
    parts.append(_label(6, y + 12, "full output", weight="bold"))
    parts.append(_rect("full", "full output", 0, panel.natural, y, scale,
                       f"full output F: rows 0..{panel.natural - 1} (L = {panel.natural})"))
    if panel.output_padding:
        parts.append(_rect("op", "full output", panel.natural, panel.output_padding, y, scale,
                           f"output_padding: {panel.output_padding} zero row(s) appended"))
    parts.append(_label(NOTE_X, y + 12, f"L = {panel.natural}"
                        + (f" + output_padding {panel.output_padding}" if panel.output_padding
                           else ""), size=10, cls="note"))
    intended = panel.intended.window
    y += ROW_H
    parts += _window_row(panel.intended, "intended", y, panel, scale, intended)
    for row in panel.rows:
        y += ROW_H
        kind = ("window" if intended is None or row.window is None
                else "same" if row.window == intended else "differs")
        parts += _window_row(row, kind, y, panel, scale, intended)
    parts += _legend(y + ROW_H + 4, scale.used)
    parts.append("</svg>")
    return "\n".join(parts)


def svg_document(title: str, panels: Sequence[AxisPanel], lines: Iterable[str] = ()) -> str:
    """A standalone SVG file (XML declaration included): ``title`` and ``lines`` of text,
    then every panel of :func:`axis_svg` stacked (each a nested ``<svg>`` with its ``id``)."""
    texts = [title, *lines]
    y = 8 + 18 * len(texts)
    placed = []
    for panel in panels:
        svg = axis_svg(panel)
        placed.append(svg.replace("<svg ", f'<svg x="0" y="{y}" ', 1))
        y += panel_height(panel) + 10
    head = [_label(6, 20 + 18 * i, t, size=14 if i == 0 else 11, cls="heading",
                   weight="bold" if i == 0 else "normal") for i, t in enumerate(texts)]
    return "\n".join([
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{y}" '
        f'viewBox="0 0 {WIDTH} {y}">',
        f"<title>{_text(title)}</title>",
        f'<rect x="0" y="0" width="{WIDTH}" height="{y}" fill="#ffffff"/>',
        *head, *placed, "</svg>", ""])
