"""``convt validate``: prove exported (or given) models compute what Keras computes.

Exit status: 0 all pass, 1 any mismatch (or a model that does not run),
2 bad input (unreadable config, unknown provider, ...).
"""

from __future__ import annotations

import glob
import os
import sys
from pathlib import Path
from typing import Any, Iterable
from xml.etree import ElementTree as ET

import click

from ..errors import ConvtError
from ..io import xml_safe
from ..junit import junit_document, junit_suite, write_junit
from ..spec import Conv2DTransposeSpec, format_shape, parse_shape
from .common import SEED, echo, echo_json, handle_errors, term_safe
from .frameworks import framework_option
from .model_arg import layer_option

_PROGRESS_MIN = 4  # configs before a progress bar is shown (TTY only)


def expand_configs(items: Iterable[str]) -> list[str]:
    """Files as given, directories as their ``*.json`` (sorted, not recursive), globs expanded."""
    paths: list[str] = []
    for item in items:
        if any(ch in item for ch in "*?["):
            found = sorted(glob.glob(item, recursive=True))
            if not found:
                raise ConvtError(f"config: the pattern {item!r} matches no file.", field="config")
            paths.extend(f for f in found if os.path.isfile(f))
        elif os.path.isdir(item):
            found = sorted(str(p) for p in Path(item).glob("*.json"))
            if not found:
                raise ConvtError(f"config: the folder {item!r} has no *.json config.",
                                 field="config")
            paths.extend(found)
        elif os.path.isfile(item):
            paths.append(item)
        else:
            raise ConvtError(f"config: {item!r} is not a file, folder or matching pattern.",
                             field="config")
    return list(dict.fromkeys(paths))


def _load_sources(paths: list[str], layer: str | None, weights: str | None,
                  framework: str | None = None, rank: int | None = None
                  ) -> tuple[list[tuple[str, Any]], list[Any], list[Any], bool]:
    """Layer configs (Keras or torch, by content: :mod:`convt_tools.sources`) as one entry
    each; saved models as one entry per transposed-conv layer.

    Returns ``(specs, sources, skipped records, weights consumed)``: ``sources[i]``
    is the saved-model layer of ``specs[i]`` (None for a layer config), by
    position, never by label (two layers may share a path, hence a label).
    """
    from ..sources import layer_spec, resolve_input
    from .model_arg import select_sources

    specs: list[tuple[str, Any]] = []
    sources: list[Any] = []
    skipped: list[Any] = []
    consumed = False
    hint = None if rank is None else (None,) * (rank + 2)
    for path in paths:
        resolved = resolve_input(path, weights, framework=framework)
        if resolved.model is None:
            try:
                specs.append((path, layer_spec(resolved, input_shape=hint)))
            except ConvtError as exc:
                raise ConvtError(f"{path}: {exc}", field=exc.field) from None
            sources.append(None)
            continue
        found, skip = select_sources(resolved.model, layer, weights, skip_unsupported=True)
        consumed = consumed or weights is not None
        for src in found:
            specs.append((src.label, src.spec))
            sources.append(src)
        skipped.extend(skip)
    if layer is not None and any(src is None for src in sources):
        raise ConvtError(f"layer: --layer {layer!r} applies to saved models only; give one "
                         f"saved model (.keras, .h5, model config JSON).", field="layer")
    return specs, sources, skipped, consumed


def _run_all(items: list[Any], jobs: int, as_json: bool) -> list[list[Any]]:
    """Each item's results, in order, over ``jobs`` processes; a progress bar on a TTY only.

    Workers are forked where the platform can (this process has created no
    engine session: it only imported the engines), each runtime adapter in
    them on one thread (``opts["threads"]``, set by :func:`_options`).
    """
    from ..validate.batch import default_start_method, run_ordered
    from .validate_runtimes import preload, validate_item

    if jobs > 1:
        preload()  # forked workers inherit the imports instead of each paying for them
    method = default_start_method()
    if len(items) >= _PROGRESS_MIN and sys.stderr.isatty() and not as_json:
        with click.progressbar(length=len(items), label="validating", file=sys.stderr) as bar:
            return run_ordered(validate_item, items, jobs, bar.update, start_method=method)
    return run_ordered(validate_item, items, jobs, start_method=method)


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.2g}"


def print_table(results: list[Any]) -> None:
    """One row per config, then the messages, hints and notes of each."""
    rows = [("config", "input", "output", "max abs", "max rel", "atol", "rtol", "result")]
    for r in results:
        rows.append((term_safe(r.name), format_shape(r.input_shape),
                     format_shape(r.model_shape) if r.model_shape else "-",
                     _fmt(r.max_abs_error), _fmt(r.max_rel_error), _fmt(r.tolerance.atol),
                     _fmt(r.tolerance.rtol), r.status))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    for r in results:
        if r.passed and r.input_source.startswith("the config's build_config") \
                and "filled" not in r.input_source and not r.notes:
            continue
        lines = [f"input {format_shape(r.input_shape)} from {r.input_source}"]
        lines += [f"note: {n}" for n in r.notes]
        if not r.passed:
            lines.insert(0, f"{r.status}: {r.message}")
            lines += [f"likely cause: {h}" for h in r.hints]
            lines += [f"weights: {r.weights_source}", f"tolerance: {r.tolerance.source}"]
        echo(f"{term_safe(r.name)}:\n" + "\n".join(f"  {line}" for line in lines))
    if results:
        echo(f"weights: {results[0].weights_source}")
        echo("tolerance: |model - reference| <= atol + rtol*|reference|; "
                   + results[0].tolerance.source.split(";")[0])
    failed = sum(not r.passed for r in results)
    echo(f"{len(results) - failed} passed, {failed} failed")


def junit_xml(results: list[Any], per_runtime: bool = False) -> bytes:
    """The JUnit XML file (:func:`convt_tools.junit.junit_document`): one testcase per config
    (x runtime); failures carry the message.

    ``classname`` is ``convt.validate.<runtime>``; with ``per_runtime`` the
    testcase name is ``<config> [<runtime>]``.
    """
    suite = junit_suite("convt validate", len(results), sum(r.status == "FAIL" for r in results),
                      sum(r.status == "ERROR" for r in results))
    for r in results:
        runtime = getattr(r, "runtime", "onnxruntime")
        case = ET.SubElement(suite, "testcase", classname=f"convt.validate.{runtime}",
                             name=xml_safe(f"{r.name} [{runtime}]" if per_runtime else r.name))
        details = "\n".join([r.message, *[f"likely cause: {h}" for h in r.hints],
                             f"tolerance: {r.tolerance.source}"])
        if r.status != "PASS":
            tag = "failure" if r.status == "FAIL" else "error"
            ET.SubElement(case, tag, message=xml_safe(r.message)).text = xml_safe(details)
        ET.SubElement(case, "system-out").text = xml_safe(
            f"input {format_shape(r.input_shape)} ({r.input_source}); max abs error "
            f"{r.max_abs_error}; max rel error {r.max_rel_error}; atol {r.tolerance.atol:.3g}; "
            f"rtol {r.tolerance.rtol:.3g}")
    return junit_document(suite)


def _single_only(specs: list[Any], **given: Any) -> None:
    for name, value in given.items():
        if value is not None and len(specs) != 1:
            raise ConvtError(f"{name}: applies to one config, but {len(specs)} were given; "
                             f"validate one config at a time with {name}.", field=name)


def _options(specs: list[tuple[str, Conv2DTransposeSpec]], input_path: str | None,
             input_shape: str | None, weights: str | None, model: str | None, seed: int,
             rtol: float | None, atol: float | None, providers: str | None,
             opset: int | None, runtimes: list[str] | None = None,
             form: str | None = None) -> dict[str, Any]:
    from ..frameworks import as_layer
    from ..validate import resolve_providers

    _single_only(specs, **{"--weights": weights, "--model": model})
    runtimes = runtimes or ["onnxruntime"]
    if form is not None and model is not None:
        raise ConvtError("form: --form chooses the export form; it does not apply with "
                         "--model (the given model is validated as it is).", field="form")
    if providers is not None and "onnxruntime" not in runtimes:
        raise ConvtError("providers: execution providers apply to the onnxruntime runtime "
                         "only; add onnxruntime to --runtime or drop --providers.",
                         field="providers")
    if input_path is not None and input_shape is not None:
        raise ConvtError("input: give --input or --input-shape, not both.", field="input")
    opts: dict[str, Any] = dict(
        x=None, input_shape=None if input_shape is None else parse_shape(input_shape),
        seed=seed, rtol=rtol, atol=atol,
        providers=None if providers is None else resolve_providers(providers),
        opset=opset, model=model, kernel=None, bias=None, weights_note=None,
        runtimes=runtimes, form=form)
    if input_path is not None:
        from ..io import load_npy

        opts["x"] = load_npy(input_path, field="input")
        if opts["x"].dtype.kind != "f":
            raise ConvtError(f"input: got dtype {opts['x'].dtype} in {input_path!r}; "
                             f"expected a float array.", field="input")
    if weights is not None:
        opts["kernel"], opts["bias"] = as_layer(specs[0][1]).load_weights(weights)
        opts["weights_note"] = f"from {weights}"
    if model is not None and not os.path.isfile(model):
        raise ConvtError(f"model: {model!r} is not a file.", field="model")
    return opts


@click.command()
@click.argument("configs", nargs=-1)
@click.option("--input", "-i", "input_path", type=click.Path(dir_okay=False),
              help="Input .npy (Keras layout) instead of seeded random input.")
@click.option("--input-shape", help="Input shape, e.g. 2,10,8,3 (unknown dims get defaults). "
              "Default: the config's build_config input shape, else a small default.")
@click.option("--weights", "-w", type=click.Path(dir_okay=False),
              help=".npz with kernel/bias (one config only). Default: seeded random weights.")
@click.option("--model", "-m", type=click.Path(dir_okay=False),
              help="Validate this existing .onnx against the (single) config instead of "
                   "exporting. Without --weights, W/B are read back from the model. Without a "
                   "config: every ConvTranspose node of the model (float or QDQ) against the "
                   "reference of its own ONNX semantics, one result per node x runtime.")
@click.option("--lsb", type=float, default=1.0, show_default=True,
              help="--model without a config: tolerance for QDQ nodes, in LSB of the output "
                   "scale.")
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--rtol", type=float, help="Relative tolerance (default: from dtype and n).")
@click.option("--atol", type=float, help="Absolute tolerance (default: from dtype and n).")
@click.option("--providers", help="onnxruntime execution providers, comma-separated "
              "(CPU default; e.g. CUDA,CPU).")
@click.option("--opset", type=int, help="Opset of the exported model (default: the exporter's).")
@click.option("--runtime", "runtime", default="onnxruntime", show_default=True,
              help="Runtimes to validate on, comma-separated: onnxruntime, openvino, tract, "
                   "torch (onnx2torch), onnx-reference (see convt runtimes). One table column "
                   "and one JUnit testcase per runtime; exit 2 if one is not installed.")
@click.option("--form", type=click.Choice(["portable", "compact"]), default=None,
              help="Export form to validate (default portable; see convt export --form).")
@click.option("--jobs", "-j", type=int, default=1, show_default=True,
              help="Worker processes (results identical to --jobs 1).")
@click.option("--shard", help="K/N: validate only the K-th of N deterministic shards of the "
              "expanded config list (positions i with i % N == K-1), for CI matrices.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON report.")
@click.option("--junit-xml", "junit", type=click.Path(dir_okay=False),
              help="Also write a JUnit XML report here (one testcase per config x runtime).")
@framework_option
@layer_option
@handle_errors
def validate(configs: tuple[str, ...], input_path: str | None, input_shape: str | None,
             weights: str | None, model: str | None, lsb: float, seed: int,
             rtol: float | None, atol: float | None, providers: str | None, opset: int | None,
             runtime: str, form: str | None, jobs: int, shard: str | None, as_json: bool,
             junit: str | None, framework: str | None, layer: str | None) -> None:
    """Check that the ONNX export of each config computes what Keras computes.

    CONFIGS are layer config files, folders (their *.json) or glob patterns,
    or saved Keras models (.keras, legacy .h5, model config JSON with
    --weights W.h5): every transposed-conv layer of a saved model is
    validated with its real weights (one result per layer; --layer for one).
    Exit 0 when all pass, 1 on any mismatch, 2 on bad input.

    \b
    convt validate fixtures/examples/
    convt validate layer.json --model layer.onnx --weights w.npz
    convt validate 'configs/**/*.json' --junit-xml report.xml
    convt validate model.keras --junit-xml report.xml
    convt validate configs/ --runtime onnxruntime,openvino,tract,torch --jobs 2
    convt validate configs/ --shard 2/4 --junit-xml shard2.xml
    convt validate --model quantized.onnx --runtime onnxruntime,openvino,tract
    """
    from ..runtimes import deprecation_note, parse_runtime_names
    from ..validate.batch import check_jobs

    check_jobs(jobs)
    runtimes = parse_runtime_names(runtime)
    note = deprecation_note(runtime)
    if note:
        click.echo(note, err=True)
    if configs:
        groups, skipped = _validate_configs(configs, input_path, input_shape, weights, model,
                                            seed, rtol, atol, providers, opset, runtimes, form,
                                            jobs, shard, as_json, junit, framework, layer)
    elif model is None:
        raise ConvtError("config: give CONFIGS, or --model MODEL alone to validate every "
                         "ConvTranspose node of a model.", field="config")
    else:
        from .validate_model import validate_model_only

        groups, skipped = validate_model_only(
            model, runtimes, providers, seed=seed, lsb=lsb, rtol=rtol, atol=atol, junit=junit,
            given={"--input": input_path, "--input-shape": input_shape, "--weights": weights,
                   "--opset": opset, "--form": form, "--shard": shard, "--layer": layer,
                   "--framework": framework, "--jobs": None if jobs == 1 else jobs}), []
    results = [r for group in groups for r in group]
    for rec in skipped:
        echo(f"skipped {term_safe(rec.path)}: {rec.unsupported}", err=True)
    multi = len(runtimes) > 1
    if junit is not None:
        write_junit(junit, junit_xml(results, multi))
    if as_json:
        echo_json({"passed": all(r.passed for r in results),
                   "runtimes": runtimes, "shard": shard,
                   "results": [r.to_dict() for r in results],
                   "skipped": [{"path": r.path, "class_name": r.class_name,
                                "reason": r.unsupported} for r in skipped]})
    elif multi:
        from .validate_runtimes import print_runtime_table

        print_runtime_table(groups, runtimes)
    else:
        print_table(results)
    if not all(r.passed for r in results):
        sys.exit(1)


def _validate_configs(configs: tuple[str, ...], input_path: str | None, input_shape: str | None,
                      weights: str | None, model: str | None, seed: int, rtol: float | None,
                      atol: float | None, providers: str | None, opset: int | None,
                      runtimes: list[str], form: str | None, jobs: int, shard: str | None,
                      as_json: bool, junit: str | None, framework: str | None,
                      layer: str | None) -> tuple[list[Any], list[Any]]:
    """The configs' results, one group (one result per runtime) per config, and the skipped
    saved-model layers."""
    from ..runtimes import require_runtimes
    from ..validate.batch import parse_shard, take_shard

    shard_kn = None if shard is None else parse_shard(shard)
    rank = None if input_shape is None else len(parse_shape(input_shape)) - 2
    paths = expand_configs(configs)
    specs, sources, skipped, consumed = _load_sources(paths, layer, weights, framework, rank)
    if not specs:
        raise ConvtError("config: nothing to validate: "
                         + "; ".join(f"{r.path} ({r.unsupported})" for r in skipped) + ".",
                         field="config")
    if junit is not None:
        from ..io import check_destination, ensure_distinct

        ensure_distinct(junit, field="junit_xml", input=input_path, weights=weights, model=model)
        for path in paths:   # the files read (a saved model's labels are not files)
            ensure_distinct(junit, field="junit_xml", config=path)
        check_destination(junit, field="junit_xml")   # + every file recorded as read so far
    opts = _options(specs, input_path, input_shape, None if consumed else weights, model, seed,
                    rtol, atol, providers, opset, runtimes, form)
    opts["threads"] = 1 if jobs > 1 else None  # a --jobs worker: each engine on one core
    require_runtimes(runtimes, opts["providers"])  # exit 2 naming the pip extra, before running
    items = [(path, spec, opts, src)
             for (path, spec), src in take_shard(list(zip(specs, sources)), shard_kn)]
    groups = _run_all(items, jobs, as_json)
    return groups, skipped
