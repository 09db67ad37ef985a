"""Weight conversion and the numerical proof of a translation (NumPy reference, both sides).

Layouts: Keras kernel ``(k..., out, in)``, torch weight ``(in, out/groups, k...)``;
the same taps, no spatial flip: ``weight = kernel.transpose(n+1, n, 0, ..., n-1)``.

The proof runs each side under its own framework's rules on one seeded input
(float64): Keras's crop from :func:`geometry.keras_crop` (the layer the
translation names, then its ``CroppingND``), torch's from
:class:`TorchConvTransposeSpec` (the module, then its slice), both through
:func:`convt_tools.reference.conv_transpose`, activation from the shared table
in the Keras layout; it reports the shapes and the max abs difference.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..activations import apply_activation
from ..errors import ConvtError
from ..geometry import (ceil_div, effective_kernel, natural_length, onnx_output_padding,
                        onnx_pads)
from ..io import check_allocation, largest_field
from ..reference import conv_transpose
from ..spec.layout import Layout
from ..torchconv.compute import torch_conv_transpose
from .plan import KerasLayer, Translation
from .snippet import torch_activation_numpy

__all__ = ["PROOF_MAX_ELEMENTS", "Proof", "keras_kernel_to_torch", "proof_spatial", "prove",
           "torch_weight_to_keras"]


def keras_kernel_to_torch(kernel: np.ndarray) -> np.ndarray:
    """``(k..., out, in)`` -> ``(in, out, k...)`` (no flip)."""
    return np.ascontiguousarray(kernel.transpose(Layout(kernel.ndim - 2, "channels_last").kernel_to_onnx))


def _torch_to_keras_layout(weight: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(weight.transpose(Layout(weight.ndim - 2, "channels_last").kernel_from_onnx))


def _guard(shape: tuple[int, ...], factors: dict[str, int], what: str) -> None:
    """The memory guard (:func:`convt_tools.io.check_allocation`) for one float64 array of
    the proof or the weight conversion; the error names the largest of ``factors``."""
    check_allocation(shape, np.float64, largest_field(factors), f"{what} {tuple(shape)}")


def _torch_factors(tr: Translation) -> dict[str, int]:
    """The source's own argument names (Keras ``filters``, torch ``out_channels``)."""
    spec = tr.torch
    return {"in_channels": spec.in_channels,
            "filters" if tr.source == "keras" else "out_channels": spec.out_channels,
            "kernel_size": math.prod(tr.keras.kernel_size)}


def torch_weight_to_keras(tr: Translation, weight: np.ndarray) -> np.ndarray:
    """torch ``weight`` -> the Keras kernel of ``tr.keras``: block-diagonal for groups,
    zero-expanded where dilation is re-expressed, zero taps appended, then Keras layout.
    The Keras kernel's size is checked against the memory limit first (ConvtError)."""
    spec = tr.torch
    w = np.asarray(weight)
    _guard((*tr.keras.kernel_size, spec.out_channels, spec.in_channels), _torch_factors(tr),
           "the Keras kernel")
    if tr.block_diagonal:
        g, cin, cout = spec.groups, spec.in_channels // spec.groups, spec.out_channels // spec.groups
        full = np.zeros((spec.in_channels, spec.out_channels, *w.shape[2:]), dtype=w.dtype)
        for i in range(g):
            full[i * cin:(i + 1) * cin, i * cout:(i + 1) * cout] = w[i * cin:(i + 1) * cin]
        w = full
    for axis, (dil, d) in enumerate(zip(tr.dilate, spec.dilation)):
        if dil:
            k = w.shape[2 + axis]
            out = np.zeros(w.shape[:2 + axis] + (effective_kernel(k, d),) + w.shape[3 + axis:], w.dtype)
            idx = [slice(None)] * w.ndim
            idx[2 + axis] = slice(None, None, d)
            out[tuple(idx)] = w
            w = out
    if any(tr.taps_after):
        w = np.pad(w, [(0, 0), (0, 0)] + [(0, t) for t in tr.taps_after])
    return _torch_to_keras_layout(w)


def _crop(y: np.ndarray, crop: tuple[tuple[int, int], ...]) -> np.ndarray:
    """Remove ``(begin, end)`` rows per spatial axis of a channels-first array."""
    idx = [slice(None), slice(None)] + [slice(b, y.shape[2 + i] - e) for i, (b, e) in enumerate(crop)]
    return y[tuple(idx)]


def _activate(name: str, y_cf: np.ndarray, data_format: str = "channels_last") -> np.ndarray:
    """The activation in the Keras layer's layout (axis -1 of it), returned channels-first."""
    if data_format == "channels_first":
        return apply_activation(name, y_cf)
    y_cl = np.moveaxis(y_cf, 1, -1)
    return np.moveaxis(apply_activation(name, y_cl), -1, 1)


def keras_forward(layer: KerasLayer, crop: tuple[tuple[int, int], ...], x_cf: np.ndarray,
                  kernel: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    """Keras ``layer`` then ``CroppingND(crop)``, on a channels-first array (Keras's rules)."""
    axes = [c.onnx() for c in layer.crops()]
    op = onnx_output_padding(axes) or [0] * layer.rank
    y = conv_transpose(x_cf, keras_kernel_to_torch(kernel), bias if layer.use_bias else None,
                       strides=layer.strides, dilations=layer.dilation_rate, pads=onnx_pads(axes),
                       output_padding=op)
    return _activate(layer.activation, _crop(y, crop), layer.data_format)


def torch_forward(tr: Translation, crop: tuple[tuple[int, int], ...], x_cf: np.ndarray,
                  weight: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    """torch module ``tr.torch`` then the slice ``crop`` and the activation (torch's rules).

    The activation is the snippet's own line (:data:`~.snippet.TORCH_ACTIVATIONS`) run
    through its NumPy twin after torch's definitions, so the proof checks what
    the snippet runs, not Keras's table applied twice.
    """
    y = torch_conv_transpose(tr.torch, x_cf, weight, bias if tr.torch.bias else None)
    return torch_activation_numpy(tr.keras.activation, _crop(y, crop), tr.keras.data_format)


@dataclass(frozen=True)
class Proof:
    """Both sides on one input: shapes and max abs difference (float64)."""

    input_shape: tuple[int, ...]
    source_shape: tuple[int, ...]
    target_shape: tuple[int, ...]
    max_abs_error: float

    @property
    def exact(self) -> bool:
        """Same shape and equal to float64 rounding (<= 1e-9 relative to the output scale)."""
        return self.source_shape == self.target_shape and self.max_abs_error <= 1e-9

    def to_dict(self) -> dict[str, Any]:
        """JSON-able fields."""
        return {"input_shape": list(self.input_shape), "source_shape": list(self.source_shape),
                "target_shape": list(self.target_shape), "max_abs_error": self.max_abs_error,
                "exact": self.exact}


#: Most elements the proof's input or output may have (float64 NumPy reference).
PROOF_MAX_ELEMENTS = 1 << 24


def proof_spatial(tr: Translation) -> tuple[int, ...]:
    """The proof's spatial input lengths, chosen from the layer: per axis ``5 + i``, or
    more where the layer needs it (torch's output ``(in-1)*s - 2p + K + op`` must keep
    at least 3 rows, so a large ``padding`` gets a longer input)."""
    spec = tr.torch
    out = []
    for i, (k, s, p, op, d) in enumerate(zip(spec.kernel_size, spec.stride, spec.padding,
                                             spec.output_padding, spec.dilation)):
        short = 2 * p - effective_kernel(k, d) - op + 3     # (in - 1) * s must be >= this
        need = 1 + max(0, ceil_div(short, s))
        out.append(max(5 + i, need))
    return tuple(out)


def _check_size(what: str, shape: tuple[int, ...], chosen: bool, channel_field: str) -> None:
    """At most :data:`PROOF_MAX_ELEMENTS` elements in ``shape`` ``(batch, C, *spatial)``; the
    error names ``channel_field`` when the channels outweigh the rest, else ``input_shape``."""
    size = int(np.prod(shape, dtype=object))
    if size > PROOF_MAX_ELEMENTS:
        rest = int(np.prod((shape[0], *shape[2:]), dtype=object))
        if shape[1] > rest:
            raise ConvtError(f"{channel_field}: the proof's {what} {list(shape)} has {size} "
                             f"elements, above the proof's limit of {PROOF_MAX_ELEMENTS} "
                             f"(float64 NumPy reference); the layer is too wide to prove.",
                             field=channel_field)
        hint = ("the layer needs inputs this long for its output to keep rows, so it cannot be "
                "proven within the limit" if chosen else "give a smaller --input-shape")
        raise ConvtError(f"input_shape: the proof's {what} {list(shape)} has {size} elements, "
                         f"above the proof's limit of {PROOF_MAX_ELEMENTS} (float64 NumPy "
                         f"reference); {hint}.", field="input_shape")


def prove(tr: Translation, source_weights: tuple[np.ndarray, np.ndarray | None] | None = None,
          spatial: tuple[int, ...] | None = None, seed: int = 0, batch: int = 2) -> Proof:
    """Run source and target on one seeded float64 input (channels-first ``(batch, C, *spatial)``).

    ``spatial`` defaults to :func:`proof_spatial` (from the layer, so any legal layer
    gets an input it accepts); at most :data:`PROOF_MAX_ELEMENTS` elements in the
    input and the output (else a ConvtError naming ``input_shape``).
    ``source_weights``: the source's own ``(kernel, bias)`` (Keras) or
    ``(weight, bias)`` (torch); seeded random when None.
    """
    rng = np.random.default_rng(seed)
    spec = tr.torch
    n = spec.rank
    chosen = spatial is None
    spatial = tuple(spatial) if spatial is not None else proof_spatial(tr)
    _check_size("input", (batch, spec.in_channels, *spatial), chosen, "in_channels")
    out_len = tuple(max(0, natural_length(i, k, s, d) + op)
                    for i, k, s, d, op in zip(spatial, spec.kernel_size, spec.stride,
                                              spec.dilation, spec.output_padding))
    _check_size("uncropped output", (batch, spec.out_channels, *out_len), chosen,
                "filters" if tr.source == "keras" else "out_channels")
    factors = _torch_factors(tr)
    _guard((batch, spec.in_channels, *spatial), {"in_channels": spec.in_channels},
           "the proof input")
    # every array the proof makes is at most as big as one of these (the reference's
    # outputs are guarded by conv_transpose itself)
    _guard(spec.weight_shape(), factors, "the weight")
    _guard((*tr.keras.kernel_size, spec.out_channels, spec.in_channels), factors,
           "the Keras kernel")
    x = rng.standard_normal((batch, spec.in_channels, *spatial))
    if tr.source == "keras":
        if source_weights is None:
            kernel = rng.standard_normal((*tr.keras.kernel_size, spec.out_channels,
                                          spec.in_channels))
            bias = rng.standard_normal(spec.out_channels) if spec.bias else None
        else:
            kernel = np.asarray(source_weights[0], np.float64)
            bias = None if source_weights[1] is None else np.asarray(source_weights[1], np.float64)
        src = keras_forward(tr.keras, ((0, 0),) * n, x, kernel, bias)
        tgt = torch_forward(tr, tr.crop, x, keras_kernel_to_torch(kernel), bias)
    else:
        if source_weights is None:
            weight = rng.standard_normal(spec.weight_shape())
            bias = rng.standard_normal(spec.out_channels) if spec.bias else None
        else:
            weight = np.asarray(source_weights[0], np.float64)
            bias = None if source_weights[1] is None else np.asarray(source_weights[1], np.float64)
        src = torch_forward(tr, ((0, 0),) * n, x, weight, bias)
        tgt = keras_forward(tr.keras, tr.crop, x, torch_weight_to_keras(tr, weight), bias)
    err = float(np.abs(src - tgt).max()) if src.shape == tgt.shape and src.size else (
        0.0 if src.shape == tgt.shape else float("inf"))
    return Proof(tuple(x.shape), tuple(src.shape), tuple(tgt.shape), err)
