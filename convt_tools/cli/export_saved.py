"""``convt export MODEL``: one layer of a saved model (``--layer``), or every layer to a folder.

A folder export is all or nothing: every model is built in memory and every
file name chosen (:func:`file_names`: sanitised, shortened with a stable hash
when too long, collisions resolved) and checked (:func:`convt_tools.io.check_destination`:
never a file the command reads) before anything is written; the files are then
written into a temporary folder inside the target and renamed into place, the
``.data`` files first and ``index.json`` last. A failure (or SIGTERM) removes the
temporary folder, and the target folder too when this command created it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from typing import Any, Sequence

from ..errors import ConvtError
from ..layer import input_shape as layer_input_shape
from ..spec import parse_shape
from .common import echo, echo_json, term_safe
from .export_info import _human, for_targets

INDEX = "index.json"


MAX_STEM = 100   # characters of a layer's path kept in its file name (ASCII after sanitising)


def _file_name(index: int, path: str) -> str:
    """``NN_<path>.onnx``: characters outside ``[A-Za-z0-9_.-]`` become ``_`` (no control
    character, separator or surrogate reaches the file system); a path longer than
    :data:`MAX_STEM` is cut and gets ``-<sha256 of the path, 10 hex>`` (stable)."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", path).strip("._-") or "layer"
    if len(stem) > MAX_STEM:
        digest = hashlib.sha256(path.encode("utf-8", "surrogatepass")).hexdigest()[:10]
        stem = f"{stem[:MAX_STEM].rstrip('._-')}-{digest}"
    return f"{index:02d}_{stem}.onnx"


def file_names(records: Sequence[Any]) -> list[str]:
    """One distinct file name per record (:func:`_file_name`); names that collide (also
    ignoring case, for case-insensitive file systems) or that would be ``index.json``
    get ``-2``, ``-3``... before ``.onnx``."""
    names: list[str] = []
    taken = {INDEX.lower()}
    for rec in records:
        name = _file_name(rec.index, rec.path)
        stem, n = name[:-len(".onnx")], 1
        while name.lower() in taken or f"{name}.data".lower() in taken:
            n += 1
            name = f"{stem}-{n}.onnx"
        taken.update({name.lower(), f"{name}.data".lower()})
        names.append(name)
    return names


def _is_folder_target(output: str) -> bool:
    return os.path.isdir(output) or output.endswith(("/", os.sep))


def _build(source: Any, input_shape: str | None, opset: int, seed: int, dtype: str | None,
           allow_unsupported_dtype: bool, form: str,
           targets: Sequence[str] | None = None,
           quantize: Any = None) -> tuple[Any, tuple[Any, ...]]:
    from ..exporter import export_spec

    kernel_channels = None if source.kernel is None else int(source.kernel.shape[-1])
    in_shape = layer_input_shape(source.spec, None if input_shape is None else
                                 parse_shape(input_shape), kernel_channels)
    assert in_shape is not None                  # required: an error names input_shape
    model = export_spec(source.spec, source.kernel, source.bias, input_shape=in_shape,
                        opset=opset, seed=seed, dtype=dtype,
                        allow_unsupported_dtype=allow_unsupported_dtype, form=form)
    if quantize is not None:   # --quantize int8 (.export_quant)
        from .export_quant import quantize_export

        model, _ = quantize_export(model, quantize)
    model, _ = for_targets(model, targets, seed)
    return model, in_shape


def _info(path: str, model: Any, source: Any, seed: int) -> dict[str, Any]:
    from ..exporter import describe_model
    from ..onnxbase import uses_external_data

    return {"path": path, "size_bytes": os.path.getsize(path),
            "external_data": f"{path}.data" if uses_external_data(model) else None,
            **describe_model(model), "layer": source.record.path,
            "class_name": source.record.class_name,
            "weights": source.weights_note if source.kernel is not None
            else f"initialised (seed {seed})",
            **_quantization(model)}


def _quantization(model: Any) -> dict[str, Any]:
    """``{"quantization": ...}`` of a ``--quantize`` model (its metadata), else ``{}``."""
    text = {p.key: p.value for p in model.metadata_props}.get("convt.quantization")
    return {} if text is None else {"quantization": json.loads(text)}


def export_saved(saved: Any, layer: str | None, output: str, weights: str | None,
                 input_shape: str | None, opset: int, seed: int, dtype: str | None, *,
                 allow_unsupported_dtype: bool, as_json: bool, form: str,
                 flags: dict[str, Any], targets: Sequence[str] | None = None,
                 quantize: Any = None) -> None:
    """Export ``--layer`` to the file ``output``, or every layer into the folder ``output``."""
    from ..exporter import describe_model
    from ..onnxbase import save_model
    from .model_arg import select_sources, single_source

    if flags:
        name = next(iter(flags))
        raise ConvtError(f"{name}: layer flags (--{name.replace('_', '-')}) do not apply to a "
                         f"saved model; its layers' configs are used as saved.", field=name)
    if layer is not None or not _is_folder_target(output):
        if _is_folder_target(output):
            raise ConvtError(f"output: {output!r} names a folder; give a .onnx file path "
                             f"with --layer (or drop --layer to export every layer there).",
                             field="output")
        source = single_source(saved, layer, weights)
        model, _ = _build(source, input_shape, opset, seed, dtype, allow_unsupported_dtype, form,
                          targets, quantize)
        save_model(model, output)
        info = _info(output, model, source, seed)
        info["layer_index"] = source.record.index
        info["selected_by"] = source.selected_by
        if as_json:
            echo_json(info)
            return
        echo("\n".join(_human(info)))
        if "quantization" in info:
            from .export_quant import human_lines

            echo("\n".join(human_lines(info["quantization"])))
        echo(f"layer {term_safe(source.record.path)} (index {source.record.index}"
             + (f", selected by {source.selected_by})" if source.selected_by else ")"))
        return
    if input_shape is not None:
        raise ConvtError("input_shape: applies to one layer; add --layer, or export every "
                         "layer at its recorded input shape.", field="input_shape")
    sources, skipped = select_sources(saved, None, weights, skip_unsupported=True)
    built = [(s, *_build(s, None, opset, seed, dtype, allow_unsupported_dtype, form, targets,
                         quantize))
             for s in sources]
    folder = output.rstrip("/" + os.sep) or output
    if os.path.lexists(folder) and not os.path.isdir(folder):
        raise ConvtError(f"output: {output!r} names a folder, but {folder!r} exists and is not "
                         f"a folder; give a new or existing folder (or --layer and a .onnx "
                         f"file path).", field="output")
    parent = os.path.dirname(os.path.abspath(folder))
    if not os.path.isdir(parent):
        raise ConvtError(f"output: folder {parent!r} does not exist.", field="output")
    names = file_names([s.record for s in sources])
    entries: list[dict[str, Any]] = []
    for (source, model, in_shape), name in zip(built, names):
        entries.append({"index": source.record.index, "path": source.record.path,
                        "class_name": source.record.class_name, "onnx": name,
                        "input_shape": [d if isinstance(d, int) else None for d in in_shape],
                        "output": describe_model(model)["output"],
                        "weights": source.weights_note if source.kernel is not None
                        else f"initialised (seed {seed})"})
    index = {"model": saved.source, "format": saved.kind, "layers": entries,
             "skipped": [{"index": r.index, "path": r.path, "class_name": r.class_name,
                          "reason": r.unsupported} for r in skipped]}
    _write_folder(folder, [(name, model) for (_, model, _), name in zip(built, names)], index,
                  {"model": saved.source, "weights": weights})
    infos = []
    for (source, model, _), entry in zip(built, entries):
        infos.append(_info(os.path.join(folder, entry["onnx"]), model, source, seed))
    if as_json:
        echo_json({"folder": folder, "index": os.path.join(folder, INDEX), "models": infos,
                   "skipped": index["skipped"]})
        return
    for e in entries:
        echo(f"wrote {os.path.join(folder, e['onnx'])}  ({term_safe(e['path'])})")
    for r in skipped:
        echo(f"skipped {term_safe(r.path)}: {r.unsupported}")
    echo(f"wrote {os.path.join(folder, INDEX)}")


def _write_folder(folder: str, models: list[tuple[str, Any]], index: dict[str, Any],
                  inputs: dict[str, str | None]) -> None:
    """Write ``models`` (file name, ModelProto) and ``index.json`` into ``folder``, all or
    nothing (see the module docstring)."""
    from ..onnxbase import save_model, uses_external_data
    from ..io import check_destination, ensure_distinct, sigterm_cleanup

    targets = [name for name, _ in models] + [INDEX]
    targets += [f"{name}.data" for name, model in models if uses_external_data(model)]
    if os.path.isdir(folder):
        for name in targets:   # nothing is written when one of them is refused
            path = os.path.join(folder, name)
            ensure_distinct(path, "output", **inputs)
            check_destination(path)
    created = False
    with sigterm_cleanup():
        if not os.path.isdir(folder):
            try:
                os.mkdir(folder)
                created = True
            except FileExistsError:   # made meanwhile (another export): use it if a folder
                if not os.path.isdir(folder):
                    raise ConvtError(f"output: {folder!r} appeared meanwhile and is not a "
                                     f"folder.", field="output") from None
            except OSError as exc:
                raise ConvtError(f"output: cannot create folder {folder!r}: "
                                 f"{exc.strerror or exc}.", field="output") from None
        stage = None
        try:
            try:
                stage = tempfile.mkdtemp(prefix=".convt-export.", suffix=".tmp", dir=folder)
                for name, model in models:
                    save_model(model, os.path.join(stage, name))
                with open(os.path.join(stage, INDEX), "wb") as fh:
                    fh.write(json.dumps(index, indent=2).encode())
                os.chmod(os.path.join(stage, INDEX), 0o666 & ~_umask())
                order = sorted(os.listdir(stage),
                               key=lambda n: (n == INDEX, not n.endswith(".data"), n))
                for name in order:   # checked again: a file may have appeared meanwhile
                    check_destination(os.path.join(folder, name))
                for name in order:
                    os.replace(os.path.join(stage, name), os.path.join(folder, name))
            except OSError as exc:
                raise ConvtError(f"output: cannot write in {folder!r}: {exc.strerror or exc}.",
                                 field="output") from None
        except BaseException:
            if created:
                shutil.rmtree(folder, ignore_errors=True)
            raise
        finally:
            if stage is not None:
                shutil.rmtree(stage, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
