"""``convt shape``: the output-shape calculator (imports no onnx)."""

from __future__ import annotations

from typing import Any, Sequence

import click

from ..errors import ConvtError
from ..frameworks import as_layer
from ..io import ensure_distinct
from ..pictures import svg_document, write_text
from ..spec import make_spec, parse_shape
from ..spec.values import parse_int
from .common import echo_json, handle_errors
from .frameworks import framework_option, parse_output_size
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
                  input_shape: Sequence[int | None] | None = None,
                  framework: str | None = None, resolved: Any = None) -> Any:
    """A layer (:class:`~convt_tools.layer.LayerSpec`) from a config file (Keras or torch,
    by content) or a saved model's ``--layer``, from Keras-named flags, or both (flags win;
    a torch config refuses them).

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
        return as_layer(make_spec(**given, rank=rank))
    from .model_arg import load_layer_spec

    spec = load_layer_spec(config, layer, weights, rank=rank, input_shape=input_shape,
                           framework=framework, resolved=resolved)
    return as_layer(spec).apply_flags({**given, "rank": flags.get("rank")})


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
@click.option("--svg", "svg", type=click.Path(dir_okay=False), default=None,
              help="Also write an SVG picture: per spatial axis the full output, the window "
                   "kept and the rows cropped at each side (written atomically).")
@handle_errors
def shape(config: str | None, input_shape: str | None, explain: bool, as_json: bool,
          output_size: str | None, framework: str | None, layer: str | None,
          weights: str | None, svg: str | None, **flags: Any) -> None:
    """Print the output shape of a Conv1D/2D/3DTranspose layer.

    \b
    convt shape layer.json --input-shape 4,10,8,128
    convt shape --rank 1 --filters 32 --kernel-size 8 --strides 4 --input-shape 1,16000,64
    convt shape --filters 32 --kernel-size 2 --strides 2 --input-shape 4,10,8,128
    convt shape layer.json --input-shape None,?,?,128 --explain
    convt shape torch.json --input-shape 1,16,10,8     (PyTorch ConvTranspose kwargs)
    convt shape model.keras --layer decoder/up_2
    convt shape layer.json --input-shape 1,10,8,3 --svg crops.svg
    """
    if svg is not None:
        ensure_distinct(svg, field="svg", config=config, weights=weights)
    hint = None if input_shape is None else parse_shape(input_shape)
    spec = spec_from_cli(config, {k: flags[k] for k in _LAYER_FLAGS}, layer, weights,
                         input_shape=hint, framework=framework)
    in_shape = hint if hint is not None else spec.input_shape
    if in_shape is None:
        raise spec.missing_input_shape()
    size = parse_output_size(output_size)
    report = spec.shape_report(in_shape, size)
    if svg is not None:
        title = f"{spec.class_name}: input {list(in_shape)} -> output {report['text']}"
        write_text(svg, svg_document(title, spec.axis_panels(in_shape, size)), field="svg")
    if as_json:
        echo_json(report["json"])
    elif explain:
        click.echo(report["explain"])
    else:
        click.echo(report["text"])
        for line in report["stderr"]:
            click.echo(line, err=True)
