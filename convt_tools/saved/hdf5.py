"""Safe, minimal HDF5 access for untrusted Keras weight files (h5py).

Only the groups, attributes and datasets that the caller names are touched,
one path component at a time. Refused (one-line :class:`ConvtError`, field
``weights`` or ``model``):

- any link that is not a plain hard link (external links point at other
  files; soft links are never written by Keras and can alias or leave the
  tree), on the way to a group, attribute or dataset;
- external datasets (raw data in other files), virtual datasets (data mapped
  from other files), and datasets whose filters are not HDF5's built-in
  ones (an unknown filter makes HDF5 load a plugin library);
- datasets that are not plain float arrays, have more than
  :data:`MAX_RANK` dimensions, declare more bytes than the memory limit
  (:func:`convt_tools.io.max_bytes`), or declare more than
  :data:`MAX_EXPANSION` times the bytes they store once above
  :data:`EXPANSION_FLOOR` (shape/decompression bombs);
- attributes that are not strings, bytes or arrays of them, or exceed
  :data:`MAX_ATTR_BYTES`, and text that is not UTF-8;
- a damaged file: whatever h5py/HDF5 raises while a file is opened or an
  object, attribute or dataset is read (``RuntimeError``, ``KeyError``,
  ``TypeError``... from a corrupt header, heap or B-tree) becomes one line
  naming the file and the member (:func:`guard`), as does a null dataspace.
"""

from __future__ import annotations

import io
import math
import os
from contextlib import contextmanager
from typing import IO, Any, Iterator

import numpy as np

from ..errors import ConvtError
from ..io import max_bytes

__all__ = ["MAX_RANK", "open_h5", "get_group", "has_group", "read_dataset", "read_text_attr",
           "read_names_attr", "check_dataset", "dataset_shape", "guard"]

MAX_RANK = 6
MAX_EXPANSION = 1000
EXPANSION_FLOOR = 1 << 16
MAX_ATTR_BYTES = 64 << 20
# HDF5's built-in filters: deflate, shuffle, fletcher32, szip, nbit, scaleoffset; and lzf
# (compiled into h5py). Anything else would make HDF5 search for a plugin library.
_SAFE_FILTERS = {1, 2, 3, 4, 5, 6, 32000}


def _h5py() -> Any:
    try:
        import h5py
    except ImportError:  # pragma: no cover - h5py is a runtime dependency
        raise ConvtError("model: reading Keras .keras/.h5 files needs h5py; install it with "
                         "'pip install h5py'.", field="model") from None
    return h5py


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or "no detail"
    return f"{type(exc).__name__}: {text[:300]}"


@contextmanager
def guard(where: str, member: str, field: str = "weights") -> Iterator[None]:
    """Turn any error of h5py/HDF5 in the block into one line naming ``where`` and ``member``.

    h5py reports a damaged file with whatever exception its C layer maps the
    HDF5 error to (``RuntimeError``, ``KeyError``, ``TypeError``, ``ValueError``,
    ``OSError``, even ``MemoryError`` for a huge declared size); every one of
    them is bad input here. :class:`ConvtError` passes through unchanged.
    """
    try:
        yield
    except ConvtError:
        raise
    except Exception as exc:  # noqa: BLE001 - the library boundary: any error is bad input
        raise ConvtError(f"{field}: {where}: cannot read {member} ({_one_line(exc)}); the file "
                         f"is damaged or was not written by Keras.", field=field) from None


def _name(obj: Any) -> str:
    """The HDF5 path of ``obj`` for messages (``?`` if even that cannot be read)."""
    try:
        return str(obj.name)
    except Exception:  # noqa: BLE001 - a damaged object; only a label is at stake
        return "?"


_GCOL = b"GCOL\x01\x00\x00\x00"   # a global heap collection: signature, version 1, reserved
_GCOL_MIN = 4096                    # HDF5 never writes a smaller collection
_SCAN_CHUNK = 1 << 20


def _check_heap_collection(block: bytes, offset: int, where: str, field: str) -> None:
    """Walk one global heap collection's objects the way HDF5 2.0 does; refuse one on which
    HDF5 would loop for ever (an object that does not advance) or run past the end."""
    size = len(block)
    p = 16
    while p < size:
        if p + 16 > size:   # too small for an object header: HDF5 takes it as free space
            return
        index = int.from_bytes(block[p:p + 2], "little")
        length = int.from_bytes(block[p + 8:p + 16], "little")
        need = 16 + ((length + 7) & ~7) if index else length
        if need <= 0 or p + need > size:
            raise ConvtError(f"{field}: {where}: the global heap collection at byte {offset:,} "
                             f"is damaged (object {index} at byte {offset + p:,} declares "
                             f"{length:,} bytes); the file is damaged or was not written by "
                             f"Keras.", field=field)
        p += need


def _check_global_heaps(fh: Any, where: str, field: str) -> None:
    """Refuse a file whose global heap (where HDF5 keeps variable-length strings such as
    ``model_config``) would make HDF5 2.0 loop for ever instead of failing.

    Reads the file once, in chunks; only blocks that look like a collection
    (signature, version 1, a plausible size) are walked.
    """
    fh.seek(0, os.SEEK_END)
    end = fh.tell()
    pos, tail = 0, b""
    while pos < end:
        fh.seek(pos)
        chunk = tail + fh.read(_SCAN_CHUNK)
        base = pos - len(tail)
        if len(chunk) == len(tail):
            break
        at = chunk.find(_GCOL)
        while at >= 0:
            start = base + at
            fh.seek(start + 8)
            size = int.from_bytes(fh.read(8), "little")
            if _GCOL_MIN <= size <= min(end - start, MAX_ATTR_BYTES + _GCOL_MIN):
                fh.seek(start)
                _check_heap_collection(fh.read(size), start, where, field)
            at = chunk.find(_GCOL, at + 1)
        pos = base + len(chunk)
        tail = chunk[-(len(_GCOL) - 1):]
    fh.seek(0)


@contextmanager
def open_h5(source: Any, where: str, field: str = "weights") -> Iterator[Any]:
    """Open an HDF5 file read-only: a path, bytes, or an archive member (``.open()``).

    Errors in the ``with`` block that no finer :func:`guard` named (h5py's,
    whatever their type) become one line naming the file.
    """
    h5py = _h5py()
    fh: IO[bytes] | None = None
    try:
        if isinstance(source, bytes):
            fh = io.BytesIO(source)
        elif hasattr(source, "open"):
            fh = source.open()
        else:
            fh = open(os.fspath(source), "rb")  # noqa: SIM115 - closed below or in finally
        _check_global_heaps(fh, where, field)
        if isinstance(source, (bytes, str, os.PathLike)):
            fh.close()
            fh = None
        if isinstance(source, bytes):
            handle = h5py.File(io.BytesIO(source), "r")
        elif fh is not None:
            handle = h5py.File(fh, "r")
        else:
            handle = h5py.File(os.fspath(source), "r", locking=False)
    except ConvtError:
        if fh is not None:
            fh.close()
        raise
    except Exception as exc:  # noqa: BLE001 - any error of the library: not a readable file
        if fh is not None:
            fh.close()
        raise ConvtError(f"{field}: {where} is not a readable HDF5 file ({_one_line(exc)}).",
                         field=field) from None
    try:
        with guard(where, "the file's groups", field):
            yield handle
    finally:
        try:
            handle.close()
        except Exception:  # noqa: BLE001 - closing a damaged file; nothing left to read
            pass
        if fh is not None:
            fh.close()


def _link_ok(group: Any, name: str, where: str, field: str) -> bool:
    """True if ``name`` exists in ``group`` as a hard link; refuse any other link kind."""
    h5py = _h5py()
    try:
        link = group.get(name, getlink=True)
    except (KeyError, ValueError):
        return False
    if link is None:
        return False
    if not isinstance(link, h5py.HardLink):
        kind = type(link).__name__
        target = getattr(link, "filename", None) or getattr(link, "path", "")
        raise ConvtError(f"{field}: {where} refused: {group.name.rstrip('/')}/{name} is an HDF5 "
                         f"{kind} (to {target!r}); only plain groups and datasets are read.",
                         field=field)
    return True


def _walk(root: Any, path: str, where: str, field: str) -> Any | None:
    """The object at ``path`` (components split on '/'), following hard links only.

    A ``.`` or ``..`` component is refused (Keras never writes one; HDF5 would
    resolve it against the wrong group).
    """
    current = root
    h5py = _h5py()
    parts = [p for p in path.split("/") if p]
    for i, part in enumerate(parts):
        if part in (".", ".."):
            raise ConvtError(f"{field}: {where}: the HDF5 path {path!r} has a {part!r} "
                             f"component; Keras writes plain names.", field=field)
        with guard(where, f"{'/'.join(parts[:i + 1])!r}", field):
            if not isinstance(current, h5py.Group) or not _link_ok(current, part, where, field):
                return None
            current = current[part]
    return current


def has_group(root: Any, path: str, where: str, field: str = "weights") -> bool:
    """True if ``path`` is a group reached through hard links only."""
    obj = _walk(root, path, where, field)
    return obj is not None and isinstance(obj, _h5py().Group)


def get_group(root: Any, path: str, where: str, field: str = "weights") -> Any:
    """The group at ``path``; a clear error if it is missing or not a group."""
    obj = _walk(root, path, where, field)
    if obj is None or not isinstance(obj, _h5py().Group):
        raise ConvtError(f"{field}: {where} has no group {path!r}.", field=field)
    return obj


def dataset_shape(dset: Any, label: str, where: str, field: str) -> tuple[int, ...]:
    """The dataset's shape; a null dataspace (no values at all) is refused."""
    with guard(where, f"dataset {label!r}", field):
        shape = dset.shape
    if shape is None:
        raise ConvtError(f"{field}: {where}: dataset {label!r} has a null dataspace (no "
                         f"values); expected a float array.", field=field)
    return tuple(int(d) for d in shape)


def check_dataset(dset: Any, label: str, where: str, field: str) -> None:
    """Refuse an external, virtual, plugin-filtered, non-float, oversized or bomb dataset.

    Reads HDF5 metadata only.
    """
    with guard(where, f"dataset {label!r}", field):
        _check_dataset(dset, label, where, field)


def _check_dataset(dset: Any, label: str, where: str, field: str) -> None:
    if dset.external:
        raise ConvtError(f"{field}: {where} refused: dataset {label!r} keeps its data in an "
                         f"external file ({dset.external[0][0]!r}).", field=field)
    if dset.is_virtual:
        raise ConvtError(f"{field}: {where} refused: dataset {label!r} is a virtual dataset "
                         f"(data mapped from other files).", field=field)
    plist = dset.id.get_create_plist()
    for i in range(plist.get_nfilters()):
        code = plist.get_filter(i)[0]
        if code not in _SAFE_FILTERS:
            raise ConvtError(f"{field}: {where} refused: dataset {label!r} needs HDF5 filter "
                             f"{code}, not a built-in one (it would load a plugin library).",
                             field=field)
    dtype = dset.dtype
    if dtype.kind != "f" or dtype.fields is not None or dtype.subdtype is not None:
        raise ConvtError(f"{field}: {where}: dataset {label!r} has dtype {dtype}; expected a "
                         f"float array.", field=field)
    shape = dataset_shape(dset, label, where, field)
    if len(shape) > MAX_RANK:
        raise ConvtError(f"{field}: {where}: dataset {label!r} has {len(shape)} dimensions; "
                         f"expected at most {MAX_RANK}.", field=field)
    declared = math.prod(shape) * dtype.itemsize
    limit, source = max_bytes()
    if declared > limit:
        raise ConvtError(f"{field}: {where} refused: dataset {label!r} declares shape {shape} "
                         f"({declared:,} bytes), more than the {limit:,} allowed ({source}).",
                         field=field)
    stored = dset.id.get_storage_size()
    if declared > EXPANSION_FLOOR and declared > MAX_EXPANSION * stored:
        raise ConvtError(f"{field}: {where} refused: dataset {label!r} declares {declared:,} "
                         f"bytes but stores {stored:,} (a shape/decompression bomb).",
                         field=field)


def read_dataset(group: Any, name: str, where: str, field: str = "weights") -> np.ndarray | None:
    """The float array at ``name`` (a path below ``group``), or None if absent; checked first."""
    obj = _walk(group, name, where, field)
    if obj is None:
        return None
    label = f"{group.name.rstrip('/')}/{name}"
    if not isinstance(obj, _h5py().Dataset):
        raise ConvtError(f"{field}: {where}: {label!r} is not a dataset.", field=field)
    check_dataset(obj, label, where, field)
    with guard(where, f"dataset {label!r}", field):
        return np.asarray(obj[()])


def _attr(obj: Any, name: str, where: str, field: str) -> Any | None:
    with guard(where, f"attribute {name!r} of {_name(obj)!r}", field):
        return _attr_value(obj, name, where, field)


def _attr_value(obj: Any, name: str, where: str, field: str) -> Any | None:
    if name not in obj.attrs:
        return None
    aid = obj.attrs.get_id(name)
    if aid.get_storage_size() > MAX_ATTR_BYTES:
        raise ConvtError(f"{field}: {where}: attribute {name!r} is over {MAX_ATTR_BYTES:,} "
                         f"bytes.", field=field)
    kind = aid.dtype.kind
    if kind not in ("S", "U", "O", "f") or aid.dtype.fields is not None:
        raise ConvtError(f"{field}: {where}: attribute {name!r} has dtype {aid.dtype}; expected "
                         f"text.", field=field)
    if kind == "O" and _h5py().check_string_dtype(aid.dtype) is None:
        raise ConvtError(f"{field}: {where}: attribute {name!r} holds references or objects; "
                         f"expected text.", field=field)
    return obj.attrs[name]


def _text(value: Any, name: str, where: str, field: str) -> str:
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8", errors="strict")
        except UnicodeDecodeError as exc:
            raise ConvtError(f"{field}: {where}: attribute {name!r} is not UTF-8 text "
                             f"({exc.reason} at byte {exc.start}).", field=field) from None
    if isinstance(value, np.ndarray) and value.shape == ():
        return _text(value[()], name, where, field)
    if not isinstance(value, str):
        raise ConvtError(f"{field}: {where}: attribute {name!r} is not text.", field=field)
    return value


def read_text_attr(obj: Any, name: str, where: str, field: str = "model") -> str | None:
    """A string attribute (e.g. ``model_config``), or None if absent."""
    value = _attr(obj, name, where, field)
    return None if value is None else _text(value, name, where, field)


def read_names_attr(obj: Any, name: str, where: str, field: str = "weights") -> list[str] | None:
    """A list-of-names attribute, also when Keras split it into ``name0``, ``name1``, ...

    (Keras splits attributes over HDF5's 64 KB header limit that way.) An empty
    list is stored by Keras as an empty float array.
    """
    value = _attr(obj, name, where, field)
    if value is None:
        chunks: list[Any] = []
        while len(chunks) < 10_000:
            part = _attr(obj, f"{name}{len(chunks)}", where, field)
            if part is None:
                break
            chunks.append(part)
        if not chunks:
            return None
        with guard(where, f"attribute {name!r} of {_name(obj)!r}", field):
            value = np.concatenate([np.atleast_1d(c) for c in chunks])
    arr = np.atleast_1d(np.asarray(value))
    if arr.size == 0:
        return []
    if arr.dtype.kind == "f":
        raise ConvtError(f"{field}: {where}: attribute {name!r} holds numbers; expected names.",
                         field=field)
    return [_text(v, name, where, field) for v in arr.ravel()]
