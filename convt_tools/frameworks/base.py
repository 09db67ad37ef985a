"""What both framework layers share: the spec they wrap, and forwarding to it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["FrameworkLayer"]


@dataclass(frozen=True)
class FrameworkLayer:
    """A framework's layer: its spec (the description) plus operations (the subclass's)."""

    spec: Any

    def __getattr__(self, name: str) -> Any:       # the description: the spec's own
        if name == "spec":
            raise AttributeError(name)
        return getattr(self.spec, name)
