"""What a validation run feeds the model and the reference: input shape, input, weights.

All of it is seeded, so a run is reproducible from ``seed`` alone::

    x      ~ N(0, 1)                     rng = default_rng([seed, 3])
    kernel ~ N(0, 1 / (C_in * kh * kw))  rng = default_rng([seed, 7])
    bias   ~ N(0, 0.5)                   (same rng, after the kernel)

Random weights, not the config's initializers: a zeros bias or a constant
kernel would hide exactly the mistakes validation is for. Unknown input dims
are filled in small (batch 2, height 5, width 7: odd and unequal, so an H/W
mix-up changes the shape). Sizes are checked before anything is allocated:
an empty output (nothing to compare) or an array too large to hold is a
:class:`ConvtError`.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from ..errors import ConvtError
from ..io import check_allocation
from ..layer import input_shape as layer_input_shape
from ..spec import Conv2DTransposeSpec

# odd-ish, unequal: an axis mix-up changes the shape
_DEFAULT_SPATIAL = {1: (5,), 2: (5, 7), 3: (4, 5, 7)}
_DEFAULT_BATCH = 2
_DEFAULT_CHANNELS = 3


def default_input_shape(spec: Conv2DTransposeSpec, in_channels: int | None,
                        input_shape: Sequence[int | None] | None = None
                        ) -> tuple[tuple[int, ...], str]:
    """A concrete input shape and a note on where it came from.

    ``input_shape`` (else ``spec.input_shape``) with unknown dims filled in:
    batch 2, spatial 5, 7 (odd and unequal; 1-D: 5; 3-D: 4, 5, 7), channels
    from the kernel or 3. For ``glu`` on ``channels_first`` (which halves the
    last spatial axis) that axis is bumped until its output length is even.
    """
    source = ("--input-shape" if input_shape is not None else
              "the config's build_config input shape" if spec.input_shape is not None else
              "a small default")
    given = layer_input_shape(spec, input_shape, dynamic_batch=False, required=False) \
        or (None,) * spec.layout.tensor_rank
    shape = list(spec.check_input_shape(given, in_channels))
    layout = spec.layout
    ch_axis = layout.channels_axis % layout.tensor_rank
    sp_axes = layout.spatial_axes
    filled = []
    if shape[0] is None:
        shape[0] = _DEFAULT_BATCH
        filled.append("batch")
    if shape[ch_axis] is None:
        shape[ch_axis] = in_channels or _DEFAULT_CHANNELS
        filled.append("channels")
    for axis, name, default in zip(sp_axes, layout.axis_names,
                                   _DEFAULT_SPATIAL[layout.rank]):
        if shape[axis] is None:
            shape[axis] = default
            filled.append(name)
    known = [d for d in shape if d is not None]  # every dim, now that none is unknown
    last = sp_axes[-1]
    if layout.axis_names[-1] in filled and spec.activation == "glu" and last == len(known) - 1:
        while (spec.output_shape(tuple(known))[-1] or 0) % 2:
            known[last] += 1
    if filled and source != "a small default":
        source += f" (unknown {', '.join(filled)} filled in)"
    return tuple(known), source


def input_channels(spec: Conv2DTransposeSpec, kernel: np.ndarray | None, x: np.ndarray | None,
                input_shape: Sequence[int | None] | None) -> int | None:
    """``C_in`` from the kernel, else the first of ``x``, ``input_shape``, the spec that knows it."""
    if kernel is not None:
        return int(np.shape(kernel)[-1])
    for shape in (None if x is None else x.shape, input_shape, spec.input_shape):
        if shape is not None and len(shape) == spec.layout.tensor_rank:
            channels = shape[spec.channels_axis]
            if channels is not None:
                return int(channels)
    return None


def check_sizes(spec: Conv2DTransposeSpec, shape: Sequence[int], in_ch: int) -> None:
    """Refuse empty comparisons and arrays too large to hold (float64 reference arrays)."""
    out = spec.output_shape(shape)
    if not math.prod(shape) or not math.prod(d for d in out if d is not None):
        raise ConvtError(f"input_shape: input {tuple(shape)} gives output {out}, which has no "
                         f"elements, so nothing would be compared; use a non-empty input.",
                         field="input_shape")
    check_allocation(shape, np.float64, "input_shape", f"the input {tuple(shape)}")
    check_allocation(spec.kernel_shape(in_ch), np.float64, "filters",
                     f"the kernel {spec.kernel_shape(in_ch)}")
    check_allocation(out, np.float64, "input_shape", f"the output {out} of input {tuple(shape)}")


def validation_input(shape: Sequence[int], seed: int) -> np.ndarray:
    """Seeded standard-normal input of ``shape`` (float64)."""
    return np.random.default_rng([int(seed), 3]).standard_normal(shape)


def validation_weights(spec: Conv2DTransposeSpec, in_channels: int,
                       seed: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Seeded random weights: kernel ~ N(0, 1/(C_in*prod(kernel_size))), bias ~ N(0, 0.5) (float32)."""
    rng = np.random.default_rng([int(seed), 7])
    n = in_channels * math.prod(spec.kernel_size)
    kernel = rng.standard_normal(spec.kernel_shape(in_channels)) / math.sqrt(n)
    bias = 0.5 * rng.standard_normal(spec.filters) if spec.use_bias else None
    return kernel.astype(np.float32), None if bias is None else bias.astype(np.float32)
