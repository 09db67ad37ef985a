"""The ``convt`` command line: a thin layer over the library.

Subcommands are imported lazily, so ``convt shape`` never pays for importing
onnx or onnxruntime. Exit codes: 0 success, 1 a check or validation found a
mismatch, 2 bad input (one-line error on stderr, no traceback).
"""

from __future__ import annotations

import importlib

import click

from .. import __version__

# name -> "module:attribute" (relative to convt_tools.cli)
COMMANDS = {
    "shape": "shape_cmd:shape",
    "export": "export_cmd:export",
    "run": "run_cmd:run",
    "validate": "validate_cmd:validate",
    "layers": "layers_cmd:layers",
    "check": "check_cmd:check",
    "repair": "check_cmd:repair",
    "translate": "translate_cmd:translate",
    "solve": "solve_cmd:solve",
}


class LazyGroup(click.Group):
    """A click group whose commands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, attr = target.split(":")
        return getattr(importlib.import_module(f"{__name__}.{module}"), attr)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="convt")
def main() -> None:
    """Exact shapes, ONNX export and verification for Keras Conv2DTranspose."""
