"""``convt run``: evaluate a Conv1D/2D/3DTranspose layer on an input, without Keras.

Zero-size inputs follow Keras (batch 0 -> batch 0; 0 channels or a zero-length
spatial axis -> pure bias, then activation) with the reference engine.
"""

from __future__ import annotations

import sys
from typing import Any

import click
import numpy as np

from ..errors import ConvtError
from ..runtimes import ADAPTERS, DEPRECATED, canonical_name, deprecation_note
from ..sources import resolve_input, resolve_sources
from ..spec import Conv2DTransposeSpec, format_shape
from .common import SEED, handle_errors
from .frameworks import framework_option, parse_output_size
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


def _run_runtime(spec: Any, x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None,
                 engine: str, providers: str | None, output_size: Any = None) -> np.ndarray:
    """The exported (portable) model on runtime ``engine``; a refusal exits 1 with its reason."""
    from ..io import cast_checked
    from ..runtimes import RuntimeRefused, get_runtime
    from ..validate.runtime import model_input

    runtime = get_runtime(engine, providers=providers)
    runtime.module()  # not installed: exit 2 naming the pip extra
    xb, added = spec.batched(x)
    model = spec.runtime_model(kernel, bias, xb.shape, output_size, kind=runtime.model_kind)
    name, in_dtype = model_input(model)
    try:
        y = runtime.load(model).run({name: cast_checked(xb, in_dtype, "input")})[0]
    except RuntimeRefused as exc:
        click.echo(f"Error: engine: {exc.reason}", err=True)
        sys.exit(1)
    y = np.asarray(y).astype(in_dtype, copy=False)   # a .tflite's float32 output of a float16 layer
    return y[0] if added else y


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
    from .model_arg import _note

    resolved = resolve_input(config, weights, framework=framework)

    def select(shape: Any = None) -> Any:
        return resolve_sources(config, weights=weights, layer=layer, input_shape=shape,
                               single=True, note=_note, resolved=resolved)[0]
    # a saved model's layer is chosen before the input is read; a layer config's rank
    # may come from the input's
    src = select() if resolved.model is not None else None
    x = _load_input(input_path)
    size = parse_output_size(output_size)
    src = src or select(x.shape)
    spec = src.layer
    spec.check_input_shape(tuple(int(d) for d in x.shape))
    in_channels = int(spec.input_channels(x.shape))
    if src.kernel is not None:
        kernel, bias = spec.check_weights(src.kernel, src.bias, in_channels)
        source = f"weights: {src.weights_note}"
    elif weights is not None:
        kernel, bias = spec.load_weights(weights, in_channels, allow_zero_channels=True)
        source = f"weights from {weights}"
    else:
        kernel, bias, source = spec.init_weights(in_channels, seed)
    out_shape = spec.run_output_shape(x.shape, in_channels, size)  # glu on an odd axis: clear error
    check_allocation(out_shape, np.float32, "input_shape",
                     f"the output {out_shape} of input {tuple(x.shape)}")
    if engine == "reference":
        y = spec.reference(x, kernel, bias, size)
    else:
        y = _run_runtime(spec, x, kernel, bias, engine, providers, size)
    save_npy(output, y)
    click.echo(f"wrote {output}: {format_shape(y.shape)} {y.dtype} ({engine}; {source})",
               err=True)

