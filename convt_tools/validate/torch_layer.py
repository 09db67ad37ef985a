"""Prove an ONNX model computes what ``nn.ConvTranspose{n}d`` computes.

Same contract as :func:`convt_tools.validate.validate_spec`: export the spec
(or take ``model``), run it on each requested runtime of
:mod:`convt_tools.runtimes` (default onnxruntime) on a seeded standard-normal input, run
the NumPy forward (:func:`~convt_tools.torchconv.compute.torch_conv_transpose`)
in float64 on the same input and weights, and compare with the float32
tolerance of :mod:`convt_tools.validate.tolerance` (accumulation length
``n = in_channels/groups * prod(kernel)``).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np

from ..errors import ConvtError
from ..io import cast_checked, check_allocation
from ..runtimes import RuntimeRefused
from ..torchconv.compute import check_torch_weights, torch_conv_transpose, torch_weight_field
from ..torchconv.export import export_torch, torch_tflite
from ..torchconv.spec import TorchConvTransposeSpec
from . import ValidationResult, models_by_kind, resolve_adapters, tflite_notes
from .diagnose import compare
from .model import constant_values as _constant_values
from .model import model_input_shape, open_model
from .runtime import model_input
from .tolerance import resolve_tolerance

__all__ = ["default_torch_input_shape", "torch_weights_from_model", "validate_torch",
           "validate_torch_runtimes"]

_DEFAULT_SPATIAL = 5
_DEFAULT_BATCH = 2


def default_torch_input_shape(spec: TorchConvTransposeSpec,
                              input_shape: Sequence[int | None] | None) -> tuple[int, ...]:
    """``input_shape`` (else :func:`convt_tools.layer.input_shape`'s ``(None, C, None...)``)
    with unknown dims filled (batch 2, spatial 5)."""
    from ..layer import input_shape as layer_input_shape

    shape = spec.check_input_shape(layer_input_shape(spec, input_shape))
    fill = [_DEFAULT_BATCH] * (len(shape) - spec.rank - 1) + [spec.in_channels] \
        + [_DEFAULT_SPATIAL] * spec.rank
    return tuple(f if d is None else int(d) for d, f in zip(shape, fill))


def _tolerance_kernel(spec: TorchConvTransposeSpec, weight: np.ndarray) -> np.ndarray:
    """A read-only view with ``n = C_in/g * prod(k)`` taps and ``max|weight|``, the two
    numbers :func:`default_tolerance` reads from a Keras-layout kernel."""
    n = spec.in_channels // spec.groups * math.prod(spec.kernel_size)
    amax = float(np.abs(weight).max()) if weight.size else 0.0
    return np.broadcast_to(np.float64(amax), (1, n, 1, 1))


def torch_weights_from_model(model: Any, spec: TorchConvTransposeSpec
                             ) -> tuple[np.ndarray, np.ndarray | None, str]:
    """``(weight, bias, note)`` read back from the model's one ConvTranspose (torch layout = W).

    Trailing all-zero kernel taps beyond ``spec.kernel_size`` (the export's form
    for ``output_padding >= stride``) are dropped; a missing ``B`` is a zero bias.
    """
    nodes = [n for n in model.graph.node if n.op_type == "ConvTranspose"]
    w = _constant_values(model, nodes[0].input[1]) if len(nodes) == 1 else None
    if w is None or w.ndim != spec.rank + 2 or w.shape[:2] != spec.weight_shape()[:2] \
            or any(a < b for a, b in zip(w.shape[2:], spec.kernel_size)):
        raise ConvtError(f"model: expected one ConvTranspose with a constant W of shape "
                         f"{spec.weight_shape()} (or with zero taps appended); give --weights.",
                         field="model")
    core = w[(slice(None), slice(None)) + tuple(slice(0, k) for k in spec.kernel_size)]
    if float(np.abs(w).sum()) != float(np.abs(core).sum()):
        raise ConvtError("model: W has non-zero taps beyond the config's kernel_size; give "
                         "--weights.", field="model")
    node = nodes[0]
    b = _constant_values(model, node.input[2]) if len(node.input) > 2 and node.input[2] else None
    note = "weights read from the model (W, B)"
    if spec.bias and b is None:
        b, note = np.zeros(spec.out_channels, np.float32), note + "; no B: bias taken as zero"
    return np.ascontiguousarray(core), (b if spec.bias else None), \
        note + " (a wrong W or B in the model is not detectable; give --weights for that)"


def validate_torch(spec: TorchConvTransposeSpec, *, weight: np.ndarray | None = None,
                   bias: np.ndarray | None = None, x: np.ndarray | None = None,
                   input_shape: Sequence[int | None] | None = None,
                   output_size: Sequence[int] | None = None, seed: int = 0,
                   rtol: float | None = None, atol: float | None = None,
                   providers: Sequence[str] | str | None = None, opset: int | None = None,
                   model: Any = None, name: str | None = None,
                   runtime: Any = None) -> ValidationResult:
    """Export (or take ``model``), run it on ``runtime`` (a name of
    :mod:`convt_tools.runtimes` or an adapter; default onnxruntime on
    ``providers``), compare with torch's forward in NumPy."""
    return validate_torch_runtimes(
        spec, runtime, weight=weight, bias=bias, x=x, input_shape=input_shape,
        output_size=output_size, seed=seed, rtol=rtol, atol=atol, providers=providers,
        opset=opset, model=model, name=name)[0]


def validate_torch_runtimes(spec: TorchConvTransposeSpec, runtimes: Any = None, *,
                            weight: np.ndarray | None = None, bias: np.ndarray | None = None,
                            x: np.ndarray | None = None,
                            input_shape: Sequence[int | None] | None = None,
                            output_size: Sequence[int] | None = None, seed: int = 0,
                            rtol: float | None = None, atol: float | None = None,
                            providers: Sequence[str] | str | None = None,
                            opset: int | None = None, model: Any = None,
                            name: str | None = None,
                            retarget: Callable[[Any, Sequence[str]], list[str]] | None = None
                            ) -> list[ValidationResult]:
    """One result per runtime (names, a comma-separated string or adapters; default
    onnxruntime), in order; the export, input, reference and tolerance are shared.

    A runtime that is not installed raises
    :class:`~convt_tools.runtimes.RuntimeUnavailable` before anything runs; a
    runtime refusing the model is an ERROR result with its reason. ``retarget``: as for
    :func:`convt_tools.validate.validate_runtimes` (the export only, not a given ``model``).
    """

    adapters = resolve_adapters(runtimes, providers)
    if x is not None:
        x = np.asarray(x)
        if x.dtype.kind != "f" or not np.isfinite(x).all():
            raise ConvtError("input: expected a finite float array.", field="input")
        spec.check_input_shape(x.shape)
        shape, source = tuple(int(d) for d in x.shape), "--input"
    elif input_shape is None and model is not None:
        # a model made elsewhere: its own static input dims (as for Keras configs), the
        # defaults only where it has symbolic ones
        model = open_model(model)
        own = model_input_shape(model, None)
        shape = default_torch_input_shape(spec, own)
        source = ("the model's input dims" if own is not None and all(d is not None for d in own)
                  else "the model's input dims, defaults (batch 2, spatial 5) for symbolic ones")
    else:
        shape = default_torch_input_shape(spec, input_shape)
        source = "--input-shape" if input_shape is not None else "default (batch 2, spatial 5)"
    if len(shape) == spec.rank + 1:
        shape = (1, *shape)
        x = None if x is None else x[None]
    spec.output_shape(shape, output_size)
    rng = np.random.default_rng(seed)
    weights_note = "given"
    if weight is None and model is not None:
        model = open_model(model)
        weight, bias, weights_note = torch_weights_from_model(model, spec)
    if weight is None:
        check_allocation(spec.weight_shape(), np.float64, torch_weight_field(spec),
                         f"the weight {spec.weight_shape()} (in, out/groups, k...)")
        weight = rng.standard_normal(spec.weight_shape()).astype(np.float32)
        bias = rng.standard_normal(spec.out_channels).astype(np.float32) if spec.bias else None
        weights_note = f"seeded random validation weights (seed {seed})"
    weight = check_torch_weights(spec, weight, bias)
    given_model = model is not None
    retargeted: list[str] = []
    if model is None:
        kw = {} if opset is None else {"opset": opset}
        model = export_torch(spec, weight, bias, input_shape=shape, output_size=output_size, **kw)
        if retarget is not None:
            retargeted = [f"export rewritten {line}" for line in retarget(
                model, [rt.name for rt in adapters if rt.model_kind == "onnx"])]
    else:
        model = open_model(model)
    by_kind = models_by_kind(adapters, model, lambda: torch_tflite(
        spec, weight, bias, input_shape=shape, output_size=output_size), given=given_model)
    in_name, dtype = model_input(model)
    if x is None:
        check_allocation(shape, np.float64, "input_shape", f"the input {tuple(shape)}")
        x = np.random.default_rng(seed + 1).standard_normal(shape)
    x = cast_checked(x, dtype, "input")
    w64 = cast_checked(weight, dtype, "weight").astype(np.float64)
    b64 = None if bias is None or not spec.bias else \
        cast_checked(bias, dtype, "bias").astype(np.float64)
    ref = torch_conv_transpose(spec, x.astype(np.float64), w64, b64, output_size)
    tol = resolve_tolerance(dtype, x, _tolerance_kernel(spec, w64), b64,
                            float(np.abs(ref).max()) if ref.size else 0.0, rtol, atol)
    results = []
    for rt in adapters:
        result = ValidationResult(
            name=name or spec.module, passed=False, input_shape=tuple(int(d) for d in shape),
            input_source=source, reference_shape=tuple(ref.shape), model_shape=None,
            dtype=dtype.name, tolerance=tol, weights_source=weights_note, providers=[],
            notes=[f"torch {spec.snippet()}", *retargeted], runtime=rt.name,
            runtime_version=rt.version())
        results.append(result)
        if rt.model_kind != "onnx":
            result.notes += tflite_notes(by_kind[rt.model_kind])
        try:
            loaded = rt.load(by_kind[rt.model_kind])
            result.providers = list(getattr(loaded, "providers", []))
            got = np.asarray(loaded.run({in_name: x})[0])
        except RuntimeRefused as exc:
            result.error = exc.reason
            result.message = result.error
            continue
        _judge_torch(result, got, ref)
    return results


def _judge_torch(result: ValidationResult, got: np.ndarray, ref: np.ndarray) -> None:
    """Fill ``result`` from the model output ``got`` against torch's ``ref``."""
    result.model_shape = tuple(int(d) for d in got.shape)
    if got.shape != ref.shape:
        result.message = f"output shape {list(got.shape)} differs from torch's {list(ref.shape)}"
        return
    cmp = compare(got, ref, result.tolerance)
    result.max_abs_error, result.max_rel_error = cmp.max_abs, cmp.max_rel
    result.worst_index, result.passed = cmp.worst, cmp.ok
    if not cmp.ok:
        result.message = (f"max abs error {cmp.max_abs:.3g} at {list(cmp.worst or ())} exceeds "
                          f"the tolerance")
