"""``convt run``: evaluate a Conv1D/2D/3DTranspose layer on an input, without Keras.

Zero-size inputs follow Keras (batch 0 -> batch 0; 0 channels or a zero-length
spatial axis -> pure bias, then activation) with the reference engine.
"""

from __future__ import annotations

import sys

import click
import numpy as np

from ..errors import ConvtError
from ..runtimes import ADAPTERS, DEPRECATED, canonical_name, deprecation_note
from ..spec import Conv2DTransposeSpec, format_shape, load_config
from .common import SEED, handle_errors
from .frameworks import framework_option, is_torch_config, no_layer_for_torch
from .model_arg import layer_option

_FLOAT_KINDS = ("float16", "float32", "float64")
# the NumPy reference, then every runtime adapter (the same names as validate --runtime);
# the old spellings (onnx.reference, onnx2torch) are accepted with a note
ENGINES = ["reference", *ADAPTERS]


def _load_input(path: str, spec: Conv2DTransposeSpec | None = None) -> np.ndarray:
    """The input array (no unpickling), checked for its dtype and (given a spec) its shape."""
    from ..io import load_npy

    x = load_npy(path, field="input")
    if x.dtype.name not in _FLOAT_KINDS:
        raise ConvtError(f"input: got dtype {x.dtype.name} in {path!r}; expected "
                         f"{', '.join(_FLOAT_KINDS)} (cast it first).", field="input")
    if spec is not None:
        spec.check_input_shape(tuple(int(d) for d in x.shape))
    return x


def _weights(spec: Conv2DTransposeSpec, weights: str | None, in_channels: int,
             seed: int) -> tuple[np.ndarray, np.ndarray | None, str]:
    if weights is not None:
        from ..weights import load_weights

        kernel, bias = load_weights(weights, spec, in_channels, allow_zero_channels=True)
        return kernel, bias, f"weights from {weights}"
    from ..initializers import initialize_weights

    # 0 input channels (legal in Keras): an empty kernel; the bias stream does not
    # depend on the channel count, so it is the one a 1-channel layer would draw.
    kernel, bias = initialize_weights(spec, max(in_channels, 1), seed)
    return kernel[..., :in_channels], bias, \
        f"weights initialised from the config's initializers (seed {seed})"


def _compute_dtype(spec: Conv2DTransposeSpec) -> np.dtype:
    """The layer's compute dtype; bfloat16 (not in NumPy) computes in float32."""
    return np.dtype("float32" if spec.dtype == "bfloat16" else spec.dtype)


def _run_reference(spec: Conv2DTransposeSpec, x: np.ndarray, kernel: np.ndarray,
                   bias: np.ndarray | None) -> np.ndarray:
    from ..reference import keras_conv_transpose

    dt = _compute_dtype(spec)
    from ..io import cast_checked

    return keras_conv_transpose(spec, cast_checked(x, dt, "input"), cast_checked(kernel, dt, "kernel"),
                                  None if bias is None else cast_checked(bias, dt, "bias"))


def _run_runtime(spec: Conv2DTransposeSpec, x: np.ndarray, kernel: np.ndarray,
                 bias: np.ndarray | None, engine: str, providers: str | None) -> np.ndarray:
    """The exported (portable) model on runtime ``engine``; a refusal exits 1 with its reason."""
    from ..exporter import export_spec
    from ..runtimes import RuntimeRefused, get_runtime
    from ..validate.runtime import model_input

    runtime = get_runtime(engine, providers=providers)
    runtime.module()  # not installed: exit 2 naming the pip extra
    dtype = None if spec.dtype in ("float32", "float16") else "float32"
    model = export_spec(spec, kernel, bias, input_shape=x.shape, dtype=dtype)
    name, in_dtype = model_input(model)
    try:
        from ..io import cast_checked

        return runtime.load(model).run({name: cast_checked(x, in_dtype, "input")})[0]
    except RuntimeRefused as exc:
        click.echo(f"Error: engine: {exc.reason}", err=True)
        sys.exit(1)


@click.command()
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--input", "-i", "input_path", required=True, type=click.Path(dir_okay=False),
              help="Input .npy in the layer's data format (loaded without pickle).")
@click.option("--weights", "-w", type=click.Path(dir_okay=False),
              help=".npz with kernel (*kernel_size, filters, in_channels) and bias. Default: "
                   "drawn from the config's initializers with --seed.")
@click.option("--engine", type=click.Choice([*ENGINES, *DEPRECATED]), default="reference",
              show_default=True, help="NumPy reference, or the exported model on a runtime "
              "(openvino, tract, torch need their pip extra).")
@click.option("--seed", type=SEED, default=0, show_default=True,
              help="Seed for initialised weights.")
@click.option("--providers", help="onnxruntime execution providers (with --engine "
              "onnxruntime), e.g. CPU or CUDA,CPU.")
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False),
              help="Where to write the output .npy (atomically).")
@click.option("--output-size", help="torch only: forward(x, output_size=...), e.g. 20,16.")
@framework_option
@layer_option
@handle_errors
def run(config: str, input_path: str, weights: str | None, engine: str, seed: int,
        providers: str | None, output: str, output_size: str | None,
        framework: str | None, layer: str | None) -> None:
    """Evaluate the layer of CONFIG on an input and write the output.

    \b
    convt run layer.json --input x.npy -o y.npy
    convt run layer.json --input x.npy --weights w.npz --engine onnxruntime -o y.npy
    convt run torch.json --input x.npy --weights state.npz -o y.npy   (torch: weight, bias)
    convt run model.keras --layer decoder/up_2 --input x.npy -o y.npy   (real weights)
    """
    from ..io import check_allocation, ensure_distinct, save_npy

    ensure_distinct(output, config=config, input=input_path, weights=weights)
    note = deprecation_note(engine)
    if note:
        click.echo(note, err=True)
    engine = canonical_name(engine)
    if providers is not None and engine != "onnxruntime":
        raise ConvtError(f"providers: got {providers!r} with --engine {engine}; execution "
                         f"providers apply only to --engine onnxruntime.", field="providers")
    if is_torch_config(config, framework):
        from .torch_cmds import torch_run

        no_layer_for_torch(layer)
        torch_run(config, framework, input_path, weights, engine, seed, providers, output,
                  output_size)
        return
    if output_size is not None:
        raise ConvtError("output_size: applies to torch configs only.", field="output_size")
    from .model_arg import resolve_model, single_source

    saved = resolve_model(config, weights)
    if saved is not None:
        layer_src = single_source(saved, layer, weights)
        spec = layer_src.spec
        x = _load_input(input_path, spec)
        in_channels = int(x.shape[spec.channels_axis])
        if layer_src.kernel is not None:
            from ..weights import check_weights

            kernel, bias = check_weights(spec, layer_src.kernel, layer_src.bias, in_channels)
            source = f"weights: {layer_src.weights_note}"
        else:
            kernel, bias, source = _weights(spec, None, in_channels, seed)
    else:
        if layer is not None:
            raise ConvtError(f"layer: --layer applies to saved models; {config!r} is not one.",
                             field="layer")
        x = _load_input(input_path)
        spec = load_config(config, input_shape=x.shape)
        spec.check_input_shape(tuple(int(d) for d in x.shape))
        in_channels = int(x.shape[spec.channels_axis])
        kernel, bias, source = _weights(spec, weights, in_channels, seed)
    out_shape = spec.activated_output_shape(x.shape, in_channels)  # glu on an odd axis: clear error
    check_allocation(out_shape, np.float32, "input_shape",
                     f"the output {out_shape} of input {tuple(x.shape)}")
    if engine == "reference":
        y = _run_reference(spec, x, kernel, bias)
    else:
        y = _run_runtime(spec, x, kernel, bias, engine, providers)
    save_npy(output, y)
    click.echo(f"wrote {output}: {format_shape(y.shape)} {y.dtype} ({engine}; {source})",
               err=True)

