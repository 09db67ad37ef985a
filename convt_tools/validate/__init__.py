"""Prove that an ONNX model computes what Keras's ``Conv2DTranspose`` computes.

:func:`validate_spec` exports the layer (or takes a given model), runs it in
onnxruntime on seeded random input, runs the NumPy reference
(:func:`convt_tools.reference.keras_conv_transpose`, in float64, on the
same input and the same weights rounded to the model's dtype) and compares:
shapes equal, then every element within ``|model - ref| <= atol + rtol * |ref|``.
:func:`validate_model` does the same for an existing model, with the weights
read back from it unless given.

One concern per module:

- :mod:`.inputs`: the seeded input and validation weights, the default input shape;
- :mod:`.tolerance`: the default ``atol``/``rtol`` formula (stated in every result);
- :mod:`.runtime`: onnxruntime providers, session and the model's input contract;
- :mod:`.model`: opening an existing model, reading ``W``/``B`` and input dims back;
- :mod:`.diagnose`: the comparison and, on a mismatch, what differs (the shape
  per axis, where the largest error is) and which known mistake (crop on the
  other side, kernel flipped, kernel channels swapped, bias or activation
  missing) reproduces the model's output.

Validation weights are seeded random, not the config's initializers: a zeros
bias or a constant kernel would hide exactly the mistakes validation is for.
Given weights are used as given.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from ..activations import apply_activation
from ..errors import ConvtError
from ..io import cast_checked
from ..reference import keras_conv_transpose
from ..spec import Conv2DTransposeSpec, format_shape
from ..tflite import export_keras_tflite
from ..weights import check_weights
from .diagnose import compare, diagnose, shape_message, value_message
from .inputs import (check_sizes, default_input_shape, input_channels, validation_input,
                     validation_weights)
from .model import model_input_shape, open_model, runnable_model, weights_from_model
from .runtime import model_input, resolve_providers
from .tolerance import Tolerance, default_tolerance, resolve_tolerance

__all__ = ["ValidationResult", "Tolerance", "default_tolerance", "default_input_shape",
           "validation_weights", "resolve_providers", "weights_from_model", "validate_spec",
           "validate_model", "validate_runtimes", "resolve_adapters", "Retarget", "models_by_kind",
           "tflite_notes"]


@dataclass
class ValidationResult:
    """The outcome of validating one model against one layer config.

    ``passed`` is True when the shapes agree and every element is within
    tolerance. ``error`` is set (and ``passed`` False) when the model could
    not be run at all. ``message`` is one line saying what differs; ``hints``
    are the likely causes found by the diagnosis.
    """

    name: str
    passed: bool
    input_shape: tuple[int, ...]
    input_source: str
    reference_shape: tuple[int, ...]
    model_shape: tuple[int, ...] | None
    dtype: str
    tolerance: Tolerance
    weights_source: str
    providers: list[str]
    max_abs_error: float | None = None
    max_rel_error: float | None = None
    worst_index: tuple[int, ...] | None = None
    message: str = ""
    hints: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    runtime: str = "onnxruntime"
    runtime_version: str = ""

    @property
    def status(self) -> str:
        """``PASS``, ``FAIL`` (mismatch) or ``ERROR`` (the model did not run)."""
        return "PASS" if self.passed else ("ERROR" if self.error else "FAIL")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict of every field plus ``status``."""
        d = dataclasses.asdict(self)
        d["status"] = self.status
        for key in ("input_shape", "reference_shape", "model_shape", "worst_index"):
            d[key] = None if d[key] is None else list(d[key])
        return d


def _require_spec(spec: Any) -> None:
    if not isinstance(spec, Conv2DTransposeSpec):
        raise ConvtError(f"spec: got {type(spec).__name__}; expected a Conv2DTransposeSpec "
                         f"(from convt_tools.load_config(path) or parse_config(dict)).",
                         field="spec")


def _export(spec: Conv2DTransposeSpec, kernel: np.ndarray, bias: np.ndarray | None,
            input_shape: Sequence[int | None] | None, opset: int | None,
            notes: list[str], form: str | None) -> Any:
    from ..exporter import DEFAULT_FORM, DEFAULT_OPSET, export_spec

    dtype = None
    if spec.dtype not in ("float32", "float16"):
        dtype = "float32"
        notes.append(f"onnxruntime cannot run {spec.dtype}; validated the float32 export")
    return export_spec(spec, kernel, bias, input_shape=input_shape,
                       opset=DEFAULT_OPSET if opset is None else opset, dtype=dtype,
                       form=DEFAULT_FORM if form is None else form)


RuntimeArg = Any  # a runtime name (see convt_tools.runtimes.ADAPTERS) or a Runtime adapter
# ``retarget(model, runtime_names)``: rewrites an exported ONNX model in place into the
# form every named runtime runs exactly and returns what changed (the frameworks pass
# :func:`convt_tools.repair.targets.apply_target_forms`: validate does not import repair).
Retarget = Callable[[Any, Sequence[str]], list[str]]


def resolve_adapters(runtimes: Sequence[RuntimeArg] | RuntimeArg | None,
                     providers: Sequence[str] | str | None) -> list[Any]:
    """Runtime adapters, each imported (RuntimeUnavailable names the pip extra)."""
    from ..runtimes import Runtime, parse_runtime_names, require_runtimes

    if runtimes is None:
        runtimes = ["onnxruntime"]
    elif isinstance(runtimes, (str, Runtime)):
        runtimes = [runtimes] if isinstance(runtimes, Runtime) else runtimes.split(",")
    given = [r for r in runtimes if isinstance(r, Runtime)]
    names = parse_runtime_names([r for r in runtimes if not isinstance(r, Runtime)]) \
        if len(given) < len(runtimes) else []
    if given and providers is not None:
        raise ConvtError("providers: give them to the onnxruntime adapter itself when passing "
                         "Runtime objects.", field="providers")
    adapters = require_runtimes(names, providers) if names else []
    for rt in given:
        rt.module()
    return given + adapters


def validate_spec(spec: Conv2DTransposeSpec, *, kernel: np.ndarray | None = None,
                  bias: np.ndarray | None = None, x: np.ndarray | None = None,
                  input_shape: Sequence[int | None] | None = None, seed: int = 0,
                  rtol: float | None = None, atol: float | None = None,
                  providers: Sequence[str] | str | None = None, opset: int | None = None,
                  model: Any = None, name: str | None = None,
                  weights_note: str | None = None,
                  input_source: str | None = None, runtime: RuntimeArg = None,
                  form: str | None = None) -> ValidationResult:
    """Export ``spec`` (or take ``model``), run it on one runtime and compare with the reference.

    ``x`` (Keras layout) or a seeded standard-normal input of ``input_shape``
    (else ``spec.input_shape``, else a small default; unknown dims filled by
    :func:`default_input_shape`). Without ``kernel`` the weights are seeded
    random (:func:`validation_weights`). ``input_source`` says where
    ``input_shape`` came from, for the report. ``runtime``: a name from
    :data:`convt_tools.runtimes.ADAPTERS` (default ``onnxruntime``, on
    ``providers``) or an adapter; ``form`` the export form (``portable``
    default, ``compact``). Returns a :class:`ValidationResult`; bad arguments
    raise :class:`ConvtError` (:class:`~convt_tools.runtimes.RuntimeUnavailable`
    when the runtime is not installed).
    """
    return _spec_results(spec, resolve_adapters(runtime, providers), kernel=kernel, bias=bias, x=x,
                         input_shape=input_shape, seed=seed, rtol=rtol, atol=atol, opset=opset,
                         model=model, name=name, weights_note=weights_note,
                         input_source=input_source, form=form)[0]


def _spec_results(spec: Conv2DTransposeSpec, adapters: list[Any], *,
                  kernel: np.ndarray | None, bias: np.ndarray | None, x: np.ndarray | None,
                  input_shape: Sequence[int | None] | None, seed: int, rtol: float | None,
                  atol: float | None, opset: int | None, model: Any, name: str | None,
                  weights_note: str | None, input_source: str | None,
                  form: str | None, runnable: Any = None,
                  reread: Callable[[], np.ndarray] | None = None,
                  retarget: Retarget | None = None) -> list[ValidationResult]:
    """One result per adapter: the export (or ``model``) and the reference are made once.

    ``runnable``: what the adapters load when ``model`` is an already opened
    graph kept for reading only (:func:`.model.runnable_model`). ``reread``:
    gives the kernel (``kernel`` is then None): its first call hands over the
    kernel already read, later ones read it again, so it is let go once the
    reference is computed (not held while the runtimes load the model) and
    read again only for a diagnosis. ``retarget``: applied to the export (not to a given
    ``model``) with the names of the ONNX runtimes (:data:`Retarget`), as
    ``export --target`` does; its lines are the results' notes.
    """
    _require_spec(spec)
    notes: list[str] = []
    x = None if x is None else np.asarray(x)
    if kernel is None and reread is not None:
        kernel = reread()
    in_ch = input_channels(spec, kernel, x, input_shape)
    if x is not None:
        if x.dtype.kind != "f":
            raise ConvtError(f"input: got dtype {x.dtype}; expected a float array.",
                             field="input")
        if not np.isfinite(x).all():
            raise ConvtError("input: contains NaN or infinity; validation compares finite "
                             "values, so give a finite input.", field="input")
        shape, source = tuple(spec.check_input_shape(x.shape, in_ch)), "--input"
    else:
        shape, source = default_input_shape(spec, in_ch, input_shape)
    if input_source is not None and x is None:
        source = input_source
    in_ch = shape[spec.channels_axis]
    check_sizes(spec, shape, in_ch)
    if kernel is None:
        kernel, bias = validation_weights(spec, in_ch, seed)
        weights_note = weights_note or (f"seeded random validation weights (seed {seed}), "
                                        f"not the config's initializers")
    kernel, bias = check_weights(spec, kernel, bias, in_ch)
    given_model = model is not None
    if model is None:
        model = _export(spec, kernel, bias, input_shape if x is None else x.shape, opset, notes,
                        form)
        if retarget is not None:
            names = [rt.name for rt in adapters if rt.model_kind == "onnx"]
            notes += [f"export rewritten {line}" for line in retarget(model, names)]
    elif runnable is None:
        model = open_model(model)
    in_name, dtype = model_input(model)
    runnable = model if runnable is None else runnable
    if x is None:
        x = validation_input(shape, seed)
    x = cast_checked(x, dtype, "input")
    # The weights rounded to the model's dtype; their float64 copy (exact) is made per chunk of
    # filters by the reference and whole only for a diagnosis, so a big model's kernel is not
    # held a second time, at twice its size, while the runtimes load the model.
    k_low = cast_checked(kernel, dtype, "kernel")
    b_ref = None if bias is None else cast_checked(bias, dtype, "bias").astype(np.float64)
    pre, ref = _reference(spec, x, k_low, b_ref, dtype)
    tol = resolve_tolerance(dtype, x, k_low, b_ref, float(np.abs(pre).max()) if pre.size else 0.0,
                            rtol, atol)
    k_given, b_given = kernel, bias    # the layer's own weights, for a .tflite export
    by_kind = models_by_kind(adapters, runnable, lambda: export_keras_tflite(
        spec, k_given, b_given, input_shape=tuple(shape)), given=given_model)
    if reread is None:
        def kernel_f64() -> np.ndarray:
            return k_low.astype(np.float64)
    else:
        del kernel, k_low  # the caller holds none either: the runtimes load without it

        def kernel_f64() -> np.ndarray:
            return reread().astype(dtype, copy=False).astype(np.float64)
    results = []
    for rt in adapters:
        result = ValidationResult(
            name=name or spec.name or "layer", passed=False, input_shape=tuple(shape),
            input_source=source, reference_shape=tuple(ref.shape), model_shape=None,
            dtype=dtype.name, tolerance=tol, weights_source=weights_note or "given",
            providers=[], notes=list(notes), runtime=rt.name, runtime_version=rt.version())
        model_rt = by_kind[rt.model_kind]
        if rt.model_kind != "onnx":
            result.notes += tflite_notes(model_rt)
        results.append(_run_and_judge(result, rt, model_rt, model_input(model_rt)[0]
                                      if rt.model_kind != "onnx" else in_name, spec, x,
                                      kernel_f64, b_ref, ref))
    return results


def tflite_notes(model: Any) -> list[str]:
    """What a report says about the ``.tflite`` export a runtime ran (its ops, its notes)."""
    return [f"ran the .tflite export: {' -> '.join(model.ops)} (padding {model.padding})",
            *model.notes]


def models_by_kind(adapters: Sequence[Any], onnx_model: Any, tflite: Callable[[], Any], *,
                   given: bool) -> dict[str, Any]:
    """The model each adapter's ``model_kind`` loads: the ONNX model, and the layer's
    ``.tflite`` export (``tflite()``) only when an adapter asks for it. A model given by the
    user (``given``) is ONNX: a tflite runtime is then refused, naming why."""
    models: dict[str, Any] = {"onnx": onnx_model}
    kinds = {rt.model_kind for rt in adapters}
    if "tflite" in kinds:
        if given:
            names = ", ".join(rt.name for rt in adapters if rt.model_kind == "tflite")
            raise ConvtError(f"runtime: {names} runs the layer's .tflite export, not a given "
                             f"ONNX model; drop --model (the layer is exported to .tflite) or "
                             f"use an ONNX runtime.", field="runtime")
        models["tflite"] = tflite()
    return models


def _run_and_judge(result: ValidationResult, rt: Any, model: Any, in_name: str,
                   spec: Conv2DTransposeSpec, x: np.ndarray,
                   k_ref: Callable[[], np.ndarray], b_ref: np.ndarray | None,
                   ref: np.ndarray) -> ValidationResult:
    """Run ``model`` on ``rt``; a refusal is an ERROR result with the runtime's reason."""
    from ..runtimes import RuntimeRefused

    try:
        loaded = rt.load(model)
        result.providers = list(getattr(loaded, "providers", []))
        got = loaded.run({in_name: x})[0]
    except RuntimeRefused as exc:
        result.error = exc.reason
        result.message = result.error
        return result
    del loaded  # the runtime's copy of the weights is not needed to judge
    return _judge(result, spec, x.astype(np.float64), k_ref, b_ref, got, ref)


# Above this many bytes of float64 kernel the reference runs over chunks of filters.
REFERENCE_CHUNK_BYTES = 64 << 20


def _filters_per_chunk(kernel: np.ndarray) -> int:
    """Filters per reference chunk: all of them unless their float64 kernel is big."""
    filters = kernel.shape[-2] if kernel.ndim >= 2 else 1
    per_filter = max(1, 8 * kernel.size // max(1, filters))
    if 8 * kernel.size <= REFERENCE_CHUNK_BYTES:
        return max(1, filters)
    return max(1, REFERENCE_CHUNK_BYTES // per_filter)


def _reference(spec: Conv2DTransposeSpec, x: np.ndarray, kernel: np.ndarray,
               bias: np.ndarray | None, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """(pre-activation, output) of the reference, computed in float64.

    For a float16 model the pre-activation is rounded to float16 first, as
    Keras (and the model) hand float16 values to the activation; otherwise a
    discontinuous activation (``hard_shrink``) could flip at its threshold.
    The output is rounded to the model's dtype, so a value beyond its range
    is inf on both sides (float16 ``exp(12)``, as in Keras). ``kernel`` is in
    the model's dtype; its float64 copy (exact) is made a chunk of filters at a
    time when it is big (:data:`REFERENCE_CHUNK_BYTES`): output channels are
    independent, so the values are the same.
    """
    linear = dataclasses.replace(spec, activation="linear", dtype="float64")
    x64 = x.astype(np.float64)
    step = _filters_per_chunk(kernel)
    if step >= spec.filters:
        pre = keras_conv_transpose(linear, x64, kernel.astype(np.float64), bias)
    else:  # output channels are independent: the float64 kernel is made a chunk at a time
        parts = []
        for f0 in range(0, spec.filters, step):
            f1 = min(f0 + step, spec.filters)
            part = dataclasses.replace(linear, filters=f1 - f0)
            parts.append(keras_conv_transpose(
                part, x64, kernel[..., f0:f1, :].astype(np.float64),
                None if bias is None else bias[f0:f1]))
        pre = np.concatenate(parts, axis=spec.channels_axis)
        del parts
    if dtype == np.float16:
        pre = pre.astype(np.float16).astype(np.float64)
    with np.errstate(over="ignore"):
        out = apply_activation(spec.activation, pre).astype(dtype).astype(np.float64)
    return pre, out


def _judge(result: ValidationResult, spec: Conv2DTransposeSpec, x: np.ndarray,
           kernel: Callable[[], np.ndarray], bias: np.ndarray | None, got: np.ndarray,
           ref: np.ndarray) -> ValidationResult:
    """Fill ``result`` from the model output ``got`` against the reference ``ref``.

    ``kernel()`` gives the float64 kernel, asked for only by a diagnosis.
    """
    result.model_shape = tuple(int(d) for d in got.shape)
    if got.shape != ref.shape:
        result.message, result.hints = shape_message(spec, got.shape, ref.shape)
        return result
    cmp = compare(got, ref, result.tolerance)
    result.max_abs_error, result.max_rel_error = cmp.max_abs, cmp.max_rel
    result.worst_index = cmp.worst
    result.passed = cmp.ok
    if not cmp.ok:
        result.message = value_message(spec, cmp, got, ref)
        result.hints = diagnose(spec, x, kernel(), bias, got, ref, result.tolerance)
    return result


def validate_model(model_or_path: Any, spec: Conv2DTransposeSpec, *,
                   kernel: np.ndarray | None = None, bias: np.ndarray | None = None,
                   x: np.ndarray | None = None, input_shape: Sequence[int | None] | None = None,
                   seed: int = 0, rtol: float | None = None, atol: float | None = None,
                   providers: Sequence[str] | str | None = None,
                   name: str | None = None, runtime: RuntimeArg = None) -> ValidationResult:
    """Validate an existing model against ``spec`` on one runtime (default onnxruntime).

    Weights: ``kernel``/``bias`` when given (Keras layout; the only way to
    catch a wrong ``W``/``B`` in the model), else read back from the model by
    :func:`weights_from_model`.
    """
    return _model_results(model_or_path, spec, resolve_adapters(runtime, providers), kernel=kernel,
                          bias=bias, x=x, input_shape=input_shape, seed=seed, rtol=rtol,
                          atol=atol, name=name)[0]


def validate_runtimes(spec: Conv2DTransposeSpec, runtimes: Sequence[RuntimeArg] | str, *,
                      model: Any = None, kernel: np.ndarray | None = None,
                      bias: np.ndarray | None = None, x: np.ndarray | None = None,
                      input_shape: Sequence[int | None] | None = None, seed: int = 0,
                      rtol: float | None = None, atol: float | None = None,
                      providers: Sequence[str] | str | None = None, opset: int | None = None,
                      name: str | None = None, weights_note: str | None = None,
                      form: str | None = None,
                      retarget: Retarget | None = None) -> list[ValidationResult]:
    """:func:`validate_spec` (or, with ``model``, :func:`validate_model`) on each runtime.

    One :class:`ValidationResult` per runtime, in the order given; the export
    (or the model), the input, the reference and the tolerance are the same
    for all of them. A runtime that is not installed raises
    :class:`~convt_tools.runtimes.RuntimeUnavailable` before anything runs.
    ``retarget``: see :data:`Retarget` (the export only, not a given ``model``).
    """
    adapters = resolve_adapters(runtimes, providers)
    if model is not None:
        return _model_results(model, spec, adapters, kernel=kernel, bias=bias, x=x,
                              input_shape=input_shape, seed=seed, rtol=rtol, atol=atol,
                              name=name)
    return _spec_results(spec, adapters, kernel=kernel, bias=bias, x=x, input_shape=input_shape,
                         seed=seed, rtol=rtol, atol=atol, opset=opset, model=None, name=name,
                         weights_note=weights_note, input_source=None, form=form,
                         retarget=retarget)


class _ModelKernel:
    """The kernel read back from the model at ``path``: the first call hands over the one
    already read (keeping no reference to it), later calls read it again (a diagnosis)."""

    def __init__(self, kernel: np.ndarray, path: Any, spec: Conv2DTransposeSpec) -> None:
        self._kernel: np.ndarray | None = kernel
        self._path = path
        self._spec = spec

    def __call__(self) -> np.ndarray:
        kernel, self._kernel = self._kernel, None
        if kernel is None:
            kernel = weights_from_model(open_model(self._path, lazy=True), self._spec)[0]
        return kernel


def _model_results(model_or_path: Any, spec: Conv2DTransposeSpec, adapters: list[Any], *,
                   kernel: np.ndarray | None, bias: np.ndarray | None, x: np.ndarray | None,
                   input_shape: Sequence[int | None] | None, seed: int, rtol: float | None,
                   atol: float | None, name: str | None) -> list[ValidationResult]:
    _require_spec(spec)
    # Bounded memory on big models: external data is read for W/B only; the runtimes get the
    # path itself and the graph is kept without its big initializer bytes (runnable_model).
    model = open_model(model_or_path, lazy=True)
    note = "given"
    missing_bias = False
    reread = None
    if kernel is None:
        kernel, bias, note = weights_from_model(model, spec)
        missing_bias = spec.use_bias and "has no B" in note
    runnable, model = runnable_model(model_or_path, model)
    if note != "given" and runnable is model_or_path:
        reread, kernel = _ModelKernel(kernel, model_or_path, spec), None
    static = model_input_shape(model, None)
    source = None
    if x is not None and static is not None and (
            len(np.shape(x)) != len(static)
            or any(s is not None and s != d for s, d in zip(static, np.shape(x)))):
        raise ConvtError(f"input: shape {tuple(np.shape(x))} does not fit the model's input "
                         f"{format_shape(static)}; give an input of that shape.", field="input")
    if input_shape is None and x is None:
        input_shape = model_input_shape(model, spec)
        source = None
        if static and any(d is not None for d in static):
            source = ("the model's static input dims" if all(d is not None for d in static)
                      else "the model's static input dims, with defaults for its dynamic ones")
    # The model, not the layer, fixes the input here: a model taking another channel count
    # than the config's build_config is reported below as a mismatch (exit 1), so the
    # reference runs on the model's input without the layer's own channel check.
    import dataclasses

    results = _spec_results(dataclasses.replace(spec, input_shape=None), adapters, kernel=kernel,
                            bias=bias, x=x,
                            input_shape=input_shape, seed=seed, rtol=rtol, atol=atol, opset=None,
                            model=model, name=name, weights_note=note, input_source=source,
                            form=None, runnable=runnable, reread=reread)
    config_ch = None if spec.input_shape is None else spec.input_shape[spec.channels_axis]
    for result in results:
        model_ch = result.input_shape[spec.channels_axis]
        if result.passed and config_ch is not None and config_ch != model_ch:
            result.passed = False
            result.message = (f"the config's build_config input has {config_ch} channels but "
                              f"the model takes {model_ch}: the model is not this layer")
        if missing_bias and result.passed:
            result.passed = False
            result.message = ("the config has use_bias=True but the model's ConvTranspose has "
                              "no B input, so the model cannot reproduce the layer's bias; give "
                              "--weights to compare against the real bias, or fix the config")
    return results
