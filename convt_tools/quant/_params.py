"""Quantization parameters of one QuantizeLinear / DequantizeLinear node, as stored.

ONNX semantics (opset 10-25), for a tensor ``v`` of shape ``D``::

    DequantizeLinear:  y = (q - zero_point) * scale
    QuantizeLinear:    q = saturate(round_half_to_even(v / scale) + zero_point)

``saturate`` clips to the integer type's range; the integer type is the zero
point's (``uint8`` when it is absent) for QuantizeLinear, the stored integers'
for DequantizeLinear. ``scale`` and ``zero_point`` are:

* per tensor: a scalar or a 1-element 1-D tensor (onnxruntime reads both as one
  value);
* per axis: 1-D of length ``D[axis]`` (``axis`` default 1, negative counts
  from the end);
* blocked (opset 21+, ``block_size > 0``): the rank of ``v``, with
  ``ceil(D[axis] / block_size)`` on ``axis`` and ``D`` elsewhere; element ``i``
  on ``axis`` uses block ``i // block_size``.

:class:`QParams` holds them as written (nothing normalised away, so that
``check`` can report what is wrong); :meth:`QParams.expand` gives the
per-element arrays and raises :class:`QuantError` (naming the node, the shapes
and what would be valid) where they do not fit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConvtError

__all__ = ["INT_RANGES", "QParams", "QuantError", "int_range"]

# integer type name -> (lowest, highest) value it holds
INT_RANGES: dict[str, tuple[int, int]] = {
    "int8": (-128, 127), "uint8": (0, 255), "int16": (-32768, 32767), "uint16": (0, 65535),
    "int32": (-2**31, 2**31 - 1), "uint32": (0, 2**32 - 1), "int4": (-8, 7), "uint4": (0, 15),
}


class QuantError(ConvtError):
    """Q/DQ parameters that do not fit their tensor (shape, axis, block size, type)."""


def int_range(dtype: str) -> tuple[int, int]:
    """``(qmin, qmax)`` of integer type ``dtype`` (a numpy dtype name); QuantError otherwise."""
    try:
        return INT_RANGES[dtype]
    except KeyError:
        raise QuantError(f"quantized type: got {dtype!r}; expected one of "
                         f"{', '.join(INT_RANGES)}.", field="quantization") from None


@dataclass(frozen=True, eq=False)
class QParams:
    """One Q or DQ node's parameters, as stored in the model.

    ``scale`` (float array, its stored shape), ``zero_point`` (integer array of
    its stored type, or None when absent), ``axis`` as written (default 1),
    ``block_size`` (0: not blocked), ``dtype``: the integer type the values
    live in (DQ: the stored integers' type; Q: the zero point's, ``uint8``
    when absent), ``node``: the Q/DQ node's name.
    """

    node: str
    scale: np.ndarray
    zero_point: np.ndarray | None
    axis: int
    block_size: int
    dtype: str

    @property
    def zp_dtype(self) -> str | None:
        """The zero point's stored type (None when absent)."""
        return None if self.zero_point is None else str(self.zero_point.dtype)

    @property
    def per_tensor(self) -> bool:
        """One scale for the whole tensor (scalar or a 1-element 1-D scale)."""
        return self.block_size == 0 and (self.scale.ndim == 0
                                         or (self.scale.ndim == 1 and self.scale.size == 1))

    @property
    def granularity(self) -> str:
        """``per_tensor``, ``per_axis`` or ``blocked`` (as stored, whatever the tensor)."""
        if self.block_size > 0:
            return "blocked"
        return "per_tensor" if self.per_tensor else "per_axis"

    @property
    def qmin(self) -> int:
        return int_range(self.dtype)[0]

    @property
    def qmax(self) -> int:
        return int_range(self.dtype)[1]

    def norm_axis(self, rank: int) -> int:
        """``axis`` in ``[0, rank)``; QuantError when it is outside ``[-rank, rank)``."""
        if not -rank <= self.axis < rank:
            raise QuantError(f"{self.node}: axis {self.axis} is outside [-{rank}, {rank - 1}] "
                             f"for a rank-{rank} tensor.", field="quantization")
        return self.axis % rank

    def expand(self, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        """``(scale, zero_point)`` as float64 arrays broadcastable to ``shape``.

        Raises :class:`QuantError` where the stored parameters do not fit
        ``shape`` (per-axis length != ``shape[axis]``, blocked shape wrong,
        zero point shaped unlike the scale).
        """
        zp = np.zeros(self.scale.shape) if self.zero_point is None else self.zero_point
        if self.zero_point is not None and zp.size != self.scale.size:
            raise QuantError(f"{self.node}: zero point shape {list(zp.shape)} differs from scale "
                             f"shape {list(self.scale.shape)}.", field="quantization")
        return (self._fit(self.scale.astype(np.float64), shape, "scale"),
                self._fit(np.asarray(zp, np.float64).reshape(self.scale.shape), shape,
                          "zero point"))

    def _fit(self, p: np.ndarray, shape: tuple[int, ...], what: str) -> np.ndarray:
        if self.per_tensor:
            return p.reshape(())
        ax = self.norm_axis(len(shape))
        if self.block_size > 0:
            want = tuple(-(-d // self.block_size) if i == ax else d for i, d in enumerate(shape))
            if p.shape != want:
                raise QuantError(f"{self.node}: blocked {what} shape {list(p.shape)} with axis "
                                 f"{self.axis}, block_size {self.block_size} does not fit a "
                                 f"tensor of shape {list(shape)}; expected {list(want)}.",
                                 field="quantization")
            full = np.repeat(p, self.block_size, axis=ax)
            return np.take(full, np.arange(shape[ax]), axis=ax)
        if p.ndim != 1 or p.shape[0] != shape[ax]:
            raise QuantError(f"{self.node}: per-axis {what} has {p.size} values for axis "
                             f"{self.axis} of length {shape[ax]} (tensor shape {list(shape)}); "
                             f"expected {shape[ax]} values or one.", field="quantization")
        view = [1] * len(shape)
        view[ax] = -1
        return p.reshape(view)
