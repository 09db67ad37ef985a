"""One self-contained HTML file: sections of text and inline SVG panels, no external assets."""

from __future__ import annotations

from typing import Iterable, Sequence

from ._model import Section
from ._svg import _attr, _text, axis_svg

__all__ = ["html_document"]

_STYLE = """
body { font-family: sans-serif; margin: 1.5em; color: #111; background: #fff; }
h1 { font-size: 1.4em; } h2 { font-size: 1.1em; margin-top: 1.6em; }
section { border-top: 1px solid #ccc; padding-top: 0.4em; }
p.line { margin: 0.2em 0; font-size: 0.9em; white-space: pre-wrap; }
figure { margin: 0.6em 0; }
"""


def html_document(title: str, sections: Sequence[Section], lines: Iterable[str] = ()) -> str:
    """The HTML text: ``title``, ``lines`` of text, then per section its
    heading (``<section id="<key>">``), its lines and each panel as inline SVG with ``id``
    ``<section key>-<panel key>`` (:func:`~._svg.axis_svg`). Deterministic; every string
    escaped; nothing loaded from elsewhere (no scripts, links or images)."""
    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8"/>',
           f"<title>{_text(title)}</title>", f"<style>{_STYLE}</style>", "</head>", "<body>",
           f"<h1>{_text(title)}</h1>"]
    out += [f'<p class="line">{_text(line)}</p>' for line in lines]
    for section in sections:
        out.append(f'<section id="{_attr(section.key)}" class="layer">')
        out.append(f"<h2>{_text(section.heading)}</h2>")
        out += [f'<p class="line">{_text(line)}</p>' for line in section.lines]
        for panel in section.panels:
            pid = f"{section.key}-{panel.key}"
            out.append(f'<figure class="panel" data-panel="{_attr(pid)}">')
            out.append(axis_svg(panel, pid))
            out.append("</figure>")
        out.append("</section>")
    out += ["</body>", "</html>", ""]
    return "\n".join(out)
