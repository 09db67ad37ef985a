"""The semantics of Keras 3 ``Conv2DTranspose``: the single source of truth.

Everything else in convt-tools (the ONNX exporter, the NumPy reference, the
validator, ``convt check``) takes its lengths and crops from this module, so
they cannot disagree with each other. The per-axis arithmetic itself lives in
:mod:`convt_tools.geometry` (re-exported here); this module applies it per axis.

Per spatial axis, with ``in`` the input length, ``k`` kernel size, ``s``
stride, ``d`` dilation and ``op`` output_padding::

    K = (k - 1) * d + 1                 effective kernel
    L = (in - 1) * s + K                natural (uncropped) length
    Keras length O:
      valid, op None : in * s + max(K - s, 0)
      valid, op      : (in - 1) * s + K + op
      same,  op None : in * s
      same,  op      : (in - 1) * s + K % 2 + op
    total = L - O   (independent of ``in``)
      total >= 0 : crop total // 2 at the start, the rest at the end
      total <  0 : crop nothing, append -total zero rows/cols at the end
                   (bias and activation then apply to them too)

This module imports nothing heavier than the standard library, so that
``convt shape`` stays fast.
"""

from __future__ import annotations

import json
import numbers
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from .activations import canonical_activation
from .errors import ConvtError, fail
from .geometry import (
    PADDINGS, AxisCrop, crop_for_axis, effective_kernel, keras_output_length, natural_length,
)

__all__ = [
    "AxisCrop",
    "AxisDerivation",
    "Conv2DTransposeSpec",
    "INITIALIZER_NAMES",
    "crop_for_axis",
    "keras_output_length",
    "load_config",
    "make_spec",
    "parse_config",
    "parse_shape",
    "resolve_data_format",
]

DATA_FORMATS = ("channels_last", "channels_first")
LAYER_CLASS_NAMES = ("Conv2DTranspose", "Convolution2DTranspose")

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

# Config keys that a Conv2DTranspose get_config() (Keras 2 or 3) may carry.
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
_ASCII_INT = re.compile(r"-?[0-9]+")
_TRAINING_ONLY = ("kernel_regularizer", "bias_regularizer",
                  "activity_regularizer", "kernel_constraint", "bias_constraint")


# --------------------------------------------------------------------------
# Per-axis arithmetic: convt_tools.geometry (re-exported here)
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class AxisDerivation:
    """The numbers behind one axis' output length (for ``--explain``)."""

    axis: str
    input_length: int | None
    kernel: int
    stride: int
    dilation: int
    output_padding: int | None
    effective_kernel: int
    natural_length: int | None
    output_length: int | None
    crop: AxisCrop

    def describe(self, padding: str) -> str:
        """A few lines of words and numbers for a human reader."""
        k, s, d, K = self.kernel, self.stride, self.dilation, self.effective_kernel
        n = "in" if self.input_length is None else str(self.input_length)
        op = self.output_padding
        lines = [f"{self.axis}: kernel {k}, stride {s}, dilation {d}, "
                 f"output_padding {op}, padding {padding}"]
        lines.append(f"  effective kernel K = (k-1)*d + 1 = ({k}-1)*{d} + 1 = {K}")
        nat = "unknown" if self.natural_length is None else str(self.natural_length)
        lines.append(f"  natural length L = (in-1)*s + K = ({n}-1)*{s} + {K} = {nat}")
        if padding == "valid" and op is None:
            formula = f"in*s + max(K-s, 0) = {n}*{s} + {max(K - s, 0)}"
        elif padding == "valid":
            formula = f"(in-1)*s + K + op = ({n}-1)*{s} + {K} + {op}"
        elif op is None:
            formula = f"in*s = {n}*{s}"
        else:
            formula = f"(in-1)*s + K%2 + op = ({n}-1)*{s} + {K % 2} + {op}"
        out = "unknown" if self.output_length is None else str(self.output_length)
        lines.append(f"  Keras length O = {formula} = {out}")
        c = self.crop
        if c.extend:
            lines.append(f"  L - O = {c.total}: nothing cropped; {c.extend} zero "
                         f"row(s) appended at the end (bias and activation apply to them)")
        elif c.begin or c.end:
            lines.append(f"  L - O = {c.total}: crop {c.begin} at the start, {c.end} at the end"
                         + (" (odd extra at the end, TensorFlow's rule)" if c.end > c.begin else ""))
        else:
            lines.append("  L - O = 0: no crop")
        return "\n".join(lines)


# --------------------------------------------------------------------------
# The spec
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class Conv2DTransposeSpec:
    """A normalised, validated Keras ``Conv2DTranspose`` configuration.

    Build one with :func:`parse_config` (a ``get_config()`` dict or the
    ``{"class_name", "config"}`` form) or :func:`make_spec` (keyword
    arguments with Keras's names and defaults).
    """

    filters: int
    kernel_size: tuple[int, int]
    strides: tuple[int, int] = (1, 1)
    padding: str = "valid"
    output_padding: tuple[int, int] | None = None
    data_format: str = "channels_last"
    dilation_rate: tuple[int, int] = (1, 1)
    activation: str = "linear"
    use_bias: bool = True
    kernel_initializer: tuple[str, Mapping[str, Any]] = ("glorot_uniform", {})
    bias_initializer: tuple[str, Mapping[str, Any]] = ("zeros", {})
    training_only: Mapping[str, Any] = field(default_factory=dict)
    name: str | None = None
    trainable: bool = True
    dtype: str = "float32"
    variable_dtype: str = "float32"
    data_format_source: str = "config"
    input_shape: tuple[int | None, ...] | None = None

    # ---- shapes --------------------------------------------------------
    @property
    def channels_axis(self) -> int:
        """Index of the channel axis in the Keras layout (-1 or 1)."""
        return -1 if self.data_format == "channels_last" else 1

    def kernel_shape(self, in_channels: int) -> tuple[int, int, int, int]:
        """Keras kernel layout ``(kh, kw, filters, in_channels)``."""
        return (self.kernel_size[0], self.kernel_size[1], self.filters, in_channels)

    def crop_plan(self) -> tuple[AxisCrop, AxisCrop]:
        """The (height, width) crops; independent of the input size."""
        op = self.output_padding or (None, None)
        return tuple(  # type: ignore[return-value]
            crop_for_axis(self.kernel_size[i], self.strides[i], self.dilation_rate[i],
                          self.padding, op[i])
            for i in range(2)
        )

    def check_input_shape(self, input_shape: Sequence[int | None],
                          in_channels: int | None = None) -> tuple[int | None, ...]:
        """Validate a rank-4 input shape in this spec's data format.

        Known dims must be positive integers (the batch may be 0); the channel
        dim must equal ``in_channels`` when both are known.
        """
        shape = _shape_tuple(input_shape)
        if len(shape) != 4:
            layout = "(batch, height, width, channels)" if self.data_format == "channels_last" \
                else "(batch, channels, height, width)"
            raise fail("input_shape", shape, f"Conv2DTranspose needs a rank-4 input {layout}")
        for i, dim in enumerate(shape):
            if dim is None:
                continue
            if not _is_int(dim) or dim < (0 if i == 0 else 1):
                raise fail("input_shape", shape,
                           "dims must be positive integers or None (unknown)")
        ch = shape[self.channels_axis]
        if in_channels is not None and ch is not None and ch != in_channels:
            raise ConvtError(
                f"input_shape: got {ch} input channels in {shape}, but the kernel has "
                f"{in_channels} (kernel layout (kh, kw, filters, in_channels)); they must match.",
                field="input_shape")
        return shape

    def _spatial(self, shape: tuple[int | None, ...]) -> tuple[int | None, int | None]:
        return (shape[1], shape[2]) if self.data_format == "channels_last" else (shape[2], shape[3])

    def output_shape(self, input_shape: Sequence[int | None],
                     in_channels: int | None = None) -> tuple[int | None, ...]:
        """The shape Keras's ``compute_output_shape`` reports (batch passed through).

        Note ``glu`` halves the last axis of the actual output; see
        :meth:`activated_output_shape`.
        """
        shape = self.check_input_shape(input_shape, in_channels)
        op = self.output_padding or (None, None)
        h, w = (keras_output_length(n, self.kernel_size[i], self.strides[i],
                                    self.dilation_rate[i], self.padding, op[i])
                for i, n in enumerate(self._spatial(shape)))
        if self.data_format == "channels_last":
            return (shape[0], h, w, self.filters)
        return (shape[0], self.filters, h, w)

    def activated_output_shape(self, input_shape: Sequence[int | None],
                               in_channels: int | None = None) -> tuple[int | None, ...]:
        """The shape of the tensor the layer really returns (``glu`` halves axis -1)."""
        out = self.output_shape(input_shape, in_channels)
        if self.activation == "glu":
            last = out[-1]
            if last is not None and last % 2:
                raise ConvtError(
                    f"activation: 'glu' splits the last axis in two halves, but its length "
                    f"is {last} (odd); use an even size there or another activation.",
                    field="activation")
            out = out[:-1] + (None if last is None else last // 2,)
        return out

    def derivation(self, input_shape: Sequence[int | None]) -> tuple[AxisDerivation, AxisDerivation]:
        """Per-axis derivation of the output length (see the module docstring)."""
        shape = self.check_input_shape(input_shape)
        op = self.output_padding or (None, None)
        crops = self.crop_plan()
        result = []
        for i, (axis, n) in enumerate(zip(("height", "width"), self._spatial(shape))):
            k, s, d = self.kernel_size[i], self.strides[i], self.dilation_rate[i]
            K = effective_kernel(k, d)
            result.append(AxisDerivation(
                axis=axis, input_length=n, kernel=k, stride=s, dilation=d,
                output_padding=op[i], effective_kernel=K,
                natural_length=None if n is None else natural_length(n, k, s, d),
                output_length=keras_output_length(n, k, s, d, self.padding, op[i]),
                crop=crops[i]))
        return tuple(result)  # type: ignore[return-value]

    def explain(self, input_shape: Sequence[int | None]) -> str:
        """The derivation in words and numbers, one block per axis."""
        out = self.output_shape(input_shape)
        blocks = [f"input {format_shape(tuple(input_shape))} ({self.data_format}"
                  f", data_format from {self.data_format_source})"]
        blocks += [d.describe(self.padding) for d in self.derivation(input_shape)]
        blocks.append(f"output {format_shape(out)}")
        if self.activation == "glu":
            blocks.append(f"glu halves the last axis: the tensor returned is "
                          f"{format_shape(self.activated_output_shape(input_shape))}")
        return "\n".join(blocks)

    # ---- reporting -----------------------------------------------------
    def to_config(self) -> dict[str, Any]:
        """The normalised config as a JSON-able dict (Keras key names)."""
        return {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": self.dtype,
            "filters": self.filters,
            "kernel_size": list(self.kernel_size),
            "strides": list(self.strides),
            "padding": self.padding,
            "output_padding": None if self.output_padding is None else list(self.output_padding),
            "data_format": self.data_format,
            "dilation_rate": list(self.dilation_rate),
            "activation": self.activation,
            "use_bias": self.use_bias,
            "kernel_initializer": {"class_name": self.kernel_initializer[0],
                                   "config": dict(self.kernel_initializer[1])},
            "bias_initializer": {"class_name": self.bias_initializer[0],
                                 "config": dict(self.bias_initializer[1])},
            **{k: self.training_only.get(k) for k in _TRAINING_ONLY},
        }

    def notes(self) -> list[str]:
        """Things a user should know that do not change the computed output."""
        notes = []
        used = [k for k in _TRAINING_ONLY if self.training_only.get(k) is not None]
        if used:
            notes.append(f"{', '.join(used)} only act during training; "
                         "they do not affect the exported model.")
        if self.data_format_source != "config":
            notes.append(f"data_format was None; resolved to {self.data_format} "
                         f"from {self.data_format_source}.")
        if self.dtype != self.variable_dtype:
            notes.append(f"dtype policy computes in {self.dtype} with {self.variable_dtype} weights.")
        return notes


def format_shape(shape: Sequence[int | None]) -> str:
    """``(4, 20, None, 32)``; a 1-tuple keeps its comma."""
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + \
        ("," if len(shape) == 1 else "") + ")"


# --------------------------------------------------------------------------
# Normalisation helpers
# --------------------------------------------------------------------------

def _is_int(value: Any) -> bool:
    """An integer (Python or NumPy), not a bool."""
    if type(value) is int:  # fast path: the ABC check below is slow on a hot path
        return True
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)  # np.bool_ isn't


def _sequence(value: Any) -> list[Any] | None:
    """A list/tuple/1-D array as a list; anything else None (strings are not sequences)."""
    if isinstance(value, (list, tuple)):
        return list(value)
    if type(value).__name__ == "ndarray" and getattr(value, "ndim", None) == 1:
        return value.tolist()
    return None


def _shape_tuple(shape: Any) -> tuple[Any, ...]:
    """A shape given as a sequence or as text (``"1,5,5,3"``); dims kept as given."""
    if type(shape) is tuple and all(type(v) is int or v is None for v in shape):
        return shape  # fast path: already a plain shape
    if isinstance(shape, str):
        return parse_shape(shape)
    items = _sequence(shape)
    if items is None:
        raise fail("input_shape", shape, "expected a sequence of dims such as (1, 10, 8, 3), "
                   "with None for unknown dims")
    return tuple(int(v) if _is_int(v) else v for v in items)


def _int_pair(name: str, value: Any, *, allow_zero: bool = False) -> tuple[int, int]:
    """Keras's ``standardize_tuple``: an int or a 2-sequence of ints, each >= 1 (>= 0)."""
    lo = 0 if allow_zero else 1
    allowed = f"expected an integer >= {lo} or a pair of them, e.g. 2 or (2, 3)"
    items = _sequence(value)
    if _is_int(value):
        pair = (int(value), int(value))
    elif items is not None and len(items) == 2 and all(_is_int(v) for v in items):
        pair = (int(items[0]), int(items[1]))
    else:
        raise fail(name, value, allowed)
    if min(pair) < lo:
        raise fail(name, value, allowed)
    return pair


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
    raise fail("data_format", value, "expected 'channels_last', 'channels_first' or None")


def _unwrap_serialized(name: str, value: Any) -> tuple[str, dict[str, Any]]:
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


def _activation(value: Any) -> str:
    if value is None:
        return "linear"
    name, _ = _unwrap_serialized("activation", value)
    return canonical_activation(name)


def _initializer(name: str, value: Any) -> tuple[str, dict[str, Any]]:
    cls, cfg = _unwrap_serialized(name, value)
    key = cls.replace("_", "").lower()
    if key not in INITIALIZER_NAMES:
        allowed = ", ".join(sorted(set(INITIALIZER_NAMES.values())))
        raise fail(name, value, f"expected a Keras built-in initializer: {allowed}")
    return INITIALIZER_NAMES[key], cfg


def _dtype(value: Any) -> tuple[str, str]:
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


def _bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise fail(name, value, "expected true or false")


def _optional_shape(name: str, value: Any) -> tuple[int | None, ...] | None:
    if value is None:
        return None
    items = _sequence(value)
    if items is not None and all(v is None or _is_int(v) for v in items):
        return tuple(None if v is None else int(v) for v in items)
    raise fail(name, value, "expected a list of integers or nulls")


# --------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------

def make_spec(
    filters: int,
    kernel_size: int | Sequence[int],
    strides: int | Sequence[int] = (1, 1),
    padding: str = "valid",
    output_padding: int | Sequence[int] | None = None,
    data_format: str | None = None,
    dilation_rate: int | Sequence[int] = (1, 1),
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
) -> Conv2DTransposeSpec:
    """Build a validated spec from Keras ``Conv2DTranspose`` keyword arguments.

    Validation follows Keras: ``filters >= 1``; kernel, strides, dilation
    ``>= 1``; not ``max(strides) > 1`` together with ``max(dilation) > 1``;
    ``0 <= output_padding < strides`` per axis; padding ``valid``/``same``
    (any case); data_format ``channels_last``/``channels_first``/None.
    """
    if not _is_int(filters) or filters < 1:
        raise fail("filters", filters, "expected a positive integer")
    filters = int(filters)
    ks = _int_pair("kernel_size", kernel_size)
    st = _int_pair("strides", strides)
    dl = _int_pair("dilation_rate", dilation_rate)
    if not (isinstance(padding, str) and padding.lower() in PADDINGS):
        raise fail("padding", padding, "expected 'valid' or 'same' (any case)")
    pad = padding.lower()
    op = None if output_padding is None else _int_pair("output_padding", output_padding,
                                                       allow_zero=True)
    if max(st) > 1 and max(dl) > 1:
        raise ConvtError(
            f"strides: got {st} with dilation_rate {dl}; Keras does not allow strides > 1 "
            f"together with dilation_rate > 1 (make one of them 1 on every axis).",
            field="strides")
    if op is not None:
        for axis, o, s in zip(("height", "width"), op, st):
            if o >= s:
                raise ConvtError(
                    f"output_padding: got {op} with strides {st}; output_padding must be "
                    f"strictly less than the stride on every axis ({axis}: {o} >= {s}).",
                    field="output_padding")
    fmt, source = resolve_data_format(data_format)
    if groups != 1:
        raise fail("groups", groups, "Keras Conv2DTranspose has no groups; expected 1")
    compute, variable = _dtype(dtype)
    act = _activation(activation)
    if name is not None and not isinstance(name, str):
        raise fail("name", name, "expected a string or null")
    return Conv2DTransposeSpec(
        filters=filters, kernel_size=ks, strides=st, padding=pad, output_padding=op,
        data_format=fmt, dilation_rate=dl, activation=act,
        use_bias=_bool("use_bias", use_bias),
        kernel_initializer=_initializer("kernel_initializer", kernel_initializer),
        bias_initializer=_initializer("bias_initializer", bias_initializer),
        training_only={"kernel_regularizer": kernel_regularizer,
                       "bias_regularizer": bias_regularizer,
                       "activity_regularizer": activity_regularizer,
                       "kernel_constraint": kernel_constraint,
                       "bias_constraint": bias_constraint},
        name=name, trainable=_bool("trainable", trainable), dtype=compute,
        variable_dtype=variable, data_format_source=source,
        input_shape=_optional_shape("input_shape", input_shape),
    )


def parse_config(obj: Any) -> Conv2DTransposeSpec:
    """Parse a ``layer.get_config()`` dict or ``{"class_name", "config"}`` wrapper.

    The wrapper's ``class_name`` must be ``Conv2DTranspose``; its
    ``build_config.input_shape`` (if any) becomes ``spec.input_shape``.
    Unknown keys are an error that names them. A config without
    ``output_padding`` (Keras < 3.15) means ``None``.
    """
    if not isinstance(obj, Mapping):
        raise fail("config", type(obj).__name__, "expected a JSON object (a Keras layer config)")
    input_shape = None
    if "class_name" in obj and isinstance(obj.get("config"), Mapping):
        extra = sorted(set(obj) - _WRAPPER_KEYS)
        if extra:
            raise fail("config", extra, f"unknown wrapper keys; allowed: {sorted(_WRAPPER_KEYS)}")
        if obj["class_name"] not in LAYER_CLASS_NAMES:
            raise fail("class_name", obj["class_name"], "expected 'Conv2DTranspose'")
        build = obj.get("build_config")
        if isinstance(build, Mapping):
            input_shape = _optional_shape("build_config.input_shape", build.get("input_shape"))
        obj = obj["config"]
    unknown = sorted(set(obj) - _LAYER_KEYS - _BASE_KEYS)
    if unknown:
        raise ConvtError(
            f"config: unknown key(s) {', '.join(map(repr, unknown))}; a Conv2DTranspose config "
            f"has {', '.join(sorted(_LAYER_KEYS | {'name', 'trainable', 'dtype'}))}.",
            field="config")
    if "filters" not in obj or "kernel_size" not in obj:
        missing = [k for k in ("filters", "kernel_size") if k not in obj]
        raise ConvtError(f"config: missing required key(s) {', '.join(missing)}.", field="config")
    kwargs = {k: v for k, v in obj.items() if k in _LAYER_KEYS}
    for key in ("batch_input_shape", "batch_shape"):
        if obj.get(key) is not None:
            input_shape = _optional_shape(key, obj[key])
    if obj.get("input_shape") is not None:
        input_shape = (None,) + tuple(_optional_shape("input_shape", obj["input_shape"]) or ())
    groups = obj.get("groups", 1)
    return make_spec(**kwargs, name=obj.get("name"), trainable=obj.get("trainable", True),
                     dtype=obj.get("dtype"), groups=groups, input_shape=input_shape)


def load_config(path: str | os.PathLike[str]) -> Conv2DTransposeSpec:
    """Read a JSON layer config from ``path`` and parse it."""
    if not isinstance(path, (str, os.PathLike)):
        raise fail("config", type(path).__name__, "expected a path (str or os.PathLike) to a "
                   "JSON layer config; parse an in-memory dict with parse_config")
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ConvtError(f"config: cannot read {str(path)!r}: {exc.strerror or exc}.",
                         field="config") from None
    try:
        text = raw.decode("utf-8-sig")  # a leading BOM (Windows editors) is fine
    except UnicodeDecodeError as exc:
        raise ConvtError(f"config: {str(path)!r} is not UTF-8 text ({exc.reason} at byte "
                         f"{exc.start}); expected a JSON layer config.", field="config") from None
    try:
        obj = json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except RecursionError:
        raise ConvtError(f"config: {str(path)!r} is nested too deeply to be a layer config.",
                         field="config") from None
    except ValueError as exc:
        raise ConvtError(f"config: {str(path)!r} is not valid JSON ({exc}).",
                         field="config") from None
    return parse_config(obj)


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``json`` hook: a key given twice is an error, not "the last one wins"."""
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise ConvtError(f"config: key {key!r} is given twice; give each key once.",
                             field="config")
        seen[key] = value
    return seen


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
            dims.append(int(p))
        else:
            raise fail(name, text, allowed)
    if not dims:
        raise fail(name, text, allowed)
    return tuple(dims)
