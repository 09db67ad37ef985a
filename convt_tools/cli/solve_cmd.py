"""``convt solve``: transposed convolutions that map an input size to a target size."""

from __future__ import annotations

import itertools
import json
from typing import Any, Iterator, overload

import click

from ..errors import ConvtError
from ..spec.values import parse_int
from ..solve import forward_padding
from .common import handle_errors


@overload
def _ints(name: str, text: str) -> list[int]: ...
@overload
def _ints(name: str, text: str | None) -> list[int] | None: ...
def _ints(name: str, text: str | None) -> list[int] | None:
    if text is None:
        return None
    allowed = "expected integers separated by commas, e.g. 10,8"
    vals = [parse_int(p, name, allowed) for p in text.replace("x", ",").split(",") if p.strip()]
    if not vals:
        raise ConvtError(f"{name}: got {text!r}; expected at least one integer.", field=name)
    return vals


def _entry(x: Any, start: Any) -> dict[str, Any]:
    return {"config": x.config(), "symmetric_export": x.symmetric,
            "keras_torch_agree": x.agrees, "derivation": x.explain(start)}


def _stream_json(head: dict[str, Any], sols: Iterator[Any], start: Any, found: Any) -> int:
    """Print the JSON object with its ``solutions`` array written one entry at a time."""
    text = json.dumps(head, indent=2)
    click.echo(text[:-2] + ',\n  "solutions": [', nl=False)
    n = 0
    for x in sols:
        body = json.dumps(_entry(x, start), indent=2).replace("\n", "\n    ")
        click.echo(("," if n else "") + "\n    " + body, nl=False)
        n += 1
    click.echo(("\n  " if n else "") + f'],\n  "examined": {found.examined}\n}}')
    return n


@click.command()
@click.option("--input", "input_", required=True, help="Input spatial sizes, e.g. 10,8.")
@click.option("--output", help="Target output sizes, e.g. 20,16 (not with --mirror).")
@click.option("--framework", type=click.Choice(["keras", "torch"]), default="keras",
              show_default=True, help="Whose rules (and argument names).")
@click.option("--kernel-size", help="Fix the kernel: K or one per axis. With --mirror: the "
              "forward convolution's kernel.")
@click.option("--strides", help="Fix the stride: S or one per axis. With --mirror: the "
              "forward convolution's stride.")
@click.option("--padding", "fwd_padding", help="With --mirror: the forward convolution's "
              "padding (valid, same; torch also an integer).")
@click.option("--dilation", "fwd_dilation", help="With --mirror: the forward convolution's "
              "dilation.")
@click.option("--max-kernel", type=int, default=8, show_default=True)
@click.option("--max-stride", type=int, help="Default: the largest stride that can reach the "
              "target (at most 16).")
@click.option("--max-dilation", type=int, default=2, show_default=True)
@click.option("--mirror", is_flag=True, help="Restore the input size of a forward Conv{n}D / "
              "Conv{n}d (--kernel-size, --strides, --padding, --dilation) applied to --input.")
@click.option("--limit", type=click.IntRange(min=0), default=10, show_default=True,
              help="Print this many solutions (0: all, streamed); --json always lists all. "
              "Only the solutions printed are ranked (lazily), so the limit bounds the work.")
@click.option("--explain", is_flag=True, help="Per-axis derivation of each printed solution.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
@handle_errors
def solve(input_: str, output: str | None, framework: str, kernel_size: str | None,
          strides: str | None, fwd_padding: str | None, fwd_dilation: str | None,
          max_kernel: int, max_stride: int | None, max_dilation: int, mirror: bool, limit: int,
          explain: bool, as_json: bool) -> None:
    """List every transposed-conv config that maps --input to --output exactly, ranked.

    Ranking: simplest first (no dilation, kernel >= stride, no output_padding,
    same on every axis); then symmetric ONNX pads (portable); then an even crop
    (Keras and torch agree); then smaller kernels, strides, padding.

    \b
    convt solve --input 10,8 --output 20,16
    convt solve --input 10,8 --output 20,16 --framework torch --kernel-size 4 --explain
    convt solve --mirror --input 64,64 --kernel-size 3 --strides 2 --padding same
    """
    from ..solve import search

    inputs = _ints("input", input_)
    k = _ints("kernel_size", kernel_size)
    s = _ints("strides", strides)
    if mirror:
        if output is not None:
            raise ConvtError("output: --mirror restores --input; give no --output.",
                             field="output")
        if k is None:
            raise ConvtError("kernel_size: --mirror needs the forward convolution's "
                             "--kernel-size.", field="kernel_size")
        spec = {"kernel_size": k, "strides": s or [1], "dilation": _ints("dilation", fwd_dilation)
                or [1], "padding": forward_padding(fwd_padding, framework)}
        found = search(inputs, framework=framework, max_kernel=max_kernel,
                       max_stride=max_stride, max_dilation=max_dilation, mirror=spec)
        target: list[int] | None = inputs
    else:
        if fwd_padding is not None or fwd_dilation is not None:
            raise ConvtError("padding: --padding/--dilation describe the forward conv of "
                             "--mirror; without it give --output.", field="padding")
        found = search(inputs, _ints("output", output), framework=framework,
                       kernel_size=k, strides=s, max_kernel=max_kernel,
                       max_stride=max_stride, max_dilation=max_dilation)
        target = _ints("output", output)
    start, count = found.start, found.count
    sols = found.solutions()
    if as_json:
        _stream_json({"framework": framework, "input": list(start),
                      "output": list(target or []), "count": count}, sols, start, found)
        if not count:
            raise SystemExit(1)
        return
    what = f"{framework}: {list(start)} -> {list(target or [])}"
    if mirror:
        what += f" (forward conv output {list(start)} back to its input)"
    if not count:
        click.echo(f"{what}: no configuration within kernel <= {max_kernel}, dilation <= "
                   f"{max_dilation}; raise --max-kernel/--max-stride/--max-dilation.")
        raise SystemExit(1)
    if limit:
        head = list(itertools.islice(sols, limit))
        click.echo(f"{what}: {count} configuration(s); {found.examined} candidate(s) examined "
                   f"to rank the first {len(head)}")
        shown: list[Any] | Iterator[Any] = head
    else:
        shown = sols
        click.echo(f"{what}: {count} configuration(s), all listed in rank order")
    n = 0
    for n, x in enumerate(shown, 1):
        tags = ", ".join(t for t, on in (("symmetric pads", x.symmetric),
                                         ("Keras/torch agree", x.agrees)) if on)
        click.echo(f"{n:3d}. {x.text()}" + (f"   [{tags}]" if tags else ""))
        if explain:
            for line in x.explain(start):
                click.echo(f"       {line}")
    if n < count:
        click.echo(f"... {count - n} more (--limit 0 or --json for all)")
