"""The one resolver: any CLI input -> layer sources, decided by content, each file read once.

``resolve_input(path, ...)`` says what a command's CONFIG/MODEL argument is,
from its bytes (never its extension, never a second read):

- a saved Keras model: a ``.keras`` zip, a legacy ``.h5`` with ``model_config``,
  or a ``model.to_json()`` / ``config.json`` model config (weights from
  ``--weights W.h5``) -> :attr:`ResolvedInput.model`, a
  :class:`~convt_tools.saved.SavedModel`;
- a torch model description (``{"modules": [{"qualname", "module_class",
  "kwargs"}]}``, weights ``NAME.weights.npz`` beside it or ``--weights``) ->
  :attr:`ResolvedInput.model`, a :class:`~convt_tools.torchconv.model.TorchModel`
  (the same surface as a saved Keras model);
- a PyTorch ``nn.ConvTranspose{1,2,3}d`` config, by its keys (``"framework":
  "torch"``, a ``ConvTranspose`` ``module``, or torch's argument names), or
  ``--framework torch`` -> a :class:`~convt_tools.torchconv.TorchConvTransposeSpec`;
- anything else: a Keras layer config -> a :class:`~convt_tools.spec.ConvTransposeSpec`.

:func:`resolve_sources` turns it into :class:`LayerSource` objects (the spec
behind the :class:`~convt_tools.layer.LayerSpec` protocol, the real kernel/bias
when the input holds them, a label ``model.keras:decoder/up_2``). New input
kinds add a branch here, not to the commands.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Sequence

from .errors import ConvtError, term_safe
from .torchconv.description import is_torch_model_description

if TYPE_CHECKING:
    import numpy as np

__all__ = ["INPUT_KINDS", "LayerSource", "ResolvedInput", "classify", "open_saved",
           "resolve_input", "resolve_sources", "select_sources", "single_source"]

INPUT_KINDS = ("keras", "torch", "saved")


@dataclass(frozen=True)
class LayerSource:
    """One layer, ready for a command: spec (a LayerSpec), weights, label."""

    label: str
    spec: Any
    kernel: Any
    bias: Any
    weights_note: str
    record: Any
    selected_by: str | None = None   # the --layer rule that matched ("index 0", "path 'a/b'")

    @property
    def layer(self) -> Any:
        """The spec as its framework's :class:`~convt_tools.layer.LayerSpec` layer."""
        from .frameworks import as_layer

        return as_layer(self.spec)


@dataclass(frozen=True)
class ResolvedInput:
    """What a CONFIG/MODEL argument is: ``kind`` (:data:`INPUT_KINDS`), and its content."""

    path: str | None
    kind: str
    data: bytes | None = None       # a text file's bytes (read once)
    obj: Any = None                 # ... parsed as JSON (None for saved models)
    model: Any = None               # the SavedModel, for kind "saved"

    @property
    def framework(self) -> str:
        """``"torch"`` for a torch config, else ``"keras"`` (layer configs and saved models)."""
        return "torch" if self.kind == "torch" else "keras"

    def spec(self, *, rank: int | None = None, input_shape: Any = None) -> Any:
        """A layer config's spec (``rank``/``input_shape``: how a bare config's rank is resolved)."""
        if self.kind == "torch":
            from .torchconv.spec import parse_torch_config

            if self.obj is None:
                raise ConvtError("config: --framework torch needs a JSON file of ConvTranspose "
                                 "kwargs.", field="config")
            if rank is None and input_shape is not None:
                rank = len(input_shape) - 2      # batched (N, C, ...)
            return parse_torch_config(self.obj, rank=rank)
        if self.kind == "keras":
            from .spec import parse_config

            return parse_config(self.obj, rank=rank, input_shape=input_shape)
        raise ConvtError(f"config: {self.path!r} is a saved model; pick a layer with --layer.",
                         field="config")


def _read(path: str, whole: bool) -> tuple[str, bytes | None]:
    """``(kind of the first bytes, the whole file or None)``, in one open: a saved
    model (zip, HDF5) is left to its reader unless ``whole``; text is read whole."""
    from .io import check_input_file
    from .saved.filekind import kind_of_head

    check_input_file(path, "config")
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
            kind = kind_of_head(head)
            if kind != "text" and not whole:
                return kind, None
            return kind, head + fh.read()
    except OSError as exc:
        raise ConvtError(f"config: cannot read {path!r}: {exc.strerror or exc}.",
                         field="config") from None


def classify(data: bytes, path: str, framework: str | None = None) -> tuple[str, Any]:
    """``(kind, parsed JSON or None)`` of a file's bytes: ``saved``, ``torch`` or ``keras``.

    Unparseable text is a Keras layer config (its reader reports the error).
    """
    from .saved.filekind import kind_of_head
    from .spec.parse import parse_config_json

    if framework != "torch" and kind_of_head(data[:8]) != "text":
        return "saved", None
    try:
        obj = parse_config_json(data, path)
    except ConvtError:
        if framework == "torch":
            return "torch", _Unparsed
        return ("saved", None) if _is_model_config(data, path) else ("keras", _Unparsed)
    from .torchconv.spec import is_torch_kwargs

    if is_torch_model_description(obj):
        return "saved", obj
    if framework == "torch" or (framework is None and is_torch_kwargs(obj)):
        return "torch", obj
    if _is_model_config(data, path):
        return "saved", obj
    return "keras", obj


class _Unparsed:
    """Marks a text file that is not JSON: the Keras reader re-raises its error."""


def _is_model_config(data: bytes, path: str) -> bool:
    from .saved.configs import is_model_config, normalize, parse_model_json

    try:
        return bool(is_model_config(normalize(parse_model_json(data, repr(path)))))
    except ConvtError:
        return False


def open_saved(path: str, weights: str | None, *, npz_weights: bool = True,
               kind: str | None = None, data: bytes | None = None) -> Any:
    """The :class:`SavedModel` at ``path`` (``data``: a model config's bytes, already read).

    ``weights``: an HDF5 weights file (``.weights.h5`` / legacy ``.h5``) for a
    model config or to replace a saved model's weights; an ``.npz`` is left to
    the caller (one layer's kernel/bias), unless ``npz_weights`` is False
    (``convt layers``): then anything but HDF5 is an error naming ``weights``.
    ``weights`` is checked (a regular file, recorded as an input) before it is
    opened, so a missing file, a FIFO or a folder is a ``weights:`` error.
    """
    from .saved.filekind import sniff
    from .saved.model import open_model

    h5_weights = None
    if weights is not None:
        if sniff(weights, "weights") == "hdf5":
            h5_weights = weights
        elif not npz_weights:
            raise ConvtError(f"weights: {weights!r} is not an HDF5 weights file; expected a "
                             f"Keras 3 .weights.h5 or a legacy .h5 (an .npz holds one layer's "
                             f"kernel/bias, for shape, export, run or validate with --layer).",
                             field="weights")
    if data is not None:
        kind = "text"
    return open_model(path, h5_weights, kind=kind, data=data)


def resolve_input(path: str | None, weights: str | None = None, *,
                  framework: str | None = None, npz_weights: bool = True) -> ResolvedInput:
    """What ``path`` is (module docstring); ``framework``: ``--framework`` (keras/torch).

    A saved model is opened (its weights located); a text file is read once
    and parsed once. ``path`` None (flags only) is a Keras layer without a file.
    """
    if framework not in (None, "keras", "torch"):
        raise ConvtError(f"framework: got {framework!r}; expected keras or torch.",
                         field="framework")
    if path is None:
        return ResolvedInput(None, framework or "keras")
    if not os.path.isfile(path):      # the layer reader reports it (missing file, FIFO, folder)
        return ResolvedInput(path, framework or "keras", obj=_Unparsed)
    head_kind, data = _read(path, framework == "torch")
    if data is None:
        return ResolvedInput(path, "saved", model=open_saved(path, weights, kind=head_kind,
                                                              npz_weights=npz_weights))
    kind, obj = classify(data, path, framework)
    if kind == "saved" and is_torch_model_description(obj):
        from .torchconv.model import parse_torch_model

        return ResolvedInput(path, "saved", data, obj, parse_torch_model(obj, path, weights))
    if kind == "saved":
        return ResolvedInput(path, "saved", data, obj,
                             open_saved(path, weights, npz_weights=npz_weights, data=data))
    return ResolvedInput(path, kind, data, obj)


def _label(model: Any, record: Any) -> str:
    """``model.keras:decoder/up_2`` for the terminal (:func:`~convt_tools.errors.term_safe`);
    a path that several layers share gets its index, ``model.keras:decoder/up_2#1``."""
    label = f"{model.source}:{record.path}"
    if sum(r.path == record.path for r in model.layers) > 1:
        label += f"#{record.index}"
    return term_safe(label)


def _source(model: Any, record: Any, npz_weights: str | None,
            selected_by: str | None = None) -> LayerSource:
    label = _label(model, record)
    kernel: np.ndarray | None
    bias: np.ndarray | None
    if record.spec is None:
        raise ConvtError(f"layer: {record.path!r} is a {record.class_name}, which "
                         f"{record.unsupported.split(' is ', 1)[1]}; "
                         f"{model.available()}.", field="layer")
    if npz_weights is not None:
        from .weights import load_weights

        kernel, bias = load_weights(npz_weights, record.spec)
        note = f"from {npz_weights}"
    elif model.has_weights():
        from .frameworks import as_layer

        kernel, bias = model.weights(record)
        try:
            kernel, bias = as_layer(record.spec).check_weights(kernel, bias)
        except ConvtError as exc:
            raise ConvtError(f"weights: layer {record.path!r}: {exc}", field=exc.field) from None
        note = f"the model's own weights ({model.weights_source})"
    else:
        kernel = bias = None
        note = "none stored (config only): drawn from the layer's initializers"
    spec = record.spec
    if spec.framework == "keras" and spec.input_shape is None \
            and model.input_shape(record) is not None:
        spec = dataclasses.replace(spec, input_shape=model.input_shape(record))
    return LayerSource(label, spec, kernel, bias, note, record, selected_by)


def select_sources(model: Any, layer: str | None, weights: str | None = None,
                   *, skip_unsupported: bool = False,
                   note: Callable[[str], None] | None = None
                   ) -> tuple[list[LayerSource], list[Any]]:
    """``(sources, skipped records)``: ``--layer`` or every transposed-conv layer.

    ``weights`` that are not HDF5 (an ``.npz`` with one layer's kernel/bias)
    apply only to a single selected layer. ``note``: where a remark goes (an
    integer ``--layer`` that is also a layer's name).
    """
    from .saved.filekind import sniff

    npz = weights if weights is not None and sniff(weights, "weights") != "hdf5" else None
    if getattr(model, "kind", None) == "torch-description":
        npz = None      # the description's own weights file (read with it), not one layer's
    if layer is not None:
        record, rule = model.select_with_rule(layer)
        if "; the layer named" in rule and note is not None:  # an integer that is also a name
            note(f"note: --layer {layer!r} selected {record.path!r} by {rule}.")
        return [_source(model, record, npz, rule)], []
    if not model.layers:
        raise ConvtError(f"model: {model.available()}.", field="model")
    if npz is not None and len(model.layers) != 1:
        raise ConvtError(f"weights: an .npz holds one layer's weights, but {model.source!r} "
                         f"has {len(model.layers)} transposed-conv layers; add --layer.",
                         field="weights")
    sources, skipped = [], []
    for record in model.layers:
        if record.spec is None and skip_unsupported:
            skipped.append(record)
            continue
        sources.append(_source(model, record, npz))
    return sources, skipped


def single_source(model: Any, layer: str | None, weights: str | None = None,
                  note: Callable[[str], None] | None = None) -> LayerSource:
    """The one layer a single-layer command works on (``--layer``, or the only one)."""
    if layer is None and len(model.layers) != 1:
        raise ConvtError(f"layer: {model.source!r} has {len(model.layers)} transposed-conv "
                         f"layers; choose one with --layer: {model.available()}.", field="layer")
    return select_sources(model, layer, weights, note=note)[0][0]


def _no_layer(resolved: ResolvedInput, layer: str | None) -> None:
    if layer is None:
        return
    if resolved.kind == "torch":
        raise ConvtError(f"layer: --layer {layer!r} applies to saved Keras models; a torch "
                         f"config describes one module.", field="layer")
    raise ConvtError(f"layer: --layer {layer!r} applies to saved models (.keras, .h5, model "
                     f"config JSON); {resolved.path!r} is a single layer config.", field="layer")


def resolve_sources(path: str | None, *, weights: str | None = None, layer: str | None = None,
                    framework: str | None = None, rank: int | None = None,
                    input_shape: Sequence[int | None] | None = None, single: bool = False,
                    skip_unsupported: bool = False,
                    note: Callable[[str], None] | None = None,
                    resolved: ResolvedInput | None = None) -> list[LayerSource]:
    """The layer sources of ``path`` (module docstring).

    Saved models: ``--layer`` (or every transposed-conv layer; ``single``: the
    only one) with their weights. Layer configs (Keras or torch): one source,
    the spec (``rank``/``input_shape`` resolve a bare config's rank), no
    weights yet (a command loads ``--weights`` for the shape it runs);
    ``--layer`` is an error there.
    """
    resolved = resolved or resolve_input(path, weights, framework=framework)
    if resolved.kind == "saved":
        if single:
            return [single_source(resolved.model, layer, weights, note)]
        return select_sources(resolved.model, layer, weights,
                              skip_unsupported=skip_unsupported, note=note)[0]
    _no_layer(resolved, layer)
    spec = layer_spec(resolved, rank=rank, input_shape=input_shape)
    return [LayerSource(term_safe(path or spec.class_name), spec, None, None, "", None)]


def layer_spec(resolved: ResolvedInput, *, rank: int | None = None,
               input_shape: Any = None) -> Any:
    """The spec of a layer-config input (re-raising the reader's error for non-JSON text)."""
    if resolved.obj is _Unparsed:     # re-read by the layer reader, for its own error
        from .spec.parse import read_config_json

        assert resolved.path is not None   # an unparsed input is a file
        obj = read_config_json(resolved.path)
        resolved = dataclasses.replace(resolved, obj=obj)
    return resolved.spec(rank=rank, input_shape=input_shape)
