"""``convt export --quantize int8``: the options, and the QDQ model made from the float export.

The float model is exported as usual (any layer, either framework, a saved
model's layer), then :func:`convt_tools.quant.quantize_model` replaces its
ConvTranspose by the int8 QDQ neighbourhood (weights per output channel in the
form the ``--target`` runtimes read, bias int32, activation scales from
calibration).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable

import click

from ..errors import ConvtError
from ..spec.values import parse_int

__all__ = ["QUANT_OPSET", "QuantRequest", "human_lines", "quant_options", "quant_request",
           "quantize_export"]

#: The default opset of a quantized export: opset-21 blocked DequantizeLinear exists.
QUANT_OPSET = 21


@dataclass(frozen=True)
class QuantRequest:
    """What ``--quantize`` and its options ask for (parsed once, at the boundary)."""

    per_channel: bool
    calibration: str | None
    seed: int
    activations: str | None
    targets: tuple[str, ...]


def quant_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """The ``--quantize`` options of ``convt export`` (passed as keyword ``quant``: a dict)."""
    options = [
        click.option("--quantize", type=click.Choice(["int8"]), default=None,
                     help="Write an int8 QDQ model: weights per output channel (symmetric), bias "
                          "int32 at x_scale*w_scale, activations Q->DQ from MinMax calibration."),
        click.option("--per-channel/--per-tensor", "per_channel", default=None,
                     help="With --quantize: weight scales per output channel (default) or one."),
        click.option("--calibration", type=click.Path(dir_okay=False),
                     help="With --quantize: a .npy batch shaped like the layer's input (its "
                          "layout, any batch) for the activation ranges."),
        click.option("--calibration-seed", default=None,
                     help="With --quantize: seed of the drawn calibration batch (8 standard-"
                          "normal samples; default 0)."),
        click.option("--activations", type=click.Choice(["int8", "uint8"]), default=None,
                     help="With --quantize: int8 (symmetric, zero point 0; default) or uint8 "
                          "(asymmetric). Default int8, except uint8 where a --target's int8 "
                          "kernel is known to be wrong for the layer (noted)."),
    ]
    names = ("quantize", "per_channel", "calibration", "calibration_seed", "activations")

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        kwargs["quant"] = {n: kwargs.pop(n) for n in names}
        return f(*args, **kwargs)

    for option in reversed(options):
        wrapper = option(wrapper)
    return wrapper


def quant_request(quant: dict[str, Any], target: str | None) -> QuantRequest | None:
    """The parsed request (None without ``--quantize``); a one-line error for an option
    given without ``--quantize`` or two calibration sources. ``target``: ``--target``, the
    runtimes the weights are laid out for (:func:`convt_tools.quant.parse_targets`)."""
    from ..quant import parse_targets

    if quant["quantize"] is None:
        given = next((k for k, v in quant.items() if v is not None), None)
        if given is not None:
            flag = {"per_channel": "per-channel/--per-tensor"}.get(given, given.replace("_", "-"))
            raise ConvtError(f"{given}: --{flag} applies with --quantize int8 only.",
                             field=given)
        return None
    if quant["calibration"] is not None and quant["calibration_seed"] is not None:
        raise ConvtError("calibration_seed: give --calibration FILE or --calibration-seed N, "
                         "not both.", field="calibration_seed")
    seed = 0 if quant["calibration_seed"] is None else parse_int(
        quant["calibration_seed"], "calibration_seed", "expected an integer")
    if seed < 0:
        raise ConvtError(f"calibration_seed: got {seed}; expected an integer >= 0.",
                         field="calibration_seed")
    return QuantRequest(per_channel=quant["per_channel"] is not False,
                        calibration=quant["calibration"], seed=seed,
                        activations=quant["activations"],
                        targets=parse_targets(target))


def quantize_export(model: Any, request: QuantRequest) -> tuple[Any, dict[str, Any]]:
    """The QDQ model of the float ``model`` and its ``quantization`` JSON."""
    from ..quant import load_calibration, quantize_model, seeded_calibration

    dims = [d.dim_value if d.HasField("dim_value") else None
            for d in model.graph.input[0].type.tensor_type.shape.dim]
    elem = model.graph.input[0].type.tensor_type.elem_type
    if elem != 1:   # onnx.TensorProto.FLOAT
        raise ConvtError("dtype: --quantize needs a float32 model; drop --dtype (or give "
                         "float32).", field="dtype")
    if request.calibration is not None:
        calib = load_calibration(request.calibration, dims)
        source = f"file {request.calibration}"
    else:
        calib = seeded_calibration(dims, request.seed)
        source = f"seed {request.seed} ({calib.shape[0]} standard-normal samples, shape " \
                 f"{list(calib.shape)})"
    qmodel, info = quantize_model(model, calib, per_channel=request.per_channel,
                                  activations=request.activations, targets=request.targets,
                                  calibration_source=source)
    return qmodel, info.as_json()


def human_lines(q: dict[str, Any]) -> list[str]:
    """What ``convt export --quantize`` prints about the quantization."""
    axis = "" if q["weight_axis"] is None else f", axis {q['weight_axis']}" + (
        f", block_size {q['weight_block_size']}" if q["weight_block_size"] else "")
    return [
        f"int8 QDQ: weights {q['weight_granularity']} (form {q['form']}{axis}; "
        f"{q['nodes']} ConvTranspose node(s)), targets {', '.join(q['targets'])}",
        f"input  Q->DQ scale {q['input']['scale']:.6g}, zero point {q['input']['zero_point']} "
        f"({q['input']['type']}); output scale {q['output']['scale']:.6g}, zero point "
        f"{q['output']['zero_point']} ({q['output']['type']})",
        f"calibration: MinMax on {q['calibration']}",
    ]
