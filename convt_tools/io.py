"""Safe file I/O: atomic writes and pickle-free array loading.

Writes go to a temporary file in the destination folder and are renamed into
place, so a failure never leaves a half-written file. Arrays are loaded with
``allow_pickle=False``: object arrays in an input file are refused.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np

from .errors import ConvtError

__all__ = ["atomic_write", "load_npy", "load_npz", "save_npy"]


def atomic_write(path: str | os.PathLike[str], write: Callable[[str], None]) -> None:
    """Call ``write(tmp_path)`` then rename ``tmp_path`` onto ``path``.

    On any exception the temporary file is removed and ``path`` is untouched.
    """
    dest = Path(path)
    folder = dest.parent if str(dest.parent) else Path(".")
    if not folder.is_dir():
        raise ConvtError(f"output: folder {str(folder)!r} does not exist.", field="output")
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=folder)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, dest)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def load_npy(path: str | os.PathLike[str], field: str = "input") -> np.ndarray:
    """Load one ``.npy`` array without unpickling."""
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise ConvtError(f"{field}: cannot load {str(path)!r} as a .npy array ({exc}).",
                         field=field) from None
    if isinstance(arr, np.lib.npyio.NpzFile):
        arr.close()
        raise ConvtError(f"{field}: {str(path)!r} is an .npz archive; expected a single .npy array.",
                         field=field)
    return arr


def load_npz(path: str | os.PathLike[str], field: str = "weights") -> dict[str, np.ndarray]:
    """Load every array of an ``.npz`` archive without unpickling."""
    try:
        with np.load(path, allow_pickle=False) as data:
            if not isinstance(data, np.lib.npyio.NpzFile):
                raise ValueError("not an .npz archive")
            return {k: data[k] for k in data.files}
    except (OSError, ValueError, EOFError) as exc:
        raise ConvtError(f"{field}: cannot load {str(path)!r} as an .npz archive ({exc}).",
                         field=field) from None


def save_npy(path: str | os.PathLike[str], array: np.ndarray) -> None:
    """Atomically write ``array`` as ``.npy``."""
    def write(tmp: str) -> None:
        with open(tmp, "wb") as fh:
            np.save(fh, array, allow_pickle=False)
    atomic_write(path, write)
