"""``convt repair`` of QDQ ConvTranspose models (no ``--intent``): the float source and the
run (:func:`convt_tools.repair.qdq.repair_qdq`).

``--float`` is the float ONNX model the QDQ model was quantized from, or a Keras/torch
source with weights (a saved ``.keras`` model; a layer config with ``--float-weights``),
resolved by content (:mod:`convt_tools.sources`).
"""

from __future__ import annotations

from typing import Any, Callable

import click

from ..errors import ConvtError
from .common import echo_json

__all__ = ["finish_repair", "float_source", "qdq_requested", "run_qdq_repair"]


def qdq_requested(model: str, intent: str | None, float_path: str | None,
                  float_weights: str | None) -> bool:
    """Whether this ``convt repair`` is a QDQ repair: no ``--intent`` and the model has a QDQ
    ConvTranspose. ``--float``/``--float-weights`` anywhere else is a one-line error."""
    from ..onnxbase import load_model
    from ..repair.qdq import has_qdq_convtranspose

    flags = [n for n, v in (("float", float_path), ("float_weights", float_weights))
             if v is not None]
    qdq = intent is None and has_qdq_convtranspose(load_model(model, lazy=True))
    if flags and not qdq:
        raise ConvtError(f"{flags[0]}: --{flags[0].replace('_', '-')} applies to QDQ (int8) "
                         f"models repaired without --intent" + (
                             "" if intent is not None else
                             "; this model has no QDQ ConvTranspose") + ".", field=flags[0])
    return qdq


def float_source(path: str, weights: str | None) -> Any:
    """The :class:`~convt_tools.repair.qdq.FloatSource` in ``path``."""
    from ..exporter import DEFAULT_OPSET
    from ..layer import input_shape as layer_input_shape
    from ..onnxbase import load_model
    from ..repair.qdq import FloatSource
    from ..sources import resolve_sources

    try:
        model = load_model(path)
    except ConvtError:
        model = None
    if model is not None:
        if weights is not None:
            raise ConvtError("float_weights: applies to a Keras/torch --float source, not an "
                             "ONNX model.", field="float_weights")
        return FloatSource.from_onnx(model, path)
    layers = []
    for source in resolve_sources(path, weights=None):
        kernel, bias = source.kernel, source.bias
        if kernel is None:
            if weights is None:
                raise ConvtError(f"float_weights: --float {path!r} is a layer config without "
                                 f"weights; give --float-weights W.npz.", field="float_weights")
            kernel, bias = source.layer.load_weights(weights)
        # the exporter's float model: its W is what a QDQ export quantized (zero taps included)
        layer = source.layer
        shape = layer_input_shape(layer, None, layer.kernel_in_channels(kernel))
        flt = layer.export_onnx(kernel, bias, input_shape=shape, opset=DEFAULT_OPSET, seed=0)
        layers += [(source.label, w, b) for _, w, b in FloatSource.from_onnx(flt, path).layers]
    return FloatSource(path, tuple(layers))


def run_qdq_repair(model: str, output: str, float_path: str | None, float_weights: str | None,
                   target: str | None, seed: int, as_json: bool) -> None:
    """Repair the QDQ ConvTranspose nodes of ``model`` into ``output`` (exit 1 on refusal,
    nothing written)."""
    import numpy as np

    from ..io import ensure_distinct
    from ..quant import parse_targets
    from ..repair.qdq import repair_qdq

    ensure_distinct(output, model=model, float=float_path, float_weights=float_weights)
    targets = parse_targets(target)
    source = None if float_path is None else float_source(float_path, float_weights)
    with np.errstate(all="ignore"):
        finish_repair(lambda: repair_qdq(model, float_source=source, targets=targets, seed=seed),
                      output, as_json, {"model": model})


def finish_repair(run: Callable[[], tuple[Any, Any]], output: str, as_json: bool,
                  refused: dict[str, Any]) -> None:
    """Run a repair; write its model and print its report, or on
    :class:`~convt_tools.repair.RepairRefused` print ``Refused: REASON`` (and with
    ``as_json`` the partial report, else ``refused`` plus the reason) and exit 1, writing
    nothing."""
    from ..onnxbase import save_model
    from ..repair import RepairRefused

    ctx: Any = click.get_current_context()
    try:
        repaired, report = run()
    except RepairRefused as exc:
        click.echo(f"Refused: {exc}", err=True)
        if as_json:
            rep = getattr(exc, "report", None)
            echo_json({**(rep.to_dict() if rep is not None else
                          {**refused, "refused": True, "reason": str(exc)}), "written": None})
        ctx.exit(1)
        return
    save_model(repaired, output, inline=True)
    if as_json:
        echo_json({**report.to_dict(), "written": output})
    else:
        click.echo(report.to_text())
        click.echo(f"wrote {output}")
