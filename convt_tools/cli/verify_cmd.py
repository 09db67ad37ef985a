"""``convt verify SOURCE MODEL.onnx``: every transposed-conv layer of a converted model proven
against its source (:mod:`convt_tools.verify`).

Exit codes: 0 every layer exact on every named runtime; 1 otherwise (a mismatch, a
refusal, an unpaired layer or ConvTranspose node); 2 bad input.
"""

from __future__ import annotations

import click

from ..io import check_input_file, ensure_distinct
from ..junit import write_junit
from ..runtimes import ADAPTERS, get_runtime, parse_runtime_names, require_runtimes
from ..runtimes.base import RuntimeUnavailable
from ..sources import resolve_sources
from ..onnxbase import save_model
from ..pictures import write_text
from ..verify import verify_model
from ..verify.html import report_html
from ..verify.repair import RepairFromSourceRefused, repair_from_source
from .common import SEED, echo_json, handle_errors


def _installed() -> list[str]:
    found = []
    for name in ADAPTERS:
        try:
            get_runtime(name).module()
        except RuntimeUnavailable:
            continue
        found.append(name)
    return found


@click.command()
@click.argument("source", type=click.Path(dir_okay=False))
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--weights", default=None, type=click.Path(dir_okay=False),
              help="The source's weights: a Keras .weights.h5 for a model config, or the "
                   ".npz of a torch model description (default: NAME.weights.npz beside it).")
@click.option("--runtime", "runtimes", default=None, metavar="NAMES",
              help=f"Comma-separated runtimes ({', '.join(ADAPTERS)}); default every "
                   f"installed one.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--junit-xml", type=click.Path(dir_okay=False), default=None,
              help="Also write a JUnit XML report (one testcase per layer and runtime).")
@click.option("--html", "html_path", type=click.Path(dir_okay=False), default=None,
              help="Also write an HTML report: per layer and axis an SVG of the full output, "
                   "the source's window and each runtime's.")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed for layer inputs.")
@handle_errors
def verify(source: str, model: str, weights: str | None, runtimes: str | None, as_json: bool,
           junit_xml: str | None, html_path: str | None, seed: int) -> None:
    """Prove each transposed-conv layer of MODEL (.onnx) against SOURCE (a saved Keras model
    or a torch model description) on each runtime, and name the error where it differs."""
    if junit_xml:
        ensure_distinct(junit_xml, field="junit_xml", model=model, source=source)
    if html_path:
        ensure_distinct(html_path, field="html", model=model, source=source, junit_xml=junit_xml)
    check_input_file(source, "source", f"the source {source!r}")
    names = parse_runtime_names(runtimes) if runtimes is not None else _installed()
    require_runtimes(names)
    sources = resolve_sources(source, weights=weights)
    report = verify_model(sources, model, names, source_name=source, seed=seed)
    if junit_xml:
        write_junit(junit_xml, report.junit_xml())
    if html_path:
        write_text(html_path, report_html(report.to_dict()), field="html")
    if as_json:
        echo_json(report.to_dict())
    else:
        click.echo(report.to_text())
    click.get_current_context().exit(1 if report.failed or report.unpaired_nodes else 0)


def repair_from_source_cmd(model: str, output: str, source: str, weights: str | None,
                           runtimes: str | None, as_json: bool, seed: int) -> None:
    """``convt repair MODEL --source SOURCE -o OUT`` (:mod:`convt_tools.verify.repair`):
    exit 0 written, 1 refused (nothing written), 2 bad input."""
    check_input_file(source, "source", f"the source {source!r}")
    names = parse_runtime_names(runtimes) if runtimes is not None else _installed()
    require_runtimes(names)
    sources = resolve_sources(source, weights=weights)
    ctx = click.get_current_context()
    try:
        repaired, report = repair_from_source(sources, model, names, source_name=source,
                                              seed=seed)
    except RepairFromSourceRefused as exc:
        click.echo(f"Refused: {exc}", err=True)
        if as_json:
            echo_json({"model": model, "source": source, "refused": True, "reason": str(exc),
                       "report": exc.report, "written": None})
        ctx.exit(1)
        return
    save_model(repaired, output, inline=True)
    if as_json:
        echo_json({**report.to_dict(), "refused": False, "written": output})
    else:
        click.echo(report.to_text())
        click.echo(f"wrote {output}")
