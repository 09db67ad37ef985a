"""Helpers shared by the CLI commands: error handling and small parsers."""

from __future__ import annotations

import contextlib
import functools
import signal
import sys
import threading
from typing import Any, Callable, Iterator, TypeVar, cast

import click

from ..errors import ConvtError, term_safe  # term_safe: re-exported

F = TypeVar("F", bound=Callable[..., Any])


# Every --seed: a non-negative integer (NumPy's generators refuse negative seeds).
SEED = click.IntRange(min=0)


class UsageError(click.ClickException):
    """Printed as one line ``Error: ...`` on stderr; exit status 2."""

    exit_code = 2

    def show(self, file: Any = None) -> None:
        click.echo(f"Error: {self.format_message()}", err=True)


def echo(text: object = "", *, err: bool = False) -> None:
    """``click.echo`` of human-readable output, made :func:`term_safe` (line breaks kept)."""
    click.echo(term_safe(text, keep="\n"), err=err)


def one_line(text: str) -> str:
    """``text`` with its lines joined by spaces (every CLI error is one line), made
    :func:`term_safe`."""
    return term_safe(" ".join(part.strip() for part in str(text).splitlines() if part.strip()))


@contextlib.contextmanager
def _sigint_seen() -> Iterator[list[bool]]:
    """While inside, Ctrl-C is recorded (the yielded list becomes truthy) before the usual
    KeyboardInterrupt: h5py and onnxruntime's import catch it and report a broken file or
    runtime instead, which must still exit 130, not 2. Main thread and default handler only."""
    seen: list[bool] = []
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield seen
        return

    def record(signum: int, frame: Any) -> None:
        seen.append(True)
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, record)
    try:
        yield seen
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def handle_errors(func: F) -> F:
    """Run a command in an :func:`~convt_tools.io.input_scope` (its outputs may not be its
    inputs) and turn :class:`ConvtError` (and unreadable files) into one-line exit-2 errors;
    SIGTERM during a write exits 143 after removing the temporary files."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from ..io import Terminated, input_scope

        try:
            with input_scope(), _sigint_seen() as seen:
                try:
                    result = func(*args, **kwargs)
                except (ConvtError, OSError, MemoryError):
                    if seen:   # a library swallowed the KeyboardInterrupt and failed instead
                        raise KeyboardInterrupt from None
                    raise
                if seen:
                    raise KeyboardInterrupt
                return result
        except ConvtError as exc:
            raise UsageError(one_line(str(exc)) or "invalid input.") from None
        except BrokenPipeError:
            raise  # the reader went away (``| head``): the entry point exits quietly
        except (OSError, MemoryError) as exc:
            raise UsageError(one_line(f"{type(exc).__name__}: {exc}")) from None
        except Terminated:
            click.echo("Terminated (SIGTERM); nothing was written.", err=True)
            sys.exit(143)

    return cast(F, wrapper)


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


def _dumps_deep(obj: Any) -> str:
    """``json.dumps(_finite(obj), indent=2)``, the same text, without recursion.

    For values nested deeper than Python's recursion limit (a saved model's
    config may hold any valid JSON); non-finite numbers become ``null``.
    """
    import json
    import math

    out: list[str] = []
    # Work items: a value to encode at an indent level, or literal text to emit.
    stack: list[tuple[bool, Any, int]] = [(False, obj, 0)]
    while stack:
        is_text, value, level = stack.pop()
        if is_text:
            out.append(value)
            continue
        if isinstance(value, float) and not math.isfinite(value):
            value = None
        if isinstance(value, (dict, list, tuple)):
            items = list(value.items()) if isinstance(value, dict) else list(value)
            opener, closer = ("{", "}") if isinstance(value, dict) else ("[", "]")
            if not items:
                out.append(opener + closer)
                continue
            pad, inner = "\n" + "  " * level, "\n" + "  " * (level + 1)
            todo: list[tuple[bool, Any, int]] = []
            for i, item in enumerate(items):
                sep = opener + inner if i == 0 else "," + inner
                if isinstance(value, dict):
                    key = item[0] if isinstance(item[0], str) else json.dumps(item[0])
                    todo.append((True, sep + json.dumps(key) + ": ", level))
                    todo.append((False, item[1], level + 1))
                else:
                    todo.append((True, sep, level))
                    todo.append((False, item, level + 1))
            todo.append((True, pad + closer, level))
            stack.extend(reversed(todo))
        else:
            out.append(json.dumps(value, allow_nan=False))
    return "".join(out)


def echo_json(obj: Any) -> None:
    """Print ``obj`` as indented, strictly valid JSON on stdout (non-finite numbers -> null).

    Any nesting depth is printed (values nested past Python's recursion limit
    go through :func:`_dumps_deep`, which writes the same text).
    """
    import json

    try:
        text = json.dumps(_finite(obj), indent=2, sort_keys=False, allow_nan=False)
    except RecursionError:
        text = _dumps_deep(obj)
    click.echo(text)
