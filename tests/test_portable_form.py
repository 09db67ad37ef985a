"""The portable export form (issue 11): symmetric pads plus one constant Slice.

Claims, each checked against something independent of the exporter:

* geometry: for every Keras axis, ``portable_split`` keeps exactly Keras's
  window (begin and length from ``tests/support/oracles.keras_length``, REFERENCE.md
  written out again), its pads are symmetric, and a Slice exists only where
  the crop total is odd;
* numerics: the portable and the compact export, at fixed and at symbolic
  H/W, equal the loop-by-definition oracle (``tests/support/oracles.py``) on
  onnxruntime at several input sizes with ONE model (the Slice's constants do
  not depend on the size);
* ``convt check`` reports no portability warning (CT020) on the portable
  export of a grid of layers, and does report it on the compact export of an
  odd-crop layer (so the check can fail);
* ``--form`` is validated (one-line error, exit 2).

Tolerance: float32 sums of at most ``C*kh*kw`` (< 100) products of values
below ~3, so ``atol = rtol = 1e-5``.
"""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convt_tools import geometry as G
from convt_tools.errors import ConvtError
from convt_tools.exporter import describe_model, export_spec
from convt_tools.spec import make_spec
from support.oracles import keras_conv_transpose, keras_length

LAYERS = [  # (id, layer kwargs): odd and even crops, extension, dilation, rectangular
    ("k3s2-same-odd", dict(kernel_size=3, strides=2, padding="same")),
    ("k4s2-same-even", dict(kernel_size=4, strides=2, padding="same")),
    ("k5x3-s2x1-same", dict(kernel_size=(5, 3), strides=(2, 1), padding="same")),
    ("k3s2-same-op1", dict(kernel_size=3, strides=2, padding="same", output_padding=1)),
    ("k2s3-valid-extend", dict(kernel_size=2, strides=3, padding="valid")),
    ("k3-d2-same", dict(kernel_size=3, dilation_rate=2, padding="same")),
    ("k4x2-s1-same", dict(kernel_size=(4, 2), padding="same")),
    ("k3s2-valid-op1", dict(kernel_size=3, strides=2, padding="valid", output_padding=1)),
]


@settings(max_examples=300, deadline=None)
@given(k=st.integers(1, 8), s=st.integers(1, 5), d=st.integers(1, 3), n=st.integers(1, 9),
       padding=st.sampled_from(G.PADDINGS), op=st.one_of(st.none(), st.integers(0, 4)),
       )
def test_portable_split_keeps_the_keras_window(k, s, d, n, padding, op):
    if op is not None and op >= s:
        op = s - 1
    if s > 1:
        d = 1
    crop = G.keras_crop(k, s, d, padding, op)
    part = G.portable_split(crop)
    natural = (n - 1) * s + (k - 1) * d + 1
    out_len = keras_length(n, k, s, d, padding, op)
    # The node: symmetric pads, output_padding only where Keras extends.
    node_len = natural + part.output_padding - 2 * part.pad
    assert part.onnx().pad_begin == part.onnx().pad_end == part.pad
    assert part.output_padding == max(out_len - natural, 0)
    # The Slice keeps [slice_begin, node_len - slice_end): Keras's window.
    assert node_len - part.slice_begin - part.slice_end == out_len
    assert part.pad + part.slice_begin == max(natural - out_len, 0) // 2
    # Keras puts the odd extra at the end: never a cut at the start, one row at most.
    assert part.slice_begin == 0
    assert part.slice_end == (natural - out_len) % 2 if natural >= out_len else part.slice_end == 0


def test_portable_slice_constants():
    axes = [G.portable_split(G.AxisCrop(0, 1, 0)), G.portable_split(G.AxisCrop(1, 1, 0)),
            G.portable_split(G.AxisCrop(2, 3, 0))]
    assert G.portable_slice(axes, 2) == ([0, 0], [-1, -1], [2, 4])
    assert G.portable_slice(axes[1:2], 2) is None
    assert G.portable_slice([G.portable_split(G.AxisCrop(3, 1, 0))], 2) == \
        ([2], [G.INT64_MAX], [2])


def _ct_nodes(model):
    return [n for n in model.graph.node if n.op_type in ("ConvTranspose", "Slice")
            and n.name in ("ConvTranspose", "Crop")]


@pytest.mark.parametrize("form", ["portable", "compact"])
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("layer", LAYERS, ids=[lid for lid, _ in LAYERS])
def test_both_forms_match_the_oracle_at_every_size(layer, data_format, form, ort_run):
    _, kwargs = layer
    spec = make_spec(3, data_format=data_format, use_bias=True, **kwargs)
    rng = np.random.default_rng(1)
    kernel = rng.standard_normal(spec.kernel_shape(2)).astype(np.float32)
    bias = rng.standard_normal(3).astype(np.float32)
    sym = (None, None, None, 2) if data_format == "channels_last" else (None, 2, None, None)
    model = export_spec(spec, kernel, bias, input_shape=sym, form=form)
    crops = spec.crop_plan()
    odd = any(c.total > 0 and c.total % 2 for c in crops)
    nodes = [n.op_type for n in _ct_nodes(model)]
    assert nodes == (["ConvTranspose", "Slice"] if form == "portable" and odd
                     else ["ConvTranspose"])
    pads = describe_model(model)["pads"]
    if form == "portable":
        assert pads[:2] == pads[2:]
    for hw in ((1, 1), (4, 3), (5, 8)):
        shape = (2, *hw, 2) if data_format == "channels_last" else (2, 2, *hw)
        x = rng.standard_normal(shape).astype(np.float32)
        got = ort_run(model, x)[0]
        want = keras_conv_transpose(spec, x, kernel, bias)
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def _ct020(model) -> list[str]:
    from convt_tools.check import check_model

    report = check_model(model, numeric=False)
    return [f.code for n in report.nodes for f in n.findings if f.code == "CT020"]


@pytest.mark.parametrize("layer", LAYERS, ids=[lid for lid, _ in LAYERS])
def test_check_reports_no_portability_warning_on_the_default_export(layer):
    spec = make_spec(3, **layer[1])
    model = export_spec(spec, input_shape=(None, None, None, 2))
    assert _ct020(model) == []


@pytest.mark.parametrize("rank", [1, 2, 3])
def test_check_warns_on_the_compact_form_only(rank):
    spec = make_spec(3, 3, strides=2, padding="same", rank=rank)
    shape = (None,) * (rank + 1) + (2,)
    assert _ct020(export_spec(spec, input_shape=shape)) == []
    assert _ct020(export_spec(spec, input_shape=shape, form="compact")) == ["CT020"]


def test_form_is_validated():
    spec = make_spec(3, 3, strides=2, padding="same")
    with pytest.raises(ConvtError) as err:
        export_spec(spec, input_shape=(None, None, None, 2), form="symmetric")
    assert err.value.field == "form"
    assert "portable, compact" in str(err.value)


def test_form_is_recorded_in_the_model(tmp_path):
    spec = make_spec(3, 3, strides=2, padding="same")
    for form in ("portable", "compact"):
        model = export_spec(spec, input_shape=(None, None, None, 2), form=form)
        props = {p.key: p.value for p in model.metadata_props}
        assert props["convt.form"] == form
        info = describe_model(model)
        assert info["form"] == form
        assert (info["crop_slice"] is not None) == (form == "portable")
    onnx.checker.check_model(model, full_check=True)
    assert json.loads(props["convt.crop_plan"])[0]["crop_end"] == 1


def test_cli_export_form_option(cli, tmp_path):
    out = tmp_path / "m.onnx"
    args = ["export", "--filters", 2, "--kernel-size", 3, "--strides", 2, "--padding", "same",
            "--input-shape", "None,?,?,3", "-o", out]
    res = cli(*args, "--form", "compact")
    assert res.exit_code == 0, res.output
    assert "pads [0, 0, 1, 1]" in res.output
    assert "(asymmetric pads)" in res.output
    res = cli(*args)
    assert res.exit_code == 0, res.output
    assert "pads [0, 0, 0, 0]" in res.output
    assert "Slice (crop) starts [0, 0], ends [-1, -1], axes [2, 3]" in res.output
    res = cli(*args, "--form", "wide")
    assert res.exit_code == 2
    assert "Traceback" not in res.output
