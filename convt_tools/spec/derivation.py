"""The numbers behind one axis' output length, for ``convt shape --explain``/``--json``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from ..geometry import AxisCrop

__all__ = ["AxisDerivation", "format_shape"]


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


def format_shape(shape: Sequence[int | None]) -> str:
    """``(4, 20, None, 32)``; a 1-tuple keeps its comma."""
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + \
        ("," if len(shape) == 1 else "") + ")"
