"""Loop-by-definition transposed convolutions: the one test oracle (tests only, never the package).

Definition (ONNX ConvTranspose, any number of spatial axes, grouped; REFERENCE.md):
input pixel ``i`` (a tuple of spatial indices) of input channel ``ci`` in group
``g = ci // (C_in / group)`` adds ``x[n, ci, i] * W[ci, c, a]`` to output channel
``g * C_out_per_group + c`` at the position ``o = i*s + a*d - begin`` (per axis);
positions outside ``[0, length)`` are dropped. No kernel flip.

* :func:`window` is that definition for an arbitrary output window
  (``begins`` may be negative: the window then starts before the natural
  output and the first positions are zeros).
* :func:`onnx_conv_transpose` is the ONNX operator with explicit ``pads`` and
  ``output_padding`` (``length = s*(n-1) + op + (k-1)*d + 1 - pad_begin - pad_end``).
* :func:`keras_conv_transpose` is a Keras ``ConvNDTranspose`` layer: the full
  natural output, Keras's length ``O`` written out again from REFERENCE.md (not
  taken from convt_tools.spec), crop ``total // 2`` at the start and the rest at
  the end (or append zeros at the end), then bias and the activation.

Python loops over every input pixel and tap: small tensors only. Float64.
"""

from __future__ import annotations

import itertools
from typing import Any, Sequence

import numpy as np


def window(x: np.ndarray, w: np.ndarray, b: np.ndarray | None,
           strides: Sequence[int], begins: Sequence[int], lengths: Sequence[int],
           dilations: Sequence[int] | None = None, group: int = 1) -> np.ndarray:
    """``y[n, g*cog + c, o] = sum x[n, ci, i] W[ci, c, a]`` over ``i*s + a*d - begin == o`` (+ bias).

    ``x`` is ``(N, C_in, *spatial)``, ``w`` is ``(C_in, C_out / group, *kernel)``
    (ONNX layout); the result is ``(N, C_out, *lengths)`` in float64.
    """
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    rank = x.ndim - 2
    dilations = tuple(dilations) if dilations is not None else (1,) * rank
    assert len(strides) == len(begins) == len(lengths) == len(dilations) == rank
    assert w.ndim == rank + 2
    c_in, cog = w.shape[0], w.shape[1]
    assert x.shape[1] == c_in
    assert c_in % group == 0
    per_group = c_in // group
    y = np.zeros((x.shape[0], cog * group, *lengths))
    for ci in range(c_in):
        out_ch = slice((ci // per_group) * cog, (ci // per_group + 1) * cog)
        for i in itertools.product(*(range(n) for n in x.shape[2:])):
            for a in itertools.product(*(range(k) for k in w.shape[2:])):
                o = tuple(i[ax] * strides[ax] + a[ax] * dilations[ax] - begins[ax]
                          for ax in range(rank))
                if all(0 <= o[ax] < lengths[ax] for ax in range(rank)):
                    # (N, 1) * (cog,) -> (N, cog)
                    y[(slice(None), out_ch, *o)] += x[(slice(None), ci, *i)][:, None] * w[(ci, slice(None), *a)]
    if b is not None:
        y += np.asarray(b, dtype=np.float64).reshape((1, -1) + (1,) * rank)
    return y


def onnx_conv_transpose(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None, *,
                        strides: Sequence[int] | None = None,
                        dilations: Sequence[int] | None = None,
                        pads: Sequence[int] | None = None,
                        output_padding: Sequence[int] | None = None,
                        group: int = 1) -> np.ndarray:
    """ONNX ConvTranspose with explicit pads (``[begin_1.., end_1..]``), any rank, float64."""
    rank = np.ndim(x) - 2
    strides = tuple(strides) if strides is not None else (1,) * rank
    dilations = tuple(dilations) if dilations is not None else (1,) * rank
    pads = tuple(pads) if pads is not None else (0,) * (2 * rank)
    output_padding = tuple(output_padding) if output_padding is not None else (0,) * rank
    kernel = np.shape(w)[2:]
    lengths = [strides[ax] * (np.shape(x)[2 + ax] - 1) + output_padding[ax]
               + (kernel[ax] - 1) * dilations[ax] + 1 - pads[ax] - pads[rank + ax]
               for ax in range(rank)]
    return window(x, w, b, strides=strides, begins=pads[:rank], lengths=lengths,
                  dilations=dilations, group=group)


def keras_length(n: int, k: int, s: int, d: int, padding: str, op: int | None) -> int:
    """Keras 3's output length along one axis (REFERENCE.md, written out again on purpose)."""
    big_k = (k - 1) * d + 1
    if padding == "valid":
        return n * s + max(big_k - s, 0) if op is None else (n - 1) * s + big_k + op
    return n * s if op is None else (n - 1) * s + big_k % 2 + op


def keras_conv_transpose(spec: Any, x: np.ndarray, kernel: np.ndarray,
                         bias: np.ndarray | None) -> np.ndarray:
    """A Keras ConvNDTranspose layer's output for ``x`` in ``spec.data_format`` (float64).

    ``kernel`` is in Keras's layout ``(*kernel_size, filters, in_channels)``;
    the rank is ``len(spec.kernel_size)``. Keras's crop: ``total = L - O``
    with ``L`` the natural length; ``total // 2`` at the start, or ``-total``
    zeros appended at the end.
    """
    from convt_tools.activations import ACTIVATIONS

    rank = len(spec.kernel_size)
    x = np.asarray(x, dtype=np.float64)
    kernel = np.asarray(kernel, dtype=np.float64)
    if spec.data_format == "channels_last":
        x = np.moveaxis(x, -1, 1)
    # Keras kernel (*k, filters, C_in) -> ONNX W (C_in, filters, *k).
    w = kernel.transpose(rank + 1, rank, *range(rank))
    ops = spec.output_padding if spec.output_padding is not None else (None,) * rank
    begins, lengths = [], []
    for ax in range(rank):
        n, k = x.shape[2 + ax], spec.kernel_size[ax]
        s, d = spec.strides[ax], spec.dilation_rate[ax]
        natural = (n - 1) * s + (k - 1) * d + 1
        out_len = keras_length(n, k, s, d, spec.padding, ops[ax])
        begins.append(max(natural - out_len, 0) // 2)
        lengths.append(out_len)
    y = window(x, w, bias, strides=spec.strides, begins=begins, lengths=lengths,
               dilations=spec.dilation_rate)
    if spec.data_format == "channels_last":
        y = np.moveaxis(y, 1, -1)
    return ACTIVATIONS[spec.activation].numpy(y)
