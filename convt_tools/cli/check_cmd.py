"""``convt check`` and ``convt repair``: runtime-dependent ConvTranspose nodes in ONNX models.

Exit codes: ``check``: 0 clean at the fail level, 1 findings at or above it,
2 unreadable input. ``repair``: 0 written, 1 refused (nothing written, the
reason on stderr; with ``--json`` also a JSON object with ``"refused": true``,
the ``reason`` and the nodes ``planned`` so far on stdout), 2 unreadable input.
"""

from __future__ import annotations


import click

from ..check import FAIL_LEVELS, INTENTS, check_html
from ..errors import ConvtError
from ..io import check_destination
from ..pictures import write_text
from ..repair.targets import target_names
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
@click.option("--html", type=click.Path(dir_okay=False), default=None,
              help="Also write a self-contained HTML report: per risky node and per axis an "
                   "SVG of the full output, the ONNX spec's window and each judged runtime's.")
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
          junit_xml: str | None, html: str | None, numeric: bool, seed: int,
          runtimes: str | None) -> None:
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
    if html:
        ensure_distinct(html, field="html", model=model)
        check_destination(html, field="html")
    report = check_model(model, parse_input_shapes(input_shapes), numeric=numeric, seed=seed,
                         runtimes=runtimes)
    if junit_xml:
        write_junit(junit_xml, report.junit_xml(fail_on))
    if html:
        write_text(html, check_html(report, fail_on), field="html")
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
                   "installed onnxruntime computes (measured). Default: onnx-spec (the "
                   "model's own meaning); a QDQ (int8) model is repaired without it. Or give --source.")

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
@click.option("--form", type=click.Choice(["compact", "portable"]), default=None,
              help="compact (default without --target): each rewritten node is one "
              "ConvTranspose; portable (default with --target): then every ConvTranspose with "
              "asymmetric pads becomes symmetric pads plus one constant Slice (as convt export "
              "writes it).")
@click.option("--target", "targets", default=None, metavar="NAMES",
              help="Comma-separated runtimes the result must run exactly on (names of convt "
                   "check --runtime): a grouped ConvTranspose is split and a bias moved into "
                   "an Add where a named runtime needs it; proven on each installed one. QDQ "
                   "models: the runtimes the weights are laid out for (onnxruntime, openvino, "
                   "tract, tensorrt; default onnxruntime,openvino,tract).")
@click.option("--float", "float_path", type=click.Path(dir_okay=False),
              help="QDQ models: the float ONNX model it was quantized from, or a Keras/torch "
                   "source with weights; the weights are requantized per output channel.")
@click.option("--float-weights", type=click.Path(dir_okay=False),
              help="QDQ models: weights .npz for a --float layer config.")
@handle_errors
def repair(model: str, output: str, intent: str | None, source: str | None,
           weights: str | None, runtimes: str | None, input_shapes: tuple[str, ...],
           as_json: bool, seed: int, form: str | None, targets: str | None,
           float_path: str | None, float_weights: str | None) -> None:
    """Rewrite runtime-dependent ConvTranspose nodes of MODEL into explicit pads (--intent);
    QDQ (int8) ConvTranspose into per-output-channel weights the --target runtimes read; or
    every layer that is not exact into its source layer's portable form (--source)."""
    from ..check import parse_input_shapes
    from ..io import ensure_distinct
    from ..repair import repair_model
    from .repair_qdq import finish_repair, qdq_requested, run_qdq_repair

    if source is not None:
        given = [name for name, value in (("intent", intent), ("target", targets),
                                          ("float", float_path), ("form", form)) if value]
        if given:
            raise ConvtError(f"{given[0]}: --{given[0]} does not combine with --source (the "
                             f"source says what each layer means; the repair is its portable "
                             f"form, proven on --runtime).", field=given[0])
        ensure_distinct(output, model=model, source=source, weights=weights)
        from .verify_cmd import repair_from_source_cmd

        repair_from_source_cmd(model, output, source, weights, runtimes, as_json, seed)
        return
    for name, value in (("weights", weights), ("runtime", runtimes)):
        if value is not None:
            raise ConvtError(f"{name}: --{name} applies with --source only (QDQ models: "
                             f"--float-weights, --target).", field=name)
    if qdq_requested(model, intent, float_path, float_weights):
        run_qdq_repair(model, output, float_path, float_weights, targets, seed, as_json)
        return
    ensure_distinct(output, model=model)
    chosen = intent or "onnx-spec"
    names = None if targets is None else target_names(targets)
    form = form or ("portable" if names else "compact")
    finish_repair(lambda: repair_model(model, chosen, parse_input_shapes(input_shapes),
                                       seed=seed, form=form, targets=names),
                  output, as_json, {"model": model, "intent": chosen})
