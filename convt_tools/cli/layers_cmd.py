"""``convt layers``: list the transposed-conv layers of a saved Keras model."""

from __future__ import annotations

from typing import Any

import click

from ..errors import ConvtError
from .common import echo, echo_json, handle_errors, term_safe


def _summary(record: Any) -> str:
    cfg = record.config
    spec = record.spec
    if spec is None:
        return (f"filters={cfg.get('filters')} k={cfg.get('kernel_size')} "
                f"s={cfg.get('strides')} {cfg.get('padding')}")
    text = (f"filters={spec.filters} k={list(spec.kernel_size)} s={list(spec.strides)} "
            f"{spec.padding}")
    if spec.output_padding is not None:
        text += f" op={list(spec.output_padding)}"
    if max(spec.dilation_rate) > 1:
        text += f" d={list(spec.dilation_rate)}"
    if spec.activation != "linear":
        text += f" {spec.activation}"
    if not spec.use_bias:
        text += " no-bias"
    if spec.data_format != "channels_last":
        text += f" {spec.data_format}"
    return text


def _torch_row(model: Any, record: Any) -> dict[str, Any]:
    """A module of a torch model description (convt_tools.torchconv.model)."""
    spec, in_shape = record.spec, model.input_shape(record)
    out = spec.output_shape(in_shape) if in_shape is not None else None
    return {"index": record.index, "path": record.path, "name": record.name,
            "class_name": record.class_name, "config": dict(record.config),
            "summary": spec.snippet(), "input_shape": list(in_shape),
            "input_shape_source": "chained from the description's input_shape"
            if None not in in_shape[2:] else "in_channels",
            "output_shape": None if out is None else list(out),
            "onnx": str(spec.onnx_attrs()), "supported": True,
            "weights": {"kernel": f"{record.path}.weight",
                        "bias": f"{record.path}.bias" if spec.bias else None}
            if model.has_weights() else None, "h5_group": None}


def _row(model: Any, record: Any) -> dict[str, Any]:
    from .model_arg import onnx_form

    if getattr(model, "kind", None) == "torch-description":
        return _torch_row(model, record)

    in_shape = model.input_shape(record)
    loc = model.weight_location(record)
    row: dict[str, Any] = {
        "index": record.index, "path": record.path, "name": record.name,
        "class_name": record.class_name, "config": dict(record.config),
        "summary": _summary(record),
        "input_shape": None if in_shape is None else list(in_shape),
        "input_shape_source": ("recorded" if record.input_shape is not None else
                               None if in_shape is None else "channels of the stored kernel"),
        "output_shape": None, "onnx": None, "supported": record.spec is not None,
        "weights": None if loc is None else {"kernel": loc.kernel, "bias": loc.bias},
        "h5_group": record.group if model.kind != "h5" else None,
    }
    if record.spec is None:
        row["note"] = record.unsupported
        return row
    row["onnx"] = onnx_form(record.spec)
    if in_shape is not None:
        try:
            row["output_shape"] = list(record.spec.activated_output_shape(in_shape))
        except ConvtError as exc:
            row["note"] = str(exc)
    return row


def _dims(shape: Any) -> str:
    if shape is None:
        return "?"
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"


@click.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--weights", "-w", type=click.Path(dir_okay=False),
              help="Weights for a model config: a Keras 3 .weights.h5 or a legacy .h5.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
@handle_errors
def layers(model: str, weights: str | None, as_json: bool) -> None:
    """List the Conv1D/2D/3DTranspose layers of a saved Keras model.

    MODEL is a .keras archive, a legacy .h5, or a model config JSON
    (model.to_json() / config.json) with --weights W.h5. Nested models are
    walked; paths use the layers' names (decoder/up_2).

    \b
    convt layers model.keras
    convt layers config.json --weights model.weights.h5 --json
    """
    from .model_arg import resolve_model

    saved = resolve_model(model, weights, npz_weights=False)
    if saved is None:
        raise ConvtError(f"model: {model!r} is not a saved model (neither a .keras zip, an HDF5 "
                         f"file nor a model config JSON); expected a .keras, a legacy .h5 or a "
                         f"model config JSON (a single layer config goes straight to shape, "
                         f"export, run or validate).",
                         field="model")
    rows = [_row(saved, r) for r in saved.layers]
    if as_json:
        echo_json({"model": model, "format": saved.kind, "weights": saved.weights_source,
                   "layers": rows})
        return
    if not rows:
        echo(f"{model}: no Conv1D/2D/3DTranspose layer")
        return
    table = [("#", "path", "class", "config", "input", "output", "onnx")]
    for r in rows:
        table.append((str(r["index"]), term_safe(r["path"]), r["class_name"], r["summary"],
                      _dims(r["input_shape"]), _dims(r["output_shape"]),
                      r["onnx"] or term_safe(f"- ({r.get('note')})")))
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]) - 1)]
    for row in table:
        echo("  ".join(c.ljust(w) for c, w in zip(row, widths)) + "  " + row[-1])
    echo(f"weights: {saved.weights_source or 'none (config only)'}")
