"""``convt bench``: latency of each layer on each runtime and export form (thin CLI).

The library is :mod:`convt_tools.bench`; layers are read as ``convt validate``
reads them (:func:`convt_tools.cli.validate_cmd._load_sources`: layer
configs, saved models, ``--layer``). Exit 0 when every cell was measured
(wrong or refused cells are reported, not failed: ``convt validate`` is the
gate), 2 on bad input.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from ..bench import bench_layers, installed_runtime_names, parse_forms, parse_threads
from ..errors import ConvtError
from ..runtimes import parse_runtime_names, require_runtimes
from ..sources import LayerSource
from ..spec import format_shape, parse_shape
from .common import SEED, echo, echo_json, handle_errors, term_safe
from .frameworks import framework_option
from .model_arg import layer_option
from .validate_cmd import _load_sources, expand_configs


def _ms(v: float | None) -> str:
    return "-" if v is None else (f"{v:.3f}" if v < 10 else f"{v:.1f}")


def _verdict(r: Any) -> str:
    if r.exact:
        return "exact"
    return "ERROR" if r.median_ms is None else "WRONG"


def print_bench_table(report: Any) -> None:
    """One row per cell; then why each non-exact cell is not, and the fastest per layer."""
    rows = [("layer", "input", "runtime", "form", "threads", "median ms", "spread ms",
             "cpu ms", "first ms", "runs", "x fastest", "result")]
    for r in report.results:
        ratio = "-" if r.ratio_to_fastest is None else f"{r.ratio_to_fastest:.2f}"
        runs = f"{r.runs}" + ("" if r.converged or not r.runs else "~")
        rows.append((term_safe(r.layer), format_shape(tuple(r.input_shape)), r.runtime, r.form,
                     str(r.threads), _ms(r.median_ms), _ms(r.spread_ms), _ms(r.cpu_ms),
                     _ms(r.first_run_ms),
                     runs, ratio, _verdict(r)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    for r in report.results:
        if not r.exact:
            echo(f"{term_safe(r.layer)} [{r.runtime}, {r.form}]: {_verdict(r)}: {r.error}")
    for s in report.skipped:
        echo(f"{term_safe(s.layer)} [{s.form}]: skipped: {s.reason}")
    notes = {r.runtime: r.note for r in report.results if r.note and r.median_ms is not None}
    for runtime, note in notes.items():
        echo(f"note: {runtime}: {note}")
    for r in report.fastest():
        ties = ", ".join(f"{t.runtime} {t.form}" for t in report.ties(r))
        echo(f"fastest for {term_safe(r.layer)} at {r.threads} thread(s): {r.runtime}, "
             f"{r.form} form, {_ms(r.median_ms)} ms"
             + (f" (as fast within the 95% intervals: {ties})" if ties else ""))
    echo("median over timed runs ('~': the time budget ended before the median's 95% "
         "interval met the precision); spread = interquartile range; cpu = CPU time of "
         "this process per call (all threads); first = load/compile "
         "+ first run; x fastest = median / fastest exact median of the layer (none for a "
         f"wrong or refused cell); load average {os.getloadavg()[0]:.2f}")


@click.command()
@click.argument("configs", nargs=-1, required=True)
@click.option("--runtime", "runtime", default=None,
              help="Runtimes to measure, comma-separated (see convt runtimes). Default: every "
                   "installed one.")
@click.option("--form", "form", default="portable,compact", show_default=True,
              help="Export forms, comma-separated: portable, compact (not for torch "
                   "configs), target (the portable form rewritten for each runtime, as "
                   "'convt export --target RUNTIME' writes it).")
@click.option("--threads", "threads", default="1", show_default=True,
              help="Thread counts per runtime, comma-separated (e.g. 1,2).")
@click.option("--input-shape", help="Input shape, e.g. 1,64,64,32 (default: the config's "
              "recorded one; unknown dims get validate's defaults).")
@click.option("--weights", "-w", type=click.Path(dir_okay=False),
              help="Weights .h5 of a saved model config JSON (as for convt validate).")
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--budget", type=click.FloatRange(min=0, min_open=True), default=1.0,
              show_default=True, help="Seconds of timed runs per cell at most.")
@click.option("--precision", type=click.FloatRange(min=0, min_open=True), default=0.03,
              show_default=True,
              help="Stop a cell once its median's 95% interval is this fraction of it.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON report.")
@framework_option
@layer_option
@handle_errors
def bench(configs: tuple[str, ...], runtime: str | None, form: str, threads: str,
          input_shape: str | None, weights: str | None, seed: int, budget: float,
          precision: float, as_json: bool, framework: str | None, layer: str | None) -> None:
    """Time each layer on each runtime and export form; check each output.

    CONFIGS are layer configs (Keras or torch), folders, globs or saved Keras
    models (every transposed-conv layer; --layer for one). Per cell: median
    latency, spread, first-run (load/compile) time, ratio to the fastest
    exact cell of the layer; a wrong output is reported WRONG, never fastest.

    \b
    convt bench layer.json --threads 1,2
    convt bench model.keras --runtime onnxruntime,openvino --json
    """
    forms = parse_forms(form)
    counts = parse_threads(threads)
    names = installed_runtime_names() if runtime is None else parse_runtime_names(runtime)
    for t in counts:
        require_runtimes(names, threads=t)   # exit 2 naming the pip extra, before running
    shape = None if input_shape is None else parse_shape(input_shape)
    rank = None if shape is None else len(shape) - 2
    specs, found, skipped, consumed = _load_sources(expand_configs(configs), layer, weights,
                                                    framework, rank)
    if weights is not None and not consumed:
        raise ConvtError("weights: --weights applies to saved model configs (.json + .h5); "
                         "layer configs are benchmarked with seeded weights.", field="weights")
    if not specs:
        raise ConvtError("config: nothing to benchmark: "
                         + "; ".join(f"{r.path} ({r.unsupported})" for r in skipped) + ".",
                         field="config")
    sources = [src if src is not None else LayerSource(label, spec, None, None, "", None)
               for (label, spec), src in zip(specs, found)]
    total = len(sources) * len(forms) * len(counts) * len(names)
    kwargs: dict[str, Any] = dict(forms=forms, threads=counts, input_shape=shape, seed=seed,
                                  budget_s=budget, precision=precision)
    if sys.stderr.isatty() and not as_json:
        with click.progressbar(length=total, label="benchmarking", file=sys.stderr) as bar:
            report = bench_layers(sources, names, progress=bar.update, **kwargs)
    else:
        report = bench_layers(sources, names, **kwargs)
    for rec in skipped:
        echo(f"skipped {term_safe(rec.path)}: {rec.unsupported}", err=True)
    if as_json:
        echo_json({"runtimes": names, "forms": forms, "threads": counts,
                   "budget_s": budget, "precision": precision,
                   "load_average": list(os.getloadavg()),
                   "results": [r.to_dict() for r in report.results],
                   "fastest": [{"layer": r.layer, "threads": r.threads, "runtime": r.runtime,
                                "form": r.form, "median_ms": r.median_ms,
                                "ties": [{"runtime": t.runtime, "form": t.form}
                                         for t in report.ties(r)]}
                               for r in report.fastest()],
                   "skipped": [{"layer": s.layer, "form": s.form, "reason": s.reason}
                               for s in report.skipped]})
    else:
        print_bench_table(report)
