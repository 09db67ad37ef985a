"""Error type shared by every part of convt-tools.

Every user-facing failure (bad config, bad shape, bad weights, unreadable
model) raises :class:`ConvtError`. Its message is one sentence that names the
field, quotes the value given and says what would be valid; the CLI prints it
on one line and exits with status 2.
"""

from __future__ import annotations

import re

__all__ = ["ConvtError", "fail", "first_line", "term_safe"]


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


# C0/C1 controls (ESC starts ANSI sequences), DEL, lone surrogates (unencodable: a
# UnicodeEncodeError on a UTF-8 terminal) and bidi overrides (they reorder what follows).
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\u200e\u200f\u202a-\u202e"
                     "\u2028\u2029\u2066-\u2069]")


def term_safe(text: object, keep: str = "") -> str:
    """``str(text)`` safe to print: every control character, lone surrogate and bidi
    override becomes a visible escape (``\\x1b``, ``\\ud800``), except those in ``keep``.

    Names in configs and models are untrusted: raw, an ESC would drive the
    terminal and a lone surrogate would crash the UTF-8 encoder.
    """
    def esc(m: re.Match[str]) -> str:
        ch = m.group()
        if ch in keep:
            return ch
        return f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}"
    return _UNSAFE.sub(esc, str(text))
