"""What kind of file a MODEL argument is, from its first bytes (imports nothing heavy)."""

from __future__ import annotations

import os

from ..errors import ConvtError

__all__ = ["kind_of_head", "sniff"]

_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_ZIP_MAGIC = b"PK\x03\x04"


def sniff(path: str | os.PathLike[str], field: str = "model") -> str:
    """``"zip"``, ``"hdf5"`` or ``"text"`` from the first bytes of ``path``.

    ``path`` goes through :func:`convt_tools.io.check_input_file` first: a
    missing file, a FIFO, a device or a folder is an error naming ``field``
    before anything is opened (a FIFO would block forever), and the file is
    recorded as an input of the running command (no output may name it).
    """
    from ..io import check_input_file

    check_input_file(path, field)
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
    except OSError as exc:
        raise ConvtError(f"{field}: cannot read {os.fspath(path)!r}: {exc.strerror or exc}.",
                         field=field) from None
    return kind_of_head(head)


def kind_of_head(head: bytes) -> str:
    """``"zip"``, ``"hdf5"`` or ``"text"`` from a file's first 8 bytes."""
    if head.startswith(_ZIP_MAGIC) or head.startswith(b"PK\x05\x06"):
        return "zip"
    if head == _HDF5_MAGIC:
        return "hdf5"
    return "text"
