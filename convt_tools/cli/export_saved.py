"""``convt export MODEL``: one layer of a saved model (``--layer``), or every layer to a folder.

A folder export builds every model in memory first, then writes them and
``index.json`` (atomically, each), so a layer that cannot be exported leaves
nothing written.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

import click

from ..errors import ConvtError
from .common import echo_json
from .export_info import _human, _resolve_input_shape

INDEX = "index.json"


def _file_name(index: int, path: str) -> str:
    return f"{index:02d}_{re.sub(r'[^A-Za-z0-9_.-]+', '_', path).strip('._') or 'layer'}.onnx"


def _is_folder_target(output: str) -> bool:
    return os.path.isdir(output) or output.endswith(("/", os.sep))


def _build(source: Any, input_shape: str | None, opset: int, seed: int, dtype: str | None,
           allow_unsupported_dtype: bool, form: str) -> tuple[Any, tuple[Any, ...]]:
    from ..exporter import export_spec

    kernel_channels = None if source.kernel is None else int(source.kernel.shape[-1])
    in_shape = _resolve_input_shape(source.spec, input_shape, kernel_channels)
    model = export_spec(source.spec, source.kernel, source.bias, input_shape=in_shape,
                        opset=opset, seed=seed, dtype=dtype,
                        allow_unsupported_dtype=allow_unsupported_dtype, form=form)
    return model, in_shape


def _info(path: str, model: Any, source: Any, seed: int) -> dict[str, Any]:
    from ..exporter import describe_model
    from ..onnxbase import uses_external_data

    return {"path": path, "size_bytes": os.path.getsize(path),
            "external_data": f"{path}.data" if uses_external_data(model) else None,
            **describe_model(model), "layer": source.record.path,
            "class_name": source.record.class_name,
            "weights": source.weights_note if source.kernel is not None
            else f"initialised (seed {seed})"}


def export_saved(saved: Any, layer: str | None, output: str, weights: str | None,
                 input_shape: str | None, opset: int, seed: int, dtype: str | None,
                 allow_unsupported_dtype: bool, as_json: bool, form: str,
                 flags: dict[str, Any]) -> None:
    """Export ``--layer`` to the file ``output``, or every layer into the folder ``output``."""
    from ..onnxbase import save_model
    from ..io import atomic_write, ensure_distinct
    from .model_arg import select_sources, single_source

    if flags:
        name = next(iter(flags))
        raise ConvtError(f"{name}: layer flags (--{name.replace('_', '-')}) do not apply to a "
                         f"saved model; its layers' configs are used as saved.", field=name)
    if layer is not None or not _is_folder_target(output):
        if _is_folder_target(output):
            raise ConvtError(f"output: {output!r} is a folder; give a .onnx file path with "
                             f"--layer (or drop --layer to export every layer there).",
                             field="output")
        source = single_source(saved, layer, weights)
        model, _ = _build(source, input_shape, opset, seed, dtype, allow_unsupported_dtype, form)
        save_model(model, output)
        info = _info(output, model, source, seed)
        echo_json(info) if as_json else click.echo("\n".join(_human(info)))
        return
    if input_shape is not None:
        raise ConvtError("input_shape: applies to one layer; add --layer, or export every "
                         "layer at its recorded input shape.", field="input_shape")
    sources, skipped = select_sources(saved, None, weights, skip_unsupported=True)
    built = [(s, *_build(s, None, opset, seed, dtype, allow_unsupported_dtype, form)) for s in sources]
    folder = output.rstrip("/" + os.sep) or output
    if not os.path.isdir(folder):
        parent = os.path.dirname(os.path.abspath(folder))
        if not os.path.isdir(parent):
            raise ConvtError(f"output: folder {parent!r} does not exist.", field="output")
        os.mkdir(folder)
    entries, infos = [], []
    for source, model, in_shape in built:
        path = os.path.join(folder, _file_name(source.record.index, source.record.path))
        ensure_distinct(path, model=saved.source, weights=weights)
        save_model(model, path)
        info = _info(path, model, source, seed)
        infos.append(info)
        entries.append({"index": source.record.index, "path": source.record.path,
                        "class_name": source.record.class_name,
                        "onnx": os.path.basename(path),
                        "input_shape": [d if isinstance(d, int) else None for d in in_shape],
                        "output": info["output"], "weights": info["weights"]})
    index = {"model": saved.source, "format": saved.kind, "layers": entries,
             "skipped": [{"index": r.index, "path": r.path, "class_name": r.class_name,
                          "reason": r.unsupported} for r in skipped]}
    data = json.dumps(index, indent=2).encode()

    def write(tmp: str) -> None:
        with open(tmp, "wb") as fh:
            fh.write(data)

    atomic_write(os.path.join(folder, INDEX), write)
    if as_json:
        echo_json({"folder": folder, "index": os.path.join(folder, INDEX), "models": infos,
                   "skipped": index["skipped"]})
        return
    for e in entries:
        click.echo(f"wrote {os.path.join(folder, e['onnx'])}  ({e['path']})")
    for r in skipped:
        click.echo(f"skipped {r.path}: {r.unsupported}")
    click.echo(f"wrote {os.path.join(folder, INDEX)}")
