"""``convt validate --runtime A,B``: the per-runtime table, and the per-config worker.

With several runtimes, the table has one row per config and one column per
runtime (``PASS 2.4e-07`` = status and max abs error; ``ERROR`` when the
runtime refused the model), then the message of every result that did not
pass, prefixed ``[runtime]``. One runtime keeps the plain table of
:func:`convt_tools.cli.validate_cmd.print_table`.

:func:`validate_item` validates one ``(path, spec, opts, source)`` item on
every requested runtime; it is a module-level function so a ``--jobs``
worker process can run it.
"""

from __future__ import annotations

from typing import Any, Sequence

from ..spec import format_shape
from .common import echo, term_safe


def preload() -> None:
    """Import what :func:`validate_item` needs (before forking ``--jobs`` workers)."""
    import onnx.checker  # noqa: F401

    from .. import exporter, reference, validate, weights  # noqa: F401


def validate_item(item: tuple[str, Any, dict[str, Any], Any]) -> list[Any]:
    """Every requested runtime's result for one config (the export is made once).

    ``opts["threads"]`` (1 in a ``--jobs`` worker, else None) is given to
    every runtime adapter explicitly.
    """
    path, spec, opts, source = item
    from ..frameworks import as_layer
    from ..runtimes import require_runtimes

    adapters = require_runtimes(opts["runtimes"], opts["providers"],
                                threads=opts.get("threads"))

    if source is not None and source.kernel is not None:
        opts = {**opts, "kernel": source.kernel, "bias": source.bias,
                "weights_note": source.weights_note}
    return as_layer(spec).validate_on(
        adapters, model=opts["model"], kernel=opts["kernel"], bias=opts["bias"],
        x=opts["x"], input_shape=opts["input_shape"], seed=opts["seed"], rtol=opts["rtol"],
        atol=opts["atol"], opset=opts["opset"], name=path,
        weights_note=opts["weights_note"], form=opts["form"])


def _cell(r: Any) -> str:
    if r.status == "PASS":
        return f"PASS {r.max_abs_error:.1e}" if r.max_abs_error is not None else "PASS"
    return r.status


def print_runtime_table(groups: Sequence[Sequence[Any]], runtimes: Sequence[str]) -> None:
    """One row per config, one column per runtime; then what did not pass, per runtime."""
    rows = [("config", "input", "output", *runtimes)]
    for group in groups:
        by_rt = {r.runtime: r for r in group}
        first = group[0]
        out = next((r.model_shape for r in group if r.model_shape), None)
        rows.append((term_safe(first.name), format_shape(first.input_shape),
                     format_shape(out) if out else "-",
                     *(_cell(by_rt[rt]) if rt in by_rt else "-" for rt in runtimes)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    for group in groups:
        for r in group:
            if r.passed:
                continue
            lines = [f"{r.status}: {r.message}", *[f"likely cause: {h}" for h in r.hints],
                     f"input {format_shape(r.input_shape)} from {r.input_source}",
                     f"tolerance: {r.tolerance.source}"]
            echo(f"{term_safe(r.name)} [{r.runtime}]:\n" + "\n".join(f"  {ln}" for ln in lines))
    flat = [r for g in groups for r in g]
    versions = {r.runtime: r.runtime_version for r in flat}
    echo("runtimes: " + ", ".join(versions.get(rt, rt) for rt in runtimes))
    if flat:
        echo(f"weights: {flat[0].weights_source}")
        echo("tolerance: |model - reference| <= atol + rtol*|reference|; "
                   + flat[0].tolerance.source.split(";")[0])
    failed = sum(not r.passed for r in flat)
    echo(f"{len(groups)} config(s) x {len(runtimes)} runtime(s): "
               f"{len(flat) - failed} passed, {failed} failed")
