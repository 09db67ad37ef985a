"""``convt check`` and ``convt repair``: runtime-dependent ConvTranspose nodes in ONNX models.

Exit codes: ``check``: 0 clean at the fail level, 1 findings at or above it,
2 unreadable input. ``repair``: 0 written, 1 refused (nothing written, the
reason on stderr; with ``--json`` also a JSON object with ``"refused": true``,
the ``reason`` and the nodes ``planned`` so far on stdout), 2 unreadable input.
"""

from __future__ import annotations

from typing import Any

import click

from ..check import FAIL_LEVELS, INTENTS
from ..errors import ConvtError
from .common import SEED, echo_json, handle_errors

_SHAPE_HELP = ("Graph-input shape NAME=DIMS, e.g. x=1,3,32,32 (repeatable; ? or None for "
               "unknown dims; a bare DIMS for a single-input model).")


@click.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--input-shape", "input_shapes", multiple=True, metavar="NAME=DIMS",
              help=_SHAPE_HELP)
@click.option("--fail-on", type=click.Choice(FAIL_LEVELS), default="error", show_default=True,
              help="Lowest severity that makes the run fail (exit 1); never: always exit 0.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--junit-xml", type=click.Path(dir_okay=False), default=None,
              help="Also write a JUnit XML report (one testcase per node).")
@click.option("--numeric/--no-numeric", default=True, show_default=True,
              help="Run each node alone in onnxruntime and identify what it computes.")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed for probe inputs.")
@click.option("--runtime", "runtimes", default=None, metavar="NAMES",
              help="Judge only on these runtimes (comma-separated: onnxruntime, "
                   "onnxruntime<1.14, onnxruntime<=1.12, tensorrt, openvino, tract, torch, "
                   "onnx2tf, onnx-reference; the old spellings onnx2torch, onnx.reference "
                   "are accepted with a note); default all. A node they all read the same "
                   "way is not an error.")
@handle_errors
def check(model: str, input_shapes: tuple[str, ...], fail_on: str, as_json: bool,
          junit_xml: str | None, numeric: bool, seed: int, runtimes: str | None) -> None:
    """Find illegal and runtime-dependent ConvTranspose nodes in MODEL (.onnx)."""
    from ..check import check_model, parse_input_shapes
    from ..io import ensure_distinct
    from ..junit import write_junit
    from ..runtimes import deprecation_note

    note = deprecation_note(runtimes)
    if note:
        click.echo(note, err=True)

    if junit_xml:
        ensure_distinct(junit_xml, field="junit_xml", model=model)
    report = check_model(model, parse_input_shapes(input_shapes), numeric=numeric, seed=seed,
                         runtimes=runtimes)
    if junit_xml:
        write_junit(junit_xml, report.junit_xml(fail_on))
    if as_json:
        echo_json(report.to_dict(fail_on))
    else:
        click.echo(report.to_text(fail_on))
    click.get_current_context().exit(1 if report.failed(fail_on) else 0)


@click.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="Where to write the repaired model (atomic; nothing written on refusal).")
@click.option("--intent", default=None, type=click.Choice(INTENTS),
              help="tf: TensorFlow/Keras crops; onnx-spec: the ONNX spec text; ort: what the "
                   "installed onnxruntime computes (measured). Or give --source.")
@click.option("--source", default=None, type=click.Path(dir_okay=False),
              help="The model MODEL was converted from (saved Keras model or torch model "
                   "description): every layer that is not exact is rewritten from it and "
                   "proven per runtime (replaces --intent; see convt verify).")
@click.option("--weights", default=None, type=click.Path(dir_okay=False),
              help="With --source: the source's weights (as for convt verify).")
@click.option("--runtime", "runtimes", default=None, metavar="NAMES",
              help="With --source: the runtimes the repair is proven on (default every "
                   "installed one).")
@click.option("--input-shape", "input_shapes", multiple=True, metavar="NAME=DIMS",
              help=_SHAPE_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print the repair report as JSON.")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed for proof inputs.")
@click.option("--form", type=click.Choice(["compact", "portable"]), default="compact",
              show_default=True, help="compact: each rewritten node is one ConvTranspose; "
              "portable: then every ConvTranspose with asymmetric pads becomes symmetric pads "
              "plus one constant Slice (as convt export writes it).")
@handle_errors
def repair(model: str, output: str, intent: str | None, source: str | None,
           weights: str | None, runtimes: str | None, input_shapes: tuple[str, ...],
           as_json: bool, seed: int, form: str) -> None:
    """Rewrite runtime-dependent ConvTranspose nodes of MODEL into explicit pads (--intent), or
    every layer that is not exact into its source layer's portable form (--source)."""
    from ..check import parse_input_shapes
    from ..io import ensure_distinct
    from ..onnxbase import save_model
    from ..repair import RepairRefused, repair_model

    ensure_distinct(output, model=model, source=source, weights=weights)
    ctx: Any = click.get_current_context()
    if (intent is None) == (source is None):
        raise ConvtError("intent: give exactly one of --intent (tf, onnx-spec, ort) and "
                         "--source SOURCE.", field="intent")
    if source is not None:
        from .verify_cmd import repair_from_source_cmd

        repair_from_source_cmd(model, output, source, weights, runtimes, as_json, seed)
        return
    assert intent is not None
    try:
        repaired, report = repair_model(model, intent, parse_input_shapes(input_shapes),
                                        seed=seed, form=form)
    except RepairRefused as exc:
        click.echo(f"Refused: {exc}", err=True)
        if as_json:
            echo_json({**(exc.report.to_dict() if exc.report is not None else
                          {"model": model, "intent": intent, "refused": True,
                           "reason": str(exc)}), "written": None})
        ctx.exit(1)
        return
    save_model(repaired, output, inline=True)
    if as_json:
        echo_json({**report.to_dict(), "written": output})
    else:
        click.echo(report.to_text())
        click.echo(f"wrote {output}")
