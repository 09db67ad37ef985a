"""Error type shared by every part of convt-tools.

Every user-facing failure (bad config, bad shape, bad weights, unreadable
model) raises :class:`ConvtError`. Its message is one sentence that names the
field, quotes the value given and says what would be valid; the CLI prints it
on one line and exits with status 2.
"""

from __future__ import annotations

__all__ = ["ConvtError", "fail", "first_line"]


class ConvtError(ValueError):
    """A user-input error: one sentence naming ``field`` and the allowed values."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def fail(field: str, given: object, allowed: str) -> ConvtError:
    """Build the standard error: ``<field>: got <given!r>; <allowed>.``"""
    return ConvtError(f"{field}: got {given!r}; {allowed}.", field=field)


def first_line(exc: BaseException, limit: int = 300) -> str:
    """The first non-empty line of ``exc``'s message, stripped and cut to ``limit`` characters
    (its type name when the message is empty): how a foreign exception is quoted in a
    one-sentence error."""
    for line in str(exc).splitlines():
        line = line.strip()
        if line:
            return line[:limit]
    return type(exc).__name__
