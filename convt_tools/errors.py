"""Error type shared by every part of convt-tools.

Every user-facing failure (bad config, bad shape, bad weights, unreadable
model) raises :class:`ConvtError`. Its message is one sentence that names the
field, quotes the value given and says what would be valid; the CLI prints it
on one line and exits with status 2.
"""

from __future__ import annotations


class ConvtError(ValueError):
    """A user-input error: one sentence naming ``field`` and the allowed values."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def fail(field: str, given: object, allowed: str) -> ConvtError:
    """Build the standard error: ``<field>: got <given!r>; <allowed>.``"""
    return ConvtError(f"{field}: got {given!r}; {allowed}.", field=field)
