"""Per-thread scratch arrays for :mod:`convt_tools.reference` (GEMM results, accumulators).

A fresh multi-megabyte ``np.empty`` per call is fresh pages from the OS on
most calls (glibc serves large blocks by ``mmap``), and first-touching them
costs as much as the col2im adds themselves on a small layer. Scratch arrays
up to :data:`SCRATCH_MAX` bytes are therefore kept per thread and name and
reused; larger ones are allocated per call (bounded memory, e.g. ``validate
--model`` on big layers). Never returned to a caller: results are always
fresh arrays.
"""

from __future__ import annotations

import math
import threading

import numpy as np

SCRATCH_MAX = 1 << 23   # bytes kept per thread and name (8 MiB)
_LOCAL = threading.local()


def scratch(name: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """An uninitialised C-contiguous ``shape`` array, reused across calls when small."""
    size = math.prod(shape)
    nbytes = size * dtype.itemsize
    if nbytes > SCRATCH_MAX:
        return np.empty(shape, dtype=dtype)
    pool = getattr(_LOCAL, "pool", None)
    if pool is None:
        pool = _LOCAL.pool = {}
    key = (name, dtype)
    base = pool.get(key)
    if base is None or base.size < size:
        base = pool[key] = np.empty(max(size, 1 << 12), dtype=dtype)
    return base[:size].reshape(shape)
