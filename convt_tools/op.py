"""A rank-generic ONNX ``ConvTranspose`` layer description: what the exporter builds from.

:class:`ConvTransposeOp` holds everything the exporter needs besides the
weights, with no framework in it: the model's tensor layout
(:class:`~convt_tools.spec.layout.Layout`: spatial rank and data format),
kernel shape, strides, dilations, per-axis ONNX pads/output_padding
(:class:`~convt_tools.geometry.OnnxAxis`), group, an optional constant crop
``Slice`` after the ConvTranspose (``(starts, ends, axes)`` on the
channels-first tensor; the portable form) and activation.
:meth:`ConvTransposeOp.from_keras` makes one from a Keras spec; a torch
``ConvTranspose{1,2,3}d`` spec produces the same description (channels_first,
its own pads, ``group``, activation ``linear``).

Weights go with it in ONNX layout: ``W (C_in, C_out/group, *kernel)``,
``B (C_out,)``; from a Keras kernel ``W = kernel.transpose(layout.kernel_to_onnx)``.
Axes with zero kernel taps (``OnnxAxis.taps_before/after``, e.g. torch's
``output_padding >= stride``) are fine: the exporter pads ``W`` with zeros
there (exact) and ``kernel_shape`` counts them.
Standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .geometry import (
    OnnxAxis, onnx_output_padding, onnx_pads, padded_kernel_shape, portable_slice, portable_split,
)
from .spec.layout import Layout

__all__ = ["ConvTransposeOp"]


@dataclass(frozen=True)
class ConvTransposeOp:
    """One ConvTranspose (plus layout Transposes and activation) as the exporter builds it."""

    layout: Layout
    kernel_shape: tuple[int, ...]
    strides: tuple[int, ...]
    dilations: tuple[int, ...]
    axes: tuple[OnnxAxis, ...]
    group: int = 1
    activation: str = "linear"
    crop_slice: tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]] | None = None

    @property
    def rank(self) -> int:
        return self.layout.rank

    @property
    def taps(self) -> tuple[tuple[int, int], ...]:
        """Zero kernel taps ``(before, after)`` per spatial axis."""
        return tuple((a.taps_before, a.taps_after) for a in self.axes)

    @classmethod
    def from_keras(cls, spec: Any, form: str = "compact") -> "ConvTransposeOp":
        """A Keras ``ConvNDTranspose`` spec: pads and output_padding from its crop plan.

        ``form`` ``compact``: ``crop.onnx()`` per axis (one node); ``portable``:
        :func:`~convt_tools.geometry.portable_split` (symmetric pads) plus the
        constant crop Slice of :func:`~convt_tools.geometry.portable_slice`.
        """
        crops = spec.crop_plan()
        if form == "portable":
            parts = [portable_split(c) for c in crops]
            axes = tuple(p.onnx() for p in parts)
            cut = portable_slice(parts, 2)
            crop_slice = None if cut is None else tuple(tuple(v) for v in cut)
        else:
            axes, crop_slice = tuple(c.onnx() for c in crops), None
        return cls(layout=spec.layout, kernel_shape=tuple(spec.kernel_size),
                   strides=tuple(spec.strides), dilations=tuple(spec.dilation_rate),
                   axes=axes, group=1, activation=spec.activation,
                   crop_slice=crop_slice)  # type: ignore[arg-type]

    def attributes(self) -> dict[str, Any]:
        """ONNX ConvTranspose attributes: explicit pads, output_padding only where needed.

        ``kernel_shape`` includes the zero taps of :attr:`axes` (the exporter
        pads ``W`` with them: :meth:`padded_weight`).
        """
        attrs: dict[str, Any] = {
            "kernel_shape": padded_kernel_shape(self.kernel_shape, self.axes),
            "strides": list(self.strides),
            "dilations": list(self.dilations),
            "pads": onnx_pads(self.axes),
        }
        output_padding = onnx_output_padding(self.axes)
        if output_padding is not None:
            attrs["output_padding"] = output_padding
        if self.group != 1:
            attrs["group"] = self.group
        return attrs
