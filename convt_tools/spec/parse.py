"""Entry points: Keras keyword arguments or a layer config -> :class:`ConvTransposeSpec`.

The spatial rank of the layer comes, in this order, from:

1. an explicit ``rank`` argument or ``class_name`` (``Conv1DTranspose``,
   ``Conv2DTranspose``, ``Conv3DTranspose``, or the ``Convolution*`` aliases;
   the ``{"class_name", "config"}`` wrapper's class name counts);
2. the lengths of the tuple-valued ``kernel_size``, ``strides``,
   ``dilation_rate`` and ``output_padding`` (a real ``get_config()`` always
   writes them as lists of the layer's rank): the length most of them share,
   ``kernel_size``'s on a tie;
3. the input shape's rank minus 2 (the config's ``build_config``/
   ``batch_shape``, or the ``input_shape`` hint given to :func:`parse_config`);
4. otherwise ``Conv2DTranspose`` (the historical default of this API).

:func:`make_spec` (keyword arguments, like calling the Keras class) uses only
rule 1 and otherwise builds a ``Conv2DTranspose``.

``spec.rank_source`` records which, for ``convt shape --explain``/``--json``.
Validation then follows Keras per rank (``standardize_tuple`` lengths,
``filters >= 1``, no 0 in kernel/strides, ``output_padding < strides``,
not strides > 1 with dilation > 1, padding valid/same, data_format).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from ..errors import ConvtError, fail
from ..geometry import PADDINGS
from .layer import ConvTransposeSpec
from .layout import RANKS
from .values import (
    IntTooLong, activation_name, boolean, dtype_policy, initializer, int_tuple, is_int,
    json_int, optional_shape, resolve_data_format, sequence,
)

__all__ = ["CLASS_RANKS", "load_config", "make_spec", "parse_config"]

CLASS_RANKS: dict[str, int] = {
    "Conv1DTranspose": 1, "Convolution1DTranspose": 1,
    "Conv2DTranspose": 2, "Convolution2DTranspose": 2,
    "Conv3DTranspose": 3, "Convolution3DTranspose": 3,
}
LAYER_CLASS_NAMES = tuple(CLASS_RANKS)

# Config keys that a ConvNDTranspose get_config() (Keras 2 or 3) may carry.
_LAYER_KEYS = {
    "filters", "kernel_size", "strides", "padding", "output_padding",
    "data_format", "dilation_rate", "activation", "use_bias",
    "kernel_initializer", "bias_initializer", "kernel_regularizer",
    "bias_regularizer", "activity_regularizer", "kernel_constraint",
    "bias_constraint",
}
_BASE_KEYS = {"name", "trainable", "dtype", "groups", "batch_input_shape",
              "batch_shape", "input_shape"}
# Keys of the {"class_name": ..., "config": ...} wrapper (model.to_json()).
_WRAPPER_KEYS = {"class_name", "config", "module", "registered_name",
                 "build_config", "name", "inbound_nodes"}
_TUPLE_ARGS = ("kernel_size", "strides", "dilation_rate", "output_padding")


def _class_rank(value: Any, field_name: str = "class_name") -> int:
    if isinstance(value, str) and value in CLASS_RANKS:
        return CLASS_RANKS[value]
    raise fail(field_name, value, "expected Conv1DTranspose, Conv2DTranspose or Conv3DTranspose")


def resolve_rank(args: Mapping[str, Any], *, rank: Any = None, class_name: Any = None,
                 input_shape: Sequence[Any] | None = None) -> tuple[int, str]:
    """``(rank, source)`` by the rules of the module docstring."""
    if rank is not None and not (is_int(rank) and int(rank) in RANKS):
        raise fail("rank", rank, "expected 1, 2 or 3 (the spatial rank)")
    if class_name is not None:
        from_class = _class_rank(class_name)
        if rank is not None and int(rank) != from_class:
            raise ConvtError(f"rank: got {rank}, but class_name {class_name!r} has rank "
                             f"{from_class}; give one of them or make them agree.", field="rank")
        return from_class, "class_name"
    if rank is not None:
        return int(rank), "rank argument"
    lengths = [(key, len(items)) for key in _TUPLE_ARGS
               if (items := sequence(args.get(key))) is not None and len(items) in RANKS]
    if lengths:
        counts = Counter(n for _, n in lengths)
        best = max(counts.values())
        chosen = next(n for _, n in lengths if counts[n] == best)  # kernel_size first on a tie
        keys = ", ".join(k for k, n in lengths if n == chosen)
        return chosen, f"the config's tuple lengths ({keys}: {chosen})"
    if input_shape is not None and len(input_shape) - 2 in RANKS:
        return len(input_shape) - 2, f"the input shape's rank ({len(input_shape)} dims)"
    return 2, "the default (nothing gives the rank: Conv2DTranspose)"


def make_spec(
    filters: int,
    kernel_size: int | Sequence[int],
    strides: int | Sequence[int] = 1,
    padding: str = "valid",
    output_padding: int | Sequence[int] | None = None,
    data_format: str | None = None,
    dilation_rate: int | Sequence[int] = 1,
    activation: Any = None,
    use_bias: bool = True,
    kernel_initializer: Any = "glorot_uniform",
    bias_initializer: Any = "zeros",
    kernel_regularizer: Any = None,
    bias_regularizer: Any = None,
    activity_regularizer: Any = None,
    kernel_constraint: Any = None,
    bias_constraint: Any = None,
    *,
    name: str | None = None,
    trainable: bool = True,
    dtype: Any = None,
    groups: int = 1,
    input_shape: Sequence[int | None] | None = None,
    rank: int | None = None,
    class_name: str | None = None,
) -> ConvTransposeSpec:
    """Build a validated spec from Keras ``ConvNDTranspose`` keyword arguments.

    Like calling the Keras class: ``Conv2DTranspose`` unless ``rank`` (1, 2,
    3) or ``class_name`` names another (tuples are not used to guess the rank
    here; :func:`parse_config` does that for configs). Validation follows Keras:
    ``filters >= 1``; kernel, strides, dilation ``>= 1``; not
    ``max(strides) > 1`` together with ``max(dilation) > 1``;
    ``0 <= output_padding < strides`` per axis; padding ``valid``/``same``
    (any case); data_format ``channels_last``/``channels_first``/None.
    """
    inp = optional_shape("input_shape", input_shape)
    if rank is None and class_name is None:
        r, rank_source = 2, "make_spec's default (Conv2DTranspose)"
    else:
        r, rank_source = resolve_rank({}, rank=rank, class_name=class_name)
    return _build(r, rank_source, filters, kernel_size, strides, padding, output_padding,
                  data_format, dilation_rate, activation, use_bias, kernel_initializer,
                  bias_initializer, kernel_regularizer, bias_regularizer, activity_regularizer,
                  kernel_constraint, bias_constraint, name=name, trainable=trainable,
                  dtype=dtype, groups=groups, input_shape=inp)


def _build(r: int, rank_source: str, filters: Any, kernel_size: Any, strides: Any = 1,
           padding: Any = "valid", output_padding: Any = None, data_format: Any = None,
           dilation_rate: Any = 1, activation: Any = None, use_bias: Any = True,
           kernel_initializer: Any = "glorot_uniform", bias_initializer: Any = "zeros",
           kernel_regularizer: Any = None, bias_regularizer: Any = None,
           activity_regularizer: Any = None, kernel_constraint: Any = None,
           bias_constraint: Any = None, *, name: Any = None, trainable: Any = True,
           dtype: Any = None, groups: Any = 1,
           input_shape: tuple[int | None, ...] | None = None) -> ConvTransposeSpec:
    """Validate the Keras arguments for spatial rank ``r`` and build the spec."""
    inp = input_shape
    if not is_int(filters) or filters < 1:
        raise fail("filters", filters, "expected a positive integer (Keras: invalid value for "
                   "argument `filters`, expected a strictly positive value)")
    filters = int(filters)
    ks = int_tuple("kernel_size", kernel_size, r)
    st = int_tuple("strides", strides, r)
    dl = int_tuple("dilation_rate", dilation_rate, r)
    if not (isinstance(padding, str) and padding.lower() in PADDINGS):
        raise fail("padding", padding, "expected 'valid' or 'same' (any case) (Keras: the "
                   "`padding` argument must be one of {'same', 'valid'})")
    pad = padding.lower()
    op = None if output_padding is None else int_tuple("output_padding", output_padding, r,
                                                       allow_zero=True)
    if max(st) > 1 and max(dl) > 1:
        raise ConvtError(
            f"strides: got {st} with dilation_rate {dl}; Keras does not allow strides > 1 "
            f"together with dilation_rate > 1 (make one of them 1 on every axis; Keras: "
            f"`strides > 1` not supported in conjunction with `dilation_rate > 1`).",
            field="strides")
    if op is not None:
        names = ("length",) if r == 1 else ("height", "width") if r == 2 else \
            ("depth", "height", "width")
        for i, (axis, o, s) in enumerate(zip(names, op, st)):
            if o >= s:
                raise ConvtError(
                    f"output_padding: got {op} with strides {st}; output_padding must be "
                    f"strictly less than the stride on every axis ({axis}: {o} >= {s}; "
                    f"Keras: at dimension {i}, `output_padding` is {o} but `strides` is {s}).",
                    field="output_padding")
    fmt, source = resolve_data_format(data_format)
    if groups != 1:
        raise fail("groups", groups, f"Keras Conv{r}DTranspose has no groups; expected 1")
    compute, variable = dtype_policy(dtype)
    act = activation_name(activation)
    if name is not None and not isinstance(name, str):
        raise fail("name", name, "expected a string or null")
    return ConvTransposeSpec(
        filters=filters, kernel_size=ks, strides=st, padding=pad, output_padding=op,
        data_format=fmt, dilation_rate=dl, activation=act,
        use_bias=boolean("use_bias", use_bias),
        kernel_initializer=initializer("kernel_initializer", kernel_initializer),
        bias_initializer=initializer("bias_initializer", bias_initializer),
        training_only={"kernel_regularizer": kernel_regularizer,
                       "bias_regularizer": bias_regularizer,
                       "activity_regularizer": activity_regularizer,
                       "kernel_constraint": kernel_constraint,
                       "bias_constraint": bias_constraint},
        name=name, trainable=boolean("trainable", trainable), dtype=compute,
        variable_dtype=variable, data_format_source=source, input_shape=inp,
        rank_source=rank_source,
    )


def parse_config(obj: Any, *, rank: int | None = None,
                 input_shape: Sequence[int | None] | None = None) -> ConvTransposeSpec:
    """Parse a ``layer.get_config()`` dict or ``{"class_name", "config"}`` wrapper.

    The wrapper's ``class_name`` must be a ConvNDTranspose (N = 1, 2, 3) and
    gives the rank; its ``build_config.input_shape`` (if any) becomes
    ``spec.input_shape``. A bare dict takes its rank from ``rank``, else its
    tuple lengths, else its own input shape or the ``input_shape`` hint (used
    for the rank only), else 2. Unknown keys are an error that names them. A
    config without ``output_padding`` (Keras < 3.15) means ``None``.
    """
    if not isinstance(obj, Mapping):
        raise fail("config", type(obj).__name__, "expected a JSON object (a Keras layer config)")
    spec_input = None
    class_name = None
    if "class_name" in obj and isinstance(obj.get("config"), Mapping):
        extra = sorted(set(obj) - _WRAPPER_KEYS)
        if extra:
            raise fail("config", extra, f"unknown wrapper keys; allowed: {sorted(_WRAPPER_KEYS)}")
        class_name = obj["class_name"]
        _class_rank(class_name)
        build = obj.get("build_config")
        if isinstance(build, Mapping):
            spec_input = optional_shape("build_config.input_shape", build.get("input_shape"))
        obj = obj["config"]
    unknown = sorted(set(obj) - _LAYER_KEYS - _BASE_KEYS)
    if unknown:
        raise ConvtError(
            f"config: unknown key(s) {', '.join(map(repr, unknown))}; a ConvNDTranspose config "
            f"has {', '.join(sorted(_LAYER_KEYS | {'name', 'trainable', 'dtype'}))}.",
            field="config")
    if "filters" not in obj or "kernel_size" not in obj:
        missing = [k for k in ("filters", "kernel_size") if k not in obj]
        raise ConvtError(f"config: missing required key(s) {', '.join(missing)}.", field="config")
    kwargs = {k: v for k, v in obj.items() if k in _LAYER_KEYS}
    for key in ("batch_input_shape", "batch_shape"):
        if obj.get(key) is not None:
            spec_input = optional_shape(key, obj[key])
    if obj.get("input_shape") is not None:
        spec_input = (None,) + tuple(optional_shape("input_shape", obj["input_shape"]) or ())
    hint = spec_input if spec_input is not None else optional_shape("input_shape", input_shape)
    r, source = resolve_rank(kwargs, rank=rank, class_name=class_name, input_shape=hint)
    return _build(r, source, **kwargs, name=obj.get("name"),
                  trainable=obj.get("trainable", True), dtype=obj.get("dtype"),
                  groups=obj.get("groups", 1), input_shape=spec_input)


def read_config_json(path: str | os.PathLike[str]) -> Any:
    """The JSON value in the config file ``path``: a regular file (a FIFO or
    /dev/zero would hang), UTF-8 with an optional BOM, no key given twice,
    bounded nesting; never evaluated. Errors name the field ``config``."""
    if not isinstance(path, (str, os.PathLike)):
        raise fail("config", type(path).__name__, "expected a path (str or os.PathLike) to a "
                   "JSON layer config; parse an in-memory dict with parse_config")
    from ..io import check_input_file

    check_input_file(path, "config")   # a FIFO or /dev/zero would hang: regular files only
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ConvtError(f"config: cannot read {str(path)!r}: {exc.strerror or exc}.",
                         field="config") from None
    return parse_config_json(raw, path)


def parse_config_json(raw: bytes, path: str | os.PathLike[str]) -> Any:
    """The JSON value in ``raw``, the bytes of the config file ``path`` (see
    :func:`read_config_json`; the resolver reads each file once)."""
    try:
        text = raw.decode("utf-8-sig")  # a leading BOM (Windows editors) is fine
    except UnicodeDecodeError as exc:
        raise ConvtError(f"config: {str(path)!r} is not UTF-8 text ({exc.reason} at byte "
                         f"{exc.start}); expected a JSON layer config.", field="config") from None
    try:
        return json.loads(text, object_pairs_hook=no_duplicate_keys(),
                          parse_int=json_int("config"))
    except RecursionError:
        raise ConvtError(f"config: {str(path)!r} is nested too deeply to be a layer config.",
                         field="config") from None
    except ConvtError as exc:   # a key given twice: the hook's message, with the file
        raise ConvtError(f"config: {str(path)!r}: {str(exc).removeprefix('config: ')}",
                         field="config") from None
    except ValueError as exc:
        if isinstance(exc, IntTooLong):
            raise ConvtError(f"config: {str(path)!r}: {str(exc)[len('config: '):]}",
                             field="config") from None
        raise ConvtError(f"config: {str(path)!r} is not valid JSON ({exc}).",
                         field="config") from None


def load_config(path: str | os.PathLike[str], *, rank: int | None = None,
                input_shape: Sequence[int | None] | None = None) -> ConvTransposeSpec:
    """Read a JSON layer config from ``path`` and parse it (see :func:`parse_config`)."""
    return parse_config(read_config_json(path), rank=rank, input_shape=input_shape)


def no_duplicate_keys(field: str = "config") -> Callable[[list[tuple[str, Any]]], dict[str, Any]]:
    """A ``json`` ``object_pairs_hook``: a key given twice is an error naming
    ``field`` (not "the last one wins", which would hide a conflicting value)."""
    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: dict[str, Any] = {}
        for key, value in pairs:
            if key in seen:
                raise ConvtError(f"{field}: key {key!r} is given twice in one object; "
                                 f"give each key once.", field=field)
            seen[key] = value
        return seen
    return hook
