"""Property tests (hypothesis, bounded to run in well under a minute).

* Random valid configs of spatial rank 1, 2 and 3: onnxruntime on the
  exported model equals the NumPy reference (rtol = atol = 1e-5: both float32, different summation order and
  last-bit activation differences; see test_conformance.py), and the ONNX
  output shape equals ``spec.activated_output_shape``.
* Random malformed configs and shape strings: convt_tools raises
  :class:`ConvtError` (naming a field), never any other exception.

Expected *values* for the semantics come from the Keras fixtures
(test_conformance.py); here the reference and the exporter are checked
against each other on configs the fixtures do not enumerate.
"""

from __future__ import annotations

import string
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from convt_tools.activations import ACTIVATIONS, ALIASES
from convt_tools.errors import ConvtError
from convt_tools.spec import make_spec, parse_config, parse_shape

RTOL = 1e-5
ATOL = 1e-5
SETTINGS = settings(max_examples=50, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

ACT_NAMES = sorted(ACTIVATIONS) + sorted(a for a in ALIASES if a)
KNOWN_ACTIVATION_STRINGS = set(ACT_NAMES)


# ----------------------------------------------------------------- valid configs

@st.composite
def valid_cases(draw: st.DrawFn) -> dict[str, Any]:
    """A Keras-valid layer of spatial rank 1, 2 or 3, a non-empty input and seeded weights."""
    rank = draw(st.sampled_from([1, 2, 3]))
    strides = tuple(draw(st.integers(1, 3)) for _ in range(rank))
    dilation = (1,) * rank
    if max(strides) == 1:
        dilation = tuple(draw(st.integers(1, 2)) for _ in range(rank))
    op = draw(st.one_of(st.none(), st.tuples(*(st.integers(0, s - 1) for s in strides))))
    kwargs: dict[str, Any] = dict(
        filters=draw(st.integers(1, 3)),
        kernel_size=tuple(draw(st.integers(1, 5 if rank < 3 else 3)) for _ in range(rank)),
        strides=strides, dilation_rate=dilation, output_padding=op,
        padding=draw(st.sampled_from(["valid", "same", "SAME"])),
        data_format=draw(st.sampled_from(["channels_last", "channels_first"])),
        activation=draw(st.sampled_from(ACT_NAMES)),
        use_bias=draw(st.booleans()),
        rank=rank,
    )
    n, c = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    spatial = tuple(draw(st.integers(1, 5 if rank < 3 else 3)) for _ in range(rank))
    shape = (n, *spatial, c) if kwargs["data_format"] == "channels_last" else (n, c, *spatial)
    seed = draw(st.integers(0, 2**31 - 1))
    return {"kwargs": kwargs, "shape": shape, "seed": seed, "in_channels": c}


@SETTINGS
@given(case=valid_cases())
def test_onnx_export_equals_reference(case: dict[str, Any]) -> None:
    import onnxruntime as ort

    from convt_tools import exporter, reference

    spec = make_spec(**case["kwargs"])
    shape = case["shape"]
    try:
        out_shape = spec.activated_output_shape(shape)
    except ConvtError as exc:  # glu on an odd last axis: Keras fails too
        assert exc.field == "activation"
        assume(False)
        raise
    assume(all(d > 0 for d in out_shape))  # empty outputs: see test_conformance.py
    rng = np.random.default_rng(case["seed"])
    x = rng.standard_normal(shape).astype(np.float32)
    kernel = (rng.standard_normal(spec.kernel_shape(case["in_channels"])) * 0.5
              ).astype(np.float32)
    bias = (rng.standard_normal(spec.filters) * 0.5).astype(np.float32) if spec.use_bias \
        else None
    expected = reference.keras_conv2d_transpose(spec, x, kernel, bias)
    assert expected.shape == out_shape
    model = exporter.export_spec(spec, kernel, bias, input_shape=shape)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    got = sess.run(["output"], {"input": x})[0]
    assert got.shape == out_shape
    np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL)


# ----------------------------------------------------------------- malformed configs

_BASE: dict[str, Any] = {"filters": 2, "kernel_size": [3, 3], "strides": [2, 2],
                         "padding": "same", "output_padding": None,
                         "data_format": "channels_last", "dilation_rate": [1, 1],
                         "activation": "relu", "use_bias": True}

_junk = st.one_of(
    st.floats(allow_nan=True), st.text(max_size=8), st.booleans(),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
    st.lists(st.text(max_size=3), max_size=3),
)
_bad_pair = st.one_of(
    st.integers(max_value=0),
    st.lists(st.integers(1, 4), min_size=0, max_size=1),
    st.lists(st.integers(1, 4), min_size=3, max_size=4),
    st.tuples(st.integers(1, 4), st.integers(max_value=0)),
    st.tuples(st.integers(1, 4), st.floats()),
    st.tuples(st.booleans(), st.integers(1, 3)),
    _junk,
)
def _legal_output_padding(value: Any) -> bool:
    """Legal with strides (2, 2): an int or a pair of ints (not bools), each 0 or 1."""
    def ok(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 1
    if isinstance(value, (list, tuple)):
        return len(value) == 2 and all(ok(v) for v in value)
    return ok(value)


_BAD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "filters": st.one_of(st.integers(max_value=0), st.none(), _junk),
    "kernel_size": st.one_of(st.none(), _bad_pair),
    "strides": st.one_of(st.none(), _bad_pair),
    "dilation_rate": st.one_of(st.none(), _bad_pair),
    # >= stride (2) on some axis, negative, or a wrong type.
    "output_padding": st.one_of(st.integers(min_value=2), st.integers(max_value=-1),
                                st.tuples(st.integers(0, 1), st.integers(min_value=2)),
                                _bad_pair.filter(lambda v: not _legal_output_padding(v))),
    "padding": st.one_of(st.none(), st.integers(), st.text(max_size=8).filter(
        lambda s: s.lower() not in ("valid", "same"))),
    "data_format": st.one_of(st.integers(), st.text(max_size=16).filter(
        lambda s: s.lower() not in ("channels_last", "channels_first"))),
    "activation": st.one_of(
        st.integers(), st.lists(st.integers(), max_size=2),
        st.text(max_size=12).filter(lambda s: s not in KNOWN_ACTIVATION_STRINGS),
        st.fixed_dictionaries({"class_name": st.one_of(st.text(max_size=6), st.integers()),
                               "config": st.one_of(st.none(), st.integers(),
                                                   st.lists(st.integers(), max_size=2))})
        .filter(lambda d: d["class_name"] not in KNOWN_ACTIVATION_STRINGS)),
    "use_bias": st.one_of(st.integers(), st.none(), st.text(max_size=4)),
}


@st.composite
def malformed_configs(draw: st.DrawFn) -> tuple[Any, str | None]:
    """A config with exactly one defect; returns (config, field expected or None)."""
    kind = draw(st.sampled_from(["value", "value", "value", "unknown_key", "not_a_dict",
                                 "missing"]))
    cfg = dict(_BASE)
    if kind == "value":
        key = draw(st.sampled_from(sorted(_BAD_VALUES)))
        cfg[key] = draw(_BAD_VALUES[key])
        return cfg, key
    if kind == "unknown_key":
        allowed = set(_BASE) | {"name", "trainable", "dtype", "groups", "kernel_initializer",
                                "bias_initializer", "kernel_regularizer", "bias_regularizer",
                                "activity_regularizer", "kernel_constraint", "bias_constraint",
                                "batch_input_shape", "batch_shape", "input_shape", "class_name",
                                "config"}
        key = draw(st.text(string.ascii_letters + "_", min_size=1, max_size=12)
                   .filter(lambda k: k not in allowed))
        cfg[key] = draw(st.integers())
        return cfg, "config"
    if kind == "missing":
        del cfg[draw(st.sampled_from(["filters", "kernel_size"]))]
        return cfg, "config"
    return draw(st.one_of(st.lists(st.integers(), max_size=3), st.text(max_size=5),
                          st.integers(), st.none())), "config"


@SETTINGS
@given(item=malformed_configs())
def test_malformed_config_raises_convt_error(item: tuple[Any, str | None]) -> None:
    cfg, field = item
    with pytest.raises(ConvtError) as err:
        spec = parse_config(cfg)
        spec.activated_output_shape((1, 3, 3, 2))
    assert err.value.field is not None
    if field is not None:
        assert field in str(err.value), f"{err.value!r} does not name {field!r}"


@SETTINGS
@given(shape=st.one_of(
    st.lists(st.one_of(st.none(), st.integers(-3, 12)), min_size=0, max_size=6),
    st.lists(st.one_of(st.none(), st.integers(1, 12), st.floats(), st.text(max_size=2)),
             min_size=4, max_size=4)))
def test_bad_input_shape_raises_convt_error(shape: list[Any]) -> None:
    """Wrong rank, negative dims, wrong types: ConvtError (zero-size dims are legal in Keras)."""
    spec = make_spec(filters=2, kernel_size=3, strides=2, padding="same")
    ok_dims = all(d is None or (type(d) is int and d >= 0) for d in shape)
    assume(not (len(shape) == 4 and ok_dims))
    with pytest.raises(ConvtError) as err:
        spec.output_shape(shape)
    assert err.value.field == "input_shape"


@SETTINGS
@given(text=st.one_of(
    st.text(max_size=12),
    st.lists(st.sampled_from(["1", "4", "None", "?", "x", "", " ", "1.5", "-", "[", "]",
                              "()", "3e2", "null", "-1", "0x3"]), max_size=6)
    .map(",".join)))
def test_parse_shape_never_raises_anything_but_convt_error(text: str) -> None:
    try:
        dims = parse_shape(text)
    except ConvtError as exc:
        assert exc.field == "input_shape"
        return
    assert isinstance(dims, tuple)
    assert dims
    assert all(d is None or type(d) is int for d in dims)


@pytest.mark.parametrize("text", ["1,x,3", "", "[]", "1.5,2", "a,b", "4;5;6", "None,,?x"])
def test_parse_shape_rejects_bad_strings(text: str) -> None:
    with pytest.raises(ConvtError) as err:
        parse_shape(text)
    assert "input_shape" in str(err.value)
