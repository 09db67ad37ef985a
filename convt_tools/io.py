"""Safe file I/O: atomic writes, pickle-free array loading, memory limits.

Writes go to a temporary file in the destination folder and are renamed into
place, so a failure never leaves a half-written file. Only regular files are
ever replaced (never a device, folder or pipe), an output may not be one of
the command's inputs, and the new file gets the usual permissions (the old
file's mode, else ``0666 & ~umask``).

Arrays are loaded with ``allow_pickle=False``; the header of every ``.npy``
(also inside an ``.npz``) is checked against the bytes actually present
before anything is allocated, so a truncated or lying file is an error, not
a huge allocation.
"""

from __future__ import annotations

import functools
import math
import os
import re
import stat
import tempfile
import zipfile
from pathlib import Path
from typing import IO, Any, Callable, Sequence

import numpy as np

from .errors import ConvtError

__all__ = ["MAX_BYTES_ENV", "atomic_write", "check_allocation", "check_destination", "ensure_distinct",
           "xml_safe", "load_npy",
           "load_npz", "max_bytes", "save_npy"]

MAX_BYTES_ENV = "CONVT_MAX_BYTES"
_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")


# ---------------------------------------------------------------- writing

def _umask_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def check_destination(path: str | os.PathLike[str], field: str = "output") -> Path:
    """Check ``path`` may be written (a regular file or nothing); return its folder."""
    if os.fspath(path) in ("", "."):
        raise ConvtError(f"{field}: got {os.fspath(path)!r}; expected a file path.", field=field)
    dest = Path(path)
    if dest.exists() and not dest.is_file():
        kind = "a folder" if dest.is_dir() else "not a regular file (a device, pipe or socket)"
        raise ConvtError(f"{field}: {str(dest)!r} is {kind}; expected a path for a regular file.",
                         field=field)
    if dest.is_file() and not dest.stat().st_mode & 0o222:
        raise ConvtError(f"{field}: {str(dest)!r} is read-only; make it writable or choose "
                         f"another path.", field=field)
    folder = dest.parent
    if not folder.is_dir():
        raise ConvtError(f"{field}: folder {str(folder)!r} does not exist.", field=field)
    return folder


def atomic_write(path: str | os.PathLike[str], write: Callable[[str], None],
                 field: str = "output") -> None:
    """Call ``write(tmp_path)`` then rename ``tmp_path`` onto ``path``.

    On any exception the temporary file is removed and ``path`` is untouched.
    OS errors become a :class:`ConvtError` naming ``field`` (and ``path``,
    never the temporary name).
    """
    folder = check_destination(path, field)
    dest = Path(path)
    mode = stat.S_IMODE(dest.stat().st_mode) if dest.exists() else _umask_mode()
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise ConvtError(f"{field}: cannot write in {str(folder)!r}: {exc.strerror or exc}.",
                         field=field) from None
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, mode)
        os.replace(tmp, dest)
    except OSError as exc:
        _remove(tmp)
        raise ConvtError(f"{field}: cannot write {str(dest)!r}: {exc.strerror or exc}.",
                         field=field) from None
    except BaseException:
        _remove(tmp)
        raise


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def ensure_distinct(output: str | os.PathLike[str], field: str = "output",
                    **inputs: str | os.PathLike[str] | None) -> None:
    """Refuse an ``output`` path that is one of the ``inputs`` (keyword = field name)."""
    out = Path(output)
    for name, given in inputs.items():
        if given is None:
            continue
        src = Path(given)
        same = out.exists() and src.exists() and os.path.samefile(out, src)
        if same or out.resolve() == src.resolve():
            raise ConvtError(f"{field}: {str(output)!r} is also the {name} file; writing it "
                             f"would destroy the input, so choose another path.", field=field)


def save_npy(path: str | os.PathLike[str], array: np.ndarray) -> None:
    """Atomically write ``array`` as ``.npy``."""
    def write(tmp: str) -> None:
        with open(tmp, "wb") as fh:
            np.save(fh, array, allow_pickle=False)
    atomic_write(path, write)


_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_safe(text: object) -> str:
    """``str(text)`` with the characters XML 1.0 forbids replaced by ``?``.

    ElementTree escapes ``<>&"`` but writes control characters through,
    which makes the document unparsable; names of configs and ONNX nodes are
    untrusted, so every JUnit string goes through here.
    """
    return _XML_INVALID.sub("?", str(text))


# ---------------------------------------------------------------- memory

def max_bytes() -> tuple[int, str]:
    """The largest single array this tool allocates, and where that limit comes from.

    ``$CONVT_MAX_BYTES`` (a positive, finite number of bytes such as ``4e9``),
    else half of this machine's physical memory.
    """
    env = os.environ.get(MAX_BYTES_ENV)
    if env:
        try:
            value = float(env)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and value >= 1):
            raise ConvtError(f"{MAX_BYTES_ENV}: got {env!r}; expected a positive, finite number "
                             f"of bytes, e.g. 4e9.", field=MAX_BYTES_ENV)
        return int(value), f"set by {MAX_BYTES_ENV}"
    return _half_ram(), f"half this machine's memory; set {MAX_BYTES_ENV} to change it"


@functools.lru_cache(maxsize=1)
def _half_ram() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return 8 << 30


def _gb(n: float) -> str:
    return f"{n / 1e9:.3g} GB"


def check_allocation(shape: Sequence[int], dtype: Any, field: str, what: str) -> None:
    """Refuse to allocate an array of ``shape``/``dtype`` above :func:`max_bytes`.

    The error names ``field`` (the input that implies the size) and ``what``
    (e.g. "the output (1, 40000, 40000, 8)").
    """
    nbytes = math.prod(int(d) for d in shape) * np.dtype(dtype).itemsize
    limit, source = max_bytes()
    if nbytes > limit:
        raise ConvtError(f"{field}: {what} would need {_gb(nbytes)} of memory, more than the "
                         f"{_gb(limit)} allowed ({source}).", field=field)


# ---------------------------------------------------------------- reading

def _check_npy_header(fh: IO[bytes], size: int, where: str, field: str) -> None:
    """Read a ``.npy`` header from ``fh`` and check the data fits in ``size`` bytes."""
    try:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
        else:
            shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
    except Exception as exc:  # noqa: BLE001 - untrusted bytes: any parse failure is a bad file
        raise ConvtError(f"{field}: {where} is not a valid .npy array ({exc}).",
                         field=field) from None
    if dtype.hasobject:
        raise ConvtError(f"{field}: {where} holds Python objects (pickled data), which are "
                         f"never loaded; save plain numeric arrays.", field=field)
    needed = math.prod(shape) * dtype.itemsize
    if needed > size - fh.tell():
        raise ConvtError(f"{field}: {where} is truncated or corrupt: its header declares "
                         f"shape {tuple(shape)} {dtype} ({needed:,} bytes) but only "
                         f"{max(size - fh.tell(), 0):,} bytes follow.", field=field)
    check_allocation(shape, dtype, field, f"{where} (shape {tuple(shape)} {dtype})")


def _magic(path: str | os.PathLike[str], field: str) -> bytes:
    p = Path(path)
    if not p.is_file():
        what = "a folder" if p.is_dir() else "missing"
        raise ConvtError(f"{field}: {str(path)!r} is {what}; expected a file.", field=field)
    try:
        with open(p, "rb") as fh:
            return fh.read(6)
    except OSError as exc:
        raise ConvtError(f"{field}: cannot read {str(path)!r}: {exc.strerror or exc}.",
                         field=field) from None


def load_npy(path: str | os.PathLike[str], field: str = "input") -> np.ndarray:
    """Load one ``.npy`` array without unpickling (header checked before allocating)."""
    magic = _magic(path, field)
    if magic[:4] in _ZIP_MAGICS:
        raise ConvtError(f"{field}: {str(path)!r} is an .npz archive; expected a single "
                         f".npy array.", field=field)
    if magic != _NPY_MAGIC:
        raise ConvtError(f"{field}: {str(path)!r} is not a .npy file (no NumPy header); "
                         f"save it with numpy.save.", field=field)
    with open(path, "rb") as fh:
        _check_npy_header(fh, os.fstat(fh.fileno()).st_size, repr(str(path)), field)
    try:
        return np.load(path, allow_pickle=False)
    except Exception as exc:  # noqa: BLE001 - untrusted bytes
        raise ConvtError(f"{field}: cannot load {str(path)!r} as a .npy array ({exc}).",
                         field=field) from None


def load_npz(path: str | os.PathLike[str], field: str = "weights") -> dict[str, np.ndarray]:
    """Load every array of an ``.npz`` archive without unpickling (headers checked first)."""
    magic = _magic(path, field)
    if magic == _NPY_MAGIC:
        raise ConvtError(f"{field}: {str(path)!r} is a single .npy array; expected an .npz "
                         f"archive (numpy.savez(path, kernel=..., bias=...)).", field=field)
    if magic[:4] not in _ZIP_MAGICS:
        raise ConvtError(f"{field}: {str(path)!r} is not an .npz archive; save it with "
                         f"numpy.savez(path, kernel=..., bias=...).", field=field)
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                with archive.open(info) as member:
                    _check_npy_header(member, info.file_size,
                                      f"member {info.filename!r} of {str(path)!r}", field)
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except ConvtError:
        raise
    except Exception as exc:  # noqa: BLE001 - untrusted bytes: BadZipFile, zlib errors, ...
        raise ConvtError(f"{field}: {str(path)!r} is not a readable .npz archive "
                         f"({type(exc).__name__}: {exc}).", field=field) from None
