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
  size or CRC;
- anything else the zip library cannot read (a corrupt header, an unsupported
  zip version or compression): one line naming the file and the member.

``model.weights.h5`` is never held in memory whole: a stored member (what
Keras writes) is read in place, through a window on the archive file; a
compressed one is decompressed, streamed, into an anonymous temporary file.
Either way it is checked against its CRC first, in chunks.
"""

from __future__ import annotations

import io
import os
import struct
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from typing import IO, Any

from ..errors import ConvtError
from ..io import max_bytes

__all__ = ["ArchiveMember", "KerasArchive", "MAX_MEMBERS", "MAX_RATIO", "RATIO_FLOOR",
           "read_keras_archive"]

MAX_MEMBERS = 10_000
MAX_RATIO = 100
RATIO_FLOOR = 1 << 20   # members below 1 MiB may compress well (JSON); no bomb at that size
CONFIG = "config.json"
METADATA = "metadata.json"
WEIGHTS = "model.weights.h5"
CHUNK = 1 << 20
_LOCAL_HEADER = struct.Struct("<4s22sHH")   # signature, (fixed fields), name and extra lengths


class _Window(io.RawIOBase):
    """A read-only, seekable view of ``size`` bytes at ``offset`` of an open file (``pread``:
    views of one file never move each other's position)."""

    def __init__(self, fd: int, offset: int, size: int, owner: IO[bytes] | None = None) -> None:
        super().__init__()
        self._fd, self._offset, self._size, self._pos = fd, offset, size, 0
        self._owner = owner   # closed with the view

    def close(self) -> None:
        super().close()
        if self._owner is not None:
            self._owner.close()

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, pos: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        if base + pos < 0:
            raise ValueError("negative seek position")
        self._pos = base + pos
        return self._pos

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        want = max(0, min(len(view), self._size - self._pos))
        data = os.pread(self._fd, want, self._offset + self._pos) if want else b""
        view[:len(data)] = data
        self._pos += len(data)
        return len(data)


@dataclass
class ArchiveMember:
    """``model.weights.h5`` of a ``.keras`` archive, readable without loading it whole.

    ``open()`` gives a fresh read-only, seekable binary file of the member's
    bytes (close it after use): a window on the archive file (a stored member),
    or on an anonymous temporary file holding the decompressed bytes.
    """

    path: str            # the archive (or the temporary file's description)
    name: str
    offset: int
    size: int
    spool: IO[bytes] | None = None   # the decompressed bytes of a compressed member

    def open(self) -> IO[bytes]:
        if self.spool is not None:
            return io.BufferedReader(_Window(self.spool.fileno(), 0, self.size), CHUNK)
        fh = open(self.path, "rb")  # noqa: SIM115 - closed by the reader it is handed to
        return io.BufferedReader(_Window(fh.fileno(), self.offset, self.size, owner=fh), CHUNK)

    def __len__(self) -> int:
        return self.size


@dataclass(frozen=True)
class KerasArchive:
    """The members of a ``.keras`` archive that convt-tools reads (bytes)."""

    config: bytes
    metadata: bytes | None
    weights: ArchiveMember | None


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


def _corrupt(path: str, name: str | None, exc: BaseException) -> ConvtError:
    what = f"the archive member {name!r}" if name is not None else "the archive's directory"
    return _refuse(path, f"{what} is corrupt or unsupported ({type(exc).__name__}: {exc})")


def _read(path: str, archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    _check_size(path, info)
    try:
        with archive.open(info) as fh:
            data = fh.read(info.file_size + 1)
    except Exception as exc:  # noqa: BLE001 - the zip library's errors, whatever their type
        raise _corrupt(path, info.filename, exc) from None
    if len(data) != info.file_size:
        raise _refuse(path, f"the archive member {info.filename!r} holds {len(data):,} bytes, "
                            f"not the {info.file_size:,} it declares")
    return data


def _data_offset(path: str, fh: IO[bytes], info: zipfile.ZipInfo) -> int:
    """Where a member's bytes start in the archive (after its local header), checked."""
    fh.seek(info.header_offset)
    head = fh.read(_LOCAL_HEADER.size)
    if len(head) != _LOCAL_HEADER.size or head[:4] != b"PK\x03\x04":
        raise _refuse(path, f"the archive member {info.filename!r} has no local header at "
                            f"offset {info.header_offset:,}")
    _, _, name_len, extra_len = _LOCAL_HEADER.unpack(head)
    offset = info.header_offset + _LOCAL_HEADER.size + name_len + extra_len
    if offset + info.compress_size > os.fstat(fh.fileno()).st_size:
        raise _refuse(path, f"the archive member {info.filename!r} runs past the end of the "
                            f"file")
    return offset


def _weights(path: str, archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> ArchiveMember:
    """``model.weights.h5`` as an :class:`ArchiveMember`, its size and CRC checked in chunks."""
    _check_size(path, info)
    name = info.filename
    crc, total = 0, 0
    spool: IO[bytes] | None = None
    try:
        if info.compress_type == zipfile.ZIP_STORED:
            if info.compress_size != info.file_size:
                raise _refuse(path, f"the archive member {name!r} is stored with "
                                    f"{info.compress_size:,} bytes but declares "
                                    f"{info.file_size:,}")
            with open(path, "rb") as fh:
                offset = _data_offset(path, fh, info)
                fh.seek(offset)
                while total < info.file_size:
                    chunk = fh.read(min(CHUNK, info.file_size - total))
                    if not chunk:
                        break
                    crc, total = zlib.crc32(chunk, crc), total + len(chunk)
        else:
            offset = 0
            spool = tempfile.TemporaryFile(prefix="convt-weights-")  # noqa: SIM115 - kept open
            with archive.open(info) as src:   # checks the CRC itself at the end
                while True:
                    chunk = src.read(CHUNK)
                    if not chunk:
                        break
                    total += len(chunk)
                    if total > info.file_size:
                        break
                    spool.write(chunk)
                    crc = zlib.crc32(chunk, crc)
            spool.flush()
    except ConvtError:
        if spool is not None:
            spool.close()
        raise
    except Exception as exc:  # noqa: BLE001 - the zip library's errors, whatever their type
        if spool is not None:
            spool.close()
        raise _corrupt(path, name, exc) from None
    if total != info.file_size or crc != info.CRC:
        if spool is not None:
            spool.close()
        why = (f"holds {total:,} bytes, not the {info.file_size:,} it declares"
               if total != info.file_size else "does not match its CRC (a damaged file)")
        raise _refuse(path, f"the archive member {name!r} {why}")
    return ArchiveMember(path, name, offset, info.file_size, spool)


def read_keras_archive(path: str | os.PathLike[str]) -> KerasArchive:
    """Read ``config.json`` and ``metadata.json`` from a ``.keras`` zip; locate ``model.weights.h5``.

    Every member name is checked (nothing escapes, no duplicates); only the
    members above are read, each with its size checked first, and the weights
    member is never held in memory whole (see the module doc). Any error of
    the zip library is a one-line :class:`ConvtError` naming the file and the
    member.
    """
    where = os.fspath(path)
    try:
        archive = zipfile.ZipFile(where)
    except Exception as exc:  # noqa: BLE001 - the zip library's errors, whatever their type
        raise _refuse(where, f"not a readable zip archive ({type(exc).__name__}: {exc})") \
            from None
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
            weights=_weights(where, archive, seen[WEIGHTS]) if WEIGHTS in seen else None,
        )
