"""``convt shape``: the output-shape calculator (imports no onnx)."""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import click

from ..errors import ConvtError
from ..spec import Conv2DTransposeSpec, format_shape, make_spec, parse_config, parse_shape
from ..spec.values import parse_int
from .common import echo_json, handle_errors
from .frameworks import framework_option, is_torch_config, no_layer_for_torch
from .model_arg import layer_option

_LAYER_FLAGS = ("rank", "filters", "kernel_size", "strides", "padding", "output_padding",
                "data_format", "dilation_rate", "activation", "use_bias")


def _ints(text: str | None, name: str) -> Any:
    """``"2"`` -> 2, ``"2,3"`` -> (2, 3), ``"2,3,3"`` -> (2, 3, 3), ``"None"`` -> None."""
    if text is None:
        return None
    if text.strip().lower() in ("none", "null"):
        return None
    allowed = ("expected an integer or one per spatial axis separated by commas, e.g. 2, 2,3 "
               "or 2,3,3")
    parts = [parse_int(p, name, allowed) for p in text.replace("x", ",").split(",")]
    if len(parts) == 1:
        return parts[0]
    if len(parts) <= 3:
        return tuple(parts)
    raise ConvtError(f"{name}: got {text!r}; expected one to three integers (one per spatial "
                     f"axis).", field=name)


def _rank(text: str | None) -> int | None:
    if text is None:
        return None
    if text.strip() in ("1", "2", "3"):
        return int(text)
    raise ConvtError(f"rank: got {text!r}; expected 1, 2 or 3 (Conv1DTranspose, "
                     f"Conv2DTranspose, Conv3DTranspose).", field="rank")


def spec_from_cli(config: str | None, flags: dict[str, Any], layer: str | None = None,
                  weights: str | None = None,
                  input_shape: Sequence[int | None] | None = None) -> Conv2DTransposeSpec:
    """A spec from a config file or a saved model's ``--layer``, from Keras-named flags,
    or both (flags win).

    The rank: ``--rank``, else the config's class name, else (bare configs)
    the tuple lengths, else ``input_shape``'s rank, else 2 (see
    :mod:`convt_tools.spec.parse`). Flags alone are like calling the Keras
    class: ``Conv2DTranspose`` unless ``--rank`` says otherwise.
    """
    rank = _rank(flags.get("rank"))
    given = {k: v for k, v in flags.items() if v is not None and k != "rank"}
    for key in ("kernel_size", "strides", "dilation_rate", "output_padding"):
        if key in given:
            given[key] = _ints(given[key], key)
    if config is None:
        if "filters" not in given or "kernel_size" not in given:
            raise ConvtError("config: give a layer config file, or at least --filters and "
                             "--kernel-size.", field="config")
        if weights is not None:
            raise ConvtError("weights: --weights applies to saved models (.keras, .h5, model "
                             "config JSON); a layer given by flags needs no weights.",
                             field="weights")
        return make_spec(**given, rank=rank)
    from .model_arg import load_layer_spec

    spec = load_layer_spec(config, layer, weights, rank=rank, input_shape=input_shape)
    if not given:
        return spec
    merged = spec.to_config()
    merged.update(given)
    if "data_format" not in given and spec.data_format_source != "config":
        merged["data_format"] = None
    merged.pop("dtype")
    again = parse_config(merged, rank=spec.rank)
    return dataclasses.replace(again, input_shape=spec.input_shape, rank_source=spec.rank_source)


def _no_keras_flags(flags: dict[str, Any]) -> None:
    """Keras layer flags make no sense with a torch config: say so instead of ignoring them."""
    given = [k for k in _LAYER_FLAGS if flags.get(k) is not None]
    if given:
        raise ConvtError(f"{given[0]}: Keras layer flags (--{given[0].replace('_', '-')}) do not "
                         f"apply to a torch config; put torch's arguments in the JSON.",
                         field=given[0])


def layer_options(func: Any) -> Any:
    """Click options with the Keras argument names, shared by commands."""
    opts = [
        click.option("--filters", type=int, help="Number of output channels."),
        click.option("--rank", help="Spatial rank 1, 2 or 3 (Conv1D/2D/3DTranspose); default: "
                     "the config's class name, else its tuple lengths, else the input "
                     "shape's rank, else 2 (flags alone: 2)."),
        click.option("--kernel-size", help="Kernel size: N, or one per axis (H,W; D,H,W)."),
        click.option("--strides", help="Strides: N or one per axis (default 1)."),
        click.option("--padding", help="valid (default) or same."),
        click.option("--output-padding", help="None (default), N or one per axis."),
        click.option("--data-format", help="channels_last or channels_first "
                     "(default: keras.json, else channels_last)."),
        click.option("--dilation-rate", help="Dilation: N or one per axis (default 1)."),
        click.option("--activation", help="A Keras activation name (default linear)."),
        click.option("--use-bias/--no-use-bias", default=None, help="Bias on (default) or off."),
    ]
    for opt in reversed(opts):
        func = opt(func)
    return func


@click.command()
@click.argument("config", required=False, type=click.Path(dir_okay=False))
@layer_options
@click.option("--input-shape", "input_shape", help="Input shape, e.g. 4,10,8,128 "
              "(None or ? for unknown dims). Defaults to the config's build_config input shape.")
@click.option("--explain", is_flag=True, help="Print the per-axis derivation.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
@click.option("--output-size", help="torch only: forward(x, output_size=...), e.g. 20,16.")
@framework_option
@layer_option
@click.option("--weights", "-w", type=click.Path(dir_okay=False),
              help="With a model config JSON: its weights (.weights.h5 / .h5), for input "
                   "channels when no input shape is recorded.")
@handle_errors
def shape(config: str | None, input_shape: str | None, explain: bool, as_json: bool,
          output_size: str | None, framework: str | None, layer: str | None,
          weights: str | None, **flags: Any) -> None:
    """Print the output shape of a Conv1D/2D/3DTranspose layer.

    \b
    convt shape layer.json --input-shape 4,10,8,128
    convt shape --rank 1 --filters 32 --kernel-size 8 --strides 4 --input-shape 1,16000,64
    convt shape --filters 32 --kernel-size 2 --strides 2 --input-shape 4,10,8,128
    convt shape layer.json --input-shape None,?,?,128 --explain
    convt shape torch.json --input-shape 1,16,10,8     (PyTorch ConvTranspose kwargs)
    convt shape model.keras --layer decoder/up_2
    """
    if is_torch_config(config, framework):
        _no_keras_flags(flags)
        no_layer_for_torch(layer)
        if weights is not None:
            raise ConvtError("weights: --weights applies to saved Keras models; a torch "
                             "config's shape needs no weights.", field="weights")
        from .torch_cmds import torch_shape

        torch_shape(config, framework, input_shape, output_size, explain, as_json)
        return
    if output_size is not None:
        raise ConvtError("output_size: applies to torch configs only (Keras has no "
                         "output_size); use --output-padding.", field="output_size")
    hint = None if input_shape is None else parse_shape(input_shape)
    spec = spec_from_cli(config, {k: flags[k] for k in _LAYER_FLAGS}, layer, weights,
                         input_shape=hint)
    if hint is not None:
        in_shape = hint
    elif spec.input_shape is not None:
        in_shape = spec.input_shape
    else:
        lay = spec.layout
        raise ConvtError(f"input_shape: missing; give --input-shape {lay.letters()} "
                         f"({lay.data_format}), with None or ? for unknown dims.",
                         field="input_shape")
    out = spec.output_shape(in_shape)
    returned = spec.activated_output_shape(in_shape)
    if as_json:
        echo_json({
            "input_shape": list(in_shape),
            "output_shape": list(out),
            "returned_shape": list(returned),
            "config": spec.to_config(),
            "data_format_source": spec.data_format_source,
            "class_name": spec.class_name,
            "rank": spec.rank,
            "rank_source": spec.rank_source,
            "crop_plan": [
                {"axis": d.axis, "effective_kernel": d.effective_kernel,
                 "natural_length": d.natural_length, "output_length": d.output_length,
                 "crop_begin": d.crop.begin, "crop_end": d.crop.end,
                 "extend_end": d.crop.extend}
                for d in spec.derivation(in_shape)
            ],
            "notes": spec.notes(),
        })
        return
    if explain:
        click.echo(spec.explain(in_shape))
        for note in spec.notes():
            click.echo(f"note: {note}")
        return
    click.echo(format_shape(out))
    if returned != out:
        click.echo(f"note: glu halves the last axis; the layer returns {format_shape(returned)}",
                   err=True)
