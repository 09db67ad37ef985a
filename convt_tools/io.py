"""Safe file I/O: atomic writes, pickle-free array loading, memory limits.

Writes go to a temporary file in the destination folder and are renamed into
place, so a failure (an exception, Ctrl-C or SIGTERM) never leaves a
half-written or temporary file. Only regular files are ever replaced (never a
device, folder or pipe), a path ending in a slash names a folder and is never
written, and the new file gets the usual permissions (the old file's mode,
else ``0666 & ~umask``).

Inputs are never overwritten: every file a command reads goes through
:func:`check_input_file` (regular files only: a FIFO, ``/dev/zero`` or a
folder is refused before it is opened), which records it while an
:func:`input_scope` is active (each CLI command runs in one); every write
refuses a destination that is one of the recorded inputs, external-data files
of a model included.

Arrays are loaded with ``allow_pickle=False``; the header of every ``.npy``
(also inside an ``.npz``) is checked against the bytes actually present
before anything is allocated, so a truncated or lying file is an error, not
a huge allocation.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import math
import os
import re
import signal
import stat
import tempfile
import threading
import zipfile
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Callable, Iterator, Sequence


from .errors import ConvtError

if TYPE_CHECKING:  # numpy is imported where used: `convt shape` never loads it
    import numpy as np

__all__ = ["MAX_BYTES_ENV", "atomic_write", "atomic_write_files", "cast_checked", "check_allocation",
           "largest_field", "check_destination", "check_input_file", "ensure_distinct", "file_mode",
           "input_scope", "load_npy", "load_npz", "max_bytes", "save_npy", "sigterm_cleanup", "xml_safe"]

MAX_BYTES_ENV = "CONVT_MAX_BYTES"
_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")


# ---------------------------------------------------------------- writing

def _umask_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


# ---------------------------------------------------------------- inputs

# realpath -> (what it is, (st_dev, st_ino)) of every file read in the current scope.
_INPUTS: contextvars.ContextVar[dict[str, tuple[str, tuple[int, int]]] | None] = \
    contextvars.ContextVar("convt_inputs", default=None)


@contextlib.contextmanager
def input_scope() -> Iterator[None]:
    """Record the files read inside (see :func:`check_input_file`); writes refuse them."""
    token = _INPUTS.set({})
    try:
        yield
    finally:
        _INPUTS.reset(token)


def check_input_file(path: str | os.PathLike[str], field: str, what: str | None = None) -> Path:
    """Refuse anything but an existing regular file, before it is opened; record it as an input.

    A FIFO, socket, device (``/dev/zero``) or folder is an error naming
    ``field`` (reading one would hang or never end). ``what`` describes the
    file in "is also ..." messages (default: "the <field> file").
    """
    p = Path(path)
    try:
        st = os.stat(p)
    except OSError as exc:
        if isinstance(exc, (FileNotFoundError, NotADirectoryError)):
            raise ConvtError(f"{field}: {str(path)!r} is missing; expected a file.",
                             field=field) from None
        raise ConvtError(f"{field}: cannot read {str(path)!r}: {exc.strerror or exc}.",
                         field=field) from None
    if not stat.S_ISREG(st.st_mode):
        kind = ("a folder" if stat.S_ISDIR(st.st_mode) else
                "a pipe (FIFO)" if stat.S_ISFIFO(st.st_mode) else
                "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else
                "a socket" if stat.S_ISSOCK(st.st_mode) else "not a regular file")
        raise ConvtError(f"{field}: {str(path)!r} is {kind}; expected a regular file.",
                         field=field)
    inputs = _INPUTS.get()
    if inputs is not None:
        inputs.setdefault(os.path.realpath(p),
                          (what or f"the {field} file {str(path)!r}", (st.st_dev, st.st_ino)))
    return p


def _refuse_inputs(dest: Path, field: str) -> None:
    inputs = _INPUTS.get()
    if not inputs:
        return
    real = os.path.realpath(dest)
    hit = inputs.get(real)
    if hit is None:
        try:
            st = os.stat(dest)
        except OSError:
            return
        hit = next((v for v in inputs.values() if v[1] == (st.st_dev, st.st_ino)), None)
    if hit is not None:
        raise ConvtError(f"{field}: {str(dest)!r} is also {hit[0]}, which this command reads; "
                         f"writing it would destroy the input, so choose another path.",
                         field=field)


# ---------------------------------------------------------------- writing

def check_destination(path: str | os.PathLike[str], field: str = "output") -> Path:
    """Check ``path`` may be written; return its folder.

    Refused: an empty path, a path ending in a slash (it names a folder), an
    existing folder, device, pipe or read-only file, a missing folder, and
    any file the current command reads (:func:`input_scope`).
    """
    if not isinstance(path, (str, os.PathLike)):
        raise ConvtError(f"{field}: got {type(path).__name__} {path!r}; expected a file path "
                         f"(str or os.PathLike).", field=field)
    text = os.fspath(path)
    if text in ("", ".") or not isinstance(text, str):
        raise ConvtError(f"{field}: got {text!r}; expected a file path.", field=field)
    seps = ("/", os.sep) + ((os.altsep,) if os.altsep else ())
    if text.endswith(seps) or text.endswith(tuple(s + "." for s in seps)) or \
            os.path.basename(text) in (".", ".."):
        raise ConvtError(f"{field}: {text!r} ends in a slash, so it names a folder; expected "
                         f"a path for a regular file (drop the trailing slash).", field=field)
    dest = _check_name_length(path, field)
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
    _refuse_inputs(dest, field)
    return folder


def _check_name_length(path: str | os.PathLike[str], field: str) -> Path:
    """Refuse a file name too long for the file system once a temporary suffix is added."""
    dest = Path(path)
    if len(dest.name.encode("utf-8", "surrogateescape")) > 255 - 20:
        raise ConvtError(f"{field}: the file name {dest.name[:40]!r}... is {len(dest.name)} "
                         f"characters long; expected at most about 230 (the file system's "
                         f"limit of 255 bytes, less room for a temporary suffix).", field=field)
    return dest


class Terminated(BaseException):
    """SIGTERM arrived during a write (raised by :func:`sigterm_cleanup`'s handler)."""


@contextlib.contextmanager
def sigterm_cleanup() -> Iterator[None]:
    """While inside, SIGTERM raises :class:`Terminated` so ``finally`` blocks remove temp files.

    The CLI turns it into exit status 143 (128 + SIGTERM). Only the main
    thread can install handlers; elsewhere this does nothing. A handler that is
    not the default one (set by an embedding application) is left alone.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)
    if previous not in (signal.SIG_DFL, None) and previous is not _raise_terminated:
        yield
        return

    signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


def _raise_terminated(signum: int, frame: Any) -> None:
    raise Terminated()


def atomic_write(path: str | os.PathLike[str], write: Callable[[str], None],
                 field: str = "output") -> None:
    """Call ``write(tmp_path)`` then rename ``tmp_path`` onto ``path``.

    On any exception (SIGTERM included) the temporary file is removed and
    ``path`` is untouched. OS errors become a :class:`ConvtError` naming
    ``field`` (and ``path``, never the temporary name).
    """
    atomic_write_files([(path, write)], field)


def file_mode(dest: Path) -> int:
    """The mode a new ``dest`` gets: the old file's mode, else ``0666 & ~umask``."""
    return stat.S_IMODE(dest.stat().st_mode) if dest.exists() else _umask_mode()


def atomic_write_files(items: Sequence[tuple[str | os.PathLike[str], Callable[[str], None]]],
                       field: str = "output") -> None:
    """Write several files, each through a temporary file renamed into place in the given order.

    Every destination is checked first (:func:`check_destination`); every
    file gets the usual permissions; on failure every temporary file is
    removed (renames already done stay: list the file the others refer to, e.g.
    a model's external data, first).
    """
    plans = [(Path(p), check_destination(p, field), w) for p, w in items]
    tmps: list[str] = []
    current = plans[-1][0] if plans else Path(".")
    with sigterm_cleanup():
        try:
            staged = []
            for dest, folder, write in plans:
                current = dest
                try:
                    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name[:200]}.", suffix=".tmp",
                                               dir=folder)
                except OSError as exc:
                    raise ConvtError(f"{field}: cannot write in {str(folder)!r}: "
                                     f"{exc.strerror or exc}.", field=field) from None
                tmps.append(tmp)
                os.close(fd)
                write(tmp)
                os.chmod(tmp, file_mode(dest))
                staged.append((tmp, dest))
            for tmp, dest in staged:
                current = dest
                os.replace(tmp, dest)
        except OSError as exc:
            raise ConvtError(f"{field}: cannot write {str(current)!r}: "
                             f"{exc.strerror or exc}.", field=field) from None
        finally:
            for tmp in tmps:
                _remove(tmp)


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def ensure_distinct(output: str | os.PathLike[str], field: str = "output",
                    **inputs: str | os.PathLike[str] | None) -> None:
    """Refuse, before any work, an ``output`` that is one of the ``inputs`` (keyword = field name).

    Every write also checks its destination (:func:`check_destination`: not a
    folder, not a file the command read), so this is the early, explicit half.
    """
    out = _check_name_length(output, field)
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
    import numpy as np

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
    if n >= 10**300:                   # an int beyond float range: say its size in digits
        return f"about 1e{len(str(int(n))) - 10} GB" if len(str(int(n))) < 4300 else \
            "more than 1e4000 GB"
    return f"{n / 1e9:.3g} GB"


def cast_checked(arr: Any, dtype: Any, field: str) -> Any:
    """``arr`` as ``dtype`` (a float dtype); a finite value outside ``dtype``'s range is a
    ConvtError naming ``field`` (never a NumPy overflow RuntimeWarning, never a silent inf).

    Non-finite values already in ``arr`` pass through (the callers' own checks judge them).
    """
    import numpy as np

    arr = np.asarray(arr)
    target = np.dtype(dtype)
    with np.errstate(over="ignore", invalid="ignore"):
        out = arr.astype(target, copy=False)
    if out is not arr and target.kind == "f" and arr.dtype.kind == "f" and arr.size \
            and target.itemsize < arr.dtype.itemsize:
        lost = np.isinf(out) & np.isfinite(arr)
        if lost.any():
            big = float(np.abs(arr[lost]).max())
            raise ConvtError(f"{field}: holds {big:.3g}, beyond the {target.name} range "
                             f"(largest {float(np.finfo(target).max):.3g}); expected values "
                             f"that fit the {target.name} model.", field=field)
    return out


def largest_field(factors: dict[str, int]) -> str:
    """The field whose value contributes most to an array's size (what a memory error names)."""
    return max(factors, key=lambda k: factors[k])


def check_allocation(shape: Sequence[int], dtype: Any, field: str, what: str) -> None:
    """Refuse to allocate an array of ``shape``/``dtype`` above :func:`max_bytes`.

    The error names ``field`` (the input that implies the size) and ``what``
    (e.g. "the output (1, 40000, 40000, 8)").
    """
    import numpy as np

    nbytes = math.prod(int(d) for d in shape) * np.dtype(dtype).itemsize
    limit, source = max_bytes()
    if nbytes > limit:
        raise ConvtError(f"{field}: {what} would need {_gb(nbytes)} of memory, more than the "
                         f"{_gb(limit)} allowed ({source}).", field=field)


# ---------------------------------------------------------------- reading

def _check_npy_header(fh: IO[bytes], size: int, where: str, field: str) -> None:
    """Read a ``.npy`` header from ``fh`` and check the data fits in ``size`` bytes."""
    import numpy as np

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
    p = check_input_file(path, field)
    try:
        with open(p, "rb") as fh:
            return fh.read(6)
    except OSError as exc:
        raise ConvtError(f"{field}: cannot read {str(path)!r}: {exc.strerror or exc}.",
                         field=field) from None


def load_npy(path: str | os.PathLike[str], field: str = "input") -> np.ndarray:
    """Load one ``.npy`` array without unpickling (header checked before allocating)."""
    import numpy as np

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
    import numpy as np

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
