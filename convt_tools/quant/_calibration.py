"""Calibration inputs for ``export --quantize``: a ``.npy`` file, or seeded draws.

The batch is for the model's graph input (the layer's own layout: Keras
``channels_last`` is ``(N, *spatial, C)``). :func:`load_calibration` reads
the file with :func:`convt_tools.io.load_npy` (``allow_pickle=False``, the
header checked against the bytes) and requires a finite float array of the
input's rank whose fixed dims (all but the batch) match;
:func:`seeded_calibration` draws :data:`SEEDED_BATCH` standard-normal samples
(``numpy.random.default_rng(seed)``), unknown dims set to :data:`SEEDED_SIZE`.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..errors import ConvtError
from ..io import load_npy

__all__ = ["SEEDED_BATCH", "SEEDED_SIZE", "check_calibration", "load_calibration",
           "seeded_calibration"]

SEEDED_BATCH = 8
SEEDED_SIZE = 8


def _shape_text(dims: Sequence[int | str | None]) -> str:
    """``(?, 4, 5, 4)``: the batch and unknown dims are free."""
    return "(" + ", ".join("?" if i == 0 or not isinstance(d, int) else str(d)
                           for i, d in enumerate(dims)) + ")"


def check_calibration(x: np.ndarray, dims: Sequence[int | str | None],
                      where: str = "calibration") -> np.ndarray:
    """``x`` as float64 if it fits the input ``dims`` (ints fixed, else free; the batch is
    always free); else a one-line ConvtError naming ``calibration``."""
    if x.dtype.kind not in "fiu":
        raise ConvtError(f"calibration: {where} holds {x.dtype} values; expected a float "
                         f"array shaped like the input {_shape_text(dims)}.", field="calibration")
    fixed = [(i, d) for i, d in enumerate(dims) if isinstance(d, int) and i > 0]
    if x.ndim != len(dims) or any(x.shape[i] != d for i, d in fixed):
        raise ConvtError(f"calibration: {where} has shape {tuple(x.shape)}; expected the "
                         f"layer's input {_shape_text(dims)} (any batch, ? = any size).",
                         field="calibration")
    if x.shape[0] == 0 or x.size == 0:
        raise ConvtError(f"calibration: {where} has shape {tuple(x.shape)}, no values; expected "
                         f"at least one sample of the input {_shape_text(dims)}.",
                         field="calibration")
    x64 = x.astype(np.float64)
    if not np.isfinite(x64).all():
        raise ConvtError(f"calibration: {where} holds NaN or infinite values; expected finite "
                         f"samples.", field="calibration")
    return x64


def load_calibration(path: str, dims: Sequence[int | str | None]) -> np.ndarray:
    """The calibration batch in ``path`` (a ``.npy``) for an input of ``dims``."""
    return check_calibration(load_npy(path, field="calibration"), dims, repr(path))


def seeded_calibration(dims: Sequence[int | str | None], seed: int) -> np.ndarray:
    """:data:`SEEDED_BATCH` standard-normal samples for an input of ``dims`` (module docstring)."""
    shape = [SEEDED_BATCH] + [d if isinstance(d, int) else SEEDED_SIZE for d in dims[1:]]
    return np.random.default_rng(seed).standard_normal(shape)
