"""Open a saved Keras model (untrusted) and list its transposed-conv layers.

Formats, told apart by the file's first bytes (never by its extension):

- a ``.keras`` archive (zip) -> :mod:`.archive`, config + ``model.weights.h5``;
- a legacy ``.h5`` (HDF5 with a ``model_config`` attribute) -> config +
  ``model_weights/``;
- a model config JSON (``model.to_json()`` or ``config.json``), with the
  weights given separately (``weights=``: a Keras 3 ``.weights.h5`` or a
  legacy weights ``.h5``).

Opening reads the config, refuses code payloads (:func:`.configs.scan_for_code`),
walks the layers and checks every transposed-conv layer's stored kernel and bias
shapes against its config (HDF5 metadata only); arrays are read when asked for.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ConvtError
from ..io import check_input_file
from ..spec.values import parse_int
from .archive import ArchiveMember, read_keras_archive
from .configs import (MAX_CONFIG_BYTES, is_model_config, normalize, parse_model_json,
                      scan_for_code, walk_layers)
from .hdf5 import _walk, check_dataset, dataset_shape, open_h5, read_dataset, read_text_attr
from .mapping import WeightLocation, detect_layout, locate
from .records import LayerRecord, expected_weight_shapes, format_dims, make_record
from .filekind import sniff

__all__ = ["SavedModel", "open_model", "sniff"]

@dataclass
class SavedModel:
    """A saved model's transposed-conv layers and access to their real weights."""

    source: str
    kind: str                      # "keras", "h5" or "config"
    weights_source: str | None     # where the weights come from (None: config only)
    layers: list[LayerRecord]
    _h5: ArchiveMember | str | None   # a weights file, or model.weights.h5 in the archive
    _where: str
    _locations: dict[int, WeightLocation]
    _kernel_shapes: dict[int, tuple[int, ...]]

    def select(self, selection: str | int) -> LayerRecord:
        """The layer chosen by ``selection`` (see :meth:`select_with_rule`)."""
        return self.select_with_rule(selection)[0]

    def select_with_rule(self, selection: str | int) -> tuple[LayerRecord, str]:
        """``(layer, rule that matched)`` for ``--layer``.

        An integer (``0``, ``12``) selects by index, always; a path
        (``decoder/up_2``) or a unique name selects that layer. A layer whose
        path or name looks like an integer is reached with ``path:0`` /
        ``name:0``; ``index:N`` is explicit too. A path or name shared by several
        layers is an error asking for the index. The rule says which matched,
        e.g. ``"index 1"``, ``"path 'decoder/up_2'"``.
        """
        text = str(selection)
        kind, _, rest = text.partition(":")
        if kind in ("index", "path", "name") and rest:
            return self._select_by(kind, rest, text)
        if re.fullmatch(r"[+-]?[0-9]+", text.strip()):
            return self._select_by("index", text.strip(), text)
        if any(rec.path == text for rec in self.layers):
            return self._select_by("path", text, text)
        return self._select_by("name", text, text)

    def _select_by(self, kind: str, value: str, given: str) -> tuple[LayerRecord, str]:
        if kind == "index":
            if (re.fullmatch(r"[+]?[0-9]+", value.strip())
                    and (i := parse_int(value.strip(), "layer",
                                        "expected a layer path, name or index")) < len(self.layers)):
                like = [r for r in self.layers if value in (r.path, r.name) and r.index != i]
                hint = (f"; the layer named {value!r} ({like[0].path}, index {like[0].index}) "
                        f"is --layer path:{like[0].path}" if like else "")
                return self.layers[i], f"index {i}{hint}"
            raise ConvtError(f"layer: got {given!r}; an integer selects by index, from 0 to "
                             f"{len(self.layers) - 1}; {self.available()}.", field="layer")
        attr = "path" if kind == "path" else "name"
        found = [rec for rec in self.layers if getattr(rec, attr) == value]
        if len(found) == 1:
            return found[0], f"{attr} {value!r}"
        if len(found) > 1:
            raise ConvtError(f"layer: {given!r} is the {attr} of {len(found)} layers (indexes "
                             f"{', '.join(str(r.index) for r in found)}); give the index.",
                             field="layer")
        raise ConvtError(f"layer: got {given!r}; {self.available()}.", field="layer")

    def available(self) -> str:
        if not self.layers:
            return f"{self.source!r} has no Conv1D/2D/3DTranspose layer"
        listed = ", ".join(f"{r.index}: {r.path} ({r.class_name})" for r in self.layers[:40])
        more = f" and {len(self.layers) - 40} more" if len(self.layers) > 40 else ""
        return f"the transposed-conv layers of {self.source!r} are {listed}{more}"

    def has_weights(self) -> bool:
        return self._h5 is not None

    def input_shape(self, record: LayerRecord) -> tuple[int | None, ...] | None:
        """The recorded input shape, else unknown dims; an unknown channel dim is the stored
        kernel's (the layer then accepts only inputs with that many channels)."""
        kernel = self._kernel_shapes.get(record.index)
        axis = 1 if record.config.get("data_format") == "channels_first" else record.rank + 1
        shape = record.input_shape
        if shape is None:
            if kernel is None:
                return None
            shape = (None,) * (record.rank + 2)
        if kernel is not None and len(shape) == record.rank + 2 and shape[axis] is None:
            shape = shape[:axis] + (kernel[-1],) + shape[axis + 1:]
        return shape

    def weight_location(self, record: LayerRecord) -> WeightLocation | None:
        return self._locations.get(record.index)

    def weights(self, record: LayerRecord) -> tuple[np.ndarray, np.ndarray | None]:
        """The layer's real kernel (Keras layout) and bias, read from the weights file."""
        loc = self._locations.get(record.index)
        if self._h5 is None or loc is None:
            raise ConvtError(f"weights: {self.source!r} carries no weights; give --weights "
                             f"W.h5.", field="weights")
        with open_h5(self._h5, self._where) as root:
            kernel = read_dataset(root, loc.kernel, self._where)
            bias = None if loc.bias is None else read_dataset(root, loc.bias, self._where)
        if kernel is None:  # pragma: no cover - located at open
            raise ConvtError(f"weights: {self._where}: {loc.kernel!r} vanished.", field="weights")
        return kernel, bias


def _read_config(path: str, kind: str | None = None, data: bytes | None = None
                 ) -> tuple[Any, str, ArchiveMember | str | None, str]:
    """``(model config, kind, h5 source, where)`` for ``path`` (``kind``/``data``: what the
    resolver already read, so a model config is read once)."""
    kind = kind or sniff(path)
    if kind == "text" and data is not None:
        return parse_model_json(data, repr(path)), "config", None, repr(path)
    if kind == "zip":
        archive = read_keras_archive(path)
        config = parse_model_json(archive.config, repr(path))
        h5: ArchiveMember | str | None = archive.weights
        return config, "keras", h5, f"{path!r} (model.weights.h5)"
    if kind == "hdf5":
        with open_h5(path, repr(path), field="model") as root:
            text = read_text_attr(root, "model_config", repr(path))
        if text is None:
            raise ConvtError(f"model: {path!r} is a weights-only HDF5 file (no model_config); "
                             f"give the model's config JSON as MODEL and this file with "
                             f"--weights.", field="model")
        return parse_model_json(text, repr(path)), "h5", path, repr(path)
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConvtError(f"model: cannot read {path!r}: {exc.strerror or exc}.",
                         field="model") from None
    return parse_model_json(data, repr(path)), "config", None, repr(path)


def _check_shapes(record: LayerRecord, root: Any, loc: WeightLocation,
                  where: str) -> tuple[int, ...]:
    """Check the stored kernel/bias shapes against the config; return the kernel's shape."""
    import h5py

    kernel_shape, bias_shape = expected_weight_shapes(record)
    shapes: dict[str, tuple[int, ...] | None] = {}
    for name in (loc.kernel, loc.bias):
        if name is None:
            continue
        obj = _walk(root, name, where, "weights")
        if isinstance(obj, h5py.Dataset):
            check_dataset(obj, name, where, "weights")   # metadata only: nothing is read
            shapes[name] = dataset_shape(obj, name, where, "weights")
    got = shapes.get(loc.kernel)
    fits = got is not None and len(got) == len(kernel_shape) and all(
        e is None or e == g for e, g in zip(kernel_shape, got))
    if got is None or not fits:
        raise ConvtError(f"weights: {where}: layer {record.path!r}: the stored kernel {loc.kernel!r} has "
                         f"shape {format_dims(got)}, but the layer's config implies "
                         f"{format_dims(kernel_shape)} (kernel_size + (filters, in_channels)); "
                         f"the weights do not belong to this layer.", field="weights")
    if (bias_shape is None) != (loc.bias is None):
        has = "stores a bias" if loc.bias is not None else "stores no bias"
        raise ConvtError(f"weights: {where}: layer {record.path!r}: the weights file {has}, but the "
                         f"config says use_bias={bias_shape is not None}.", field="weights")
    if loc.bias is not None:
        bgot = shapes.get(loc.bias)
        if bgot != bias_shape:
            raise ConvtError(f"weights: {where}: layer {record.path!r}: the stored bias has shape "
                             f"{format_dims(bgot)}; expected {format_dims(bias_shape)} "
                             f"(filters,).", field="weights")
    if loc.extra:
        raise ConvtError(f"weights: {where}: layer {record.path!r} stores {len(loc.extra) + 2} variables "
                         f"({', '.join(loc.extra)} beyond kernel and bias): a quantized or "
                         f"otherwise modified layer, not supported.", field="weights")
    return got


def open_model(path: str | os.PathLike[str], weights: str | os.PathLike[str] | None = None,
               *, kind: str | None = None, data: bytes | None = None) -> SavedModel:
    """Open a ``.keras`` / legacy ``.h5`` / model config (+ ``weights``) as a :class:`SavedModel`.

    Raises :class:`ConvtError` (one line) for anything unreadable, hostile or
    inconsistent (a stored kernel whose shape does not fit its layer's config).
    """
    src = os.fspath(path)
    check_input_file(src, "model", f"the model {src!r}")
    config, kind, h5, where = _read_config(src, kind, data)
    scan_for_code(config, repr(src))
    config = normalize(config)
    if not is_model_config(config):
        what = config.get("class_name") if isinstance(config, dict) else None
        raise ConvtError(f"model: {src!r} holds a model whose config does not list its layers"
                         f"{f' ({what!r}: a subclassed model?)' if what else ''}; convt-tools "
                         f"reads Sequential and Functional models (nested too).", field="model")
    if weights is not None:
        wpath = os.fspath(weights)
        if sniff(wpath, "weights") != "hdf5":
            raise ConvtError(f"weights: {wpath!r} is not an HDF5 weights file (.weights.h5 or "
                             f".h5).", field="weights")
        h5, where = wpath, repr(wpath)
    records = [make_record(i, found) for i, found in enumerate(walk_layers(config, repr(src)))]
    locations: dict[int, WeightLocation] = {}
    kernel_shapes: dict[int, tuple[int, ...]] = {}
    if h5 is not None:
        with open_h5(h5, where) as root:
            layout = detect_layout(root, where)
            for rec in records:
                found_path = rec.names or tuple(rec.path.split("/"))
                loc = locate(root, layout, found_path, rec.group, where)
                kernel_shapes[rec.index] = _check_shapes(rec, root, loc, where)
                locations[rec.index] = loc
    return SavedModel(source=src, kind=kind,
                      weights_source=None if h5 is None else
                      (os.fspath(weights) if weights is not None else src),
                      layers=records, _h5=h5, _where=where, _locations=locations,
                      _kernel_shapes=kernel_shapes)
