"""Protobuf utilities shared by the ONNX foundation: importing onnx lazily and copying fields
without materialising big values."""

from __future__ import annotations

from typing import Any

__all__ = ["copy_fields", "import_onnx"]


def import_onnx() -> Any:
    """The ``onnx`` module, imported on first use (so importing this package stays cheap)."""
    import onnx

    return onnx


def _repeated(fd: Any) -> bool:
    """Whether a protobuf field is repeated (``label`` is gone from newer protobuf)."""
    flag = getattr(fd, "is_repeated", None)
    return bool(flag) if flag is not None else fd.label == fd.LABEL_REPEATED


def copy_fields(src: Any, dst: Any, skip: str) -> None:
    """Copy every set field of ``src`` but ``skip`` into ``dst`` (``ListFields`` is avoided:
    it materialises every value, a big ``raw_data`` included)."""
    for fd in src.DESCRIPTOR.fields:
        if fd.name == skip:
            continue
        if _repeated(fd):
            if len(getattr(src, fd.name)):
                getattr(dst, fd.name).extend(getattr(src, fd.name))
        elif src.HasField(fd.name):
            if fd.message_type is not None:
                getattr(dst, fd.name).CopyFrom(getattr(src, fd.name))
            else:
                setattr(dst, fd.name, getattr(src, fd.name))
