"""Tier helpers: a deterministic sample of a parameter list in the fast tier, the rest ``slow``.

The default run (README's command) deselects ``slow``; .ci/run runs it once after the
fast tier. Every value stays collected, with the same test id.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest


def fast_sample(values: Iterable[Any], step: int) -> list[Any]:
    """Every ``step``-th value (from the first) in the fast tier, the others marked ``slow``.

    A value that is already a ``pytest.param`` keeps its id and marks.
    """
    out = []
    for i, v in enumerate(values):
        marks = () if i % step == 0 else (pytest.mark.slow,)
        if isinstance(v, type(pytest.param(None))):
            out.append(pytest.param(*v.values, id=v.id, marks=(*v.marks, *marks)))
        else:
            out.append(pytest.param(v, marks=marks))
    return out


def fast_only(values: Iterable[Any], keep: Iterable[Any]) -> list[Any]:
    """The values in ``keep`` in the fast tier, the others marked ``slow``."""
    keep = set(keep)
    return [pytest.param(v, marks=() if v in keep else (pytest.mark.slow,)) for v in values]
