"""The one place that imports LiteRT's generated flatbuffer schema (optional extra ``[litert]``).

The writer uses ``ai_edge_litert.schema_py_generated`` (the object API:
``ModelT`` ... ``Pack``) with the ``flatbuffers`` builder; nothing here
encodes flatbuffers by hand. Imported on first use only, so the base install
never needs ai-edge-litert.
"""

from __future__ import annotations

from typing import Any

from ..errors import ConvtError

__all__ = ["LITERT_EXTRA", "flatbuffers_module", "schema"]

LITERT_EXTRA = 'pip install -e ".[litert]" (from the clone; ai-edge-litert)'


def _missing(exc: BaseException) -> ConvtError:
    return ConvtError(f"format: 'tflite' needs ai-edge-litert (its flatbuffer schema and "
                      f"interpreter), which is not available ({exc}); install it with "
                      f"{LITERT_EXTRA}.", field="format")


def schema() -> Any:
    """``ai_edge_litert.schema_py_generated`` (ConvtError naming the extra when missing)."""
    try:
        from ai_edge_litert import schema_py_generated
    except ImportError as exc:
        raise _missing(exc) from None
    return schema_py_generated


def flatbuffers_module() -> Any:
    """The ``flatbuffers`` package (a dependency of ai-edge-litert)."""
    try:
        import flatbuffers
    except ImportError as exc:
        raise _missing(exc) from None
    return flatbuffers
