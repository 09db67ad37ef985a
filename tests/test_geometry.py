"""convt_tools.geometry: the single-source claims, stated as properties.

* For every Keras axis (kernel, stride, dilation, padding, output_padding,
  input length) the repair planner's ONNX expression of the Keras window
  equals the spec's crop plan as ONNX attributes, and the exporter's pads and
  the reference's pads are exactly that plan.
* ``check``'s ``tf`` reading of an ``auto_pad`` SAME node is the spec's
  ``same`` crop with ``output_padding=None``.
* Every ONNX expression reproduces its window: the ONNX output length with
  the expressed pads (on the tap-padded kernel) is the window length, and its
  first output row is the window's ``begin``.

Keras's lengths themselves are checked against real Keras output in
test_spec.py (keras_spec_golden.json) and test_conformance.py.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convt_tools import geometry as G
from convt_tools.check.attrs import ConvTAttrs
from convt_tools.check.windows import intent_windows
from convt_tools.exporter import _conv_attrs
from convt_tools.reference import _keras_pads
from convt_tools.repair.plan import plan_axis
from convt_tools.spec import make_spec

SETTINGS = settings(max_examples=300, deadline=None)


@st.composite
def keras_layers(draw: st.DrawFn) -> tuple[dict, tuple[int, int]]:
    """A Keras-valid 2-axis layer (stride > 1 on any axis excludes dilation > 1) and sizes."""
    strides = (draw(st.integers(1, 5)), draw(st.integers(1, 5)))
    dilation = (1, 1) if max(strides) > 1 else (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    op = draw(st.one_of(st.none(), st.tuples(*(st.integers(0, s - 1) for s in strides))))
    kwargs = dict(filters=1, kernel_size=(draw(st.integers(1, 7)), draw(st.integers(1, 7))),
                  strides=strides, dilation_rate=dilation, output_padding=op,
                  padding=draw(st.sampled_from(G.PADDINGS)))
    return kwargs, (draw(st.integers(1, 9)), draw(st.integers(1, 9)))


@pytest.mark.slow
@SETTINGS
@given(keras_layers())
def test_repair_expression_of_keras_window_is_the_spec_crop_plan(layer: tuple) -> None:
    """Single source: repair's plan of every Keras window == spec.crop_plan() as ONNX attrs."""
    kwargs, sizes = layer
    spec = make_spec(**kwargs)
    plan = spec.crop_plan()
    ops = spec.output_padding or (None, None)
    expressed = []
    for i, n in enumerate(sizes):
        k, s, d = spec.kernel_size[i], spec.strides[i], spec.dilation_rate[i]
        crop = plan[i]
        natural = G.natural_length(n, k, s, d)
        window = crop.window(natural)
        assert window.length == G.keras_output_length(n, k, s, d, spec.padding, ops[i])
        assert plan_axis(window, natural, s, d) == crop.onnx()
        assert crop.onnx().taps_before == crop.onnx().taps_after == 0
        expressed.append(crop.onnx())
    attrs = _conv_attrs(spec, "compact")  # the one-node form; portable: test_portable_form.py
    assert attrs["pads"] == G.onnx_pads(expressed)
    assert attrs.get("output_padding") == G.onnx_output_padding(expressed)
    pads, output_padding = _keras_pads(spec)
    assert list(pads) == attrs["pads"]
    assert list(output_padding) == [c.extend for c in plan]


@SETTINGS
@given(keras_layers())
def test_check_tf_reading_of_same_is_the_spec_same_crop(layer: tuple) -> None:
    """check's tf window for auto_pad SAME == the Keras 'same' (op None) window."""
    kwargs, sizes = layer
    ks, st_, dl = kwargs["kernel_size"], kwargs["strides"], kwargs["dilation_rate"]
    attrs = ConvTAttrs(rank=2, auto_pad="SAME_UPPER", pads=None, output_padding=(0, 0),
                       output_shape=None, strides=st_, dilations=dl, kernel_shape=ks,
                       kernel=ks, group=1)
    spec = make_spec(**{**kwargs, "padding": "same", "output_padding": None})
    want = tuple(c.window(G.natural_length(n, ks[i], st_[i], dl[i]))
                 for i, (c, n) in enumerate(zip(spec.crop_plan(), sizes)))
    assert intent_windows(attrs, sizes, "tf") == want


@settings(max_examples=500, deadline=None)
@given(k=st.integers(1, 6), s=st.integers(1, 4), d=st.integers(1, 3), n=st.integers(1, 8),
       begin=st.integers(-12, 12), length=st.integers(0, 30))
def test_express_reproduces_any_window(k: int, s: int, d: int, n: int, begin: int,
                                       length: int) -> None:
    """Any window: pads >= 0, 0 <= output_padding < s, and the padded node keeps exactly it."""
    natural = G.natural_length(n, k, s, d)
    e = G.express(G.Window(begin, length), natural, s, d)
    assert min(e.pad_begin, e.pad_end, e.taps_before, e.taps_after) >= 0
    assert 0 <= e.output_padding < s
    (k2,) = G.padded_kernel_shape([k], [e])
    # Output row o of the padded node is natural row o + pb of the padded kernel,
    # which is row o + pb - taps_before*d of the original one.
    assert e.pad_begin - e.taps_before * d == begin
    assert G.onnx_output_length(n, k2, s, d, e.pad_begin, e.pad_end, e.output_padding) == length


@pytest.mark.parametrize(("total", "crop"), [
    (0, G.AxisCrop(0, 0, 0)), (1, G.AxisCrop(0, 1, 0)), (2, G.AxisCrop(1, 1, 0)),
    (5, G.AxisCrop(2, 3, 0)), (-1, G.AxisCrop(0, 0, 1)), (-3, G.AxisCrop(0, 0, 3)),
])
def test_tf_split_puts_the_odd_extra_at_the_end(total: int, crop: G.AxisCrop) -> None:
    """TensorFlow's rule (REFERENCE.md 'Where the crop goes'), written out by hand."""
    assert G.tf_split(total) == crop
    assert crop.total == total


def test_public_names_stay_importable() -> None:
    import convt_tools
    import convt_tools.spec as S

    assert convt_tools.AxisCrop is S.AxisCrop is G.AxisCrop
    assert convt_tools.crop_for_axis is S.crop_for_axis is G.keras_crop
    assert convt_tools.keras_output_length is G.keras_output_length
