"""``convt runtimes``: every engine, installed or not, with its version and install line."""

from __future__ import annotations

import click

from .common import echo_json, handle_errors

__all__ = ["runtimes"]


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the table as JSON.")
@handle_errors
def runtimes(as_json: bool) -> None:
    """List the engines (the names of --runtime, --engine and check's table).

    \b
    convt runtimes
    convt runtimes --json
    """
    from ..runtimes import engine_table

    rows = engine_table()
    if as_json:
        echo_json({"engines": [r.to_dict() for r in rows]})
        return
    table = [("name", "installed", "version", "used by", "install")]
    for r in rows:
        have = "documented" if r.kind == "documented" else ("yes" if r.installed else "no")
        table.append((r.name, have, r.version or "-", r.where,
                      r.install))
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    for r in rows:
        if r.note:
            click.echo(f"{r.name}: {r.note}")
