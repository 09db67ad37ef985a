"""Helpers shared by the CLI commands: error handling and small parsers."""

from __future__ import annotations

import functools
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


def _finite(obj: Any) -> Any:
    """NaN and infinities become ``None`` (JSON has no such numbers)."""
    import math

    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def echo_json(obj: Any) -> None:
    """Print ``obj`` as indented, strictly valid JSON on stdout (non-finite numbers -> null)."""
    import json

    click.echo(json.dumps(_finite(obj), indent=2, sort_keys=False, allow_nan=False))
