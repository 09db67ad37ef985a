"""Exact Keras <-> torch transposed-convolution translations, per axis (standard library only).

Both frameworks compute the natural output of length ``L = (in-1)*s + K``
(``K = (k-1)*d + 1``, same weights up to layout, no flip) and keep a window
of it; a translation matches the windows.

Keras -> torch, per axis with Keras's crop ``c = geometry.keras_crop(...)``
(``t = L - O``):

* ``t < 0``: ``padding 0``, ``output_padding -t`` (always < stride: legal);
* ``t`` even: ``padding t/2``;
* ``t`` odd: no single ``ConvTranspose`` matches (torch crops ``p`` from both
  ends, Keras ``t//2`` at the start and ``t - t//2`` at the end):
  ``padding t//2`` then drop the last row (``y[..., :-1]``). The popular
  ``padding t//2 + 1, output_padding 1`` has the right size and is shifted by
  one row.

torch -> Keras: torch keeps the window ``(begin p, length L - 2p + op)``.

* One Keras layer with the same kernel when some ``padding`` (valid/same) and
  ``output_padding`` (None, or one value per axis below the stride) give that
  window on every axis (``keras_crop(...).begin == p`` and ``total == 2p - op``).
* Else an exact composite: Keras ``valid`` with ``output_padding`` per axis
  followed by ``CroppingND``, from :func:`geometry.express` (pads -> crop, an
  extension beyond ``s - 1`` -> zero kernel taps appended at the end, which
  add exact zeros and let the bias cover the appended rows as in torch).
* ``groups > 1`` (Keras's ConvNDTranspose has no groups): the exact dense
  kernel is block-diagonal (zeros between groups).
* stride > 1 together with dilation > 1 (Keras refuses the pair on any axes):
  the exact kernel with dilation 1 is the zero-expanded one (``K`` taps, the
  real ones at multiples of ``d``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from ..errors import ConvtError
from ..geometry import effective_kernel, keras_crop, torch_express
from ..spec import ConvTransposeSpec, make_spec
from ..torchconv.spec import TorchConvTransposeSpec

__all__ = ["KerasLayer", "Translation", "keras_to_torch", "torch_to_keras"]


@dataclass(frozen=True)
class KerasLayer:
    """A Keras ``Conv{n}DTranspose`` as far as a translation needs it (channels_last): a thin
    view over the Keras spec (:attr:`spec`), whose crop plan it uses."""

    filters: int
    kernel_size: tuple[int, ...]
    strides: tuple[int, ...]
    padding: str
    output_padding: tuple[int, ...] | None
    dilation_rate: tuple[int, ...]
    use_bias: bool = True
    activation: str = "linear"
    data_format: str = "channels_last"
    dtype: str = "float32"

    @property
    def rank(self) -> int:
        """Number of spatial axes."""
        return len(self.kernel_size)

    @property
    def class_name(self) -> str:
        """``Conv1DTranspose``/``Conv2DTranspose``/``Conv3DTranspose``."""
        return f"Conv{self.rank}DTranspose"

    @property
    def spec(self) -> ConvTransposeSpec:
        """This layer as the Keras spec (:func:`convt_tools.spec.make_spec`)."""
        return make_spec(filters=self.filters, kernel_size=self.kernel_size,
                         strides=self.strides, padding=self.padding,
                         output_padding=self.output_padding, data_format=self.data_format,
                         dilation_rate=self.dilation_rate, use_bias=self.use_bias,
                         activation=self.activation, dtype=self.dtype, rank=self.rank)

    def crops(self) -> tuple[Any, ...]:
        """Keras's :class:`~convt_tools.geometry.AxisCrop` per axis: the spec's crop plan."""
        return self.spec.crop_plan()

    def to_config(self) -> dict[str, Any]:
        """The layer's ``get_config()``-style keys (what ``convt`` and Keras read)."""
        config = self.spec.to_config()
        return {key: config[key] for key in ("filters", "kernel_size", "strides", "padding",
                                             "output_padding", "data_format", "dilation_rate",
                                             "activation", "use_bias")} | {"dtype": self.dtype}


@dataclass(frozen=True)
class Translation:
    """One exact translation: source and target layers plus what the target needs around them.

    ``crop`` is ``(begin, end)`` rows removed per spatial axis after the
    target's conv (a slice in torch, ``CroppingND`` in Keras). The kernel
    transform for torch -> Keras is ``block_diagonal`` (groups), then
    ``dilate`` (re-express dilation d as zero taps with dilation 1, per axis a
    bool), then ``taps_after`` zero taps per axis.
    """

    source: str
    target: str
    keras: KerasLayer
    torch: TorchConvTransposeSpec
    crop: tuple[tuple[int, int], ...]
    block_diagonal: bool = False
    dilate: tuple[bool, ...] = ()
    taps_after: tuple[int, ...] = ()
    no_exact_single: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def single_layer(self) -> bool:
        """True when the target is one layer/module with the same weights (no crop, no transform)."""
        return not self.no_exact_single


def keras_to_torch(layer: KerasLayer, in_channels: int) -> Translation:
    """The torch module (plus an end slice on odd-crop axes) that equals ``layer``."""
    padding, op, crop, reasons = [], [], [], []
    for axis, c in enumerate(layer.crops()):
        if c.extend:
            padding.append(0)
            op.append(c.extend)
            crop.append((0, 0))
        else:
            padding.append(c.begin)
            op.append(0)
            crop.append((0, c.end - c.begin))
            if c.end != c.begin:
                reasons.append(
                    f"axis {axis}: Keras crops {c.begin} at the start and {c.end} at the end "
                    f"(odd total {c.total}); torch crops padding from both ends, so "
                    f"padding={c.begin} plus dropping the last row is exact (padding={c.begin + 1}, "
                    f"output_padding=1 has the right size but is shifted by one row)")
    torch = TorchConvTransposeSpec(
        rank=layer.rank, in_channels=in_channels, out_channels=layer.filters,
        kernel_size=layer.kernel_size, stride=layer.strides, padding=tuple(padding),
        output_padding=tuple(op), dilation=layer.dilation_rate, groups=1, bias=layer.use_bias,
        dtype=layer.dtype)
    notes = []
    if layer.dtype != "float32":
        notes.append(f"dtype {layer.dtype}: the module is built with dtype=torch.{layer.dtype} "
                     f"(feed it {layer.dtype} inputs); the proof runs in float64")
    if layer.activation != "linear":
        notes.append(f"activation {layer.activation} applied after the conv (and the slice)")
    return Translation("keras", "torch", layer, torch, tuple(crop), dilate=(False,) * layer.rank,
                       taps_after=(0,) * layer.rank, no_exact_single=reasons, notes=notes)


def _torch_window_matches(c: Any, p: int, op: int) -> bool:
    return c.begin == p and c.total == 2 * p - op


def _single_keras(k: tuple[int, ...], s: tuple[int, ...], d: tuple[int, ...], p: tuple[int, ...],
                  op: tuple[int, ...]) -> tuple[str, tuple[int, ...] | None] | None:
    """``(padding, output_padding)`` of one Keras layer with torch's window on every axis."""
    for padding in ("valid", "same"):
        if all(_torch_window_matches(keras_crop(*a, padding, None), pi, oi)
               for a, pi, oi in zip(zip(k, s, d), p, op)):
            return padding, None
        chosen = []
        for a, pi, oi in zip(zip(k, s, d), p, op):
            hit = [o for o in range(a[1]) if _torch_window_matches(keras_crop(*a, padding, o), pi, oi)]
            if not hit:
                break
            chosen.append(hit[0])
        else:
            return padding, tuple(chosen)
    return None


def torch_to_keras(spec: TorchConvTransposeSpec, activation: str = "linear") -> Translation:
    """The Keras layer (or exact composite) that equals the torch module ``spec``."""
    n = spec.rank
    reasons: list[str] = []
    notes: list[str] = []
    k, d = spec.kernel_size, spec.dilation
    if spec.groups > 1:
        reasons.append(f"groups={spec.groups}: Keras's {f'Conv{n}DTranspose'} has no groups; the "
                       f"exact equivalent is a dense block-diagonal kernel ({spec.groups}x the "
                       f"parameters, zeros between groups)")
    dilate = tuple(False for _ in range(n))
    if any(s > 1 for s in spec.stride) and any(x > 1 for x in d):
        dilate = tuple(x > 1 for x in d)
        reasons.append(f"stride {list(spec.stride)} with dilation {list(d)}: Keras refuses "
                       f"stride > 1 together with dilation > 1; the exact equivalent is the "
                       f"zero-expanded kernel (size (k-1)*d + 1, taps at multiples of d) with "
                       f"dilation 1")
        k = tuple(effective_kernel(ki, di) if x else ki for ki, di, x in zip(k, d, dilate))
        d = tuple(1 if x else di for di, x in zip(d, dilate))
    base: dict[str, Any] = dict(filters=spec.out_channels, strides=spec.stride, dilation_rate=d,
                use_bias=spec.bias, activation=activation, dtype=spec.dtype)
    if spec.dtype != "float32":
        notes.append(f"dtype {spec.dtype}: the Keras layer gets dtype={spec.dtype!r}; the proof "
                     f"runs in float64")
    single = _single_keras(k, spec.stride, d, spec.padding, spec.output_padding)
    if single is not None:
        layer = KerasLayer(kernel_size=k, padding=single[0], output_padding=single[1], **base)
        return Translation("torch", "keras", layer, spec, ((0, 0),) * n,
                           block_diagonal=spec.groups > 1, dilate=dilate, taps_after=(0,) * n,
                           no_exact_single=reasons, notes=notes)
    axes = []
    for ki, s, di, p, op in zip(k, spec.stride, d, spec.padding, spec.output_padding):
        axes.append(torch_express(ki, s, di, p, op))
    taps = tuple(a.taps_after for a in axes)
    k2 = tuple(ki + t for ki, t in zip(k, taps))
    ops = tuple(a.output_padding for a in axes)
    op2: tuple[int, ...] | None = ops
    if not any(ops) and all(effective_kernel(ki, di) >= s for ki, di, s in zip(k2, d, spec.stride)):
        op2 = None          # valid without output_padding is the same window here
    layer = KerasLayer(kernel_size=k2, padding="valid", output_padding=op2, **base)
    crop = tuple((a.pad_begin, a.pad_end) for a in axes)
    big_op = [i for i, (o, s, di) in enumerate(zip(spec.output_padding, spec.stride, spec.dilation))
              if o >= s]
    if big_op:
        reasons.append(f"output_padding {list(spec.output_padding)} >= stride on axis "
                       f"{big_op} (legal in torch since < dilation; Keras needs output_padding < "
                       f"stride)" + ("; exact with zero taps appended to the kernel" if any(taps)
                                     else "; exact with a smaller end crop"))
    reasons.append("no Keras padding/output_padding keeps torch's window (torch crops "
                   f"padding={list(spec.padding)} from both ends, then output_padding="
                   f"{list(spec.output_padding)}); exact composite: padding='valid' + "
                   f"Cropping{n}D{tuple(crop)}")
    return Translation("torch", "keras", layer, spec, crop, block_diagonal=spec.groups > 1,
                       dilate=dilate, taps_after=taps, no_exact_single=reasons, notes=notes)


def with_in_channels(spec: TorchConvTransposeSpec, in_channels: int) -> TorchConvTransposeSpec:
    """``spec`` with another ``in_channels`` (checked >= 1)."""
    if in_channels < 1:
        raise ConvtError(f"in_channels: got {in_channels}; expected >= 1.", field="in_channels")
    return replace(spec, in_channels=in_channels)
