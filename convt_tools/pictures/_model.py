"""What a picture shows: typed rows and panels, built by the callers from geometry's windows."""

from __future__ import annotations

from dataclasses import dataclass

from ..geometry import Window, natural_length

__all__ = ["AxisPanel", "Row", "Section", "axis_panel"]


@dataclass(frozen=True)
class Row:
    """One drawn row: ``label`` and the :class:`~convt_tools.geometry.Window` it keeps.

    ``window`` None: nothing to draw (a refused or unknown reading); ``note``
    says why and is printed in place of the window.
    """

    label: str
    window: Window | None
    note: str = ""


@dataclass(frozen=True)
class AxisPanel:
    """One spatial axis: the full output and the windows drawn on it.

    ``natural`` is ``L = (in - 1) * s + K`` (:func:`convt_tools.geometry.natural_length`);
    the full output drawn is ``L + output_padding`` rows (ONNX's uncropped
    length: ``output_padding`` zero rows appended, drawn apart). ``intended``
    is the window the other ``rows`` are compared with (the source's or the
    ONNX spec's); a row whose window differs from it is drawn in another
    colour and says by how much. ``key`` names the panel (unique within a
    document or section: it becomes the SVG/HTML ``id``).
    """

    key: str
    axis: str
    input_length: int
    natural: int
    output_padding: int
    intended: Row
    rows: tuple[Row, ...] = ()
    caption: str = ""

    @property
    def full(self) -> int:
        """The uncropped length ``L + output_padding``."""
        return self.natural + self.output_padding


def axis_panel(key: str, axis: str, input_length: int, kernel: int, stride: int, dilation: int,
               output_padding: int, intended: Row, rows: tuple[Row, ...] = (),
               caption: str = "") -> AxisPanel:
    """An :class:`AxisPanel` whose ``natural`` is :func:`~convt_tools.geometry.natural_length`
    ``(input_length, kernel, stride, dilation)``; the caption defaults to those numbers."""
    text = caption or f"kernel {kernel}, stride {stride}, dilation {dilation}"
    return AxisPanel(key, axis, input_length, natural_length(input_length, kernel, stride, dilation),
                     output_padding, intended, rows, text)


@dataclass(frozen=True)
class Section:
    """One part of an HTML report (a layer or node): a heading, lines of text, its panels.

    ``key`` is the section's ``id``; each panel's ``id`` is ``<key>-<panel.key>``.
    """

    key: str
    heading: str
    lines: tuple[str, ...] = ()
    panels: tuple[AxisPanel, ...] = ()
