"""CT036: a judged runtime cannot run the node as the table documents it.

``check --runtime NAMES`` judges a model on the runtimes the user deploys to.
A node that one of them refuses (the table's reading is ``refused``: it does
not convert, load or run) or runs to a wrong output that no window explains
(``unexplained``: e.g. MNN's output_shape with N and C) is an error for that
user, whatever the other runtimes do: :func:`judged_refusals` says which
judged runtime and why (the table's note). It looks only at runtimes named
explicitly (``check`` without ``--runtime`` judges agreement, CT010-CT017).
The reading is evaluated at the node's known input sizes (a stand-in of 5
where a size is unknown, with the dims then read as symbolic).
"""

from __future__ import annotations

from typing import Sequence

from .attrs import ConvTAttrs
from .readings import RUNTIMES, documented_reading
from .report import Finding

__all__ = ["judged_refusals"]

STAND_IN = 5


def judged_refusals(attrs: ConvTAttrs, sizes: Sequence[int | None] | None,
                    runtimes: Sequence[str]) -> list[Finding]:
    """One CT036 per explicitly judged runtime whose documented reading is refused/unexplained."""
    if tuple(runtimes) == RUNTIMES:
        return []
    known = sizes if sizes is not None and len(sizes) == attrs.rank else (None,) * attrs.rank
    at = [int(n) if n is not None else STAND_IN for n in known]
    static = all(n is not None for n in known)
    out = []
    for name in runtimes:
        r = documented_reading(name, attrs, at, static, attrs.output_shape_full)
        if r.status == "refused":
            out.append(Finding("CT036", f"{name} cannot run this node: {r.note}"))
        elif r.status == "unexplained":
            out.append(Finding("CT036", f"{name} runs this node to a wrong output: {r.note}"))
    return out
