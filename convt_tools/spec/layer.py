"""The rank-generic semantics of Keras 3 ``Conv1DTranspose``/``Conv2DTranspose``/``Conv3DTranspose``.

A :class:`ConvTransposeSpec` is a normalised, validated layer config of
spatial rank 1, 2 or 3 (``rank = len(kernel_size)``). Per spatial axis the
lengths and crops come from :mod:`convt_tools.geometry`; where batch, channels
and the spatial axes sit comes from :attr:`ConvTransposeSpec.layout`
(:class:`~convt_tools.spec.layout.Layout`).

Zero-size dims are legal, as in Keras: a batch of 0 gives a batch of 0; 0
input channels give pure bias (then activation); a spatial length of 0 gives
Keras's ``compute_output_shape`` length (``valid``, op None:
``max(K - s, 0)`` rows of pure bias; what the TensorFlow backend returns).
Where that length is negative Keras cannot build the layer, and this is an
error naming ``input_shape``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence, overload

from ..errors import ConvtError, fail
from ..geometry import AxisCrop, effective_kernel, keras_crops, keras_output_length, natural_length
from ..pictures import AxisPanel, Row, axis_panel
from .derivation import AxisDerivation, format_shape
from .layout import Layout
from .values import is_int, shape_tuple

__all__ = ["ConvTransposeSpec", "TRAINING_ONLY"]

TRAINING_ONLY = ("kernel_regularizer", "bias_regularizer", "activity_regularizer",
                 "kernel_constraint", "bias_constraint")


@dataclass(frozen=True)
class ConvTransposeSpec:
    """A normalised, validated Keras ``Conv{1,2,3}DTranspose`` configuration.

    Build one with :func:`~convt_tools.spec.parse_config` (a ``get_config()``
    dict or the ``{"class_name", "config"}`` form) or
    :func:`~convt_tools.spec.make_spec` (keyword arguments with Keras's names
    and defaults). ``rank_source`` says where the rank came from (the class
    name, an explicit rank, the config's tuple lengths, the input shape, or
    the Conv2DTranspose default); it does not take part in equality.
    """

    filters: int
    kernel_size: tuple[int, ...]
    strides: tuple[int, ...] = (1, 1)
    padding: str = "valid"
    output_padding: tuple[int, ...] | None = None
    data_format: str = "channels_last"
    dilation_rate: tuple[int, ...] = (1, 1)
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
    rank_source: str = field(default="class_name", compare=False)

    framework = "keras"      # the layer protocol (convt_tools.layer.LayerSpec)

    # ---- layout --------------------------------------------------------
    @property
    def rank(self) -> int:
        """Spatial rank (1, 2 or 3): ``len(kernel_size)``."""
        return len(self.kernel_size)

    @property
    def class_name(self) -> str:
        """``Conv1DTranspose``, ``Conv2DTranspose`` or ``Conv3DTranspose``."""
        return f"Conv{self.rank}DTranspose"

    @property
    def layout(self) -> Layout:
        """Where batch, channels and spatial axes sit (see :mod:`.layout`)."""
        return Layout(self.rank, self.data_format)

    @property
    def spatial_axes(self) -> tuple[int, ...]:
        """Indices of the spatial axes in the Keras layout."""
        return self.layout.spatial_axes

    @property
    def channels_axis(self) -> int:
        """Index of the channel axis in the Keras layout (-1 or 1)."""
        return self.layout.channels_axis

    def kernel_shape(self, in_channels: int) -> tuple[int, ...]:
        """Keras kernel layout ``(k_1, ..., k_r, filters, in_channels)``."""
        return (*self.kernel_size, self.filters, in_channels)

    # ---- the layer protocol (convt_tools.layer) ---------------------------
    def default_input_shape(self, in_channels: int | None = None, *,
                            dynamic_batch: bool = True) -> tuple[int | None, ...] | None:
        """The recorded input shape (``build_config``, a saved model's inbound shape;
        batch made dynamic), else unknown dims around ``in_channels``, else None."""
        if self.input_shape is not None:
            shape = self.check_input_shape(self.input_shape, in_channels)
            return (None,) + shape[1:] if dynamic_batch else shape
        if in_channels is None:
            return None
        return self.layout.shape(None, in_channels, (None,) * self.rank)

    def weights_to_onnx(self, kernel: Any, bias: Any) -> tuple[Any, Any]:
        """Keras ``kernel (*k, filters, C_in)`` -> ONNX ``W (C_in, filters, *k)`` (no flip); bias as is."""
        return kernel.transpose(self.layout.kernel_to_onnx), bias

    def weights_from_onnx(self, w: Any, b: Any) -> tuple[Any, Any]:
        """ONNX ``W (C_in, filters, *k)`` -> Keras ``kernel (*k, filters, C_in)``; B as is."""
        return w.transpose(self.layout.kernel_from_onnx), b

    def kernel_in_channels(self, kernel: Any) -> int:
        """``C_in`` of a Keras kernel: its last axis."""
        return int(kernel.shape[-1])

    def input_channels(self, shape: Sequence[int | None]) -> int | None:
        """The channel dim of an input shape in this layer's data format."""
        return self.layout.channels(shape)

    def split_input_shape(self, shape: Sequence[int | None], in_channels: int | None = None
                          ) -> tuple[int | None, int | None, tuple[int | None, ...]]:
        """``(batch, channels, spatial)`` of a checked input shape."""
        shape = self.check_input_shape(shape, in_channels)
        return shape[0], shape[self.channels_axis], self.layout.spatial(shape)

    def missing_input_shape(self) -> ConvtError:
        """The error for a command that needs an input shape and got none."""
        lay = self.layout
        return ConvtError(f"input_shape: missing; give --input-shape {lay.letters()} "
                          f"({lay.data_format}), with None or ? for unknown dims.",
                          field="input_shape")

    def shape_report(self, input_shape: Sequence[int | None],
                     output_size: Sequence[int] | None = None) -> dict[str, Any]:
        """What ``convt shape`` prints: ``json``, ``explain`` (with notes), ``text``, and
        ``stderr`` lines (``glu`` halving the returned tensor)."""
        if output_size is not None:
            raise _no_output_size()
        out = self.output_shape(input_shape)
        returned = self.activated_output_shape(input_shape)
        info = {
            "input_shape": list(input_shape),
            "output_shape": list(out),
            "returned_shape": list(returned),
            "config": self.to_config(),
            "data_format_source": self.data_format_source,
            "class_name": self.class_name,
            "rank": self.rank,
            "rank_source": self.rank_source,
            "crop_plan": [
                {"axis": d.axis, "effective_kernel": d.effective_kernel,
                 "natural_length": d.natural_length, "output_length": d.output_length,
                 "crop_begin": d.crop.begin, "crop_end": d.crop.end,
                 "extend_end": d.crop.extend}
                for d in self.derivation(input_shape)
            ],
            "notes": self.notes(),
        }
        explain = "\n".join([self.explain(input_shape)]
                            + [f"note: {note}" for note in self.notes()])
        stderr = [] if returned == out else [
            f"note: glu halves the last axis; the layer returns {format_shape(returned)}"]
        return {"json": info, "explain": explain, "text": format_shape(out), "stderr": stderr}

    def axis_panels(self, input_shape: Sequence[int | None],
                    output_size: Sequence[int] | None = None,
                    stand_in: int = 4) -> tuple[AxisPanel, ...]:
        """Per spatial axis, a picture (:mod:`convt_tools.pictures`) of the full output
        ``L = (in-1)*s + K`` and the window Keras keeps, ``crop.window(L)`` of
        :meth:`crop_plan` (ONNX ``output_padding`` = the crop's ``extend``). An unknown
        input length is drawn at ``stand_in`` (the crop does not depend on it)."""
        if output_size is not None:
            raise _no_output_size()
        _, _, spatial = self.split_input_shape(input_shape)
        panels = []
        for i, (axis, n, crop) in enumerate(zip(self.layout.axis_names, spatial,
                                                self.crop_plan())):
            k, s, d = self.kernel_size[i], self.strides[i], self.dilation_rate[i]
            length = stand_in if n is None else n
            caption = (f"kernel {k}, stride {s}, dilation {d}, padding {self.padding}, "
                       f"output_padding {self._ops()[i]}"
                       + (f"; input length unknown, drawn at {stand_in} (the crop does not "
                          f"depend on it)" if n is None else ""))
            window = crop.window(natural_length(length, k, s, d))
            panels.append(axis_panel(axis, axis, length, k, s, d, crop.onnx().output_padding,
                                     Row(f"{self.class_name} keeps", window), caption=caption))
        return tuple(panels)

    def _ops(self) -> tuple[int | None, ...]:
        return self.output_padding or (None,) * self.rank

    def crop_plan(self) -> tuple[AxisCrop, ...]:
        """The per-axis crops (spatial order); independent of the input size."""
        return keras_crops(self.kernel_size, self.strides, self.dilation_rate, self.padding,
                           self.output_padding)

    # ---- shapes --------------------------------------------------------
    @overload
    def check_input_shape(self, input_shape: Sequence[int],
                          in_channels: int | None = None) -> tuple[int, ...]: ...
    @overload
    def check_input_shape(self, input_shape: Sequence[int | None],
                          in_channels: int | None = None) -> tuple[int | None, ...]: ...
    def check_input_shape(self, input_shape: Sequence[int | None],
                          in_channels: int | None = None) -> tuple[int | None, ...]:
        """Validate a rank ``r + 2`` input shape in this spec's data format.

        Known dims must be integers >= 0 (zero-size dims are legal in Keras);
        the channel dim must equal ``in_channels`` when both are known, and the
        channel dim of the shape the layer was built for (``self.input_shape``:
        a config's ``build_config.input_shape``, a saved model's recorded shape
        or its kernel's channels) when that is known, as Keras requires
        ("expected axis -1 of input shape to have value C"; axis 1 for
        channels_first).
        """
        shape = shape_tuple(input_shape)
        layout = self.layout
        if len(shape) != layout.tensor_rank:
            hint = ""
            if "default" in self.rank_source:
                hint = (f" (the config gives no rank, so it is read as Conv2DTranspose; give "
                        f"class_name, e.g. Conv{len(shape) - 2}DTranspose, or tuple-valued "
                        f"kernel_size)") if 3 <= len(shape) <= 5 else ""
            raise fail("input_shape", shape, f"{self.class_name} needs a rank-"
                       f"{layout.tensor_rank} input {layout.describe()}{hint}")
        for dim in shape:
            if dim is None:
                continue
            if not is_int(dim) or dim < 0:
                raise fail("input_shape", shape,
                           "dims must be integers >= 0 or None (unknown)")
        ch = layout.channels(shape)
        built = self.input_shape
        built_ch = layout.channels(built) if built is not None \
            and len(built) == layout.tensor_rank else None
        if built is not None and built_ch is not None and ch is not None and ch != built_ch:
            raise ConvtError(
                f"input_shape: got {ch} input channels in {format_shape(shape)}, but the layer "
                f"was built for {built_ch} (input shape {format_shape(built)}, "
                f"{self.data_format}); expected axis {layout.channels_axis} of the input shape "
                f"to have value {built_ch}.", field="input_shape")
        if in_channels is not None and ch is not None and ch != in_channels:
            raise ConvtError(
                f"input_shape: got {ch} input channels in {shape}, but the kernel has "
                f"{in_channels} (kernel layout {layout.kernel_layout}); they must match.",
                field="input_shape")
        return shape

    def _spatial(self, shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return self.layout.spatial(shape)

    # A concrete input shape gives a concrete output shape.
    @overload
    def output_shape(self, input_shape: Sequence[int],
                     in_channels: int | None = None) -> tuple[int, ...]: ...
    @overload
    def output_shape(self, input_shape: Sequence[int | None],
                     in_channels: int | None = None) -> tuple[int | None, ...]: ...
    def output_shape(self, input_shape: Sequence[int | None],
                     in_channels: int | None = None) -> tuple[int | None, ...]:
        """The shape Keras's ``compute_output_shape`` reports (batch passed through).

        Note ``glu`` halves the last axis of the actual output; see
        :meth:`activated_output_shape`.
        """
        shape = self.check_input_shape(input_shape, in_channels)
        ops = self._ops()
        spatial = []
        for i, n in enumerate(self._spatial(shape)):
            out = keras_output_length(n, self.kernel_size[i], self.strides[i],
                                      self.dilation_rate[i], self.padding, ops[i])
            if out is not None and out < 0:
                raise ConvtError(
                    f"input_shape: got {format_shape(shape)}, whose {self.layout.axis_names[i]} "
                    f"length {n} gives a Keras output length of {out} (padding "
                    f"{self.padding!r}, kernel {self.kernel_size[i]}, stride "
                    f"{self.strides[i]}, output_padding {ops[i]}); Keras cannot build that "
                    f"(TensorFlow fails), so use a length >= 1 on that axis.",
                    field="input_shape")
            spatial.append(out)
        return self.layout.shape(shape[0], self.filters, spatial)

    @overload
    def activated_output_shape(self, input_shape: Sequence[int],
                               in_channels: int | None = None) -> tuple[int, ...]: ...
    @overload
    def activated_output_shape(self, input_shape: Sequence[int | None],
                               in_channels: int | None = None) -> tuple[int | None, ...]: ...
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

    def derivation(self, input_shape: Sequence[int | None]) -> tuple[AxisDerivation, ...]:
        """Per-axis derivation of the output length (see :mod:`convt_tools.geometry`)."""
        shape = self.check_input_shape(input_shape)
        ops = self._ops()
        crops = self.crop_plan()
        result = []
        for i, (axis, n) in enumerate(zip(self.layout.axis_names, self._spatial(shape))):
            k, s, d = self.kernel_size[i], self.strides[i], self.dilation_rate[i]
            result.append(AxisDerivation(
                axis=axis, input_length=n, kernel=k, stride=s, dilation=d,
                output_padding=ops[i], effective_kernel=effective_kernel(k, d),
                natural_length=None if n is None else natural_length(n, k, s, d),
                output_length=keras_output_length(n, k, s, d, self.padding, ops[i]),
                crop=crops[i]))
        return tuple(result)

    def explain(self, input_shape: Sequence[int | None]) -> str:
        """The derivation in words and numbers, one block per axis."""
        out = self.output_shape(input_shape)
        blocks = [f"{self.class_name} (rank from {self.rank_source})",
                  f"input {format_shape(tuple(input_shape))} ({self.data_format}"
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
            **{k: self.training_only.get(k) for k in TRAINING_ONLY},
        }

    def notes(self) -> list[str]:
        """Things a user should know that do not change the computed output."""
        notes = []
        used = [k for k in TRAINING_ONLY if self.training_only.get(k) is not None]
        if used:
            notes.append(f"{', '.join(used)} only act during training; "
                         "they do not affect the exported model.")
        if self.data_format_source != "config":
            notes.append(f"data_format was None; resolved to {self.data_format} "
                         f"from {self.data_format_source}.")
        if self.dtype != self.variable_dtype:
            notes.append(f"dtype policy computes in {self.dtype} with {self.variable_dtype} weights.")
        return notes


def _no_output_size() -> ConvtError:
    return ConvtError("output_size: applies to torch configs only (Keras has no "
                      "output_size); use --output-padding.", field="output_size")
