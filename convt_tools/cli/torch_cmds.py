"""The torch side of ``convt shape``, ``run``, ``export`` (``validate`` in validate_cmd).

Each function is the body of its command for a PyTorch ``nn.ConvTranspose{n}d``
config (see :mod:`.frameworks`); the commands call them after resolving the
framework, with the options they parsed.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from ..errors import ConvtError
from ..spec import format_shape, parse_shape
from .common import echo_json
from .frameworks import torch_spec_or_none

__all__ = ["parse_output_size", "torch_export", "torch_run", "torch_shape"]


def parse_output_size(text: str | None) -> list[int] | None:
    """``--output-size 20,16`` -> ``[20, 16]``."""
    if text is None:
        return None
    shape = parse_shape(text, "output_size")
    if any(d is None for d in shape):
        raise ConvtError(f"output_size: got {text!r}; expected integers only.", field="output_size")
    return [d for d in shape if d is not None]


def _rank(shape: tuple[Any, ...] | None) -> int | None:
    return None if shape is None else len(shape) - 2


def torch_shape(config: str | None, framework: str | None, input_shape: str | None,
                output_size: str | None, *, explain: bool, as_json: bool) -> None:
    """``convt shape`` for a torch config."""
    if input_shape is None:
        raise ConvtError("input_shape: missing; give --input-shape N,C,... (torch layout), with "
                         "None or ? for unknown dims.", field="input_shape")
    shape = parse_shape(input_shape)
    spec = torch_spec_or_none(config, framework, _rank(shape))
    size = parse_output_size(output_size)
    out = spec.output_shape(shape, size)
    if as_json:
        op = spec.resolve_output_padding(shape, size) if size is not None else spec.output_padding
        axes = spec.onnx_axes(op)
        echo_json({"framework": "torch", "module": spec.module, "input_shape": list(shape),
                   "output_shape": list(out), "output_padding": list(op),
                   "config": spec.to_config(), "onnx": spec.onnx_attrs(op),
                   "onnxruntime_form": [a.__dict__ for a in axes]})
    elif explain:
        click.echo(spec.explain(shape, size))
    else:
        click.echo(format_shape(out))


def torch_run(config: str | None, framework: str | None, input_path: str, weights: str | None,
              engine: str, seed: int, providers: str | None, output: str,
              output_size: str | None) -> None:
    """``convt run`` for a torch config (the NumPy reference or any runtime adapter)."""
    import numpy as np

    from ..io import cast_checked, check_allocation, load_npy, save_npy
    from ..torchconv.compute import (initialize_torch_weights, load_torch_weights,
                                     torch_conv_transpose)

    x = load_npy(input_path, field="input")
    if x.dtype.kind != "f":
        raise ConvtError(f"input: got dtype {x.dtype.name} in {input_path!r}; expected a float "
                         f"array.", field="input")
    spec = torch_spec_or_none(config, framework, x.ndim - 2)
    size = parse_output_size(output_size)
    out_shape = spec.output_shape(x.shape, size)
    check_allocation(out_shape, np.float32, "input_shape", f"the output {out_shape}")
    if weights is not None:
        w, b = load_torch_weights(weights, spec)
        source = f"weights from {weights}"
    else:
        w, b = initialize_torch_weights(spec, seed)
        source = f"weights from torch's default init (seed {seed})"
    if engine == "reference":
        y = torch_conv_transpose(spec, x, cast_checked(w, x.dtype, "weight"),
                                 None if b is None else cast_checked(b, x.dtype, "bias"), size)
    else:
        from ..runtimes import RuntimeRefused, get_runtime
        from ..torchconv.export import export_torch
        from ..validate.runtime import model_input

        runtime = get_runtime(engine, providers=providers)
        runtime.module()  # not installed: exit 2 naming the pip extra
        xb = x[None] if x.ndim == spec.rank + 1 else x
        model = export_torch(spec, w, b, input_shape=xb.shape, output_size=size)
        name, dt = model_input(model)
        try:
            y = np.asarray(runtime.load(model).run({name: cast_checked(xb, dt, "input")})[0])
        except RuntimeRefused as exc:
            click.echo(f"Error: engine: {exc.reason}", err=True)
            sys.exit(1)
        y = y[0] if x.ndim == spec.rank + 1 else y
    save_npy(output, y)
    click.echo(f"wrote {output}: {format_shape(y.shape)} {y.dtype} ({engine}; {source})",
               err=True)


def torch_export(config: str | None, framework: str | None, output: str, weights: str | None,
                 input_shape: str | None, opset: int, seed: int, output_size: str | None, *,
                 as_json: bool) -> None:
    """``convt export`` for a torch config."""
    from ..exporter import describe_model
    from ..onnxbase import save_model, uses_external_data
    from ..torchconv.compute import load_torch_weights
    from ..torchconv.export import export_torch

    shape = None if input_shape is None else parse_shape(input_shape)
    spec = torch_spec_or_none(config, framework, _rank(shape))
    w = b = None
    if weights is not None:
        w, b = load_torch_weights(weights, spec)
    model = export_torch(spec, w, b, input_shape=shape, output_size=parse_output_size(output_size),
                         opset=opset, seed=seed)
    save_model(model, output)
    info = describe_model(model)
    info.update({"path": output, "size_bytes": os.path.getsize(output),
                 "external_data": f"{output}.data" if uses_external_data(model) else None,
                 "framework": "torch",
                 "module": spec.module, "group": spec.groups,
                 "weights": weights or f"torch's default init (seed {seed})"})
    if as_json:
        echo_json(info)
        return
    op = info["output_padding"]
    click.echo("\n".join([
        f"wrote {output} ({info['size_bytes']:,} bytes"
        + (f", tensors in {info['external_data']}" if info["external_data"] else "") + ")",
        f"opset {info['opset']}, ir_version {info['ir_version']}, {info['dtype']}, "
        f"torch layout (N, C, ...)",
        f"input  {format_shape(info['input']['shape'])}",
        f"output {format_shape(info['output']['shape'])}",
        f"ConvTranspose kernel {info['kernel_shape']}, strides {info['strides']}, dilations "
        f"{info['dilations']}, pads {info['pads']} (begins, ends), output_padding "
        f"{op if op else 'none'}, group {spec.groups}, bias {'yes' if info['bias'] else 'no'}",
        f"weights {info['weights']}"] + [f"note: {n}" for n in info["notes"]]))
