"""Prove that an ONNX model computes what Keras's ``Conv2DTranspose`` computes.

:func:`validate_spec` exports the layer (or takes a given model), runs it in
onnxruntime on seeded random input, runs the NumPy reference
(:func:`convt_tools.reference.keras_conv2d_transpose`, in float64, on the
same input and the same weights rounded to the model's dtype) and compares:
shapes equal, then every element within ``|model - ref| <= atol + rtol * |ref|``.

Default tolerances (stated in every result), with ``eps`` the machine epsilon
of the model's dtype, ``eps_acc`` that of the accumulation (float32 for
float16 and float32 models: runtimes accumulate float16 in float32),
``n = C_in * kh * kw`` the accumulation length and ``Y`` the largest
magnitude of the reference output before its activation::

    P    = sqrt(n) * max|x| * max|kernel|
    atol = 8 * eps_acc * (P + max|bias|) + 2 * eps * Y
    rtol = 8 * eps_acc * P + 2 * eps * max(2, Y)

The ``eps_acc`` terms bound the rounding of the length-``n`` dot products
(random-walk growth ``sqrt(n)``); the ``eps`` terms the rounding of the
output and of the pre-activation values in the model's dtype. ``rtol`` also
carries absolute errors through activations that turn them into relative
ones (``exp``, ``softmax``). A wrong crop side, a flipped or untransposed kernel, or a
missing bias gives errors of the size of the output itself, orders of
magnitude above these.

Validation weights are seeded random (kernel ~ N(0, 1/n), bias ~ N(0, 0.5)),
not the config's initializers: a zeros bias or a constant kernel would hide
exactly the mistakes validation is for. Given weights are used as given.

On a mismatch the result says what differs: the shape per axis, where the
largest error is, and which known mistake (crop on the other side, kernel
flipped, kernel channels swapped, bias or activation missing) reproduces the
model's output.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from .activations import apply_activation
from .errors import ConvtError
from .io import check_allocation
from .reference import keras_conv2d_transpose
from .spec import Conv2DTransposeSpec, format_shape

__all__ = ["ValidationResult", "Tolerance", "default_tolerance", "default_input_shape",
           "resolve_providers", "weights_from_model", "validate_spec", "validate_model"]

TOL_FACTOR = 8.0
_DEFAULT_SPATIAL = (5, 7)      # odd, unequal: an H/W mix-up changes the shape
_DEFAULT_BATCH = 2
_DEFAULT_CHANNELS = 3


@dataclass(frozen=True)
class Tolerance:
    """``|model - ref| <= atol + rtol * |ref|``; ``source`` says where the numbers came from."""

    atol: float
    rtol: float
    source: str


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


# --------------------------------------------------------------------------
# Inputs, weights, tolerances
# --------------------------------------------------------------------------

def default_input_shape(spec: Conv2DTransposeSpec, in_channels: int | None,
                        input_shape: Sequence[int | None] | None = None
                        ) -> tuple[tuple[int, ...], str]:
    """A concrete input shape and a note on where it came from.

    ``input_shape`` (else ``spec.input_shape``) with unknown dims filled in:
    batch 2, height 5, width 7 (odd and unequal), channels from the kernel
    or 3. For ``glu`` on ``channels_first`` (which halves the output width)
    the width is bumped until the output width is even.
    """
    given, source = input_shape, "--input-shape"
    if given is None:
        given, source = spec.input_shape, "the config's build_config input shape"
    if given is None:
        given, source = (None,) * 4, "a small default"
    shape = list(spec.check_input_shape(given, in_channels))
    ch_axis = 3 if spec.data_format == "channels_last" else 1
    sp_axes = (1, 2) if spec.data_format == "channels_last" else (2, 3)
    filled = []
    if shape[0] is None:
        shape[0] = _DEFAULT_BATCH
        filled.append("batch")
    if shape[ch_axis] is None:
        shape[ch_axis] = in_channels or _DEFAULT_CHANNELS
        filled.append("channels")
    for axis, default in zip(sp_axes, _DEFAULT_SPATIAL):
        if shape[axis] is None:
            shape[axis] = default
            filled.append("height" if axis == sp_axes[0] else "width")
    if "width" in filled and spec.activation == "glu" and spec.data_format == "channels_first":
        while (spec.output_shape(tuple(shape))[-1] or 0) % 2:
            shape[sp_axes[1]] += 1
    if filled and source != "a small default":
        source += f" (unknown {', '.join(filled)} filled in)"
    return tuple(shape), source  # type: ignore[return-value]


def validation_weights(spec: Conv2DTransposeSpec, in_channels: int,
                       seed: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Seeded random weights: kernel ~ N(0, 1/(C_in*kh*kw)), bias ~ N(0, 0.5) (float32)."""
    rng = np.random.default_rng([int(seed), 7])
    n = in_channels * spec.kernel_size[0] * spec.kernel_size[1]
    kernel = rng.standard_normal(spec.kernel_shape(in_channels)) / math.sqrt(n)
    bias = 0.5 * rng.standard_normal(spec.filters) if spec.use_bias else None
    return kernel.astype(np.float32), None if bias is None else bias.astype(np.float32)


def default_tolerance(dtype: np.dtype | str, x: np.ndarray, kernel: np.ndarray,
                      bias: np.ndarray | None, pre_max: float) -> Tolerance:
    """The module docstring's formula for ``atol`` and ``rtol``.

    ``pre_max`` is ``max|y|`` of the reference before its activation.
    """
    dt = np.dtype(dtype)
    eps_out = float(np.finfo(dt).eps)
    eps_acc = float(np.finfo(np.float64 if dt == np.float64 else np.float32).eps)
    n = kernel.shape[3] * kernel.shape[0] * kernel.shape[1]
    amax = lambda a: float(np.max(np.abs(a))) if a is not None and a.size else 0.0  # noqa: E731
    p = math.sqrt(n) * amax(x) * amax(kernel)
    atol = TOL_FACTOR * eps_acc * (p + amax(bias)) + 2 * eps_out * pre_max
    rtol = TOL_FACTOR * eps_acc * p + 2 * eps_out * max(2.0, pre_max)
    src = (f"default for {dt.name}: atol = 8*eps_acc*(P + max|bias|) + 2*eps*Y, "
           f"rtol = 8*eps_acc*P + 2*eps*max(2, Y); P = sqrt(n)*max|x|*max|kernel| = {p:.3g}, "
           f"n = C_in*kh*kw = {n}, Y = max|pre-activation output| = {pre_max:.3g}, "
           f"eps = {eps_out:.3g}, eps_acc = {eps_acc:.3g} (accumulation in "
           f"{'float64' if dt == np.float64 else 'float32'})")
    return Tolerance(atol, rtol, src)


def _tolerance(dtype: np.dtype, x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None,
               pre_max: float, rtol: float | None, atol: float | None) -> Tolerance:
    tol = default_tolerance(dtype, x, kernel, bias, pre_max)
    for name, value in (("rtol", rtol), ("atol", atol)):
        if value is not None and (not isinstance(value, (int, float)) or not value >= 0):
            raise ConvtError(f"{name}: got {value!r}; expected a number >= 0.", field=name)
    if rtol is None and atol is None:
        return tol
    return Tolerance(tol.atol if atol is None else float(atol),
                     tol.rtol if rtol is None else float(rtol),
                     "given" + ("" if rtol is not None and atol is not None
                                else f" (the other: {tol.source})"))


# --------------------------------------------------------------------------
# onnxruntime
# --------------------------------------------------------------------------

def resolve_providers(providers: Sequence[str] | str | None) -> list[str]:
    """Execution provider names; ``CPU``/``cuda`` short forms accepted.

    Default ``["CPUExecutionProvider"]``. A provider onnxruntime does not
    have is a :class:`ConvtError` listing the available ones.
    """
    import onnxruntime as ort

    if providers is None:
        return ["CPUExecutionProvider"]
    if isinstance(providers, str):
        providers = [p for p in providers.split(",") if p.strip()]
    available = ort.get_available_providers()
    by_lower = {p.lower(): p for p in available}
    result = []
    for raw in providers:
        key = raw.strip().lower()
        if not key.endswith("executionprovider"):
            key += "executionprovider"
        if key not in by_lower:
            raise ConvtError(f"providers: got {raw!r}; this onnxruntime has "
                             f"{', '.join(available)}.", field="providers")
        result.append(by_lower[key])
    if not result:
        raise ConvtError("providers: got an empty list; give at least one, e.g. CPU.",
                         field="providers")
    return result


def _session(model: Any, providers: list[str]) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    data = model if isinstance(model, (str, os.PathLike)) else model.SerializeToString()
    sess = ort.InferenceSession(data if isinstance(data, bytes) else str(data), opts,
                                providers=providers)
    missing = [p for p in providers if p not in sess.get_providers()]
    if missing:
        raise ConvtError(f"providers: {', '.join(missing)} could not be initialised (it is "
                         f"listed but failed to load; onnxruntime fell back to "
                         f"{', '.join(sess.get_providers())}).", field="providers")
    return sess


def _model_io(sess: Any) -> tuple[str, np.dtype, str]:
    """(input name, input numpy dtype, output name) of a one-input model."""
    inputs = sess.get_inputs()
    if len(inputs) != 1:
        raise ConvtError(f"model: has {len(inputs)} inputs "
                         f"({', '.join(i.name for i in inputs)}); expected one.", field="model")
    elem = inputs[0].type  # e.g. "tensor(float)"
    dtypes = {"tensor(float)": np.float32, "tensor(float16)": np.float16,
              "tensor(double)": np.float64}
    if elem not in dtypes:
        raise ConvtError(f"model: input {inputs[0].name!r} has type {elem}; expected "
                         f"float, float16 or double.", field="model")
    return inputs[0].name, np.dtype(dtypes[elem]), sess.get_outputs()[0].name


# --------------------------------------------------------------------------
# Weights from an existing model
# --------------------------------------------------------------------------

def _constant_values(model: Any, name: str) -> np.ndarray | None:
    from onnx import numpy_helper

    for init in model.graph.initializer:
        if init.name == name:
            return numpy_helper.to_array(init)
    for node in model.graph.node:
        if node.op_type == "Constant" and node.output[0] == name:
            for attr in node.attribute:
                if attr.name == "value":
                    return numpy_helper.to_array(attr.t)
    return None


def weights_from_model(model: Any, spec: Conv2DTransposeSpec
                       ) -> tuple[np.ndarray, np.ndarray | None, str]:
    """Keras-layout ``(kernel, bias, note)`` read back from the model's one ConvTranspose.

    ``kernel = W.transpose(2, 3, 1, 0)`` (ONNX ``(C_in, C_out, kh, kw)`` to
    Keras ``(kh, kw, filters, in_channels)``); ``bias = B``, or zeros when the
    node has no ``B`` and the layer uses a bias. Needs ``group == 1`` and
    constant ``W``/``B``.
    """
    nodes = [n for n in model.graph.node if n.op_type == "ConvTranspose"]
    if len(nodes) != 1:
        raise ConvtError(f"model: has {len(nodes)} ConvTranspose nodes; reading the weights "
                         f"back needs exactly one (or give --weights).", field="model")
    node = nodes[0]
    group = next((a.i for a in node.attribute if a.name == "group"), 1)
    w = _constant_values(model, node.input[1]) if len(node.input) > 1 else None
    if w is None or w.ndim != 4 or group != 1:
        raise ConvtError(f"model: ConvTranspose {node.name!r} has no constant 4-D W with "
                         f"group 1; give --weights.", field="model")
    kernel = w.transpose(2, 3, 1, 0)
    b = _constant_values(model, node.input[2]) if len(node.input) > 2 and node.input[2] else None
    note = "weights read from the model: kernel = W.transpose(2, 3, 1, 0)"
    if spec.use_bias and b is None:
        b = np.zeros(spec.filters, dtype=kernel.dtype)
        note += "; the ConvTranspose has no B, bias taken as zero"
    elif spec.use_bias:
        note += ", bias = B"
    note += " (so a wrong W or B in the model is not detectable; give --weights for that)"
    return kernel, (b if spec.use_bias else None), note


def _load_model(model: Any) -> Any:
    """A ModelProto as is; a path through the untrusted-model loader of ``convt check``."""
    import onnx

    if isinstance(model, onnx.ModelProto):
        return model
    if not isinstance(model, (str, os.PathLike)):
        raise ConvtError(f"model: got {type(model).__name__}; expected a path to an .onnx "
                         f"file or an onnx.ModelProto.", field="model")
    from .check.loading import load_model

    return load_model(model)


def _model_input_shape(model: Any, spec: Conv2DTransposeSpec | None
                       ) -> tuple[int | None, ...] | None:
    """The model's static input dims (``None`` where symbolic), else the spec's, merged per dim."""
    dims = model.graph.input[0].type.tensor_type.shape.dim if len(model.graph.input) == 1 else []
    own = None if spec is None else spec.input_shape
    if len(dims) != 4:
        return own
    static = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in dims]
    fallback = own if own and len(own) == 4 else (None,) * 4
    return tuple(s if s is not None else f for s, f in zip(static, fallback))


def _require_spec(spec: Any) -> None:
    if not isinstance(spec, Conv2DTransposeSpec):
        raise ConvtError(f"spec: got {type(spec).__name__}; expected a Conv2DTransposeSpec "
                         f"(from convt_tools.load_config(path) or parse_config(dict)).",
                         field="spec")


# --------------------------------------------------------------------------
# Comparison and diagnosis
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class _Comparison:
    max_abs: float
    max_rel: float
    worst: tuple[int, ...] | None
    ok: bool


def _compare(got: np.ndarray, ref: np.ndarray, tol: Tolerance) -> _Comparison:
    """Max abs/rel error, the index of the worst violation, and the verdict (NaN fails)."""
    if not ref.size:
        return _Comparison(0.0, 0.0, None, True)
    diff = np.abs(got.astype(np.float64) - ref)
    diff = np.where(np.isnan(diff) & ~(np.isnan(got) & np.isnan(ref)), np.inf,
                    np.nan_to_num(diff, nan=0.0))
    excess = diff - (tol.atol + tol.rtol * np.abs(np.nan_to_num(ref)))
    worst = tuple(int(i) for i in np.unravel_index(int(np.argmax(excess)), ref.shape))
    nonzero = ref != 0
    rel = diff[nonzero] / np.abs(ref[nonzero])
    return _Comparison(float(diff.max()), float(rel.max()) if rel.size else 0.0, worst,
                       bool(excess.max() <= 0))


def _axis_names(spec: Conv2DTransposeSpec) -> tuple[str, str, str, str]:
    if spec.data_format == "channels_last":
        return ("batch", "height", "width", "channels")
    return ("batch", "channels", "height", "width")


def _shape_message(spec: Conv2DTransposeSpec, got: tuple[int, ...],
                   ref: tuple[int, ...]) -> tuple[str, list[str]]:
    if len(got) != len(ref):
        return (f"shape differs: model gives rank {len(got)} {format_shape(got)}, Keras "
                f"gives {format_shape(ref)}", ["the model output is not in the Keras layout"])
    parts, hints = [], []
    for name, g, r in zip(_axis_names(spec), got, ref):
        if g != r:
            parts.append(f"{name} {g} vs {r} ({g - r:+d})")
            if name in ("height", "width"):
                hints.append(f"{name}: the crop/extension differs by {abs(g - r)} "
                             f"(pads or output_padding; Keras: {_crop_text(spec, name)})")
            elif name == "channels":
                hints.append("channel count differs: kernel in/out channels swapped?")
    if spec.data_format == "channels_last" and sorted(got) == sorted(ref) and got != ref:
        hints.append("same dims in another order: output layout NCHW instead of NHWC?")
    return (f"shape differs: model gives {format_shape(got)}, Keras gives {format_shape(ref)} "
            f"({'; '.join(parts)})", hints)


def _crop_text(spec: Conv2DTransposeSpec, axis: str) -> str:
    c = spec.crop_plan()[0 if axis == "height" else 1]
    if c.extend:
        return f"no crop, {c.extend} zero row(s) appended at the end"
    return f"crop {c.begin} at the start, {c.end} at the end"


def _spatial_axes(spec: Conv2DTransposeSpec) -> tuple[int, int]:
    return (1, 2) if spec.data_format == "channels_last" else (2, 3)


def _shifted_pair(got: np.ndarray, ref: np.ndarray, axis: int,
                  delta: int) -> tuple[np.ndarray, np.ndarray]:
    """``got[o]`` against ``ref[o + delta]`` along ``axis``, on the overlap."""
    n = ref.shape[axis]
    g = np.take(got, range(max(0, -delta), n - max(0, delta)), axis=axis)
    r = np.take(ref, range(max(0, delta), n - max(0, -delta)), axis=axis)
    return g, r


def _shift_hint(spec: Conv2DTransposeSpec, got: np.ndarray, ref: np.ndarray,
                tol: Tolerance) -> str | None:
    """Does the model equal the reference shifted along height and/or width (crop side)?"""
    ah, aw = _spatial_axes(spec)
    shifts = [(dh, dw) for dh in (0, 1, -1, 2, -2) for dw in (0, 1, -1, 2, -2) if dh or dw]
    for dh, dw in sorted(shifts, key=lambda p: abs(p[0]) + abs(p[1])):
        if ref.shape[ah] <= abs(dh) + 1 or ref.shape[aw] <= abs(dw) + 1:
            continue
        g, r = _shifted_pair(got, ref, ah, dh)
        g, r = _shifted_pair(g, r, aw, dw)
        if _compare(g, r, tol).ok:
            moved = [f"{d:+d} along {name}" for d, name in ((dh, "height"), (dw, "width")) if d]
            keras = "; ".join(f"{name}: {_crop_text(spec, name)}"
                              for d, name in ((dh, "height"), (dw, "width")) if d)
            return (f"the model equals the Keras output shifted by {' and '.join(moved)}: "
                    f"the crop is on the wrong side (pads begin/end swapped? Keras {keras})")
    return None


def _alternatives(spec: Conv2DTransposeSpec, kernel: np.ndarray,
                  bias: np.ndarray | None) -> list[tuple[str, Conv2DTransposeSpec, np.ndarray,
                                                         np.ndarray | None]]:
    """Known mistakes as (description, spec, kernel, bias) to reproduce with the reference."""
    alts = [("the kernel is flipped spatially (ConvTranspose takes the Keras kernel unflipped: "
             "W = kernel.transpose(3, 2, 0, 1))", spec, kernel[::-1, ::-1], bias)]
    if kernel.shape[2] == kernel.shape[3]:
        alts.append(("the kernel's in/out channel axes are swapped (W must be "
                     "kernel.transpose(3, 2, 0, 1), i.e. (C_in, filters, kh, kw))",
                     spec, kernel.transpose(0, 1, 3, 2), bias))
    if kernel.shape[0] == kernel.shape[1] and kernel.shape[0] > 1:
        alts.append(("the kernel's height/width axes are swapped", spec,
                     kernel.transpose(1, 0, 2, 3), bias))
    if bias is not None and np.any(bias):
        alts.append(("the bias is missing", dataclasses.replace(spec, use_bias=False),
                     kernel, None))
    if spec.activation != "linear":
        alts.append((f"the activation {spec.activation!r} is missing",
                     dataclasses.replace(spec, activation="linear"), kernel, bias))
    return alts


def _diagnose(spec: Conv2DTransposeSpec, x: np.ndarray, kernel: np.ndarray,
              bias: np.ndarray | None, got: np.ndarray, ref: np.ndarray,
              tol: Tolerance) -> list[str]:
    """Likely causes of a value mismatch, most specific first."""
    hints = []
    shifted = _shift_hint(spec, got, ref, tol)
    if shifted:
        hints.append(shifted)
    for text, alt_spec, k, b in _alternatives(spec, kernel, bias):
        alt = keras_conv2d_transpose(alt_spec, x, k, b)
        if alt.shape == got.shape and _compare(got, alt, tol).ok:
            hints.append(f"the model equals the reference when {text}")
    if not hints:
        hints.extend(_where_hints(spec, got, ref, tol))
    return hints


def _where_hints(spec: Conv2DTransposeSpec, got: np.ndarray, ref: np.ndarray,
                 tol: Tolerance) -> list[str]:
    """Where the bad elements are: border rows/columns only, or a per-channel offset."""
    bad = np.abs(got.astype(np.float64) - ref) > tol.atol + tol.rtol * np.abs(ref)
    hints = []
    for axis, name in zip(_spatial_axes(spec), ("height", "width")):
        per = bad.any(axis=tuple(a for a in range(4) if a != axis))
        idx = np.flatnonzero(per)
        n = per.size
        if idx.size and idx.size <= 2 and all(i < 2 or i >= n - 2 for i in idx):
            hints.append(f"only {name} position(s) {', '.join(map(str, idx))} of {n} differ: "
                         f"first/last rows differ -> crop side or output_padding "
                         f"(Keras: {_crop_text(spec, name)})")
    ch = 3 if spec.data_format == "channels_last" else 1
    d = got.astype(np.float64) - ref
    spread = d.max(axis=tuple(a for a in range(4) if a != ch)) - \
        d.min(axis=tuple(a for a in range(4) if a != ch))
    if bad.any() and np.all(spread <= 2 * (tol.atol + tol.rtol * np.abs(ref).max())):
        hints.append("the error is a constant offset per output channel: the bias is wrong "
                     "or missing")
    return hints


def _value_message(spec: Conv2DTransposeSpec, cmp: _Comparison, got: np.ndarray,
                   ref: np.ndarray) -> str:
    where = cmp.worst
    layout = "NHWC" if spec.data_format == "channels_last" else "NCHW"
    return (f"values differ: max abs error {cmp.max_abs:.3g} (max rel {cmp.max_rel:.3g}); "
            f"worst at output index {where} ({layout}): model {float(got[where]):.6g}, "
            f"Keras {float(ref[where]):.6g}")


# --------------------------------------------------------------------------
# Public entry points
# --------------------------------------------------------------------------

def _in_channels(spec: Conv2DTransposeSpec, kernel: np.ndarray | None, x: np.ndarray | None,
                 input_shape: Sequence[int | None] | None) -> int | None:
    if kernel is not None:
        return int(np.shape(kernel)[3])
    for shape in (None if x is None else x.shape, input_shape, spec.input_shape):
        if shape is not None and len(shape) == 4 and shape[spec.channels_axis] is not None:
            return int(shape[spec.channels_axis])  # type: ignore[arg-type]
    return None


def _export(spec: Conv2DTransposeSpec, kernel: np.ndarray, bias: np.ndarray | None,
            input_shape: Sequence[int | None] | None, opset: int | None,
            notes: list[str]) -> Any:
    from .exporter import DEFAULT_OPSET, export_spec

    dtype = None
    if spec.dtype not in ("float32", "float16"):
        dtype = "float32"
        notes.append(f"onnxruntime cannot run {spec.dtype}; validated the float32 export")
    return export_spec(spec, kernel, bias, input_shape=input_shape,
                       opset=DEFAULT_OPSET if opset is None else opset, dtype=dtype)


def _check_sizes(spec: Conv2DTransposeSpec, shape: Sequence[int], in_ch: int) -> None:
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


def validate_spec(spec: Conv2DTransposeSpec, *, kernel: np.ndarray | None = None,
                  bias: np.ndarray | None = None, x: np.ndarray | None = None,
                  input_shape: Sequence[int | None] | None = None, seed: int = 0,
                  rtol: float | None = None, atol: float | None = None,
                  providers: Sequence[str] | str | None = None, opset: int | None = None,
                  model: Any = None, name: str | None = None,
                  weights_note: str | None = None,
                  input_source: str | None = None) -> ValidationResult:
    """Export ``spec`` (or take ``model``), run it in onnxruntime and compare with the reference.

    ``x`` (Keras layout) or a seeded standard-normal input of ``input_shape``
    (else ``spec.input_shape``, else a small default; unknown dims filled by
    :func:`default_input_shape`). Without ``kernel`` the weights are seeded
    random (:func:`validation_weights`). ``input_source`` says where
    ``input_shape`` came from, for the report. Returns a
    :class:`ValidationResult`; bad arguments raise :class:`ConvtError`.
    """
    _require_spec(spec)
    prov = resolve_providers(providers)
    notes: list[str] = []
    x = None if x is None else np.asarray(x)
    in_ch = _in_channels(spec, kernel, x, input_shape)
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
    _check_sizes(spec, shape, in_ch)
    if kernel is None:
        kernel, bias = validation_weights(spec, in_ch, seed)
        weights_note = weights_note or (f"seeded random validation weights (seed {seed}), "
                                        f"not the config's initializers")
    from .weights import check_weights

    kernel, bias = check_weights(spec, kernel, bias, in_ch)
    if model is None:
        model = _export(spec, kernel, bias, input_shape if x is None else x.shape, opset, notes)
    else:
        model = _load_model(model)
    sess = _session(model, prov)
    in_name, dtype, _ = _model_io(sess)
    if x is None:
        x = np.random.default_rng([int(seed), 3]).standard_normal(shape)
    x = x.astype(dtype)
    k_ref = kernel.astype(dtype).astype(np.float64)
    b_ref = None if bias is None else bias.astype(dtype).astype(np.float64)
    pre, ref = _reference(spec, x, k_ref, b_ref, dtype)
    tol = _tolerance(dtype, x, k_ref, b_ref, float(np.abs(pre).max()) if pre.size else 0.0,
                     rtol, atol)
    result = ValidationResult(
        name=name or spec.name or "layer", passed=False, input_shape=tuple(shape),
        input_source=source, reference_shape=tuple(ref.shape), model_shape=None,
        dtype=dtype.name, tolerance=tol, weights_source=weights_note or "given",
        providers=list(sess.get_providers()), notes=notes)
    try:
        got = np.asarray(sess.run(None, {in_name: x})[0])
    except Exception as exc:  # onnxruntime raises its own exception types
        result.error = f"onnxruntime failed: {str(exc).splitlines()[0][:300]}"
        result.message = result.error
        return result
    return _judge(result, spec, x.astype(np.float64), k_ref, b_ref, got, ref)


def _reference(spec: Conv2DTransposeSpec, x: np.ndarray, kernel: np.ndarray,
               bias: np.ndarray | None, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """(pre-activation, output) of the reference in float64.

    For a float16 model the pre-activation is rounded to float16 first, as
    Keras (and the model) hand float16 values to the activation; otherwise a
    discontinuous activation (``hard_shrink``) could flip at its threshold.
    """
    linear = dataclasses.replace(spec, activation="linear", dtype="float64")
    pre = keras_conv2d_transpose(linear, x.astype(np.float64), kernel, bias)
    if dtype == np.float16:
        pre = pre.astype(np.float16).astype(np.float64)
    return pre, apply_activation(spec.activation, pre)


def _judge(result: ValidationResult, spec: Conv2DTransposeSpec, x: np.ndarray,
           kernel: np.ndarray, bias: np.ndarray | None, got: np.ndarray,
           ref: np.ndarray) -> ValidationResult:
    result.model_shape = tuple(int(d) for d in got.shape)
    if got.shape != ref.shape:
        result.message, result.hints = _shape_message(spec, got.shape, ref.shape)
        return result
    cmp = _compare(got, ref, result.tolerance)
    result.max_abs_error, result.max_rel_error = cmp.max_abs, cmp.max_rel
    result.worst_index = cmp.worst
    result.passed = cmp.ok
    if not cmp.ok:
        result.message = _value_message(spec, cmp, got, ref)
        result.hints = _diagnose(spec, x, kernel, bias, got, ref, result.tolerance)
    return result


def validate_model(model_or_path: Any, spec: Conv2DTransposeSpec, *,
                   kernel: np.ndarray | None = None, bias: np.ndarray | None = None,
                   x: np.ndarray | None = None, input_shape: Sequence[int | None] | None = None,
                   seed: int = 0, rtol: float | None = None, atol: float | None = None,
                   providers: Sequence[str] | str | None = None,
                   name: str | None = None) -> ValidationResult:
    """Validate an existing model against ``spec``.

    Weights: ``kernel``/``bias`` when given (Keras layout; the only way to
    catch a wrong ``W``/``B`` in the model), else read back from the model by
    :func:`weights_from_model`.
    """
    _require_spec(spec)
    model = _load_model(model_or_path)
    note = "given"
    missing_bias = False
    if kernel is None:
        kernel, bias, note = weights_from_model(model, spec)
        missing_bias = spec.use_bias and "has no B" in note
    static = _model_input_shape(model, None)
    source = None
    if x is not None and static is not None:
        if len(np.shape(x)) != 4 or any(s is not None and s != d for s, d in zip(static, np.shape(x))):
            raise ConvtError(f"input: shape {tuple(np.shape(x))} does not fit the model's input "
                             f"{format_shape(static)}; give an input of that shape.", field="input")
    if input_shape is None and x is None:
        input_shape = _model_input_shape(model, spec)
        source = "the model's static input dims" if static and any(
            d is not None for d in static) else None
    result = validate_spec(spec, kernel=kernel, bias=bias, x=x, input_shape=input_shape,
                           seed=seed, rtol=rtol, atol=atol, providers=providers, model=model,
                           name=name, weights_note=note, input_source=source)
    config_ch = None if spec.input_shape is None else spec.input_shape[spec.channels_axis]
    model_ch = result.input_shape[spec.channels_axis]
    if result.passed and config_ch is not None and config_ch != model_ch:
        result.passed = False
        result.message = (f"the config's build_config input has {config_ch} channels but the "
                          f"model takes {model_ch}: the model is not this layer")
    if missing_bias and result.passed:
        result.passed = False
        result.message = ("the config has use_bias=True but the model's ConvTranspose has no "
                          "B input, so the model cannot reproduce the layer's bias; give "
                          "--weights to compare against the real bias, or fix the config")
    return result
