"""Pictures of crop windows: per axis, the full ConvTranspose output and the windows kept.

A picture shows, on one spatial axis, the natural full output ``F``
(``L = (in - 1) * s + K`` rows, :func:`convt_tools.geometry.natural_length`,
plus ``output_padding`` zero rows appended), the *intended* window (the
source layer's, a config's, or the ONNX spec's) and any number of other
windows (each runtime's), every one a :class:`convt_tools.geometry.Window`
computed by its caller: nothing here derives a crop. Where a window differs
from the intended one it is drawn in another colour, on its own row, and
says how it differs (``starts 1 row later``); cropped rows and zero rows
outside ``F`` are drawn too, with a legend in words.

Used by ``convt shape --svg`` (:func:`svg_document` of one config's axes),
``convt check --html`` (:func:`html_document` of every risky node) and
``convt verify --html`` (:mod:`convt_tools.verify.html`: every layer). Depends on geometry, io and errors only
(standard library otherwise), so any verb may use it.

Public surface: :class:`Row`, :class:`AxisPanel` (:func:`axis_panel` builds
one from ``in, k, s, d``), :class:`Section`, :func:`axis_svg`,
:func:`svg_document`, :func:`html_document` and :func:`write_text` (atomic).

A verb with a source window and runtime windows per layer and axis (as
``verify`` has) draws them like this::

    panel = axis_panel("H", "H", n, k, s, d, op, Row("source", source_window),
                       (Row("onnxruntime", ort_window), Row("tract", None, "refused: ...")))
    html = html_document("convt verify: model.onnx",
                         [Section("layer-0", "up.0 -> /up/up.0/ConvTranspose", (), (panel,))])
    write_text("report.html", html, field="html")

Each panel's ``id`` in the HTML is ``<section key>-<panel key>`` (``layer-0-H``).
"""

from __future__ import annotations

import os

from ..io import atomic_write
from ._html import html_document
from ._model import AxisPanel, Row, Section, axis_panel
from ._svg import axis_svg, svg_document

__all__ = ["AxisPanel", "Row", "Section", "axis_panel", "axis_svg", "svg_document",
           "html_document", "write_text"]


def write_text(path: str | os.PathLike[str], text: str, field: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically (:func:`convt_tools.io.atomic_write`:
    a temporary file renamed into place; never an input of the command; errors name
    ``field``)."""
    data = text.encode("utf-8")

    def write(tmp: str) -> None:
        with open(tmp, "wb") as fh:
            fh.write(data)

    atomic_write(path, write, field=field)
