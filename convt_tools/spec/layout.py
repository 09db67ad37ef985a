"""Where batch, channels and the spatial axes sit: the layout of one spec.

A Keras ``ConvNDTranspose`` of spatial rank ``r`` (1, 2 or 3) takes a rank
``r + 2`` tensor::

    channels_last   (batch, s_1, ..., s_r, channels)     channel axis -1
    channels_first  (batch, channels, s_1, ..., s_r)     channel axis 1

Spatial axes are named ``length`` (1-D), ``height, width`` (2-D),
``depth, height, width`` (3-D). The Keras kernel is ``(k_1, ..., k_r,
filters, in_channels)``; ONNX ``W`` is ``(in_channels, filters, k_1, ...,
k_r)`` = ``kernel.transpose(kernel_to_onnx)``. ONNX ConvTranspose works in
channels_first; ``to_channels_first`` / ``from_channels_first`` are the
Transpose permutations (``None`` when the layout already is channels_first);
``to_channels_last`` / ``from_channels_last`` likewise for channels-last code
(the NumPy reference).

Every module asks the layout (``spec.layout``) instead of branching on
``data_format``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence, TypeVar

__all__ = ["AXIS_NAMES", "DATA_FORMATS", "RANKS", "Layout"]

RANKS = (1, 2, 3)
DATA_FORMATS = ("channels_last", "channels_first")
AXIS_NAMES: dict[int, tuple[str, ...]] = {
    1: ("length",), 2: ("height", "width"), 3: ("depth", "height", "width")}
_KERNEL_LETTERS: dict[int, tuple[str, ...]] = {1: ("k",), 2: ("kh", "kw"), 3: ("kd", "kh", "kw")}
_D = TypeVar("_D")  # a dim (int | None) or a dim's name (str)


@dataclass(frozen=True)
class Layout:
    """Spatial rank and data format; the index facts every module needs."""

    rank: int
    data_format: str

    @property
    def channels_first(self) -> bool:
        return self.data_format == "channels_first"

    @property
    def tensor_rank(self) -> int:
        """``rank + 2``."""
        return self.rank + 2

    @property
    def channels_axis(self) -> int:
        """Index of the channel axis in the Keras layout (-1 or 1)."""
        return 1 if self.channels_first else -1

    @property
    def spatial_axes(self) -> tuple[int, ...]:
        """Indices of the spatial axes in the Keras layout."""
        first = 2 if self.channels_first else 1
        return tuple(range(first, first + self.rank))

    @property
    def axis_names(self) -> tuple[str, ...]:
        return AXIS_NAMES.get(self.rank, tuple(f"d{i}" for i in range(self.rank)))

    def spatial(self, shape: Sequence[_D]) -> tuple[_D, ...]:
        """The spatial dims of a Keras-layout shape."""
        return tuple(shape[i] for i in self.spatial_axes)

    def channels(self, shape: Sequence[_D]) -> _D:
        return shape[self.channels_axis]

    def shape(self, batch: _D, channels: _D, spatial: Sequence[_D]) -> tuple[_D, ...]:
        """A Keras-layout shape from its parts (dims, or their names)."""
        if self.channels_first:
            return (batch, channels, *spatial)
        return (batch, *spatial, channels)

    @property
    def to_channels_first(self) -> tuple[int, ...] | None:
        """Transpose perm Keras layout -> (N, C, spatial...); None for channels_first."""
        if self.channels_first:
            return None
        return (0, self.rank + 1, *range(1, self.rank + 1))

    @property
    def from_channels_first(self) -> tuple[int, ...] | None:
        """Transpose perm (N, C, spatial...) -> Keras layout; None for channels_first."""
        if self.channels_first:
            return None
        return (0, *range(2, self.rank + 2), 1)

    @property
    def to_channels_last(self) -> tuple[int, ...] | None:
        """Transpose perm Keras layout -> (N, spatial..., C); None for channels_last."""
        if not self.channels_first:
            return None
        return (0, *range(2, self.rank + 2), 1)

    @property
    def from_channels_last(self) -> tuple[int, ...] | None:
        """Transpose perm (N, spatial..., C) -> Keras layout; None for channels_last."""
        if not self.channels_first:
            return None
        return (0, self.rank + 1, *range(1, self.rank + 1))

    def dim_names(self, prefix: str = "") -> tuple[str, ...]:
        """Symbolic dim names in the Keras layout, e.g. ``batch, height, width, channels``."""
        return self.shape("batch", f"{prefix}channels", [f"{prefix}{n}" for n in self.axis_names])

    def letters(self) -> str:
        """``N,H,W,C`` / ``N,C,D,H,W`` / ``N,L,C``: the layout in one-letter dims."""
        return ",".join(self.shape("N", "C", [n[0].upper() for n in self.axis_names]))

    def describe(self) -> str:
        """``(batch, height, width, channels)``."""
        return "(" + ", ".join(self.dim_names()) + ")"

    @property
    def kernel_layout(self) -> str:
        """``(kh, kw, filters, in_channels)``."""
        return "(" + ", ".join((*_KERNEL_LETTERS.get(self.rank, ("k",) * self.rank),
                                "filters", "in_channels")) + ")"

    @property
    def kernel_to_onnx(self) -> tuple[int, ...]:
        """Perm Keras kernel ``(k..., filters, in)`` -> ONNX W ``(in, filters, k...)``."""
        return (self.rank + 1, self.rank, *range(self.rank))

    @property
    def kernel_from_onnx(self) -> tuple[int, ...]:
        """Perm ONNX W ``(in, filters, k...)`` -> Keras kernel ``(k..., filters, in)``."""
        return (*range(2, self.rank + 2), 1, 0)
