"""Normalising Keras config values: integers, tuples, names, dtypes, shapes.

Each helper accepts what Keras accepts for one argument and returns the
canonical form, or raises :class:`~convt_tools.errors.ConvtError` naming the
field and the allowed values. No semantics here (see :mod:`.layer`).
"""

from __future__ import annotations

import json
import numbers
import os
import re
from pathlib import Path
from typing import Any, Mapping

from ..activations import canonical_activation
from ..errors import ConvtError, fail
from .layout import DATA_FORMATS

__all__ = [
    "INITIALIZER_NAMES", "activation_name", "boolean", "dtype_policy", "initializer", "int_tuple",
    "IntTooLong", "MAX_INT_DIGITS", "is_int", "json_int", "optional_shape", "parse_int", "parse_shape",
    "resolve_data_format", "sequence", "shape_tuple", "unwrap_serialized",
]

_ASCII_INT = re.compile(r"-?[0-9]+")

# Keras initializer class names (and aliases) -> canonical snake name.
INITIALIZER_NAMES: dict[str, str] = {
    "glorotuniform": "glorot_uniform",
    "glorotnormal": "glorot_normal",
    "heuniform": "he_uniform",
    "henormal": "he_normal",
    "lecununiform": "lecun_uniform",
    "lecunnormal": "lecun_normal",
    "zeros": "zeros",
    "zero": "zeros",
    "ones": "ones",
    "one": "ones",
    "constant": "constant",
    "randomnormal": "random_normal",
    "normal": "random_normal",
    "randomuniform": "random_uniform",
    "uniform": "random_uniform",
    "truncatednormal": "truncated_normal",
    "variancescaling": "variance_scaling",
    "orthogonal": "orthogonal",
    "orthogonalinitializer": "orthogonal",
    "identity": "identity",
    "identityinitializer": "identity",
}

# Python refuses to convert longer digit strings (sys.get_int_max_str_digits, a
# ValueError); every integer read from text (options, shapes, JSON) stops here first.
MAX_INT_DIGITS = 4300


class IntTooLong(ConvtError):
    """An integer written with more than :data:`MAX_INT_DIGITS` digits."""


def _abbrev(text: str, keep: int = 40) -> str:
    """``repr(text)``, its middle elided when long (an error stays one readable line)."""
    if len(text) <= 2 * keep:
        return repr(text)
    return repr(f"{text[:keep]}...{text[-8:]}") + f" ({len(text):,} characters)"


def parse_int(text: str, field: str, allowed: str = "expected an integer") -> int:
    """The integer in ``text`` as Python's ``int(text)`` reads it, else a ConvtError
    ``<field>: got ...; <allowed>.`` (long text elided). More than
    :data:`MAX_INT_DIGITS` digits is refused here (no ``int`` conversion ValueError)."""
    if not isinstance(text, str):
        raise fail(field, text, allowed)
    digits = sum(1 for c in text if c.isdigit())
    if digits > MAX_INT_DIGITS:
        raise IntTooLong(f"{field}: got an integer of {digits:,} digits ({_abbrev(text, 12)}); "
                         f"{allowed} (at most {MAX_INT_DIGITS} digits).", field=field)
    try:
        return int(text)
    except ValueError:
        raise ConvtError(f"{field}: got {_abbrev(text)}; {allowed}.", field=field) from None


def json_int(field: str) -> Any:
    """A ``json.loads`` ``parse_int`` hook: integers in a JSON file go through
    :func:`parse_int` (a 5000-digit number is a ConvtError naming ``field``)."""
    def hook(text: str) -> int:
        return parse_int(text, field, "expected integers of reasonable size in the JSON")
    return hook


def is_int(value: Any) -> bool:
    """An integer (Python or NumPy), not a bool."""
    if type(value) is int:  # fast path: the ABC check below is slow on a hot path
        return True
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)  # np.bool_ isn't


def sequence(value: Any) -> list[Any] | None:
    """A list/tuple/1-D array as a list; anything else None (strings are not sequences)."""
    if isinstance(value, (list, tuple)):
        return list(value)
    if type(value).__name__ == "ndarray" and getattr(value, "ndim", None) == 1:
        return value.tolist()
    return None


def shape_tuple(shape: Any) -> tuple[Any, ...]:
    """A shape given as a sequence or as text (``"1,5,5,3"``); dims kept as given."""
    if type(shape) is tuple and all(type(v) is int or v is None for v in shape):
        return shape  # fast path: already a plain shape
    if isinstance(shape, str):
        return parse_shape(shape)
    items = sequence(shape)
    if items is None:
        raise fail("input_shape", shape, "expected a sequence of dims such as (1, 10, 8, 3), "
                   "with None for unknown dims")
    return tuple(int(v) if is_int(v) else v for v in items)


_EXAMPLES = {1: "2 or (2,)", 2: "2 or (2, 3)", 3: "2 or (2, 3, 3)"}


def int_tuple(name: str, value: Any, rank: int, *, allow_zero: bool = False) -> tuple[int, ...]:
    """Keras's ``standardize_tuple``: an int or a ``rank``-sequence of ints, each >= 1 (>= 0)."""
    lo = 0 if allow_zero else 1
    many = "a pair of them" if rank == 2 else f"a sequence of {rank} of them"
    allowed = (f"expected an integer >= {lo} or {many}, e.g. "
               f"{_EXAMPLES.get(rank, '2')} (Keras: the `{name}` argument must be a tuple of "
               f"{rank} integers, each {'>= 0' if allow_zero else '> 0'})")
    items = sequence(value)
    if is_int(value):
        out = (int(value),) * rank
    elif items is not None and len(items) == rank and all(is_int(v) for v in items):
        out = tuple(int(v) for v in items)
    else:
        raise fail(name, value, allowed)
    if min(out) < lo:
        raise fail(name, value, allowed)
    return out


def resolve_data_format(value: Any) -> tuple[str, str]:
    """Return ``(data_format, source)``; ``None`` resolves as Keras does.

    Keras reads ``image_data_format`` from ``keras.json`` in ``$KERAS_HOME``
    (else ``~/.keras``) and falls back to ``channels_last``.
    """
    if value is None:
        base = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
        path = Path(base) / "keras.json"
        try:
            found = json.loads(path.read_text()).get("image_data_format")
        except (OSError, ValueError, AttributeError):
            found = None
        if found is None:
            return "channels_last", "the Keras default (no image_data_format in keras.json)"
        if not (isinstance(found, str) and found.lower() in DATA_FORMATS):
            raise ConvtError(
                f"data_format: got None, and image_data_format in {str(path)!r} is {found!r}; "
                f"expected 'channels_last' or 'channels_first' there, or an explicit data_format.",
                field="data_format")
        return found.lower(), f"{path}"
    if isinstance(value, str) and value.lower() in DATA_FORMATS:
        return value.lower(), "config"
    raise fail("data_format", value, "expected 'channels_last', 'channels_first' or None "
               "(Keras: the `data_format` argument must be one of {'channels_first', "
               "'channels_last'})")


def unwrap_serialized(name: str, value: Any) -> tuple[str, dict[str, Any]]:
    """A Keras serialized object (string, or dict with ``class_name``/``config``)."""
    if isinstance(value, str):
        return value, {}
    if isinstance(value, Mapping) and "class_name" in value:
        cfg = value.get("config")
        if isinstance(cfg, str):  # {"class_name": "function", "config": "relu"}
            return cfg, {}
        if cfg is not None and not isinstance(cfg, Mapping):
            raise fail(name, value, "expected 'config' to be a name or an object")
        return str(value["class_name"]), dict(cfg or {})
    raise fail(name, value, "expected a name or a serialized Keras object "
               "{'class_name': ..., 'config': ...}")


def activation_name(value: Any) -> str:
    if value is None:
        return "linear"
    name, _ = unwrap_serialized("activation", value)
    return canonical_activation(name)


def initializer(name: str, value: Any) -> tuple[str, dict[str, Any]]:
    cls, cfg = unwrap_serialized(name, value)
    key = cls.replace("_", "").lower()
    if key not in INITIALIZER_NAMES:
        allowed = ", ".join(sorted(set(INITIALIZER_NAMES.values())))
        raise fail(name, value, f"expected a Keras built-in initializer: {allowed}")
    return INITIALIZER_NAMES[key], cfg


def dtype_policy(value: Any) -> tuple[str, str]:
    """``(compute_dtype, variable_dtype)`` from a string or DTypePolicy dict."""
    if value is None:
        return "float32", "float32"
    if isinstance(value, Mapping):
        cfg = value.get("config")
        value = cfg.get("name") if isinstance(cfg, Mapping) else value.get("name")
    if value == "mixed_float16":
        return "float16", "float32"
    if value == "mixed_bfloat16":
        return "bfloat16", "float32"
    if isinstance(value, str) and value in ("float16", "float32", "float64", "bfloat16"):
        return value, value
    raise fail("dtype", value, "expected float16, float32, float64, bfloat16, mixed_float16, "
               "mixed_bfloat16 or a DTypePolicy dict naming one")


def boolean(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise fail(name, value, "expected true or false")


def optional_shape(name: str, value: Any) -> tuple[int | None, ...] | None:
    if value is None:
        return None
    items = sequence(value)
    if items is not None and all(v is None or is_int(v) for v in items):
        return tuple(None if v is None else int(v) for v in items)
    raise fail(name, value, "expected a list of integers or nulls")


def parse_shape(text: str, name: str = "input_shape") -> tuple[int | None, ...]:
    """Parse ``"4,10,8,128"``; ``None``, ``?`` and ``-1`` mean unknown. Brackets optional."""
    allowed = ("expected comma-separated integers, with None or ? for unknown dims, "
               "e.g. 4,10,8,128 or None,?,?,3")
    if not isinstance(text, str):
        raise fail(name, text, allowed)
    raw = text.strip().strip("()[]").strip()
    parts = [p.strip() for p in raw.split(",")] if raw else []
    if parts and parts[-1] == "" and len(parts) > 1:  # one trailing comma, as in "(3,)"
        parts.pop()
    dims: list[int | None] = []
    for p in parts:
        if p.lower() in ("none", "?", "-1", "null"):
            dims.append(None)
        elif _ASCII_INT.fullmatch(p):
            dims.append(parse_int(p, name, allowed))
        else:
            raise fail(name, text, allowed)
    if not dims:
        raise fail(name, text, allowed)
    return tuple(dims)
