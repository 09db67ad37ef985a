"""``convt export --format tflite``: a layer config, a saved model's layer, or every layer of a
saved model (``-o folder/``: ``NN_<layer>.tflite`` plus ``index.json``), as LiteRT models
written without TensorFlow (:mod:`convt_tools.tflite`; needs the ``[litert]`` extra).

Files are written through temporary files renamed into place
(:func:`convt_tools.io.atomic_write_files`): a refused layer writes nothing.
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable

from ..errors import ConvtError
from ..io import atomic_write_files, ensure_distinct
from ..layer import input_shape as layer_input_shape
from ..spec import parse_shape
from ..tflite import TfliteModel, export_keras_tflite
from .common import echo, echo_json, term_safe
from .export_saved import INDEX, file_names
from .model_arg import select_sources, single_source

__all__ = ["describe_tflite", "export_saved_tflite", "write_tflite"]

# Options of `convt export` that shape the ONNX model only.
ONNX_ONLY = ("opset", "dtype", "allow_unsupported_dtype", "form")


def describe_tflite(path: str, model: TfliteModel) -> dict[str, Any]:
    """What ``convt export --format tflite`` reports about a written model."""
    return {"path": path, "format": "tflite", "size_bytes": os.path.getsize(path),
            "ops": model.ops, "padding": model.padding,
            "input": {"name": model.input_name, "shape": list(model.input_shape),
                      "dtype": "float32"},
            "output": {"name": "output", "shape": list(model.output_shape), "dtype": "float32"},
            "judged_as": model.dtype, "notes": model.notes}


def _human(info: dict[str, Any]) -> list[str]:
    return [f"wrote {info['path']} ({info['size_bytes']:,} bytes, tflite)",
            f"ops {' -> '.join(info['ops'])} (padding {info['padding']})",
            f"input  {tuple(info['input']['shape'])} float32",
            f"output {tuple(info['output']['shape'])} float32",
            *[f"note: {n}" for n in info["notes"]]]


def _writer(data: bytes) -> Callable[[str], None]:
    def write(tmp: str) -> None:
        with open(tmp, "wb") as fh:
            fh.write(data)
    return write


def write_tflite(model: TfliteModel, output: str, as_json: bool,
                 extra: dict[str, Any] | None = None) -> None:
    """Write ``model`` to ``output`` and report it (JSON or lines)."""
    atomic_write_files([(output, _writer(model.data))])
    info = {**describe_tflite(output, model), **(extra or {})}
    if as_json:
        echo_json(info)
    else:
        echo("\n".join(_human(info)))


def _tflite_name(onnx_name: str) -> str:
    return onnx_name[:-len(".onnx")] + ".tflite"


def export_saved_tflite(saved: Any, layer: str | None, output: str, weights: str | None,
                        input_shape: str | None, seed: int, as_json: bool) -> None:
    """``--layer`` to the file ``output``, or every layer into the folder ``output``
    (layers whose input has unknown spatial dims are skipped, with the reason)."""
    folder_target = os.path.isdir(output) or output.endswith(("/", os.sep))
    if layer is not None or not folder_target:
        if folder_target:
            raise ConvtError(f"output: {output!r} names a folder; give a .tflite file path "
                             f"with --layer (or drop --layer to export every layer there).",
                             field="output")
        source = single_source(saved, layer, weights)
        shape = layer_input_shape(source.spec, None if input_shape is None
                                  else parse_shape(input_shape),
                                  None if source.kernel is None else int(source.kernel.shape[-1]))
        model = export_keras_tflite(source.spec, source.kernel, source.bias, input_shape=shape,
                                    seed=seed, dynamic=input_shape is not None)
        write_tflite(model, output, as_json, {"layer": source.record.path,
                                              "layer_index": source.record.index})
        return
    if input_shape is not None:
        raise ConvtError("input_shape: applies to one layer; add --layer, or export every "
                         "layer at its recorded input shape.", field="input_shape")
    sources, skipped = select_sources(saved, None, weights, skip_unsupported=True)
    folder = output.rstrip("/" + os.sep) or output
    if not os.path.isdir(folder):
        if os.path.lexists(folder):
            raise ConvtError(f"output: {folder!r} exists and is not a folder.", field="output")
        if not os.path.isdir(os.path.dirname(os.path.abspath(folder))):
            raise ConvtError(f"output: the folder above {folder!r} does not exist.",
                             field="output")
    built, entries, skips = [], [], [{"index": r.index, "path": r.path, "class_name":
                                      r.class_name, "reason": r.unsupported} for r in skipped]
    for source, name in zip(sources, file_names([s.record for s in sources])):
        shape = layer_input_shape(source.spec, None, None if source.kernel is None
                                  else int(source.kernel.shape[-1]))
        try:
            model = export_keras_tflite(source.spec, source.kernel, source.bias,
                                        input_shape=shape, seed=seed)
        except ConvtError as exc:   # e.g. unknown spatial dims: skipped, with the reason
            skips.append({"index": source.record.index, "path": source.record.path,
                          "class_name": source.record.class_name, "reason": str(exc)})
            continue
        path = os.path.join(folder, _tflite_name(name))
        ensure_distinct(path, model=saved.source, weights=weights)
        built.append((path, model))
        entries.append({"index": source.record.index, "path": source.record.path,
                        "tflite": os.path.basename(path), "ops": model.ops,
                        "input_shape": list(model.input_shape),
                        "output_shape": list(model.output_shape)})
    index = {"model": saved.source, "format": "tflite", "layers": entries, "skipped": skips}
    if not os.path.isdir(folder):
        os.mkdir(folder)
    atomic_write_files([*((p, _writer(m.data)) for p, m in built),
                        (os.path.join(folder, INDEX), _writer(json.dumps(index, indent=2)
                                                              .encode()))])
    if as_json:
        echo_json({"folder": folder, "index": os.path.join(folder, INDEX),
                   "models": [describe_tflite(p, m) for p, m in built], "skipped": skips})
        return
    for path, e in zip((p for p, _ in built), entries):
        echo(f"wrote {path}  ({term_safe(e['path'])}: {' -> '.join(e['ops'])})")
    for s in skips:
        echo(f"skipped {term_safe(s['path'])}: {s['reason']}")
    echo(f"wrote {os.path.join(folder, INDEX)}")
