"""The committed conformance table (docs/conformance.md), read back as cells.

The table is ``convt conformance --markdown`` output between the markers
``<!-- conformance:begin -->`` and ``<!-- conformance:end -->``: one row per case,
one column per runtime, each cell ``exact``, ``refused``, ``wrong values`` or
``window (begin, length) ...``.
"""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "conformance.md"
BEGIN, END = "<!-- conformance:begin -->", "<!-- conformance:end -->"
# The runtimes CI installs, in the table's column order.
CI_RUNTIMES = ("onnxruntime", "onnx-reference", "openvino", "tract", "torch", "opencv", "tvm",
               "mnn", "ncnn", "iree")


def cell_key(cell: str) -> tuple[str, tuple[tuple[int, int], ...] | None]:
    """A cell as ``(outcome, window)`` (the window only for a wrong window)."""
    cell = cell.strip()
    if cell.startswith("window"):
        pairs = re.findall(r"\((-?\d+), (\d+)\)", cell)
        return "wrong window", tuple((int(b), int(n)) for b, n in pairs) or None
    return cell, None


def committed_table(path: Path = DOC) -> tuple[list[str], dict[str, dict[str, str]]]:
    """``(runtime columns, {case id: {runtime: cell}})`` of the committed table."""
    text = path.read_text(encoding="utf-8")
    body = text[text.index(BEGIN) + len(BEGIN):text.index(END)]
    rows = [line for line in body.splitlines() if line.startswith("| `")]
    header = next(line for line in body.splitlines() if line.startswith("| case |"))
    columns = [c.strip().strip("`") for c in header.strip("|").split("|")][3:]
    table: dict[str, dict[str, str]] = {}
    for row in rows:
        cells = [c.strip() for c in row.strip().strip("|").split("|")]
        if len(cells) != 3 + len(columns):
            continue   # the per-runtime summary rows
        table[cells[0].strip("`")] = dict(zip(columns, cells[3:]))
    return columns, table
