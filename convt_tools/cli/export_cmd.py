"""``convt export``: write a Keras Conv1D/2D/3DTranspose layer as an ONNX model."""

from __future__ import annotations

import os
from typing import Any

import click

from ..errors import ConvtError
from ..spec import parse_shape
from ..spec.values import parse_int
from .common import echo_json, handle_errors
from ..repair.targets import target_names
from .export_info import _human, for_targets
from .export_quant import QUANT_OPSET, human_lines, quant_options, quant_request, quantize_export
from .export_saved import export_saved
from .frameworks import framework_option, parse_output_size
from .model_arg import layer_option
from .shape_cmd import _LAYER_FLAGS, layer_options, spec_from_cli

_DTYPES = ("float32", "float16", "float64", "bfloat16")


def _integer(name: str, text: str) -> int:
    """An integer option, parsed here so that a bad value is a one-line ConvtError."""
    return parse_int(text, name, "expected an integer")


@click.command()
@click.argument("config", required=False, type=click.Path(dir_okay=False))
@click.option("-o", "--output", "output", required=True, type=click.Path(),
              help="Where to write the .onnx model; with a saved model and no --layer, a "
                   "folder (one model per layer plus index.json).")
@click.option("-w", "--weights", type=click.Path(dir_okay=False),
              help=".npz with 'kernel' (*kernel_size, filters, in_channels) and 'bias' (filters,); "
                   "for a model config JSON, its .weights.h5 / .h5. Without it, weights are "
                   "the saved model's own, else drawn from the layer's initializers.")
@click.option("--input-shape", "input_shape",
              help="Input shape in the layer's data format, e.g. None,64,64,3 (None or ? for "
                   "unknown dims). Default: the config's build_config shape with a dynamic "
                   "batch, else unknown dims with the channels of --weights.")
@click.option("--opset", default=None, help="ONNX opset, 11 to the installed onnx's newest "
              "(default 17).")
@click.option("--seed", default=None, help="Seed for initialised weights, without --weights "
              "(default 0).")
@click.option("--dtype", default=None,
              help=f"Model float type: {', '.join(_DTYPES)} (default: the layer's dtype "
                   f"policy, e.g. float16 for mixed_float16).")
@click.option("--allow-unsupported-dtype", is_flag=True,
              help="Export float64/bfloat16 although onnxruntime's CPU provider cannot run it.")
@click.option("--form", type=click.Choice(["portable", "compact"]), default="portable",
              show_default=True, help="portable: symmetric pads plus one constant Slice where "
              "a crop is odd (runs natively everywhere); compact: one ConvTranspose with "
              "asymmetric pads.")
@click.option("--target", "targets", default=None, metavar="NAMES",
              help="Comma-separated runtimes the model must run exactly on (names of convt "
                   "check --runtime): a grouped ConvTranspose is split and a bias moved into "
                   "an Add where a named runtime needs it; proven on each installed one "
                   "(nothing written otherwise). With --quantize: the runtimes the int8 weights "
                   "are laid out for (onnxruntime, openvino, tract, tensorrt; default "
                   "onnxruntime,openvino,tract).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
@click.option("--output-size", help="torch only: fix output_padding as forward(x, output_size) "
              "does (needs known spatial dims in --input-shape).")
@click.option("--format", "fmt", type=click.Choice(["onnx", "tflite"]), default="onnx",
              show_default=True, help="onnx, or tflite: a LiteRT model written without "
              "TensorFlow (fixed shapes unless --input-shape has ? for H/W; extra [litert]).")
@quant_options
@framework_option
@layer_option
@layer_options
@handle_errors
def export(config: str | None, output: str, weights: str | None, input_shape: str | None,
           opset: str | None, seed: str | None, dtype: str | None,
           allow_unsupported_dtype: bool, form: str, targets: str | None, as_json: bool,
           output_size: str | None, framework: str | None, layer: str | None,
           quant: dict[str, Any], **flags: Any) -> None:
    """Export a Conv1D/2D/3DTranspose layer to ONNX (explicit pads; see --form).

    \b
    convt export layer.json -o layer.onnx
    convt export layer.json -o layer.onnx --weights w.npz --input-shape None,?,?,64
    convt export --filters 32 --kernel-size 4 --strides 2 --padding same \\
        --input-shape None,?,?,3 -o up.onnx --json
    convt export model.keras --layer decoder/up_2 -o up.onnx
    convt export model.keras -o outdir/           (every layer, plus outdir/index.json)
    convt export layer.json -o q.onnx --quantize int8 --calibration x.npy   (int8 QDQ)
    """
    from ..exporter import DEFAULT_OPSET, describe_model
    from ..io import ensure_distinct
    from ..layer import input_shape as layer_input_shape
    from ..onnxbase import save_model, uses_external_data

    request = quant_request(quant, targets)
    ensure_distinct(output, config=config, weights=weights,
                    calibration=None if request is None else request.calibration)
    opset_n = (DEFAULT_OPSET if request is None else QUANT_OPSET) if opset is None \
        else _integer("opset", opset)
    seed_n = 0 if seed is None else _integer("seed", seed)
    # --quantize lays the weights out for the targets itself (quant_request)
    names = None if targets is None or request is not None else target_names(targets)
    from ..sources import resolve_input

    resolved = resolve_input(config, weights, framework=framework)
    if flags.pop("fmt") == "tflite":   # --format (kept out of the signature: merges)
        _export_tflite(resolved, config, output, weights, input_shape, seed_n, as_json,
                       output_size, layer, flags, opset=opset, dtype=dtype,
                       allow_unsupported_dtype=allow_unsupported_dtype,
                       quantize=request is not None, target=targets)
        return
    if resolved.model is not None:
        if output_size is not None:
            raise ConvtError("output_size: applies to torch configs only.", field="output_size")
        export_saved(resolved.model, layer, output, weights, input_shape, opset_n, seed_n, dtype,
                     allow_unsupported_dtype=allow_unsupported_dtype, as_json=as_json, form=form,
                     targets=names, flags={k: flags[k] for k in _LAYER_FLAGS if flags[k] is not None},
                     quantize=request)
        return
    hint = None if input_shape is None else parse_shape(input_shape)
    spec = spec_from_cli(config, {k: flags[k] for k in _LAYER_FLAGS}, layer, input_shape=hint,
                         resolved=resolved)
    kernel = bias = None
    if weights is not None:
        kernel, bias = spec.load_weights(weights)
    in_shape = layer_input_shape(spec, hint,
                                 None if kernel is None else spec.kernel_in_channels(kernel))
    model = spec.export_onnx(kernel, bias, input_shape=in_shape, opset=opset_n, seed=seed_n,
                             dtype=dtype, allow_unsupported_dtype=allow_unsupported_dtype,
                             form=form, output_size=parse_output_size(output_size))
    quantization = None
    if request is not None:
        model, quantization = quantize_export(model, request)
    model, target = for_targets(model, names, seed_n)
    save_model(model, output)
    extra = spec.export_info(seed_n)
    info = {"path": output, "size_bytes": os.path.getsize(output),
            "external_data": f"{output}.data" if uses_external_data(model) else None,
            **describe_model(model), **extra,
            "weights": weights if weights is not None else extra["weights"], **target}
    if quantization is not None:
        info["quantization"] = quantization
    if as_json:
        echo_json(info)
    else:
        click.echo("\n".join(_human(info) + ([] if quantization is None
                                              else human_lines(quantization))))


def _export_tflite(resolved: Any, config: str | None, output: str, weights: str | None,
                   input_shape: str | None, seed: int, as_json: bool, output_size: str | None,
                   layer: str | None, flags: dict[str, Any], **onnx_only: Any) -> None:
    """``--format tflite`` (:mod:`.export_tflite`): refuses the ONNX-only options."""
    from ..layer import input_shape as resolve_shape
    from .export_tflite import export_saved_tflite, write_tflite

    for name, value in onnx_only.items():
        if value not in (None, False):
            why = ("the tflite export is float32 (float16 weights for float16 layers)"
                   if name in ("dtype", "allow_unsupported_dtype", "quantize")
                   else "the tflite export is one LiteRT graph, proven by --runtime litert")
            raise ConvtError(f"{name}: --{name.replace('_', '-')} applies to --format onnx; "
                             f"{why}.", field=name)
    layer_flags = {k: flags[k] for k in _LAYER_FLAGS}
    if resolved.model is not None:
        given = [k for k, v in layer_flags.items() if v is not None]
        if output_size is not None or given:
            name = "output_size" if output_size is not None else given[0]
            raise ConvtError(f"{name}: applies to a layer config, not to a saved model's "
                             f"layers.", field=name)
        export_saved_tflite(resolved.model, layer, output, weights, input_shape, seed, as_json)
        return
    hint = None if input_shape is None else parse_shape(input_shape)
    spec = spec_from_cli(config, layer_flags, layer, input_shape=hint, resolved=resolved)
    kernel, bias = (None, None) if weights is None else spec.load_weights(weights)
    shape = resolve_shape(spec, hint, None if kernel is None else spec.kernel_in_channels(kernel))
    model = spec.export_tflite(kernel, bias, input_shape=shape, seed=seed,
                               output_size=parse_output_size(output_size),
                               dynamic=input_shape is not None)
    write_tflite(model, output, as_json, {"weights": weights or spec.export_info(seed)["weights"]})
