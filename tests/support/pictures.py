"""Reading the pictures back (convt_tools.pictures): SVG through xml.etree, HTML through
html.parser; the drawn rectangles as numbers a test compares with computed windows."""

from __future__ import annotations

import struct
import xml.etree.ElementTree as ET
import zlib
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

SVG = "{http://www.w3.org/2000/svg}"


@dataclass(frozen=True)
class Drawn:
    """One ``rect`` of a panel: its class, row label and geometry."""

    kind: str
    row: str
    x: float
    width: float
    begin: int
    length: int


@dataclass
class Panel:
    """One axis panel: its ``id``, title text and the rects that carry ``data-row``."""

    id: str
    title: str
    rects: list[Drawn]

    def one(self, kind: str, row: str | None = None) -> Drawn:
        """The single rect of ``kind`` (in ``row`` when given)."""
        hits = [r for r in self.rects if r.kind == kind and (row is None or r.row == row)]
        assert len(hits) == 1, f"{self.id}: {len(hits)} rect(s) of class {kind!r} row {row!r}"
        return hits[0]

    def window_rect(self, row: str) -> Drawn:
        """The window rect of ``row`` (intended, same, differs or window)."""
        hits = [r for r in self.rects if r.row == row
                and r.kind in ("intended", "same", "differs", "window")]
        assert len(hits) == 1, f"{self.id}: {len(hits)} window rect(s) for row {row!r}"
        return hits[0]

    @property
    def cell(self) -> float:
        """Pixels per natural row, from the drawn full output ``[0, L)``."""
        full = self.one("full")
        return full.width / full.length

    def x_of(self, pos: int) -> float:
        """Where natural row ``pos`` starts, from the drawn full output's left edge."""
        return self.one("full").x + pos * self.cell


def _drawn(attrs: dict[str, str | None]) -> Drawn:
    return Drawn(str(attrs["class"]), str(attrs["data-row"]), float(str(attrs["x"])),
                 float(str(attrs["width"])), int(str(attrs["data-begin"])),
                 int(str(attrs["data-length"])))


def svg_panels(text: str) -> dict[str, Panel]:
    """Every ``<svg class="axis-panel">`` of an SVG document, by ``id`` (xml.etree)."""
    root = ET.fromstring(text.encode("utf-8"))
    out = {}
    for svg in root.iter(f"{SVG}svg"):
        if svg.get("class") != "axis-panel":
            continue
        title = svg.find(f"{SVG}title")
        rects = [_drawn(dict(r.attrib)) for r in svg.iter(f"{SVG}rect") if "data-row" in r.attrib]
        out[str(svg.get("id"))] = Panel(str(svg.get("id")), "" if title is None else
                                        str(title.text), rects)
    return out


class _HtmlPanels(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.panels: dict[str, Panel] = {}
        self.sections: dict[str, str] = {}    # section id -> its h2 text
        self.tags: list[str] = []
        self._panel: Panel | None = None
        self._section: str | None = None
        self._in: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.append(tag)
        if tag == "svg" and a.get("class") == "axis-panel":
            self._panel = Panel(str(a["id"]), "", [])
            self.panels[self._panel.id] = self._panel
        elif tag == "rect" and self._panel is not None and "data-row" in a:
            self._panel.rects.append(_drawn(a))
        elif tag == "section":
            self._section = str(a["id"])
        elif tag in ("h2", "title"):
            self._in, self._text = tag, []

    def handle_endtag(self, tag: str) -> None:
        if tag == "svg":
            self._panel = None
        elif tag == self._in:
            text = "".join(self._text)
            if tag == "h2" and self._section is not None:
                self.sections[self._section] = text
            elif tag == "title" and self._panel is not None:
                self._panel.title = text
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in is not None:
            self._text.append(data)


@dataclass
class HtmlReport:
    """What an HTML report holds: panels by id, section headings by id, every tag used."""

    panels: dict[str, Panel]
    sections: dict[str, str]
    tags: list[str]


def html_panels(text: str) -> HtmlReport:
    """Parse an HTML report (html.parser)."""
    parser = _HtmlPanels()
    parser.feed(text)
    parser.close()
    return HtmlReport(parser.panels, parser.sections, parser.tags)


# ---------------------------------------------------------------- a model of several nodes

def chain_model(nodes: list[tuple[str, dict[str, Any]]], *, sizes: tuple[int, ...] = (4, 5),
                seed: int = 0) -> Any:
    """``x -> ConvTranspose(name_0, attrs_0) -> ... -> y`` (kernel 3 per axis, 2 channels
    throughout, seeded weights, opset 17), each node named as given."""
    rng = np.random.default_rng(seed)
    rank = len(sizes)
    made, inits = [], []
    for i, (name, attrs) in enumerate(nodes):
        w = rng.standard_normal((2, 2, *(3,) * rank)).astype(np.float32)
        inits.append(numpy_helper.from_array(w, f"W{i}"))
        made.append(helper.make_node("ConvTranspose", ["x" if i == 0 else f"t{i}", f"W{i}"],
                                     ["y" if i == len(nodes) - 1 else f"t{i + 1}"], name=name,
                                     **attrs))
    graph = helper.make_graph(made, "g", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, [1, 2, *sizes])], [helper.make_tensor_value_info(
            "y", TensorProto.FLOAT, [1, 2] + [None] * rank)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


# ---------------------------------------------------------------- PNG pixels (no PIL)

def png_pixels(data: bytes) -> Any:
    """The pixels of an 8-bit, non-interlaced RGB/RGBA PNG (what Chromium's screenshot
    writes) as a NumPy array ``(height, width, channels)``; other PNGs fail the test."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG file"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        (length,), kind = struct.unpack(">I", data[pos:pos + 4]), data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    assert header is not None, "PNG without IHDR"
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and colour in (2, 6) and interlace == 0, f"unexpected PNG kind {header}"
    bpp = 3 if colour == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * bpp
    out = np.zeros((height, stride), dtype=np.int32)
    prev = np.zeros(stride, dtype=np.int32)
    for row in range(height):
        start = row * (stride + 1)
        kind = raw[start]
        line = np.frombuffer(raw[start + 1:start + 1 + stride], dtype=np.uint8).astype(np.int32)
        if kind == 0:
            cur = line
        elif kind == 2:
            cur = (line + prev) % 256
        else:   # Sub, Average, Paeth: byte by byte
            cur = np.zeros(stride, dtype=np.int32)
            for i in range(stride):
                left = cur[i - bpp] if i >= bpp else 0
                up, ul = prev[i], (prev[i - bpp] if i >= bpp else 0)
                if kind == 1:
                    pred = left
                elif kind == 3:
                    pred = (left + up) // 2
                else:
                    p = left + up - ul
                    pa, pb, pc = abs(p - left), abs(p - up), abs(p - ul)
                    pred = left if pa <= pb and pa <= pc else up if pb <= pc else ul
                cur[i] = (line[i] + pred) % 256
        out[row] = cur
        prev = cur
    return out.reshape(height, width, bpp)
