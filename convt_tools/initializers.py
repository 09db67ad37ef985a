"""Keras 3 built-in initializers, in NumPy, for exporting a layer without weights.

The distributions and constants follow ``keras/src/initializers`` (Keras
3.15); the random streams do not (bit-for-bit Keras values depend on the
backend's RNG), so the values are reproducible from ``seed`` only:
``kernel`` draws from ``np.random.default_rng([seed, 0])`` and ``bias`` from
``np.random.default_rng([seed, 1])``. A ``seed`` in the initializer's own
config is accepted and ignored for that reason.

Fans (Keras ``compute_fans``) for a shape ``(d0, ..., dn-2, dn-1)``:
rank 1 -> ``fan_in = fan_out = d0``; rank 2 -> ``(d0, d1)``; otherwise
``receptive_field = prod(d0..dn-3)``, ``fan_in = dn-2 * rf``,
``fan_out = dn-1 * rf``. For the Conv2DTranspose kernel
``(kh, kw, filters, in_channels)`` that is ``fan_in = filters*kh*kw`` and
``fan_out = in_channels*kh*kw`` (any rank: ``prod(kernel_size)`` for ``kh*kw``). With
``input_axes`` and ``output_axes`` both given, the fans are the products of those axes.

VarianceScaling: ``scale /= max(1, n)`` with ``n`` = fan_in, fan_out or
their mean; ``truncated_normal`` draws N(0, sqrt(scale)/0.87962566103423978)
truncated to +-2 stddev (re-drawing outside values), ``untruncated_normal``
N(0, sqrt(scale)), ``uniform`` U(-sqrt(3*scale), sqrt(3*scale)).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from .errors import ConvtError
from .io import check_allocation
from .spec import Conv2DTransposeSpec

__all__ = ["INITIALIZERS", "compute_fans", "initialize", "initialize_weights"]

# Standard deviation of a unit normal truncated to [-2, 2] (Keras's constant).
TRUNCATION_STDDEV = 0.87962566103423978

Shape = tuple[int, ...]


def compute_fans(shape: Sequence[int], input_axes: Sequence[int] | None = None,
                 output_axes: Sequence[int] | None = None) -> tuple[int, int]:
    """Keras's ``compute_fans`` (see the module docstring)."""
    shape = tuple(shape)
    if input_axes is not None and output_axes is not None:
        return (int(np.prod([shape[a] for a in input_axes])),
                int(np.prod([shape[a] for a in output_axes])))
    if len(shape) < 1:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    rf = math.prod(shape[:-2])
    return shape[-2] * rf, shape[-1] * rf


def _truncated_normal(rng: np.random.Generator, shape: Shape, mean: float,
                      stddev: float) -> np.ndarray:
    """N(mean, stddev) restricted to ``mean +- 2*stddev`` by re-drawing (as Keras)."""
    n = math.prod(shape)
    out = np.empty(n, dtype=np.float64)
    filled = 0
    while filled < n:
        batch = rng.normal(mean, stddev, size=n - filled)
        keep = batch[np.abs(batch - mean) <= 2 * stddev]
        out[filled:filled + keep.size] = keep
        filled += keep.size
    return out.reshape(shape)


# ---------------------------------------------------------------- config helpers

def _number(name: str, key: str, cfg: Mapping[str, Any], default: float) -> float:
    value = cfg.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConvtError(f"{name}: got {key}={value!r}; expected a finite number.", field=name)
    return float(value)


def _check_keys(name: str, cls: str, cfg: Mapping[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(cfg) - allowed)
    if unknown:
        raise ConvtError(
            f"{name}: got unknown {cls} option(s) {', '.join(map(repr, unknown))}; "
            f"{cls} accepts {', '.join(sorted(allowed)) or 'no options'}.", field=name)


def _axes(name: str, cfg: Mapping[str, Any], key: str, rank: int) -> list[int] | None:
    value = cfg.get(key)
    if value is None:
        return None
    if (not isinstance(value, (list, tuple)) or not value
            or not all(isinstance(a, int) and not isinstance(a, bool) and -rank <= a < rank
                       for a in value)):
        raise ConvtError(f"{name}: got {key}={value!r}; expected a list of axes of the "
                         f"rank-{rank} weight (-{rank}..{rank - 1}).", field=name)
    return list(value)


# ---------------------------------------------------------------- the initializers

Init = Callable[[str, Shape, Mapping[str, Any], np.random.Generator], np.ndarray]

_VS_PRESETS: dict[str, tuple[float, str, str]] = {
    # name: (scale, mode, distribution)
    "glorot_uniform": (1.0, "fan_avg", "uniform"),
    "glorot_normal": (1.0, "fan_avg", "truncated_normal"),
    "he_uniform": (2.0, "fan_in", "uniform"),
    "he_normal": (2.0, "fan_in", "truncated_normal"),
    "lecun_uniform": (1.0, "fan_in", "uniform"),
    "lecun_normal": (1.0, "fan_in", "truncated_normal"),
}


def _variance_scaling_draw(name: str, shape: Shape, rng: np.random.Generator, scale: float,
                           mode: str, distribution: str, cfg: Mapping[str, Any]) -> np.ndarray:
    fan_in, fan_out = compute_fans(shape, _axes(name, cfg, "input_axes", len(shape)),
                                   _axes(name, cfg, "output_axes", len(shape)))
    n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2.0}[mode]
    scale /= max(1.0, n)
    if distribution == "truncated_normal":
        return _truncated_normal(rng, shape, 0.0, math.sqrt(scale) / TRUNCATION_STDDEV)
    if distribution == "untruncated_normal":
        return rng.normal(0.0, math.sqrt(scale), size=shape)
    limit = math.sqrt(3.0 * scale)
    return rng.uniform(-limit, limit, size=shape)


def _preset(preset: str) -> Init:
    scale, mode, distribution = _VS_PRESETS[preset]

    def init(name: str, shape: Shape, cfg: Mapping[str, Any],
             rng: np.random.Generator) -> np.ndarray:
        _check_keys(name, preset, cfg, {"seed", "input_axes", "output_axes"})
        return _variance_scaling_draw(name, shape, rng, scale, mode, distribution, cfg)
    return init


def _variance_scaling(name: str, shape: Shape, cfg: Mapping[str, Any],
                      rng: np.random.Generator) -> np.ndarray:
    _check_keys(name, "variance_scaling", cfg,
                {"scale", "mode", "distribution", "seed", "input_axes", "output_axes"})
    scale = _number(name, "scale", cfg, 1.0)
    if scale <= 0:
        raise ConvtError(f"{name}: got scale={scale!r}; expected a positive number.", field=name)
    mode = cfg.get("mode", "fan_in")
    if mode not in ("fan_in", "fan_out", "fan_avg"):
        raise ConvtError(f"{name}: got mode={mode!r}; expected 'fan_in', 'fan_out' or "
                         f"'fan_avg'.", field=name)
    dist = cfg.get("distribution", "truncated_normal")
    dist = dist.lower() if isinstance(dist, str) else dist
    dist = "truncated_normal" if dist == "normal" else dist
    if dist not in ("truncated_normal", "untruncated_normal", "uniform"):
        raise ConvtError(f"{name}: got distribution={cfg.get('distribution')!r}; expected "
                         f"'truncated_normal', 'untruncated_normal', 'normal' or 'uniform'.",
                         field=name)
    return _variance_scaling_draw(name, shape, rng, scale, mode, dist, cfg)


def _random_normal(name: str, shape: Shape, cfg: Mapping[str, Any],
                   rng: np.random.Generator) -> np.ndarray:
    _check_keys(name, "random_normal", cfg, {"mean", "stddev", "seed"})
    return rng.normal(_number(name, "mean", cfg, 0.0), _number(name, "stddev", cfg, 0.05),
                      size=shape)


def _truncated(name: str, shape: Shape, cfg: Mapping[str, Any],
               rng: np.random.Generator) -> np.ndarray:
    _check_keys(name, "truncated_normal", cfg, {"mean", "stddev", "seed"})
    stddev = _number(name, "stddev", cfg, 0.05)
    if stddev < 0:
        raise ConvtError(f"{name}: got stddev={stddev!r}; expected a number >= 0.", field=name)
    return _truncated_normal(rng, shape, _number(name, "mean", cfg, 0.0), stddev)


def _random_uniform(name: str, shape: Shape, cfg: Mapping[str, Any],
                    rng: np.random.Generator) -> np.ndarray:
    _check_keys(name, "random_uniform", cfg, {"minval", "maxval", "seed"})
    return rng.uniform(_number(name, "minval", cfg, -0.05), _number(name, "maxval", cfg, 0.05),
                       size=shape)


def _constant(name: str, shape: Shape, cfg: Mapping[str, Any],
              rng: np.random.Generator) -> np.ndarray:
    _check_keys(name, "constant", cfg, {"value"})
    value = cfg.get("value", 0.0)
    try:
        arr = np.asarray(value, dtype=np.float64)
        return np.broadcast_to(arr, shape).copy()
    except (TypeError, ValueError):
        raise ConvtError(f"{name}: got value={value!r}; expected a number (or an array "
                         f"broadcastable to {shape}).", field=name) from None


def _filled(fill: float, cls: str) -> Init:
    def init(name: str, shape: Shape, cfg: Mapping[str, Any],
             rng: np.random.Generator) -> np.ndarray:
        _check_keys(name, cls, cfg, set())
        return np.full(shape, fill, dtype=np.float64)
    return init


def _orthogonal(name: str, shape: Shape, cfg: Mapping[str, Any],
                rng: np.random.Generator) -> np.ndarray:
    """Keras's Orthogonal: with ``rows = prod(shape[:-1])`` and ``cols = shape[-1]``,
    QR of a normal ``(max, min)`` matrix, ``q *= sign(diag(r))``, transposed when
    ``rows < cols``, reshaped, times ``gain``."""
    _check_keys(name, "orthogonal", cfg, {"gain", "seed"})
    if len(shape) < 2:
        raise ConvtError(f"{name}: got orthogonal for a weight of shape {shape}; Keras's "
                         f"Orthogonal needs a tensor of rank >= 2 (use it for the kernel only).",
                         field=name)
    rows, cols = math.prod(shape[:-1]), shape[-1]
    a = rng.normal(size=(max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(a)
    q = q * np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    return _number(name, "gain", cfg, 1.0) * q.reshape(shape)


def _identity(name: str, shape: Shape, cfg: Mapping[str, Any],
              rng: np.random.Generator) -> np.ndarray:
    _check_keys(name, "identity", cfg, {"gain"})
    if len(shape) != 2:
        raise ConvtError(f"{name}: got identity for a weight of shape {shape}; Keras's Identity "
                         f"initializer only accepts rank-2 shapes, so this layer cannot be "
                         f"built with it (Keras raises too).", field=name)
    return _number(name, "gain", cfg, 1.0) * np.eye(*shape)


INITIALIZERS: dict[str, Init] = {
    **{name: _preset(name) for name in _VS_PRESETS},
    "variance_scaling": _variance_scaling,
    "random_normal": _random_normal,
    "random_uniform": _random_uniform,
    "truncated_normal": _truncated,
    "zeros": _filled(0.0, "zeros"),
    "ones": _filled(1.0, "ones"),
    "constant": _constant,
    "orthogonal": _orthogonal,
    "identity": _identity,
}


def initialize(initializer: tuple[str, Mapping[str, Any]], shape: Sequence[int],
               rng: np.random.Generator, name: str = "kernel_initializer") -> np.ndarray:
    """Draw one float64 array of ``shape`` from a ``(canonical_name, config)`` initializer."""
    cls, cfg = initializer
    if cls not in INITIALIZERS:
        raise ConvtError(f"{name}: got {cls!r}; expected one of {', '.join(sorted(INITIALIZERS))}.",
                         field=name)
    return INITIALIZERS[cls](name, tuple(int(d) for d in shape), dict(cfg or {}), rng)


def initialize_weights(spec: Conv2DTransposeSpec, in_channels: int,
                       seed: int = 0) -> tuple[np.ndarray, np.ndarray | None]:
    """Fresh Keras-layout weights from the spec's initializers (float32).

    ``kernel``: ``(*kernel_size, filters, in_channels)`` from ``spec.kernel_initializer``;
    ``bias``: ``(filters,)`` from ``spec.bias_initializer``, or None without
    ``use_bias``. Same ``seed`` -> same arrays.
    """
    if isinstance(in_channels, bool) or not isinstance(in_channels, (int, np.integer)) \
            or in_channels < 1:
        raise ConvtError(f"in_channels: got {in_channels!r}; expected a positive integer.",
                         field="in_channels")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConvtError(f"seed: got {seed!r}; expected an integer >= 0.", field="seed")
    shape = spec.kernel_shape(int(in_channels))
    check_allocation(shape, np.float64, _largest_factor(spec, int(in_channels)),
                     f"the kernel {shape} {spec.layout.kernel_layout}")
    # Huge initializer parameters overflow float32 to inf: check_weights reports that as
    # one error; NumPy's RuntimeWarning on the way would only add noise.
    with np.errstate(over="ignore", invalid="ignore"):
        kernel = initialize(spec.kernel_initializer, shape,
                            np.random.default_rng([int(seed), 0]), "kernel_initializer")
        bias = None
        if spec.use_bias:
            bias = initialize(spec.bias_initializer, (spec.filters,),
                              np.random.default_rng([int(seed), 1]), "bias_initializer")
            bias = bias.astype(np.float32)
        return kernel.astype(np.float32), bias


def _largest_factor(spec: Any, in_channels: int) -> str:
    """The field that contributes most to the kernel's size (what a memory error names)."""
    import math

    factors = {"filters": spec.filters, "in_channels": in_channels,
               "kernel_size": math.prod(spec.kernel_size)}
    return max(factors, key=lambda k: factors[k])
