"""Safe reading of Keras 3 ``.keras`` archives (zip files), untrusted.

A ``.keras`` file is a zip with ``metadata.json``, ``config.json`` and
``model.weights.h5`` (plus optional ``assets/``). Only those three members are
ever read, into memory; nothing is extracted to disk. Refused (one-line
:class:`ConvtError`, field ``model``):

- more than :data:`MAX_MEMBERS` members, or a member name that is absolute,
  contains ``..``, a backslash or a NUL, or is given twice (zip-slip and
  shadowing tricks);
- a member whose declared size is over the memory limit
  (:func:`convt_tools.io.max_bytes`), or over :data:`MAX_RATIO` times its
  stored size once above :data:`RATIO_FLOOR` bytes (decompression bombs);
- an encrypted member, or a member whose bytes do not match its declared
  size or CRC.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass

from ..errors import ConvtError
from ..io import max_bytes

__all__ = ["KerasArchive", "MAX_MEMBERS", "MAX_RATIO", "RATIO_FLOOR", "read_keras_archive"]

MAX_MEMBERS = 10_000
MAX_RATIO = 100
RATIO_FLOOR = 1 << 20   # members below 1 MiB may compress well (JSON); no bomb at that size
CONFIG = "config.json"
METADATA = "metadata.json"
WEIGHTS = "model.weights.h5"


@dataclass(frozen=True)
class KerasArchive:
    """The members of a ``.keras`` archive that convt-tools reads (bytes)."""

    config: bytes
    metadata: bytes | None
    weights: bytes | None


def _refuse(path: str, why: str) -> ConvtError:
    return ConvtError(f"model: {path!r} refused: {why}.", field="model")


def _check_name(path: str, name: str) -> None:
    parts = name.replace("\\", "/").split("/")
    if (name.startswith("/") or "\\" in name or "\x00" in name or ".." in parts
            or (len(name) > 1 and name[1] == ":")):
        raise _refuse(path, f"the archive member {name!r} would escape the archive")


def _check_size(path: str, info: zipfile.ZipInfo) -> None:
    limit, source = max_bytes()
    if info.file_size > limit:
        raise _refuse(path, f"the archive member {info.filename!r} declares {info.file_size:,} "
                            f"bytes, more than the {limit:,} allowed ({source})")
    if info.file_size > RATIO_FLOOR and info.file_size > MAX_RATIO * max(info.compress_size, 1):
        raise _refuse(path, f"the archive member {info.filename!r} declares {info.file_size:,} "
                            f"bytes from {info.compress_size:,} stored (over {MAX_RATIO}x: a "
                            f"decompression bomb)")
    if info.flag_bits & 0x1:
        raise _refuse(path, f"the archive member {info.filename!r} is encrypted")


def _read(path: str, archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    _check_size(path, info)
    try:
        with archive.open(info) as fh:
            data = fh.read(info.file_size + 1)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
        raise _refuse(path, f"the archive member {info.filename!r} is corrupt "
                            f"({type(exc).__name__}: {exc})") from None
    if len(data) != info.file_size:
        raise _refuse(path, f"the archive member {info.filename!r} holds {len(data):,} bytes, "
                            f"not the {info.file_size:,} it declares")
    return data


def read_keras_archive(path: str | os.PathLike[str]) -> KerasArchive:
    """Read ``config.json``, ``metadata.json`` and ``model.weights.h5`` from a ``.keras`` zip.

    Every member name is checked (nothing escapes, no duplicates), but only the
    three members above are decompressed, each with its size checked first.
    """
    where = os.fspath(path)
    try:
        archive = zipfile.ZipFile(where)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise _refuse(where, f"not a readable zip archive ({exc})") from None
    with archive:
        infos = archive.infolist()
        if len(infos) > MAX_MEMBERS:
            raise _refuse(where, f"the archive has {len(infos):,} members, more than "
                                 f"{MAX_MEMBERS:,}")
        seen: dict[str, zipfile.ZipInfo] = {}
        for info in infos:
            _check_name(where, info.filename)
            if info.filename in seen:
                raise _refuse(where, f"the archive member {info.filename!r} is given twice")
            seen[info.filename] = info
        if CONFIG not in seen:
            raise _refuse(where, f"the archive has no {CONFIG} (not a Keras 3 .keras file; "
                                 f"members: {sorted(seen)[:8]})")
        return KerasArchive(
            config=_read(where, archive, seen[CONFIG]),
            metadata=_read(where, archive, seen[METADATA]) if METADATA in seen else None,
            weights=_read(where, archive, seen[WEIGHTS]) if WEIGHTS in seen else None,
        )
