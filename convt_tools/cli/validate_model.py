"""``convt validate --model MODEL`` with no config: every ConvTranspose node of the model.

Each node (float or QDQ) is validated against the reference of its own ONNX
semantics on each ``--runtime`` (:mod:`convt_tools.validate.nodes`): one result
per node x runtime, printed as validate's tables, ``--json`` or JUnit. QDQ
nodes are judged in LSB of their output scale (``--lsb``, default 1).
"""

from __future__ import annotations

import os
from typing import Any, Sequence

from ..errors import ConvtError
from ..io import check_destination, ensure_distinct
from ..runtimes import require_runtimes
from ..validate.nodes import validate_model_nodes

__all__ = ["validate_model_only"]


def validate_model_only(model: str, runtimes: Sequence[str], providers: str | None, *,
                        seed: int, lsb: float, rtol: float | None, atol: float | None,
                        junit: str | None, given: dict[str, Any]) -> list[list[Any]]:
    """Every ConvTranspose node of ``model`` validated on ``runtimes``: one group of results
    (one per runtime) per node. ``given``: the config-only options as given (refused when
    set)."""
    bad = [flag for flag, value in given.items() if value is not None]
    if bad:
        field = bad[0].lstrip("-").replace("-", "_")
        raise ConvtError(f"{field}: {bad[0]} describes a layer config; with --model alone every "
                         f"ConvTranspose node is validated from the model itself (drop "
                         f"{', '.join(bad)} or give a config).", field=field)
    if not os.path.isfile(model):
        raise ConvtError(f"model: {model!r} is not a file.", field="model")
    if not lsb > 0 or lsb == float("inf"):
        raise ConvtError(f"lsb: got {lsb!r}; expected a finite number > 0 (LSB of the output "
                         f"scale).", field="lsb")
    if junit is not None:
        ensure_distinct(junit, field="junit_xml", model=model)
        check_destination(junit, field="junit_xml")
    adapters = require_runtimes(list(runtimes), providers)
    return validate_model_nodes(model, adapters, seed=seed, lsb=lsb, rtol=rtol, atol=atol)
