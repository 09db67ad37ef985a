"""A whole torch model described without pickle: a JSON module list plus an ``.npz`` of weights.

The description (what :func:`describe_torch_model` writes, what ``convt verify``
and the other saved-model commands read as SOURCE)::

    {"format": "convt-tools torch model description v1",          (optional)
     "forward": "modules applied in list order",                  (optional)
     "input_shape": [1, 4, 5, 5],                                 (optional, batched NC...)
     "modules": [{"qualname": "up.0",
                  "module_class": "torch.nn.ConvTranspose2d",
                  "kwargs": {...the module's constructor kwargs...}}, ...]}

and ``NAME.weights.npz`` beside it (``NAME``: the JSON file's stem, ``m.json`` ->
``m.weights.npz``) or ``--weights``, keyed ``<qualname>.weight`` /
``<qualname>.bias`` (read with ``allow_pickle=False``). Only the
``ConvTranspose{1,2,3}d`` modules are layers; the others (activations, other
modules) are listed for the record. With ``input_shape`` and
``"forward": "modules applied in list order"`` each layer's input shape follows
from the chain (shape-preserving activations, the layers' own output shapes);
otherwise it is ``(None, in_channels, None...)``.

:class:`TorchModel` offers what :class:`~convt_tools.saved.SavedModel` offers
(``layers``, ``select_with_rule``, ``weights``, ``input_shape``), so the one
resolver (:mod:`convt_tools.sources`) serves it to every saved-model command.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from ..errors import ConvtError
from ..io import check_input_file, load_npz
from .compute import check_torch_weights
from .description import DESCRIPTION_FORMAT, is_torch_model_description, weights_beside
from .spec import TORCH_MODULES, TorchConvTransposeSpec, parse_torch_config

__all__ = ["DESCRIPTION_FORMAT", "SHAPE_PRESERVING", "TorchModel", "TorchModuleRecord",
           "describe_torch_model", "is_torch_model_description", "parse_torch_model",
           "weights_beside"]

_SEQUENTIAL = "modules applied in list order"

# Elementwise modules whose output has their input's shape (the shape chain runs through them).
SHAPE_PRESERVING = frozenset({
    "ReLU", "ReLU6", "LeakyReLU", "PReLU", "ELU", "SELU", "CELU", "GELU", "SiLU", "Mish",
    "Sigmoid", "Tanh", "Hardtanh", "Hardsigmoid", "Hardswish", "Softplus", "Softsign",
    "Identity", "Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "Tanhshrink",
})
_CONVT_CLASS = re.compile(r"^(?:torch\.nn\.(?:modules\.conv\.)?)?(ConvTranspose[123]d)$")


@dataclass(frozen=True)
class TorchModuleRecord:
    """One ConvTranspose module of a described model (the saved-model layer record's fields)."""

    index: int
    path: str                     # the qualname, e.g. "up.0"
    name: str
    class_name: str               # ConvTranspose2d
    rank: int
    spec: TorchConvTransposeSpec
    input_shape: tuple[int | None, ...] | None
    config: Mapping[str, Any] = field(default_factory=dict)
    unsupported: str | None = None


@dataclass
class TorchModel:
    """A described torch model: its ConvTranspose modules and their weights."""

    source: str
    weights_source: str | None
    layers: list[TorchModuleRecord]
    modules: list[dict[str, Any]]
    input_shape_given: tuple[int, ...] | None
    _arrays: dict[str, np.ndarray] | None
    kind: str = "torch-description"

    def has_weights(self) -> bool:
        return self._arrays is not None

    def available(self) -> str:
        if not self.layers:
            return f"{self.source!r} describes no ConvTranspose1d/2d/3d module"
        listed = ", ".join(f"{r.index}: {r.path} ({r.class_name})" for r in self.layers)
        return f"the ConvTranspose modules of {self.source!r} are {listed}"

    def select(self, selection: str | int) -> TorchModuleRecord:
        return self.select_with_rule(selection)[0]

    def select_with_rule(self, selection: str | int) -> tuple[TorchModuleRecord, str]:
        """``--layer``: a qualname (``up.0``), or ``index:N`` / an integer that is no qualname."""
        text = str(selection)
        for rec in self.layers:
            if rec.path == text:
                return rec, f"qualname {text!r}"
        kind, _, rest = text.partition(":")
        number = rest if kind == "index" else text
        if re.fullmatch(r"[0-9]+", number.strip()) and int(number) < len(self.layers):
            return self.layers[int(number)], f"index {int(number)}"
        raise ConvtError(f"layer: got {text!r}; {self.available()}.", field="layer")

    def input_shape(self, record: TorchModuleRecord) -> tuple[int | None, ...] | None:
        return record.input_shape

    def weights(self, record: TorchModuleRecord) -> tuple[np.ndarray, np.ndarray | None]:
        """The module's ``weight`` (torch layout) and ``bias`` from the ``.npz``."""
        if self._arrays is None:
            raise ConvtError(f"weights: {self.source!r} has no weights file beside it "
                             f"({weights_beside(self.source)!r}); give --weights W.npz.",
                             field="weights")
        return self._arrays[f"{record.path}.weight"], self._arrays.get(f"{record.path}.bias")


def _shape(value: Any) -> tuple[int, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool)
                                              and v >= 1 for v in value):
        raise ConvtError(f"input_shape: got {value!r}; expected a list of positive integers "
                         f"(batched N, C, spatial...).", field="input_shape")
    return tuple(value)


def parse_torch_model(obj: Any, path: str, weights: str | None = None) -> TorchModel:
    """Validate a description (module docstring) and load its weights (``weights`` or beside)."""
    if not is_torch_model_description(obj):
        raise ConvtError(f"modules: {path!r} is not a torch model description; expected "
                         f"{{\"modules\": [{{\"qualname\", \"module_class\", \"kwargs\"}}, ...]}}.",
                         field="modules")
    given = _shape(obj.get("input_shape"))
    sequential = obj.get("forward", _SEQUENTIAL) == _SEQUENTIAL
    shape: tuple[int | None, ...] | None = given if sequential else None
    records: list[TorchModuleRecord] = []
    seen: set[str] = set()
    for i, entry in enumerate(obj["modules"]):
        if not isinstance(entry, dict) or not isinstance(entry.get("qualname"), str) \
                or not isinstance(entry.get("module_class"), str):
            raise ConvtError(f"modules: entry {i} is {entry!r}; expected an object with "
                             f"\"qualname\" and \"module_class\" strings and \"kwargs\".",
                             field="modules")
        qualname, cls = entry["qualname"], entry["module_class"]
        if qualname in seen:
            raise ConvtError(f"qualname: {qualname!r} appears twice in {path!r}; qualnames are "
                             f"unique.", field="qualname")
        seen.add(qualname)
        kwargs = entry.get("kwargs", {})
        if not isinstance(kwargs, dict):
            raise ConvtError(f"kwargs: module {qualname!r}: got {kwargs!r}; expected an object of "
                             f"constructor arguments.", field="kwargs")
        short = cls.rsplit(".", 1)[-1]
        match = _CONVT_CLASS.match(cls)
        if match is None:
            if short not in SHAPE_PRESERVING:
                shape = None
            continue
        module = match.group(1)
        rank = next(r for r, name in TORCH_MODULES.items() if name == module)
        try:
            spec = parse_torch_config({**kwargs, "module": module}, rank=rank)
        except ConvtError as exc:
            raise ConvtError(f"{exc.field or 'kwargs'}: module {qualname!r}: {exc}",
                             field=exc.field) from None
        in_shape: tuple[int | None, ...] | None = None
        if shape is not None and len(shape) == rank + 2 and shape[1] == spec.in_channels:
            in_shape = shape
        records.append(TorchModuleRecord(len(records), qualname, qualname.rsplit(".", 1)[-1],
                                         module, rank, spec,
                                         in_shape or spec.default_input_shape(),
                                         config=dict(kwargs)))
        shape = spec.output_shape(in_shape) if in_shape is not None else None
    wpath = weights if weights is not None else weights_beside(path)
    arrays: dict[str, np.ndarray] | None = None
    if weights is not None or os.path.isfile(wpath):
        arrays = _load_weights(wpath, records)
    return TorchModel(path, wpath if arrays is not None else None, records,
                      list(obj["modules"]), given, arrays)


def _load_weights(path: str, records: list[TorchModuleRecord]) -> dict[str, np.ndarray]:
    check_input_file(path, "weights")
    arrays = load_npz(path, field="weights")
    for rec in records:
        key = f"{rec.path}.weight"
        if key not in arrays:
            raise ConvtError(f"weights: {path!r} has no {key!r} (holds "
                             f"{', '.join(sorted(arrays)) or 'nothing'}).", field="weights")
        bias = arrays.get(f"{rec.path}.bias")
        if rec.spec.bias and bias is None:
            raise ConvtError(f"weights: {path!r} has no {rec.path + '.bias'!r} but module "
                             f"{rec.path!r} has bias=True.", field="weights")
        for name, arr in ((key, arrays[key]), (f"{rec.path}.bias", bias)):
            if arr is not None and (arr.dtype.kind != "f" or not np.isfinite(arr).all()):
                raise ConvtError(f"weights: {name} in {path!r}: expected finite floating-point "
                                 f"values.", field="weights")
        try:
            check_torch_weights(rec.spec, arrays[key], bias)
        except ConvtError as exc:
            raise ConvtError(f"weights: module {rec.path!r}: {exc}", field="weights") from None
    return arrays


def describe_torch_model(model: Any, path: str | os.PathLike[str], *,
                         input_shape: Any = None) -> tuple[str, str]:
    """Write ``path`` (the JSON description) and ``<stem>.weights.npz`` from a live ``nn.Module``.

    Needs torch (the module is only read: ``named_modules()`` for the leaf
    modules in registration order, their constructor arguments from their
    attributes, ``state_dict()`` tensors as float32/float64 NumPy arrays; no
    pickle anywhere). Every ``ConvTranspose{1,2,3}d`` module is described
    with ``in_channels, out_channels, kernel_size, stride, padding,
    output_padding, dilation, groups, bias``; other leaf modules with empty
    kwargs. ``forward`` is recorded as "modules applied in list order" only
    when the module is an ``nn.Sequential`` tree (the order torch runs them);
    otherwise the layer input shapes are left to the reader.
    Returns the two paths written.
    """
    json_path = os.fspath(path)
    npz_path = weights_beside(json_path)
    entries: list[dict[str, Any]] = []
    arrays: dict[str, np.ndarray] = {}
    sequential = True
    for qualname, module in model.named_modules():
        children = list(module.children())
        if children:
            sequential = sequential and type(module).__name__ == "Sequential"
            continue
        cls = type(module)
        entry: dict[str, Any] = {"qualname": qualname,
                                 "module_class": f"torch.nn.{cls.__name__}"
                                 if cls.__module__.startswith("torch.nn") else
                                 f"{cls.__module__}.{cls.__qualname__}",
                                 "kwargs": {}}
        if _CONVT_CLASS.match(f"torch.nn.{cls.__name__}") and cls.__module__.startswith("torch.nn"):
            entry["kwargs"] = {
                "in_channels": int(module.in_channels), "out_channels": int(module.out_channels),
                "kernel_size": [int(v) for v in module.kernel_size],
                "stride": [int(v) for v in module.stride],
                "padding": [int(v) for v in module.padding],
                "output_padding": [int(v) for v in module.output_padding],
                "dilation": [int(v) for v in module.dilation],
                "groups": int(module.groups), "bias": module.bias is not None}
            if module.padding_mode != "zeros":
                entry["kwargs"]["padding_mode"] = str(module.padding_mode)
            arrays[f"{qualname}.weight"] = module.weight.detach().cpu().numpy().copy()
            if module.bias is not None:
                arrays[f"{qualname}.bias"] = module.bias.detach().cpu().numpy().copy()
        entries.append(entry)
    doc: dict[str, Any] = {"format": DESCRIPTION_FORMAT, "modules": entries}
    if sequential:
        doc["forward"] = _SEQUENTIAL
    else:
        doc["forward"] = "not recorded (not an nn.Sequential tree)"
    if input_shape is not None:
        doc["input_shape"] = [int(v) for v in input_shape]
    text = json.dumps(doc, indent=1, sort_keys=True) + "\n"
    with open(json_path, "w", encoding="utf-8") as fh:
        fh.write(text)
    savez: Any = np.savez      # numpy's stub types **kwds like allow_pickle
    with open(npz_path, "wb") as fh:
        savez(fh, allow_pickle=False, **arrays)
    return json_path, npz_path
