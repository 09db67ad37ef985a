"""Names a package exports but imports on first use (PEP 562 module ``__getattr__``).

A package keeps heavy modules (onnx, onnxruntime, the QDQ builder) out of its
import: ``__getattr__ = lazy_getattr(__name__, globals(), {"name": ".module"})``
resolves ``package.name`` by importing ``.module`` (relative to the package)
on first access and storing the value in the package's namespace, so the
second access is a plain attribute. Unknown names raise :class:`AttributeError`
as a module does.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, Mapping, MutableMapping

__all__ = ["lazy_getattr"]


def lazy_getattr(package: str, namespace: MutableMapping[str, Any],
                 where: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package``: ``where[name]`` is the module (relative to
    ``package``) that defines ``name``; the value is cached in ``namespace``."""
    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, package), name)
        namespace[name] = value
        return value

    return __getattr__
