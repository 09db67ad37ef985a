"""Export a Keras ``Conv{1,2,3}DTranspose`` as a portable ONNX ``ConvTranspose``.

The graph is built (:func:`build_graph`) from a rank-generic
:class:`~convt_tools.op.ConvTransposeOp` (layout, kernel shape, strides,
dilations, per-axis pads/output_padding, group, optional crop Slice,
activation) and ONNX-layout weights, so any producer of that description (the
Keras spec here, a torch spec) gets the same graph. For ``channels_last``
(``channels_first`` drops both Transposes), spatial rank ``r``::

    input (N, *spatial, C) -> Transpose(0, r+1, 1..r) -> ConvTranspose [-> Slice]
        -> Transpose(0, 2..r+1, 1) -> activation (acting on the Keras layout,
        axis -1 as Keras) -> output

ConvTranspose attributes of a Keras layer, all from
:meth:`ConvTransposeSpec.crop_plan` through :mod:`convt_tools.geometry`, in
one of two forms (:data:`FORMS`); 2-D shown, every rank alike::

    W = kernel.transpose(3, 2, 0, 1)          (C_in, filters, kh, kw); no flip
                                              (rank r: transpose(r+1, r, 0..r-1))
    strides, dilations, kernel_shape; B = bias when use_bias
    output_padding = [h.extend, w.extend]     only when an axis extends

    portable (default; geometry.portable_split):
      pads = [p_h, p_w, p_h, p_w], p = min(begin, end)   symmetric on every axis
      then, only where an axis has an odd crop, ONE constant Slice on the NCHW
      tensor: starts = begin - p, ends = -(end - p), axes = those axes
    compact (crop.onnx()):
      pads = [h.begin, w.begin, h.end, w.end]   one node, asymmetric on odd crops

Both are exact for every input length (the Slice's constants do not depend on
it), so symbolic H/W stay exact. The portable form exists because asymmetric
pads are not read everywhere: onnxruntime's CUDA execution provider runs such
a ConvTranspose on the CPU, onnx2torch refuses it, older TensorRT and OpenCV
dnn do not support it. Layers whose crop is symmetric are one node in both
forms. No ``auto_pad`` and no ``output_shape`` (both are handled
inconsistently by runtimes; see REFERENCE.md).
"""

from __future__ import annotations

import json
from typing import Any, Sequence

import numpy as np
import onnx
from onnx import helper, numpy_helper  # noqa: F401 (onnx.numpy_helper)

from . import __version__
from .activations import ACTIVATIONS
from .errors import ConvtError, fail
from .initializers import initialize_weights
from .layer import input_shape as layer_input_shape
from .onnxbase import (
    GraphBuilder, check_int64, external_data_threshold, pending_tensor, uses_external_data,
)
from .op import ConvTransposeOp
from .spec import Conv2DTransposeSpec, format_shape
from .weights import check_weights

__all__ = ["DEFAULT_FORM", "DEFAULT_OPSET", "FORMS", "MIN_OPSET", "build_graph", "check_opset",
           "describe_model", "export_spec", "max_opset"]

DEFAULT_OPSET = 17
# Export forms (module docstring): symmetric pads + constant Slice, or one node.
FORMS = ("portable", "compact")
DEFAULT_FORM = "portable"
MIN_OPSET = 11
RUNNABLE_DTYPES = ("float32", "float16")
UNRUNNABLE_DTYPES = ("float64", "bfloat16")
# ConvTranspose accepts bfloat16 from opset 22 on.
_BFLOAT16_MIN_OPSET = 22

INPUT_NAME = "input"
OUTPUT_NAME = "output"


def max_opset() -> int:
    """The newest default-domain opset the installed onnx knows."""
    return onnx.defs.onnx_opset_version()


# ---------------------------------------------------------------- argument checks

def check_form(form: Any) -> str:
    """``form`` if it is one of :data:`FORMS`, else a ConvtError naming them."""
    if not isinstance(form, str) or form not in FORMS:
        raise fail("form", form, f"expected one of {', '.join(FORMS)}")
    return form


def check_opset(opset: Any) -> int:
    hi = max_opset()
    if isinstance(opset, bool) or not isinstance(opset, (int, np.integer)) \
            or not MIN_OPSET <= opset <= hi:
        raise fail("opset", opset, f"expected an integer from {MIN_OPSET} to {hi} "
                   f"(the newest opset of the installed onnx {onnx.__version__})")
    return int(opset)


def _numpy_dtype(name: str) -> np.dtype:
    if name == "bfloat16":
        import ml_dtypes  # onnx's own dependency for bfloat16 arrays

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


def _resolve_dtype(spec: Conv2DTransposeSpec, dtype: Any, allow_unsupported: bool,
                   opset: int) -> tuple[np.dtype, list[str]]:
    """The model's float dtype (``dtype`` overrides ``spec.dtype``) and notes about it."""
    given = spec.dtype if dtype is None else dtype
    try:
        name = given if isinstance(given, str) else np.dtype(given).name
    except TypeError:
        name = repr(given)
    allowed = RUNNABLE_DTYPES + UNRUNNABLE_DTYPES
    if name not in allowed:
        raise fail("dtype", given, f"expected one of {', '.join(allowed)}")
    notes: list[str] = []
    if name in UNRUNNABLE_DTYPES:
        if not allow_unsupported:
            raise ConvtError(
                f"dtype: got {name!r}; onnxruntime's CPU provider has no {name} ConvTranspose "
                f"kernel, so use float32 or float16, or allow_unsupported_dtype=True "
                f"(--allow-unsupported-dtype) to export a model it cannot run.", field="dtype")
        if name == "bfloat16" and opset < _BFLOAT16_MIN_OPSET:
            raise ConvtError(
                f"opset: got {opset} with dtype bfloat16; ONNX ConvTranspose accepts bfloat16 "
                f"only from opset {_BFLOAT16_MIN_OPSET} to {max_opset()}.", field="opset")
        notes.append(f"dtype {name} was exported on request; onnxruntime's CPU provider "
                     f"cannot run this model.")
    return _numpy_dtype(name), notes


def _in_channels(kernel: Any, in_channels: Any, shape_channels: int | None) -> int | None:
    """Input channels from the kernel, the argument, or the input shape (must agree)."""
    if in_channels is not None and (isinstance(in_channels, bool) or not isinstance(
            in_channels, (int, np.integer)) or in_channels < 1):
        raise fail("in_channels", in_channels, "expected a positive integer")
    found = [c for c in (in_channels, shape_channels) if c is not None]
    if len(set(found)) > 1:
        raise ConvtError(
            f"in_channels: got {in_channels} but input_shape has {shape_channels} channels; "
            f"they must match.", field="in_channels")
    channels = found[0] if found else None
    if kernel is None and channels is None:
        raise ConvtError(
            "input_shape: the number of input channels is unknown; give input_shape "
            "(e.g. (None, None, None, 3) for channels_last), in_channels, or a kernel.",
            field="input_shape")
    return None if channels is None else int(channels)


def _input_shape(spec: Conv2DTransposeSpec, input_shape: Sequence[int | None] | None,
                 channels: int | None) -> tuple[int | None, ...]:
    """The Keras-layout input shape of the model.

    ``input_shape`` is taken as given (batch included); without it the
    spec's build-config shape is used with the batch made dynamic; without
    that all but the channels are dynamic.
    """
    if input_shape is not None:
        return spec.check_input_shape(input_shape, channels)
    return layer_input_shape(spec, None, channels)


def _check_not_empty(spec: Conv2DTransposeSpec, shape: tuple[int | None, ...]) -> None:
    """Refuse fixed zero-size dims other than the batch (legal in Keras, see ``convt run``).

    onnxruntime (1.32) runs a batch of 0, but refuses a zero-length output axis
    ("Computed output dimension is <= 0") and a zero-length input axis whenever
    output_padding is set ("inconsistent with input spatial dimensions"); a
    zero-channel input needs an empty W. So only the batch may be 0.
    """
    out = spec.output_shape(shape)
    names = spec.layout.dim_names()
    for where, dims in (("input", shape), ("output", out)):
        for name, n in list(zip(names, dims))[1:]:
            if n is not None and n <= 0:
                raise ConvtError(
                    f"input_shape: got {format_shape(shape)}, for which the {where} {name} is "
                    f"{n} (Keras's output is {format_shape(out)}: padding {spec.padding!r}, "
                    f"kernel {spec.kernel_size}, output_padding {spec.output_padding}); "
                    f"onnxruntime rejects zero-size ConvTranspose tensors there, so use a "
                    f"larger input or leave that dim unknown (convt shape and convt run "
                    f"follow Keras there; a batch of 0 exports).", field="input_shape")


# ---------------------------------------------------------------- graph pieces

def _dims(shape: Sequence[int | None], names: Sequence[str]) -> list[int | str]:
    """Static dims stay ints; unknown ones become the given symbolic names."""
    return [name if dim is None else int(dim) for dim, name in zip(shape, names)]


def _dim_names(spec: Conv2DTransposeSpec, prefix: str) -> tuple[str, ...]:
    return spec.layout.dim_names(prefix)


def _out_names(spec: Conv2DTransposeSpec) -> tuple[str, ...]:
    """Output dim names; glu halves axis -1, so its symbol is ``<name>_half``."""
    names = _dim_names(spec, "out_")
    return names[:-1] + (names[-1] + "_half",) if spec.activation == "glu" else names


def _conv_attrs(spec: Conv2DTransposeSpec, form: str = "compact") -> dict[str, Any]:
    """ConvTranspose attributes: pads/output_padding from the crop plan only (in ``form``)."""
    return ConvTransposeOp.from_keras(spec, form).attributes()


def _activation_typechecks(name: str, opset: int, dtype: np.dtype) -> bool:
    """Whether the table's ONNX form of ``name`` type-checks in ``dtype`` at ``opset``.

    Some ops lack low-precision types (CumSum and Range have no float16,
    TopK and Shrink no bfloat16), so this builds the activation alone on a
    rank-4 tensor and runs the full checker on it.
    """
    probe = GraphBuilder(opset, dtype, prefix="probe_")
    out = ACTIVATIONS[name].onnx(probe, "x")
    if not probe.nodes:
        return True
    elem = probe.float_enum
    graph = helper.make_graph(
        probe.nodes, "probe", [helper.make_tensor_value_info("x", elem, list("abcd"))],
        [helper.make_tensor_value_info(out, elem, list("efgh"))], initializer=probe.initializers)
    opsets = [helper.make_opsetid("", opset)]
    model = helper.make_model(graph, opset_imports=opsets,
                              ir_version=min(helper.find_min_ir_version_for(opsets),
                                             onnx.IR_VERSION))
    try:
        onnx.checker.check_model(model, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError):
        return False
    return True


def _apply_activation(activation: str, g: GraphBuilder, y: str) -> tuple[str, list[str]]:
    """The table's activation on ``y``; in float32 between Casts where the dtype lacks an op."""
    row = ACTIVATIONS[activation]
    if row.name == "linear" or g.dtype == np.float32 or (
            g.dtype != np.float16 and _activation_typechecks(activation, g.opset, g.dtype)):
        return row.onnx(g, y), []
    # float16: always in float32. onnxruntime's CPU float16 kernels differ by opset
    # (e.g. Softplus at opset 18 overflows to inf from |x| >= 89), and some ops have
    # no float16 form at all (CumSum, Range).
    sub = GraphBuilder(g.opset, np.float32, prefix="f32_")
    out32 = row.onnx(sub, g.op("Cast", y, to=onnx.TensorProto.FLOAT))
    g.nodes.extend(sub.nodes)
    g.initializers.extend(sub.initializers)
    note = (f"activation {activation} is computed in float32 (between Casts), then "
            f"rounded to {g.dtype.name}.")
    return g.op("Cast", out32, to=g.float_enum), [note]


def _rename_output(nodes: list[onnx.NodeProto], old: str, new: str) -> None:
    """Rename tensor ``old`` to ``new`` wherever a node produces or consumes it."""
    for node in nodes:
        for i, name in enumerate(node.output):
            if name == old:
                node.output[i] = new
        for i, name in enumerate(node.input):
            if name == old:
                node.input[i] = new


def build_graph(op: ConvTransposeOp, w: np.ndarray, b: np.ndarray | None, dtype: np.dtype,
                opset: int, in_dims: Sequence[int | str], out_dims: Sequence[int | str],
                name: str, notes: list[str], *,
                dilation_field: str = "dilation_rate") -> onnx.GraphProto:
    """The graph of the module docstring from ``op`` and ONNX-layout ``W``/``B``.

    Refuses sizes ONNX/onnxruntime cannot hold (:meth:`ConvTransposeOp.check_sizes`;
    ``dilation_field`` names the dilation in the user's framework).

    ``in_dims``/``out_dims``: the model's input/output dims in ``op.layout``
    (ints or symbolic names). ``W`` gets ``op``'s zero kernel taps (exact
    zeros). Appends to ``notes`` what the reader should know.
    """
    check_int64("input_shape", list(in_dims))
    for key, value in op.attributes().items():    # the layer's own numbers first, by name
        check_int64(key, value)
    check_int64("output_shape", list(out_dims))   # from the layer and the input shape
    op.check_sizes([d if isinstance(d, int) else None for d in op.layout.spatial(in_dims)],
                   dilation_field)
    g = GraphBuilder(opset, dtype)
    x = INPUT_NAME
    to_cf, from_cf = op.layout.to_channels_first, op.layout.from_channels_first
    if to_cf is not None:
        x = g.op("Transpose", x, perm=list(to_cf))
    if any(before or after for before, after in op.taps):
        w = np.pad(w, [(0, 0), (0, 0), *op.taps])
    if w.size * np.dtype(dtype).itemsize > external_data_threshold():
        # Above protobuf's limit the bytes never enter the proto (convt_tools.onnxbase).
        g.initializers.append(pending_tensor("W", w, dtype))
        inputs = [x, "W"]
    else:
        inputs = [x, g.const(w, name="W")]
    if b is not None:
        inputs.append(g.const(b, name="B"))
    y = g.op("ConvTranspose", *inputs, name="ConvTranspose", **op.attributes())
    if op.crop_slice is not None:
        starts, ends, axes = (g.const(list(v), dtype=np.int64, name=f"crop_{n}")
                              for v, n in zip(op.crop_slice, ("starts", "ends", "axes")))
        y = g.op("Slice", y, starts, ends, axes, name="Crop")
    if from_cf is not None:
        y = g.op("Transpose", y, perm=list(from_cf))
    result, act_notes = _apply_activation(op.activation, g, y)
    notes.extend(act_notes)
    _rename_output(g.nodes, result, OUTPUT_NAME)
    elem = g.float_enum
    return helper.make_graph(
        g.nodes, name,
        [helper.make_tensor_value_info(INPUT_NAME, elem, list(in_dims))],
        [helper.make_tensor_value_info(OUTPUT_NAME, elem, list(out_dims))],
        initializer=g.initializers)


def _build_graph(spec: Conv2DTransposeSpec, kernel: np.ndarray, bias: np.ndarray | None,
                 dtype: np.dtype, opset: int, in_shape: tuple[int | None, ...],
                 out_shape: tuple[int | None, ...], notes: list[str],
                 form: str) -> onnx.GraphProto:
    """A Keras spec's graph: :func:`build_graph` of its :class:`ConvTransposeOp`."""
    op = ConvTransposeOp.from_keras(spec, form)
    return build_graph(op, spec.weights_to_onnx(kernel, bias)[0], bias, dtype, opset,
                       _dims(in_shape, _dim_names(spec, "")), _dims(out_shape, _out_names(spec)),
                       _proto_text(spec.name or f"conv{spec.rank}d_transpose"), notes)


def _metadata(spec: Conv2DTransposeSpec, notes: list[str], form: str) -> dict[str, str]:
    plan = [{"axis": axis, "crop_begin": c.begin, "crop_end": c.end, "extend_end": c.extend}
            for axis, c in zip(spec.layout.axis_names, spec.crop_plan())]
    return {
        "convt.keras_config": json.dumps(spec.to_config(), sort_keys=True),
        "convt.crop_plan": json.dumps(plan),
        "convt.data_format": spec.data_format,
        "convt.class_name": spec.class_name,
        "convt.form": form,
        "convt.notes": json.dumps(notes),
    }


def _proto_text(text: str) -> str:
    """``text`` storable in a protobuf string: a lone surrogate (legal in a JSON name, not in
    UTF-8) becomes its escape ``\\ud800`` instead of an UnicodeEncodeError."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


# ---------------------------------------------------------------- public API

def export_spec(spec: Conv2DTransposeSpec, kernel: Any = None, bias: Any = None, *,
                input_shape: Sequence[int | None] | None = None, in_channels: int | None = None,
                opset: int = DEFAULT_OPSET, seed: int = 0, dtype: Any = None,
                allow_unsupported_dtype: bool = False,
                form: str = DEFAULT_FORM) -> onnx.ModelProto:
    """Build the ONNX model of ``spec`` (see the module docstring for the graph).

    Graph input ``"input"`` and output ``"output"`` are in the Keras layout.
    Unknown dims (``None`` in ``input_shape``) become symbolic (``batch``,
    ``height``, ``width``; ``out_height``, ``out_width`` on the output); the
    output's static dims are :meth:`Conv2DTransposeSpec.activated_output_shape`.
    Without ``input_shape`` the spec's build-config shape is used (batch
    dynamic), else only the channel dim is fixed.

    ``kernel``/``bias`` are Keras-layout arrays; with ``kernel=None`` they are
    drawn from the spec's initializers with ``seed``. The model dtype is
    ``dtype`` or ``spec.dtype``; float64 and bfloat16 need
    ``allow_unsupported_dtype`` (onnxruntime CPU cannot run them).
    ``ir_version`` is the lowest that supports ``opset``. ``form`` is
    ``"portable"`` (symmetric pads plus a constant Slice where a crop is odd)
    or ``"compact"`` (one ConvTranspose with asymmetric pads).
    """
    if not isinstance(spec, Conv2DTransposeSpec):
        raise fail("spec", type(spec).__name__, "expected a layer spec from make_spec, "
                   "parse_config or load_config (parse a config dict with parse_config)")
    form = check_form(form)
    opset = check_opset(opset)
    np_dtype, notes = _resolve_dtype(spec, dtype, allow_unsupported_dtype, opset)
    shape_channels = None
    if input_shape is not None:
        _check_not_empty(spec, spec.check_input_shape(input_shape))
        shape_channels = spec.check_input_shape(input_shape)[spec.channels_axis]
    elif spec.input_shape is not None:
        shape_channels = spec.check_input_shape(spec.input_shape)[spec.channels_axis]
    channels = _in_channels(kernel, in_channels, shape_channels)
    if kernel is None:
        if bias is not None:
            raise ConvtError("bias: got a bias without a kernel; give both, or neither to "
                             "initialise them from the layer's initializers.", field="bias")
        assert channels is not None  # _in_channels refuses no kernel and no channels
        kernel, bias = initialize_weights(spec, channels, seed)
        notes.append(f"weights initialised with seed {seed} from {spec.kernel_initializer[0]}"
                     + (f" / {spec.bias_initializer[0]}" if spec.use_bias else "")
                     + " (not trained weights).")
    kernel, bias = check_weights(spec, kernel, bias, channels)
    in_shape = _input_shape(spec, input_shape, int(kernel.shape[-1]))
    _check_not_empty(spec, in_shape)
    out_shape = spec.activated_output_shape(in_shape)
    graph = _build_graph(spec, kernel, bias, np_dtype, opset, in_shape, out_shape,
                         notes, form)
    opsets = [helper.make_opsetid("", opset)]
    ir_version = min(helper.find_min_ir_version_for(opsets), onnx.IR_VERSION)
    model = helper.make_model(graph, opset_imports=opsets, ir_version=ir_version,
                              producer_name="convt-tools", producer_version=__version__,
                              doc_string=_proto_text(
                                  f"Keras {spec.class_name} {spec.name or ''}".strip()))
    helper.set_model_props(model, _metadata(spec, spec.notes() + notes, form))
    if not uses_external_data(model):
        # Larger models cannot be serialised in memory; check those after saving.
        onnx.checker.check_model(model)
    return model


# ---------------------------------------------------------------- reporting

def _value_dims(value: onnx.ValueInfoProto) -> list[int | str]:
    return [d.dim_param if d.HasField("dim_param") else int(d.dim_value)
            for d in value.type.tensor_type.shape.dim]


def _after_qdq(model: onnx.ModelProto, name: str) -> str:
    """``name``, or where a QuantizeLinear -> DequantizeLinear pair on it leads (int8 export)."""
    for op in ("QuantizeLinear", "DequantizeLinear"):
        nxt = next((n for n in model.graph.node if n.op_type == op and n.input[0] == name), None)
        if nxt is None:
            return name
        name = nxt.output[0]
    return name


def describe_model(model: onnx.ModelProto) -> dict[str, Any]:
    """A JSON-able summary of an exported model, read back from the model itself."""
    conv = next(n for n in model.graph.node if n.op_type == "ConvTranspose")
    attrs = {a.name: list(helper.get_attribute_value(a)) for a in conv.attribute
             if a.type == onnx.AttributeProto.INTS}
    props = {p.key: p.value for p in model.metadata_props}
    config = json.loads(props.get("convt.keras_config", "{}"))
    elem = model.graph.input[0].type.tensor_type.elem_type
    crop = next((n for n in model.graph.node if n.op_type == "Slice" and n.name == "Crop"
                 and n.input[0] == _after_qdq(model, conv.output[0])), None)
    consts = {t.name: t for t in model.graph.initializer} if crop is not None else {}
    crop_slice = None if crop is None else {
        key: [int(v) for v in onnx.numpy_helper.to_array(consts[name]).tolist()]
        for key, name in zip(("starts", "ends", "axes"), crop.input[1:4])}
    return {
        "opset": next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")),
        "ir_version": model.ir_version,
        "dtype": helper.tensor_dtype_to_np_dtype(elem).name,
        "data_format": props.get("convt.data_format"),
        "class_name": props.get("convt.class_name"),
        "input": {"name": model.graph.input[0].name, "shape": _value_dims(model.graph.input[0])},
        "output": {"name": model.graph.output[0].name,
                   "shape": _value_dims(model.graph.output[0])},
        "kernel_shape": attrs.get("kernel_shape"),
        "strides": attrs.get("strides"),
        "dilations": attrs.get("dilations"),
        "pads": attrs.get("pads"),
        "output_padding": attrs.get("output_padding"),
        "form": props.get("convt.form"),
        "crop_slice": crop_slice,
        "bias": len(conv.input) > 2,
        "activation": config.get("activation"),
        "crop_plan": json.loads(props.get("convt.crop_plan", "[]")),
        "notes": json.loads(props.get("convt.notes", "[]")),
    }
