"""Saved Keras models as input: ``.keras``, legacy ``.h5``, and config + weights files.

Models are untrusted: configs are plain data (:mod:`.configs`), archives and
HDF5 files are read defensively (:mod:`.archive`, :mod:`.hdf5`), and only the
datasets of transposed-conv layers are read (:mod:`.mapping`).
"""

from __future__ import annotations

from .model import SavedModel, open_model, sniff
from .records import LayerRecord

__all__ = ["LayerRecord", "SavedModel", "open_model", "sniff"]
