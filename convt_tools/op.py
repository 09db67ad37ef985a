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
    OnnxAxis, effective_kernel, natural_length, onnx_output_padding, onnx_pads,
    padded_kernel_shape, portable_slice, portable_split,
)
from .spec.layout import Layout

__all__ = ["ONNX_SIZE_LIMIT", "ConvTransposeOp"]

#: The largest effective kernel ``K`` / uncropped length ``L`` an ONNX model can
#: describe: int64. onnxruntime 1.32 refuses to load (ShapeInferenceError
#: "Integer overflow while multiplying/adding dimension values") a ConvTranspose
#: whose ``(k - 1) * d``, ``K = (k - 1) * d + 1`` or, with a known input length,
#: ``(in - 1) * s`` or ``L = (in - 1) * s + K (+ output_padding)`` exceeds it
#: (measured: ``k=3, d=2**62-1`` loads, ``d=2**62`` does not).
ONNX_SIZE_LIMIT = 2**63 - 1


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
    def from_keras(cls, spec: Any, form: str = "compact") -> ConvTransposeOp:
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
            crop_slice = None if cut is None else (tuple(cut[0]), tuple(cut[1]), tuple(cut[2]))
        else:
            axes, crop_slice = tuple(c.onnx() for c in crops), None
        return cls(layout=spec.layout, kernel_shape=tuple(spec.kernel_size),
                   strides=tuple(spec.strides), dilations=tuple(spec.dilation_rate),
                   axes=axes, group=1, activation=spec.activation,
                   crop_slice=crop_slice)

    def check_sizes(self, spatial: Any = None, dilation_field: str = "dilation_rate") -> None:
        """Refuse a node whose derived sizes overflow int64 (:data:`ONNX_SIZE_LIMIT`).

        Per axis: the effective kernel ``K`` (with zero taps) and, where
        ``spatial`` (the input's spatial lengths, ``None`` = symbolic) gives a
        length, ``L`` and ``L + output_padding``. Raises a one-sentence
        :class:`~convt_tools.errors.ConvtError` (field ``dilation_field`` for
        ``K``: ``dilation_rate`` in Keras, ``dilation`` in torch; ``input_shape``
        for ``L``) instead of a model that onnx.checker
        or onnxruntime refuses with a traceback.
        """
        from .errors import ConvtError
        from .onnxbase import check_int64

        for key, value in self.attributes().items():   # an attribute itself first, by name
            check_int64(key, value)
        kernel = padded_kernel_shape(self.kernel_shape, self.axes)
        spatial = tuple(spatial) if spatial is not None else (None,) * self.rank
        for i, (k, s, d, a, n) in enumerate(zip(kernel, self.strides, self.dilations, self.axes,
                                                 spatial)):
            big = effective_kernel(k, d)
            if big > ONNX_SIZE_LIMIT:
                raise ConvtError(
                    f"{dilation_field}: the effective kernel (k - 1) * d + 1 = ({k} - 1) * {d} + 1 "
                    f"= {big} on spatial axis {i} exceeds int64 ({ONNX_SIZE_LIMIT}); ONNX and "
                    f"onnxruntime cannot represent it (onnxruntime refuses to load the model); "
                    f"use a dilation of at most {(ONNX_SIZE_LIMIT - 1) // max(k - 1, 1)}.",
                    field=dilation_field)
            if isinstance(n, int) and n > 0:
                length = natural_length(n, k, s, d) + a.output_padding
                if length > ONNX_SIZE_LIMIT:
                    raise ConvtError(
                        f"input_shape: the uncropped output length (in - 1) * s + K "
                        f"(+ output_padding) = ({n} - 1) * {s} + {big}"
                        f"{f' + {a.output_padding}' if a.output_padding else ''} = {length} on "
                        f"spatial axis {i} exceeds int64 ({ONNX_SIZE_LIMIT}); onnxruntime "
                        f"refuses to load such a model; use a shorter input or a smaller "
                        f"stride/dilation.", field="input_shape")

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
