"""What a torch model description is, by its content (standard library only: the resolver asks).

See :mod:`convt_tools.torchconv.model` for the format and its reader.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["DESCRIPTION_FORMAT", "is_torch_model_description", "weights_beside"]

DESCRIPTION_FORMAT = "convt-tools torch model description v1"


def is_torch_model_description(obj: Any) -> bool:
    """Whether parsed JSON is a torch model description (a ``modules`` list of qualname entries)."""
    if not isinstance(obj, dict) or not isinstance(obj.get("modules"), list):
        return False
    return obj.get("format") == DESCRIPTION_FORMAT or any(
        isinstance(m, dict) and "qualname" in m and "module_class" in m for m in obj["modules"])


def weights_beside(path: str) -> str:
    """``m.json`` -> ``m.weights.npz`` (same folder)."""
    stem = os.path.splitext(os.path.basename(path))[0]
    return os.path.join(os.path.dirname(path), f"{stem}.weights.npz")
