"""``convt translate``: the exact equivalent of a layer in the other framework, proven."""

from __future__ import annotations

import json
from typing import Any

import click

from ..errors import ConvtError
from .common import echo_json, handle_errors
from .frameworks import framework_option
from .model_arg import layer_option


def _load(config: str, framework: str | None, weights: str | None,
          in_channels: int | None, layer: str | None) -> tuple[Any, Any, int | None]:
    """(spec, source weights or None, in_channels), through the one resolver.

    ``in_channels`` (``--in-channels``) must be >= 1 and agree with what the layer records
    (its build_config / saved input shape, or its weights)."""
    from ..layer import input_shape
    from ..sources import resolve_sources
    from .model_arg import _note

    if in_channels is not None and in_channels < 1:
        raise ConvtError(f"in_channels: got {in_channels}; expected >= 1.", field="in_channels")
    source = resolve_sources(config, weights=weights, layer=layer, framework=framework,
                             single=True, note=_note)[0]
    spec, conv = source.spec, source.layer
    if source.record is not None and source.kernel is not None:
        # .keras / .h5 / model config with weights: the layer's real weights
        return spec, (source.kernel, source.bias), conv.kernel_in_channels(source.kernel)
    src = None
    if source.record is None and weights is not None:
        src = conv.load_weights(weights, in_channels)
        in_channels = conv.kernel_in_channels(src[0])
    shape = input_shape(conv, required=False)
    recorded = None if shape is None else conv.input_channels(shape)
    if recorded is not None:
        if in_channels is not None and recorded != in_channels:
            raise ConvtError(f"in_channels: got {in_channels}, but the layer's recorded input "
                             f"shape has {recorded} channels; drop --in-channels or make them "
                             f"agree.", field="in_channels")
        in_channels = recorded
    return spec, src, in_channels


def _proof_input(spec: Any, text: str | None, in_channels: int | None
                 ) -> tuple[tuple[int, ...] | None, int, int | None]:
    """``--input-shape`` in the source's own layout -> (spatial, batch, in_channels)."""
    if text is None:
        return None, 2, in_channels
    from ..spec import parse_shape

    batch, channels, spatial = spec.split_input_shape(parse_shape(text), in_channels)
    if batch is None or channels is None or any(d is None or d == 0
                                                for d in (batch, channels, *spatial)):
        raise ConvtError(f"input_shape: got {text!r}; the proof runs on a concrete input, so "
                         f"every dim must be a known integer >= 1.", field="input_shape")
    return tuple(int(d) for d in spatial if d is not None), int(batch), int(channels)


def _target_config(tr: Any) -> Any:
    if tr.target == "torch":
        return tr.torch.to_config() | ({"slice_after": [list(c) for c in tr.crop]}
                                       if any(b or e for b, e in tr.crop) else {})
    layers = [{"class_name": tr.keras.class_name, "config": tr.keras.to_config()}]
    if any(b or e for b, e in tr.crop):
        layers.append({"class_name": f"Cropping{tr.keras.rank}D",
                       "config": {"cropping": [list(c) for c in tr.crop]}})
    return layers


def _write_weights(path: str, arrays: dict[str, Any]) -> None:
    import numpy as np

    from ..io import atomic_write

    def write(tmp: str) -> None:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
    atomic_write(path, write)


@click.command()
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--to", "to", required=True, type=click.Choice(["torch", "keras"]),
              help="Target framework.")
@click.option("--weights", "-w", type=click.Path(dir_okay=False),
              help="Source weights .npz (Keras: kernel, bias; torch: weight, bias); the proof "
                   "then runs on them and -o gets the converted weights.")
@click.option("--output", "-o", type=click.Path(dir_okay=False),
              help="Write the converted weights here (.npz; needs --weights).")
@click.option("--in-channels", type=int, help="Keras -> torch: input channels, when neither "
              "--weights nor the config's build_config gives them.")
@click.option("--input-shape", help="The proof's input, in the source's layout (torch: "
              "N,C,...; Keras: its data_format), e.g. 2,3,16,16; default: chosen from the "
              "layer (5, 6, 7 per axis, longer where padding crops more).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
@framework_option
@layer_option
@handle_errors
def translate(config: str, to: str, weights: str | None, output: str | None,
              in_channels: int | None, input_shape: str | None, as_json: bool,
              framework: str | None, layer: str | None) -> None:
    """Translate a Keras ConvNDTranspose config to torch, or torch ConvTranspose kwargs to Keras.

    Prints the target config, a pasteable Python snippet (module plus any crop),
    whether a single exact layer exists (and if not, the exact composite), and
    the proof: both sides run by the NumPy reference on one input, max error.

    \b
    convt translate layer.json --to torch --in-channels 16
    convt translate up_torch.json --to keras --weights state.npz -o keras_w.npz
    convt translate model.keras --layer decoder/up_2 --to torch -o up_torch.npz
    """
    from ..io import ensure_distinct
    from ..translate import translate as do_translate
    from ..translate.proof import keras_kernel_to_torch, prove, torch_weight_to_keras
    from ..translate.snippet import keras_snippet, torch_snippet

    if output is not None:
        ensure_distinct(output, config=config, weights=weights)
    spec, src, in_ch = _load(config, framework, weights, in_channels, layer)
    if output is not None and src is None:
        raise ConvtError("output: -o writes the converted weights, so it needs --weights "
                         "(or a saved model that holds them).", field="output")
    spatial, batch, in_ch = _proof_input(spec, input_shape, in_ch)
    tr = do_translate(spec, to, in_ch)
    proof = prove(tr, src, spatial, batch=batch)
    if not proof.exact:     # a bug, never a user error: say so loudly
        raise ConvtError(f"translate: the translation is not exact on the reference (max error "
                         f"{proof.max_abs_error}); please report this config.", field="translate")
    if output is not None and src is not None:
        a, b = src
        if tr.target == "torch":
            arrays = {"weight": keras_kernel_to_torch(a)}
            key = "bias"
        else:
            arrays = {"kernel": torch_weight_to_keras(tr, a)}
            key = "bias"
        if b is not None:
            arrays[key] = b
        # the target's dtype (NumPy has no bfloat16: those stay float32, cast on load)
        dtype = tr.torch.dtype if tr.target == "torch" else tr.keras.dtype
        if dtype in ("float16", "float32", "float64"):
            arrays = {k: v.astype(dtype) for k, v in arrays.items()}
        _write_weights(output, arrays)
    snippet = (torch_snippet if tr.target == "torch" else keras_snippet)(tr, output)
    info = {"source": tr.source, "target": tr.target, "single_layer": tr.single_layer,
            "no_exact_single_layer": tr.no_exact_single, "notes": tr.notes,
            "config": _target_config(tr), "snippet": snippet, "proof": proof.to_dict(),
            "weights": output}
    if as_json:
        echo_json(info)
        return
    head = "exact single layer" if tr.single_layer else "no exact single layer; exact composite"
    click.echo(f"{tr.source} -> {tr.target}: {head}")
    for r in tr.no_exact_single:
        click.echo(f"  - {r}")
    for n in tr.notes:
        click.echo(f"  note: {n}")
    click.echo("config: " + json.dumps(info["config"]))
    click.echo("snippet:\n" + "\n".join(f"    {line}" if line else "" for line in
                                         snippet.splitlines()))
    click.echo(f"proof: input {list(proof.input_shape)}, {tr.source} output "
               f"{list(proof.source_shape)} vs {tr.target} output {list(proof.target_shape)}: "
               f"max abs error {proof.max_abs_error:.3g} (NumPy reference, float64)")
    if output is not None:
        click.echo(f"wrote {output}")
