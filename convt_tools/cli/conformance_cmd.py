"""``convt conformance``: the built-in ConvTranspose corpus on every installed runtime.

Exit codes: 0 the matrix was measured (whatever the runtimes computed; it is a
report, not a gate), 2 bad input (an unknown runtime, form or case id, or a named
runtime that is not installed).
"""

from __future__ import annotations

import sys

import click

from ..conformance import (
    FORMS, Case, ConformanceReport, case_ids, resolve_runtimes, run_conformance, select_cases,
)
from .common import echo_json, handle_errors

_PROGRESS_MIN = 4  # runs before a progress bar is shown (TTY only), as validate


@click.command()
@click.option("--runtime", "runtimes", default=None, metavar="NAMES",
              help="Comma-separated runtimes (names of `convt runtimes`); default every "
                   "installed one. A named runtime that is not installed is an error.")
@click.option("--form", "forms", multiple=True, type=click.Choice(FORMS),
              help="Only cases of this form (repeatable); default all.")
@click.option("--case", "cases", multiple=True, metavar="ID",
              help="Only this case (repeatable; ids from --list).")
@click.option("--list", "list_only", is_flag=True, help="Print the case ids and exit.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object (cases[] ...).")
@click.option("--markdown", "as_markdown", is_flag=True,
              help="Print the capability matrix as a markdown table.")
@handle_errors
def conformance(runtimes: str | None, forms: tuple[str, ...], cases: tuple[str, ...],
                list_only: bool, as_json: bool, as_markdown: bool) -> None:
    """Run the built-in ConvTranspose corpus (seeded random weights) on each runtime and
    compare with the ONNX-spec reference: exact, refused, wrong window or wrong values.

    \b
    convt conformance
    convt conformance --runtime onnxruntime,openvino --json
    convt conformance --markdown > docs/conformance.md
    """
    if as_json and as_markdown:
        raise click.UsageError("--json and --markdown: choose one.")
    picked = select_cases(list(cases) or None, list(forms) or None)
    if list_only:
        chosen = {c.id for c in picked}
        click.echo("\n".join(i for i in case_ids() if i in chosen))
        return
    report = _run(runtimes, picked, as_json)
    if as_json:
        echo_json(report.to_dict())
    elif as_markdown:
        click.echo(report.to_markdown(), nl=False)
    else:
        click.echo(report.to_text())


def _run(runtimes: str | None, picked: list[Case], as_json: bool) -> ConformanceReport:
    """The report, with a progress bar on stderr when it is a TTY (not with --json), as
    ``validate`` shows one."""
    total = len(picked) * len(resolve_runtimes(runtimes))
    if as_json or total < _PROGRESS_MIN or not sys.stderr.isatty():
        return run_conformance(runtimes, picked)
    with click.progressbar(length=total, label="conformance", file=sys.stderr) as bar:
        return run_conformance(runtimes, picked, bar.update)
