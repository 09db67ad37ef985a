"""The MODEL argument of every command: one resolver for layer configs and saved models.

``resolve_model(path, weights)`` says what a command's CONFIG/MODEL argument
is, from the file's bytes (never its extension):

- a saved Keras model (``.keras`` zip, legacy ``.h5`` with ``model_config``,
  or a ``model.to_json()`` / ``config.json`` model config whose weights come
  from ``--weights W.h5``) -> a :class:`~convt_tools.saved.SavedModel`;
- anything else -> None: the command reads it as a single layer config, as
  before.

Commands then pick layers with :func:`select_sources` (``--layer PATH|NAME|INDEX``,
or every transposed-conv layer), each a :class:`LayerSource` with the spec, the
real kernel/bias and a label ``model.keras:decoder/up_2``. New input kinds
(e.g. PyTorch) add a branch to :func:`resolve_model`, not to the commands.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any, Callable

import click

from ..errors import ConvtError

__all__ = ["LayerSource", "layer_option", "load_layer_spec", "onnx_form", "resolve_model", "select_sources",
           "single_source"]


@dataclass(frozen=True)
class LayerSource:
    """One layer of a saved model, ready for a command: spec, weights, label."""

    label: str
    spec: Any
    kernel: Any
    bias: Any
    weights_note: str
    record: Any
    selected_by: str | None = None   # the --layer rule that matched ("index 0", "path 'a/b'")


def layer_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--layer PATH|NAME|INDEX`` (a saved model's transposed-conv layer)."""
    return click.option(
        "--layer", "layer", default=None,
        help="With a saved model (.keras, .h5, model config + --weights W.h5): the "
             "transposed-conv layer, by path (decoder/up_2), name or index; "
             "see 'convt layers MODEL'.")(func)


def _is_model_json(path: str) -> bool:
    from ..saved.configs import is_model_config, normalize, parse_model_json

    try:
        with open(path, "rb") as fh:
            data = fh.read(256 << 20)
        return is_model_config(normalize(parse_model_json(data, repr(path))))
    except (OSError, ConvtError):
        return False  # the layer-config reader reports it its own way


def resolve_model(path: str | None, weights: str | None = None, *,
                  npz_weights: bool = True) -> Any | None:
    """The :class:`SavedModel` at ``path``, or None when ``path`` is a layer config.

    ``weights``: an HDF5 weights file (``.weights.h5`` / legacy ``.h5``) for a
    model config or to replace a saved model's weights; an ``.npz`` is left to
    the caller (one layer's kernel/bias), unless ``npz_weights`` is False
    (``convt layers``): then anything but HDF5 is an error naming ``weights``.
    With a saved model, ``weights`` is checked (a regular file, recorded as an
    input: :func:`convt_tools.io.check_input_file`) before it is opened, so a
    missing file, a FIFO or a folder is a ``weights:`` error, never a hang.
    """
    if path is None or not os.path.isfile(path):
        return None
    from ..saved.filekind import sniff

    kind = sniff(path)
    if kind == "text" and not _is_model_json(path):
        return None
    from ..saved.model import open_model

    h5_weights = None
    if weights is not None:
        if sniff(weights, "weights") == "hdf5":
            h5_weights = weights
        elif not npz_weights:
            raise ConvtError(f"weights: {weights!r} is not an HDF5 weights file; expected a "
                             f"Keras 3 .weights.h5 or a legacy .h5 (an .npz holds one layer's "
                             f"kernel/bias, for shape, export, run or validate with --layer).",
                             field="weights")
    return open_model(path, h5_weights)


def _label(model: Any, record: Any) -> str:
    """``model.keras:decoder/up_2`` for the terminal (see :func:`.common.term_safe`); a path
    that several layers share gets its index, ``model.keras:decoder/up_2#1``."""
    from .common import term_safe

    label = f"{model.source}:{record.path}"
    if sum(r.path == record.path for r in model.layers) > 1:
        label += f"#{record.index}"
    return term_safe(label)


def _source(model: Any, record: Any, npz_weights: str | None,
            selected_by: str | None = None) -> LayerSource:
    label = _label(model, record)
    if record.spec is None:
        raise ConvtError(f"layer: {record.path!r} is a {record.class_name}, which "
                         f"{record.unsupported.split(' is ', 1)[1]}; "
                         f"{model.available()}.", field="layer")
    if npz_weights is not None:
        from ..weights import load_weights

        kernel, bias = load_weights(npz_weights, record.spec)
        note = f"from {npz_weights}"
    elif model.has_weights():
        from ..weights import check_weights

        kernel, bias = model.weights(record)
        try:
            kernel, bias = check_weights(record.spec, kernel, bias)
        except ConvtError as exc:
            raise ConvtError(f"weights: layer {record.path!r}: {exc}", field=exc.field) from None
        note = f"the model's own weights ({model.weights_source})"
    else:
        kernel = bias = None
        note = "none stored (config only): drawn from the layer's initializers"
    spec = record.spec
    if spec.input_shape is None and model.input_shape(record) is not None:
        spec = dataclasses.replace(spec, input_shape=model.input_shape(record))
    return LayerSource(label, spec, kernel, bias, note, record, selected_by)


def select_sources(model: Any, layer: str | None, weights: str | None = None,
                   *, skip_unsupported: bool = False) -> tuple[list[LayerSource], list[Any]]:
    """``(sources, skipped records)``: ``--layer`` or every transposed-conv layer.

    ``weights`` that are not HDF5 (an ``.npz`` with one layer's kernel/bias)
    apply only to a single selected layer.
    """
    from ..saved.filekind import sniff

    npz = weights if weights is not None and sniff(weights, "weights") != "hdf5" else None
    if layer is not None:
        record, rule = model.select_with_rule(layer)
        if "; the layer named" in rule:   # an integer that is also a layer's name: say so
            from .common import echo

            echo(f"note: --layer {layer!r} selected {record.path!r} by {rule}.", err=True)
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


def single_source(model: Any, layer: str | None, weights: str | None = None) -> LayerSource:
    """The one layer a single-layer command works on (``--layer``, or the only one)."""
    if layer is None and len(model.layers) != 1:
        raise ConvtError(f"layer: {model.source!r} has {len(model.layers)} transposed-conv "
                         f"layers; choose one with --layer: {model.available()}.", field="layer")
    return select_sources(model, layer, weights)[0][0]


def load_layer_spec(config: str, layer: str | None = None, weights: str | None = None, *,
                    rank: int | None = None, input_shape: Any = None) -> Any:
    """The spec of CONFIG: a layer config file, or the ``--layer`` of a saved model.

    ``rank``/``input_shape``: how a bare layer config's rank is resolved
    (:func:`convt_tools.spec.parse_config`).
    """
    saved = resolve_model(config, weights)
    if saved is None:
        if layer is not None:
            raise ConvtError(f"layer: --layer {layer!r} applies to saved models (.keras, .h5, "
                             f"model config JSON); {config!r} is a single layer config.",
                             field="layer")
        if weights is not None:
            raise ConvtError(f"weights: --weights applies to saved models (.keras, .h5, model "
                             f"config JSON); {config!r} is a single layer config, whose shape "
                             f"needs no weights.", field="weights")
        from ..spec import load_config

        return load_config(config, rank=rank, input_shape=input_shape)
    return single_source(saved, layer, weights).spec


def onnx_form(spec: Any, form: str = "portable") -> str:
    """What the exporter writes for ``spec`` in ``form``: layout, ConvTranspose, Slice, activation."""
    from ..geometry import onnx_output_padding, onnx_pads, portable_split

    crops = list(spec.crop_plan())
    if form == "portable":
        parts = [portable_split(c) for c in crops]
        axes = [p.onnx() for p in parts]
        sliced = [(p.slice_begin, p.slice_end) for p in parts]
    else:
        axes, sliced = [c.onnx() for c in crops], []
    pads, extend = onnx_pads(axes), onnx_output_padding(axes)
    text = (f"ConvTranspose k={list(spec.kernel_size)} s={list(spec.strides)} "
            f"d={list(spec.dilation_rate)} pads={pads}")
    if extend is not None:
        text += f" output_padding={extend}"
    if any(b or e for b, e in sliced):
        text += ", Slice " + " ".join(f"[{b}:-{e}]" if e else f"[{b}:]" for b, e in sliced)
    if spec.layout.to_channels_first is not None:
        text = f"Transpose, {text}, Transpose"
    if spec.activation != "linear":
        text += f", {spec.activation}"
    return text
