"""torch ``ConvTranspose{1,2,3}d.forward`` in NumPy, and torch-layout weights.

The module is ONNX ``ConvTranspose`` with ``W = weight`` unchanged,
``pads = [p..., p...]``, ``output_padding`` (or the one ``output_size``
implies), ``group = groups`` (see :mod:`convt_tools.torchconv.spec`); this
module evaluates it with :func:`convt_tools.reference.conv_transpose` (any rank).
Unbatched inputs ``(C, *spatial)`` are run with a batch of one and returned
without it, as torch does.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from ..errors import ConvtError, fail
from ..reference import conv_transpose
from .spec import TorchConvTransposeSpec

__all__ = ["initialize_torch_weights", "load_torch_weights",
           "torch_conv_transpose", "torch_weight_field"]


def torch_conv_transpose(spec: TorchConvTransposeSpec, x: np.ndarray, weight: np.ndarray,
                         bias: np.ndarray | None = None,
                         output_size: Sequence[int] | None = None) -> np.ndarray:
    """``nn.ConvTranspose{n}d(spec)(x, output_size)`` with ``weight (in, out/groups, k...)``.

    ``bias (out_channels,)`` is required when ``spec.bias`` (ignored otherwise).
    Computes in the arrays' precision (float32 in, float32 out).
    """
    x = np.asarray(x)
    spec.output_shape(x.shape, output_size)          # torch's checks, torch's wording
    op = spec.resolve_output_padding(x.shape, output_size)
    weight = check_torch_weights(spec, weight, bias)
    bias = np.asarray(bias) if spec.bias else None
    unbatched = x.ndim == spec.rank + 1
    xb = x[None] if unbatched else x
    y = conv_transpose(xb, weight, bias, strides=spec.stride, dilations=spec.dilation,
                       pads=list(spec.padding) * 2, output_padding=op, group=spec.groups)
    return y[0] if unbatched else y


def check_torch_weights(spec: TorchConvTransposeSpec, weight: Any,
                        bias: Any) -> np.ndarray:
    """``weight`` must be ``spec.weight_shape()``; ``bias`` ``(out_channels,)`` when ``spec.bias``."""
    weight = np.asarray(weight)
    if weight.shape != spec.weight_shape():
        raise fail("weight", weight.shape, f"expected torch's layout (in_channels, "
                   f"out_channels/groups, k...) = {spec.weight_shape()}")
    if spec.bias:
        if bias is None:
            raise ConvtError(f"bias: the module has bias=True but no bias was given; pass the "
                             f"({spec.out_channels},) bias.", field="bias")
        if np.shape(bias) != (spec.out_channels,):
            raise fail("bias", np.shape(bias), f"expected ({spec.out_channels},)")
    return weight


def torch_weight_field(spec: TorchConvTransposeSpec) -> str:
    """The argument that makes the weight ``(in, out/groups, k...)`` big (memory errors name it)."""
    from ..io import largest_field

    return largest_field({"in_channels": spec.in_channels,
                          "out_channels": spec.out_channels // spec.groups,
                          "kernel_size": math.prod(spec.kernel_size)})


def initialize_torch_weights(spec: TorchConvTransposeSpec, seed: int = 0
                             ) -> tuple[np.ndarray, np.ndarray | None]:
    """torch's default init, seeded in NumPy: ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``.

    (``kaiming_uniform_(a=sqrt(5))`` for the weight and the bias rule of
    ``reset_parameters``; torch's ``fan_in`` of a transposed-conv weight is
    ``weight.size(1) * prod(k) = out_channels/groups * prod(k)``.)
    """
    from ..io import check_allocation

    check_allocation(spec.weight_shape(), np.float64, torch_weight_field(spec),
                     f"the weight {spec.weight_shape()} (in, out/groups, k...)")
    rng = np.random.default_rng(seed)
    fan_in = spec.out_channels // spec.groups * math.prod(spec.kernel_size)
    bound = 1.0 / math.sqrt(fan_in)
    w = rng.uniform(-bound, bound, spec.weight_shape()).astype(np.float32)
    b = rng.uniform(-bound, bound, (spec.out_channels,)).astype(np.float32) if spec.bias else None
    return w, b


def load_torch_weights(path: str, spec: TorchConvTransposeSpec
                       ) -> tuple[np.ndarray, np.ndarray | None]:
    """``weight`` and ``bias`` from an ``.npz`` keyed by the module's state_dict names."""
    from ..io import load_npz

    arrays = load_npz(path, field="weights")
    allowed = {"weight", "bias"} if spec.bias else {"weight"}
    extra = sorted(set(arrays) - allowed)
    if "weight" not in arrays or extra:
        raise ConvtError(f"weights: {path!r} holds {sorted(arrays)}; expected the state_dict "
                         f"names {sorted(allowed)} ({spec.module} with bias={spec.bias}).",
                         field="weights")
    w = arrays["weight"]
    b = arrays.get("bias")
    for name, arr in (("weight", w), ("bias", b)):
        if arr is not None and (arr.dtype.kind != "f" or not np.isfinite(arr).all()):
            raise ConvtError(f"{name}: expected finite floating-point values in {path!r}.",
                             field=name)
    check_torch_weights(spec, w, b)
    return w, b
