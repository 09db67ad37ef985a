"""Helpers shared by the CLI commands: error handling and small parsers."""

from __future__ import annotations

import functools
import sys
from typing import Any, Callable, TypeVar

import click

from ..errors import ConvtError

F = TypeVar("F", bound=Callable[..., Any])


class UsageError(click.ClickException):
    """Printed as one line ``Error: ...`` on stderr; exit status 2."""

    exit_code = 2

    def show(self, file: Any = None) -> None:
        click.echo(f"Error: {self.format_message()}", err=True)


def handle_errors(func: F) -> F:
    """Turn :class:`ConvtError` (and unreadable files) into one-line exit-2 errors."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ConvtError as exc:
            raise UsageError(str(exc)) from None
        except (OSError, MemoryError) as exc:
            raise UsageError(f"{type(exc).__name__}: {exc}") from None

    return wrapper  # type: ignore[return-value]


def echo_json(obj: Any) -> None:
    """Print ``obj`` as indented JSON on stdout."""
    import json

    click.echo(json.dumps(obj, indent=2, sort_keys=False))


def is_tty() -> bool:
    """True when stdout is an interactive terminal."""
    return sys.stdout.isatty()
