"""A direct-definition Conv2DTranspose, independent of the exporter (tests only).

Definition (per spatial axis, REFERENCE.md): every input pixel ``i`` scatters
``x[i] * kernel[a]`` to position ``i*s + a*d`` of the natural full-length
output (length ``L = (in-1)*s + (k-1)*d + 1``); no kernel flip. Keras's length
``O`` is computed here from REFERENCE.md's formulas (not from convt_tools.spec),
``total = L - O``: crop ``total // 2`` at the start and the rest at the end, or
append ``-total`` zeros at the end. Then bias, then the activation of the
shared table applied in the Keras layout. Slow (Python loops over input pixels
and taps); use on small sizes only. Computes in float64.
"""

from __future__ import annotations

import numpy as np

from convt_tools.activations import ACTIVATIONS


def keras_length(n: int, k: int, s: int, d: int, padding: str, op: int | None) -> int:
    """Keras 3's output length (REFERENCE.md, written out again on purpose)."""
    K = (k - 1) * d + 1
    if padding == "valid":
        return n * s + max(K - s, 0) if op is None else (n - 1) * s + K + op
    return n * s if op is None else (n - 1) * s + K % 2 + op


def _crop_or_extend(full: np.ndarray, axis: int, out_len: int) -> np.ndarray:
    total = full.shape[axis] - out_len
    if total >= 0:
        begin = total // 2
        return np.take(full, np.arange(begin, begin + out_len), axis=axis)
    pad = [(0, 0)] * full.ndim
    pad[axis] = (0, -total)
    return np.pad(full, pad)


def direct_conv_transpose(spec, x: np.ndarray, kernel: np.ndarray,
                          bias: np.ndarray | None) -> np.ndarray:
    """The layer output for ``x`` in ``spec.data_format`` (float64)."""
    x = np.asarray(x, dtype=np.float64)
    kernel = np.asarray(kernel, dtype=np.float64)
    if spec.data_format == "channels_first":
        x = x.transpose(0, 2, 3, 1)
    n, h, w, _ = x.shape
    kh, kw, filters, _ = kernel.shape
    (sh, sw), (dh, dw) = spec.strides, spec.dilation_rate
    full = np.zeros((n, (h - 1) * sh + (kh - 1) * dh + 1, (w - 1) * sw + (kw - 1) * dw + 1,
                     filters))
    for i in range(h):
        for j in range(w):
            for a in range(kh):
                for b in range(kw):
                    # (n, C) @ (C, filters): kernel[a, b] is (filters, C).
                    full[:, i * sh + a * dh, j * sw + b * dw, :] += x[:, i, j, :] @ kernel[a, b].T
    op = spec.output_padding or (None, None)
    out = _crop_or_extend(full, 1, keras_length(h, kh, sh, dh, spec.padding, op[0]))
    out = _crop_or_extend(out, 2, keras_length(w, kw, sw, dw, spec.padding, op[1]))
    if bias is not None:
        out = out + np.asarray(bias, dtype=np.float64)
    if spec.data_format == "channels_first":
        out = out.transpose(0, 3, 1, 2)
    return ACTIVATIONS[spec.activation].numpy(out)


# ---------------------------------------------------------------- shared checks

def run_onnx(model, x: np.ndarray) -> np.ndarray:
    """Run ``model`` on onnxruntime's CPU provider."""
    import onnxruntime as ort

    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": x})[0]


def abs_scale(spec, x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None) -> float:
    """max over outputs of sum |x||k| + |b|: what float rounding errors are relative to."""
    import dataclasses

    linear = dataclasses.replace(spec, activation="linear")
    b = None if bias is None else np.abs(bias)
    return max(1.0, float(direct_conv_transpose(linear, np.abs(x), np.abs(kernel), b).max(
        initial=0.0)))


def assert_portable(model, spec, kernel=None) -> None:
    """The structural contract of an exported model (see convt_tools.exporter)."""
    import json

    import onnx
    from onnx import numpy_helper

    onnx.checker.check_model(model, full_check=True)
    onnx.shape_inference.infer_shapes(model, strict_mode=True)
    assert model.producer_name == "convt-tools"
    assert model.ir_version <= onnx.IR_VERSION
    props = {p.key: p.value for p in model.metadata_props}
    assert json.loads(props["convt.keras_config"]) == json.loads(json.dumps(spec.to_config()))
    assert len(json.loads(props["convt.crop_plan"])) == 2
    assert [i.name for i in model.graph.input] == ["input"]
    assert [o.name for o in model.graph.output] == ["output"]
    for value in (*model.graph.input, *model.graph.output):
        assert value.type.tensor_type.HasField("shape")
        assert len(value.type.tensor_type.shape.dim) == 4
    convs = [n for n in model.graph.node if n.op_type == "ConvTranspose"]
    assert len(convs) == 1
    conv = convs[0]
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in conv.attribute}
    assert "auto_pad" not in attrs and "output_shape" not in attrs
    assert min(attrs["pads"]) >= 0
    hc, wc = spec.crop_plan()
    assert list(attrs["pads"]) == [hc.begin, wc.begin, hc.end, wc.end]
    if hc.extend or wc.extend:
        assert list(attrs["output_padding"]) == [hc.extend, wc.extend]
    else:
        assert "output_padding" not in attrs
    assert list(attrs["strides"]) == list(spec.strides)
    assert list(attrs["dilations"]) == list(spec.dilation_rate)
    assert list(attrs["kernel_shape"]) == list(spec.kernel_size)
    assert (len(conv.input) == 3) == spec.use_bias
    inits = {t.name: t for t in model.graph.initializer}
    w = numpy_helper.to_array(inits[conv.input[1]])
    assert w.shape[1:] == (spec.filters, *spec.kernel_size)
    if kernel is not None:
        np.testing.assert_array_equal(
            w, np.asarray(kernel).astype(w.dtype).transpose(3, 2, 0, 1))
