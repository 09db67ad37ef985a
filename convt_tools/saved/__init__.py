"""Saved Keras models as input: ``.keras``, legacy ``.h5``, and config + weights files.

Models are untrusted: configs are plain data (:mod:`.configs`), archives and
HDF5 files are read defensively (:mod:`.archive`, :mod:`.hdf5`), and only the
datasets of transposed-conv layers are read (:mod:`.mapping`).

Attributes are imported lazily, so telling a layer config from a saved model
(:func:`sniff`, :mod:`.configs`) imports neither numpy nor h5py.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["LayerRecord", "SavedModel", "open_model", "sniff"]

_WHERE = {"LayerRecord": "records", "SavedModel": "model", "open_model": "model",
          "sniff": "filekind"}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
