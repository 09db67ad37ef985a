"""The ``convt`` command line: a thin layer over the library.

Subcommands are imported lazily, so ``convt shape`` never pays for importing
onnx or onnxruntime. Exit codes: 0 success, 1 a check or validation found a
mismatch, 2 bad input (one-line error on stderr, no traceback), 130 interrupted
(Ctrl-C, SIGINT; ``--jobs`` workers are stopped too), 143 terminated (SIGTERM).
"""

from __future__ import annotations

import importlib
import sys
from typing import Any, NoReturn

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
    "runtimes": "runtimes_cmd:runtimes",
    "conformance": "conformance_cmd:conformance",
    "bench": "bench_cmd:bench",
    "verify": "verify_cmd:verify",
}


# Exit status after the reader of stdout went away (``convt ... | head -1``): what a shell
# reports for a Unix tool killed by SIGPIPE (128 + 13).
BROKEN_PIPE_EXIT = 141


def _quiet_broken_pipe() -> NoReturn:
    """Exit with :data:`BROKEN_PIPE_EXIT`, printing nothing, once stdout's reader is gone.

    stdout is pointed at /dev/null first, so the interpreter's final flush of
    what is still buffered does not fail again ("Exception ignored ...").
    """
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # stdout is not a real file (tests)
        pass
    sys.exit(BROKEN_PIPE_EXIT)


def _interrupted() -> NoReturn:
    """Ctrl-C: exit 130 (128 + SIGINT), not 1 (the code for a mismatch)."""
    click.echo("Interrupted (Ctrl-C); exit 130.", err=True)
    sys.exit(130)


class LazyGroup(click.Group):
    """A click group whose commands are imported on first use.

    Every usage error (a bad choice, a folder given as a file, a missing
    option) is printed as ONE line ``Error: ...`` on stderr with exit status 2
    (click's default prints a usage block of several lines). A closed stdout
    (``convt ... | head -1``) ends every command quietly, status
    :data:`BROKEN_PIPE_EXIT`.
    """

    def main(self, args: Any = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True, **extra: Any) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        from .common import one_line

        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except BrokenPipeError:
            _quiet_broken_pipe()
        except KeyboardInterrupt:
            _interrupted()
        except click.exceptions.Abort as exc:
            if isinstance(exc.__cause__, KeyboardInterrupt):  # click turns Ctrl-C into Abort
                _interrupted()
            click.echo("Aborted!", err=True)
            sys.exit(1)
        except click.ClickException as exc:
            if type(exc).__name__ == "NoArgsIsHelpError":   # bare ``convt``: the help text
                exc.show()
                sys.exit(exc.exit_code)
            click.echo(f"Error: {one_line(exc.format_message())}", err=True)
            sys.exit(exc.exit_code)
        sys.exit(rv if isinstance(rv, int) else 0)

    # --help/--version print while the context is made, commands while it is invoked; click
    # itself would turn a closed stdout into a bare exit 1 (this project's "mismatch" status).
    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:
        try:
            return super().make_context(*args, **kwargs)
        except BrokenPipeError:
            _quiet_broken_pipe()
            raise  # pragma: no cover - _quiet_broken_pipe exits

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            _quiet_broken_pipe()
            raise  # pragma: no cover - _quiet_broken_pipe exits

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
    """Exact shapes, ONNX export and verification for Keras Conv1D/2D/3DTranspose and
    PyTorch ConvTranspose1d/2d/3d."""
