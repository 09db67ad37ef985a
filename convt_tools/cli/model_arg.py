"""The MODEL argument of every command: the CLI side of :mod:`convt_tools.sources`.

:mod:`convt_tools.sources` is the one resolver: it says what a CONFIG/MODEL
argument is from its bytes (never its extension), reading each file once,
and turns it into :class:`LayerSource` objects. Here: the ``--layer`` option,
:func:`resolve_model` / :func:`select_sources` / :func:`single_source` with
their notes printed on stderr, :func:`load_layer_spec` and :func:`onnx_form`.
New input kinds add a branch to the resolver, not to the commands.
"""

from __future__ import annotations

import os
from typing import Any, Callable

import click

from ..errors import ConvtError
from ..sources import LayerSource, resolve_input, resolve_sources
from ..sources import select_sources as _select
from ..sources import single_source as _single

__all__ = ["LayerSource", "layer_option", "load_layer_spec", "onnx_form", "resolve_model", "select_sources",
           "single_source"]


def layer_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--layer PATH|NAME|INDEX`` (a saved model's transposed-conv layer)."""
    return click.option(
        "--layer", "layer", default=None,
        help="With a saved model (.keras, .h5, model config + --weights W.h5): the "
             "transposed-conv layer, by path (decoder/up_2), name or index; "
             "see 'convt layers MODEL'.")(func)


def resolve_model(path: str | None, weights: str | None = None, *,
                  npz_weights: bool = True, framework: str | None = None) -> Any | None:
    """The :class:`SavedModel` at ``path``, or None when ``path`` is a layer config
    (:func:`convt_tools.sources.resolve_input`, which decides by content)."""
    if path is None or not os.path.isfile(path):
        return None
    return resolve_input(path, weights, npz_weights=npz_weights, framework=framework).model


def _note(text: str) -> None:
    from .common import echo

    echo(text, err=True)


def select_sources(model: Any, layer: str | None, weights: str | None = None,
                   *, skip_unsupported: bool = False) -> tuple[list[LayerSource], list[Any]]:
    """``(sources, skipped records)``: :func:`convt_tools.sources.select_sources`, notes on stderr."""
    return _select(model, layer, weights, skip_unsupported=skip_unsupported, note=_note)


def single_source(model: Any, layer: str | None, weights: str | None = None) -> LayerSource:
    """The one layer a single-layer command works on (``--layer``, or the only one)."""
    return _single(model, layer, weights, note=_note)


def load_layer_spec(config: str, layer: str | None = None, weights: str | None = None, *,
                    rank: int | None = None, input_shape: Any = None,
                    framework: str | None = None, resolved: Any = None) -> Any:
    """The spec of CONFIG: a layer config file, or the ``--layer`` of a saved model
    (``resolved``: CONFIG as :func:`convt_tools.sources.resolve_input` already read it).

    ``rank``/``input_shape``: how a bare layer config's rank is resolved
    (:func:`convt_tools.spec.parse_config`).
    """
    source = resolve_sources(config, weights=weights, layer=layer, rank=rank,
                             input_shape=input_shape, single=True, note=_note,
                             framework=framework, resolved=resolved)[0]
    if weights is not None and source.record is None:
        raise ConvtError(f"weights: --weights applies to saved models (.keras, .h5, model "
                         f"config JSON); {config!r} is a single layer config, whose shape "
                         f"needs no weights.", field="weights")
    return source.spec


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
