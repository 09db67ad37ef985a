"""The NumPy reference against onnxruntime, a slow definition loop, and real Keras fixtures."""

from __future__ import annotations

import glob
import itertools
import json
import os

import numpy as np
import pytest

from convt_tools.activations import ACTIVATIONS
from support.oracles import keras_conv_transpose, onnx_conv_transpose
from convt_tools.errors import ConvtError
from convt_tools.reference import conv_transpose, conv_transpose_nhwc, keras_conv2d_transpose
from convt_tools.spec import make_spec, parse_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ----------------------------------------------------------------- oracles

def direct(x, w, b=None, strides=None, dilations=None, pads=None, output_padding=None, group=1):
    """ONNX ConvTranspose straight from the definition (tests/support/oracles.py), any rank, float64."""
    return onnx_conv_transpose(x, w, b, strides=strides, dilations=dilations, pads=pads,
                               output_padding=output_padding, group=group)


def ort_conv_transpose(x, w, b=None, **attrs):
    import onnxruntime as ort
    from onnx import helper, numpy_helper

    elem = helper.np_dtype_to_tensor_dtype(x.dtype)
    inits = [numpy_helper.from_array(w, "W")] + ([numpy_helper.from_array(b, "B")] if b is not None else [])
    node = helper.make_node("ConvTranspose", ["x", "W"] + (["B"] if b is not None else []), ["y"],
                            **{k: list(v) if isinstance(v, tuple) else v for k, v in attrs.items()})
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", elem, list(x.shape))],
                              [helper.make_tensor_value_info("y", elem, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": x})[0]


# ----------------------------------------------------------------- vs onnxruntime

def _sweep():
    cases = []
    for k, s, d, (pb, pe), op, g in itertools.product(
            [(1, 1), (3, 2), (4, 4)], [(1, 1), (2, 3)], [(1, 1), (2, 1)],
            [((0, 0), (0, 0)), ((1, 0), (2, 1)), ((0, 2), (1, 0))], [(0, 0), (1, 2)], [1, 2]):
        if any(o >= st for o, st in zip(op, s)):   # onnxruntime rejects output_padding >= stride
            continue
        cases.append(dict(k=k, strides=s, dilations=d, pads=pb + pe, output_padding=op, group=g))
    return cases


SWEEP = _sweep()


@pytest.mark.parametrize("case", SWEEP, ids=[str(i) for i in range(len(SWEEP))])
def test_matches_onnxruntime(case):
    rng = np.random.default_rng(len(str(case)))
    g = case["group"]
    x = rng.standard_normal((2, 4, 5, 6)).astype(np.float32)
    w = rng.standard_normal((4, 3, *case["k"])).astype(np.float32)
    b = rng.standard_normal(3 * g).astype(np.float32)
    attrs = {k: v for k, v in case.items() if k != "k"}
    expected = ort_conv_transpose(x, w, b, **attrs)
    got = conv_transpose(x, w, b, **attrs)
    assert got.shape == expected.shape
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_float16_matches_onnxruntime_and_accumulates_in_float32():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 64, 6, 5)).astype(np.float16)
    w = (rng.standard_normal((64, 4, 3, 3)) / 8).astype(np.float16)
    b = rng.standard_normal(4).astype(np.float16)
    attrs = dict(strides=(2, 2), pads=(1, 0, 0, 1), output_padding=(1, 0))
    got = conv_transpose(x, w, b, **attrs)
    assert got.dtype == np.float16
    exact = direct(x, w, b, **attrs)
    # float32 accumulation: only the final rounding to float16 remains (half an ulp).
    np.testing.assert_allclose(got.astype(np.float64), exact, rtol=2 ** -11, atol=1e-6)
    np.testing.assert_allclose(got, ort_conv_transpose(x, w, b, **attrs), rtol=2e-3, atol=2e-3)


# ----------------------------------------------------------------- vs the definition

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("attrs", [
    dict(strides=(3, 2), dilations=(1, 2), pads=(2, 1, 0, 3), output_padding=(2, 1), group=2),
    dict(strides=(1, 1), dilations=(3, 1), pads=(0, 0, 0, 0), output_padding=(0, 0), group=4),
    dict(strides=(2, 2), dilations=(1, 1), pads=(3, 3, 3, 3), output_padding=(1, 1), group=1),
    # output_padding >= stride is legal ONNX text (zeros at the end); onnxruntime refuses it.
    dict(strides=(1, 2), dilations=(2, 1), pads=(0, 1, 0, 0), output_padding=(1, 3), group=1),
])
def test_matches_definition(dtype, attrs):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 4, 3, 4)).astype(dtype)
    w = rng.standard_normal((4, 6 // attrs["group"] if attrs["group"] != 4 else 1, 3, 2)).astype(dtype)
    b = rng.standard_normal(w.shape[1] * attrs["group"]).astype(dtype)
    got = conv_transpose(x, w, b, **attrs)
    assert got.dtype == dtype
    tol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(got, direct(x, w, b, **attrs), rtol=tol, atol=tol)


def test_large_problem_uses_per_tap_path_and_matches_definition():
    # Above the single-GEMM threshold the per-tap GEMM path runs; check it too.
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 2, 40, 41))
    w = rng.standard_normal((2, 40, 3, 3))
    attrs = dict(strides=(2, 2), pads=(1, 0, 1, 2), output_padding=(1, 0))
    np.testing.assert_allclose(conv_transpose(x, w, **attrs), direct(x, w, **attrs), atol=1e-12)


# ----------------------------------------------------------------- every evaluation path

PATHS = ["tiny", "all", "tap", "tap-tiled-bias", "col2im", "col2im-tiled-bias",
         "col2im-chunked"]
# test path -> the algorithm name the geometry reports (reference._Geometry.algorithm)
ALGORITHM = {"tiny": "tiny", "all": "small", "tap": "phase", "tap-tiled-bias": "phase",
             "col2im": "col2im", "col2im-tiled-bias": "col2im", "col2im-chunked": "col2im"}


@pytest.fixture
def force_path(monkeypatch):
    """Force one evaluation path, whatever the cost model says (caches cleared around).

    ``tiny`` keeps the size limits of the 0/1-matrix path (it applies to small
    problems only); ``col2im-chunked`` makes every GEMM chunk one input row and
    one block of axis-1 taps (the chunk loops of :mod:`convt_tools._col2im`).
    """
    import convt_tools._col2im as c2i
    import convt_tools.reference as ref

    def force(path):
        ref._geometry.cache_clear()
        ref._KERAS_PLANS.clear()
        monkeypatch.setattr(ref, "_FORCE", ALGORITHM[path])
        if path.endswith("tiled-bias"):
            monkeypatch.setattr(ref, "_TILED_BIAS_MIN", 0)
        if path == "col2im-chunked":
            monkeypatch.setattr(c2i, "COLS_CHUNK", 1)
            monkeypatch.setattr(c2i, "WEIGHT_CHUNK", 0)
        return ref

    yield force
    ref._geometry.cache_clear()
    ref._KERAS_PLANS.clear()


PATH_ATTRS = [
    dict(strides=(2, 2), dilations=(1, 1), pads=(0, 0, 0, 0), output_padding=(0, 0), group=1),
    dict(strides=(3, 2), dilations=(1, 2), pads=(2, 1, 0, 3), output_padding=(2, 1), group=2),
    dict(strides=(1, 1), dilations=(3, 1), pads=(0, 0, 0, 0), output_padding=(0, 0), group=4),
    dict(strides=(2, 2), dilations=(1, 1), pads=(3, 3, 3, 3), output_padding=(1, 1), group=1),
    dict(strides=(1, 2), dilations=(2, 1), pads=(0, 1, 0, 0), output_padding=(1, 3), group=1),
    dict(strides=(2, 3), dilations=(2, 2), pads=(1, 4, 2, 0), output_padding=(0, 2), group=2),
]


@pytest.mark.parametrize("batch", [1, 2])
@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize("attrs", PATH_ATTRS, ids=[str(i) for i in range(len(PATH_ATTRS))])
@pytest.mark.parametrize("path", PATHS)
def test_every_path_matches_definition(force_path, path, attrs, with_bias, batch):
    ref = force_path(path)
    rng = np.random.default_rng(13)
    g = attrs["group"]
    x = rng.standard_normal((batch, 4, 3, 4))
    w = rng.standard_normal((4, 2, 3, 2))
    b = rng.standard_normal(2 * g) if with_bias else None
    got = conv_transpose(x, w, b, **attrs)
    # the forced path is the one that ran
    geo = ref._geometry((batch, 3, 4, 4), w.shape, None if b is None else b.shape,
                        attrs["strides"], attrs["dilations"], attrs["pads"],
                        attrs["output_padding"], g)
    assert geo.algorithm == ALGORITHM[path]
    np.testing.assert_allclose(got, direct(x, w, b, **attrs), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("rows", [0, 1 << 30], ids=["views", "contiguous"])
@pytest.mark.parametrize("attrs", PATH_ATTRS[:2], ids=["plain", "grouped-cropped"])
def test_per_tap_weights_copied_or_viewed_give_the_definition(force_path, monkeypatch, rows,
                                                              attrs):
    """The per-phase path with its tap matrices as views of a Keras-layout kernel or as
    contiguous copies (reference._CONTIGUOUS_TAP_ROWS: GEMMs of few rows take the copy)."""
    ref = force_path("tap")
    monkeypatch.setattr(ref, "_CONTIGUOUS_TAP_ROWS", rows)
    rng = np.random.default_rng(37)
    x = rng.standard_normal((2, 4, 3, 4))
    w = rng.standard_normal((3, 2, 2, 4)).transpose(3, 2, 0, 1)   # (C_in, C_out/g, kh, kw) view
    b = rng.standard_normal(2 * attrs["group"])
    np.testing.assert_allclose(conv_transpose(x, w, b, **attrs), direct(x, w, b, **attrs),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_tiny_path_equals_large_path(force_path, dtype):
    rng = np.random.default_rng(17)
    x = rng.standard_normal((1, 3, 4, 4)).astype(dtype)
    w = (rng.standard_normal((3, 2, 3, 3)) / 4).astype(dtype)
    b = rng.standard_normal(2).astype(dtype)
    attrs = dict(strides=(2, 2), pads=(1, 0, 0, 1), output_padding=(1, 0))
    force_path("tiny")
    tiny = conv_transpose(x, w, b, **attrs)
    force_path("tap")
    large = conv_transpose(x, w, b, **attrs)
    assert tiny.dtype == large.dtype == dtype
    tol = 1e-3 if dtype == np.float16 else 1e-5
    np.testing.assert_allclose(tiny.astype(np.float64), large.astype(np.float64), rtol=tol, atol=tol)


@pytest.mark.parametrize("rank", [1, 2, 3])
def test_scatter_matrix_is_the_col2im_and_shape_only(rank):
    import convt_tools.reference as ref

    spatial, kernel = (3, 4, 2)[:rank], (3, 2, 2)[:rank]
    attrs = dict(strides=(2, 3, 1)[:rank], dilations=(1, 2, 2)[:rank],
                 pads=(1, 0, 1)[:rank] + (2, 1, 0)[:rank], output_padding=(1, 0, 0)[:rank])
    geo = ref._geometry((1, *spatial, 2), (2, 1, *kernel), None, attrs["strides"],
                        attrs["dilations"], attrs["pads"], attrs["output_padding"], 1)
    assert geo.tiny is not None
    s = ref._scatter_matrix(geo.tiny, np.dtype(np.float64))
    out = geo.out_shape[1:-1]
    assert s.shape == (int(np.prod(out)), int(np.prod(spatial)) * int(np.prod(kernel)))
    assert set(np.unique(s)) <= {0.0, 1.0}
    # column (h..., i...) is the impulse response of x[h] through tap i
    for col, (h, i) in enumerate(itertools.product(itertools.product(*map(range, spatial)),
                                                   itertools.product(*map(range, kernel)))):
        x = np.zeros((1, 2, *spatial))
        x[(0, 0, *h)] = 1.0
        wt = np.zeros((2, 1, *kernel))
        wt[(0, 0, *i)] = 1.0
        np.testing.assert_array_equal(s[:, col].reshape(out), direct(x, wt, **attrs)[0, 0])
    assert not s.flags.writeable


def test_large_problems_do_not_build_a_scatter_matrix():
    import convt_tools.reference as ref

    geo = ref._geometry((1, 32, 32, 64), (64, 32, 4, 4), (32,), (2, 2), (1, 1), (1, 1, 1, 1),
                        (0, 0), 1)
    assert geo.tiny is None
    assert geo.algorithm in ("phase", "col2im")


def test_keras_pads_cache_keys_on_the_crop_fields():
    rng = np.random.default_rng(19)
    x = rng.standard_normal((1, 3, 3, 2))
    kernel = rng.standard_normal((3, 3, 2, 2))
    for layer in LAYERS + [dict(kernel_size=3, strides=2, padding="valid"),
                           dict(kernel_size=3, strides=2, padding="same", output_padding=0)]:
        spec = make_spec(filters=2, **{**layer, "kernel_size": 3}, use_bias=False)
        for _ in range(2):   # second call served from the cache
            y = keras_conv2d_transpose(spec, x, kernel, None)
            np.testing.assert_allclose(y, keras_by_hand(spec, x, kernel, None), atol=1e-12)


def test_nhwc_equals_nchw():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    w = rng.standard_normal((3, 2, 2, 3)).astype(np.float32)
    a = conv_transpose(x, w, strides=(2, 1), pads=(1, 0, 0, 1))
    b = conv_transpose_nhwc(x.transpose(0, 2, 3, 1), w, strides=(2, 1), pads=(1, 0, 0, 1))
    np.testing.assert_array_equal(a, b.transpose(0, 3, 1, 2))


def test_empty_output_is_an_empty_array():
    # Keras: same, even kernel, input length 1, output_padding 0 -> length 0.
    spec = make_spec(filters=3, kernel_size=2, strides=2, padding="same", output_padding=0)
    x = np.ones((2, 1, 1, 4), np.float32)
    y = keras_conv2d_transpose(spec, x, np.ones((2, 2, 3, 4), np.float32), np.ones(3, np.float32))
    assert y.shape == spec.output_shape(x.shape) == (2, 0, 0, 3)
    y0 = conv_transpose(np.ones((0, 2, 3, 3), np.float32), np.ones((2, 1, 2, 2), np.float32))
    assert y0.shape == (0, 1, 4, 4)


@pytest.mark.parametrize("bad", [
    dict(pads=(-1, 0, 0, 0)), dict(strides=(0, 1)), dict(group=3), dict(pads=(9, 0, 9, 0)),
])
def test_bad_attributes_are_clear_errors(bad):
    with pytest.raises(ConvtError):
        conv_transpose(np.ones((1, 4, 3, 3)), np.ones((4, 1, 2, 2)), **bad)


def test_integer_arrays_are_refused():
    with pytest.raises(ConvtError, match="float"):
        conv_transpose(np.ones((1, 1, 2, 2), np.int64), np.ones((1, 1, 2, 2)))


# ----------------------------------------------------------------- any rank

# Per rank: attributes exercising strides, dilations, asymmetric pads, output_padding
# (including output_padding >= stride, legal ONNX text) and groups 1/2/4.
ND_ATTRS = {
    1: [dict(strides=(3,), dilations=(2,), pads=(2, 1), output_padding=(2,), group=2),
        dict(strides=(1,), dilations=(1,), pads=(0, 0), output_padding=(0,), group=4),
        dict(strides=(4,), dilations=(1,), pads=(2, 2), output_padding=(0,), group=1),
        dict(strides=(2,), dilations=(3,), pads=(5, 0), output_padding=(3,), group=1),
        dict(strides=(1,), dilations=(1,), pads=(1, 1), output_padding=(0,), group=1),
        dict(strides=(1,), dilations=(2,), pads=(0, 3), output_padding=(1,), group=1)],
    2: [dict(strides=(3, 2), dilations=(1, 2), pads=(2, 1, 0, 3), output_padding=(2, 1), group=2)],
    3: [dict(strides=(2, 1, 3), dilations=(1, 2, 1), pads=(0, 1, 2, 1, 0, 0),
             output_padding=(1, 0, 2), group=2),
        dict(strides=(2, 2, 2), dilations=(1, 1, 1), pads=(0, 0, 0, 1, 1, 1),
             output_padding=(0, 0, 0), group=1),
        dict(strides=(1, 2, 1), dilations=(2, 1, 1), pads=(1, 0, 0, 0, 2, 0),
             output_padding=(0, 1, 0), group=4),
        dict(strides=(1, 1, 1), dilations=(1, 1, 1), pads=(0, 1, 0, 1, 1, 1),
             output_padding=(0, 0, 0), group=1)],
}
ND_CASES = [(r, a) for r in (1, 3) for a in ND_ATTRS[r]]
ALL_RANK_CASES = [(r, a) for r in (1, 2, 3) for a in ND_ATTRS[r]]
SPATIAL = {1: (5,), 2: (3, 4), 3: (3, 2, 3)}
KERNEL = {1: (3,), 2: (3, 2), 3: (2, 3, 2)}


def nd_arrays(rank, attrs, batch=2, dtype=np.float64, seed=23, with_bias=True):
    """x (N, 4, *spatial), w (4, 2, *kernel), b (2 * group,) for one rank."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, 4, *SPATIAL[rank])).astype(dtype)
    w = rng.standard_normal((4, 2, *KERNEL[rank])).astype(dtype)
    b = rng.standard_normal(2 * attrs["group"]).astype(dtype) if with_bias else None
    return x, w, b


def accumulation_bound(x, w, b, attrs, eps):
    """A rigorous bound on the float error of any summation order of the output's terms.

    Each output is ``b + sum of n = C_in/group * prod(k)`` products; rounding
    each product and each addition in any order errs by at most
    ``gamma_(n+1) * (|b| + sum |x||w|)`` with ``gamma_m = m*eps / (1 - m*eps)``
    (Higham, Accuracy and Stability, 3.1). ``sum |x||w|`` is the same
    transposed convolution of ``|x|`` and ``|w|`` (by the definition, float64).
    """
    n = x.shape[1] // attrs["group"] * int(np.prod(w.shape[2:])) + 1
    gamma = n * eps / (1 - n * eps)
    absb = None if b is None else np.abs(b.astype(np.float64))
    return gamma * direct(np.abs(x.astype(np.float64)), np.abs(w.astype(np.float64)), absb,
                          **attrs)


@pytest.mark.parametrize("batch", [1, 2])
@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize("rank,attrs", ND_CASES, ids=[f"{r}d-{i}" for i, (r, _) in enumerate(ND_CASES)])
@pytest.mark.parametrize("path", PATHS)
def test_every_path_matches_definition_nd(force_path, path, rank, attrs, with_bias, batch):
    ref = force_path(path)
    x, w, b = nd_arrays(rank, attrs, batch, with_bias=with_bias)
    got = conv_transpose(x, w, b, **attrs)
    geo = ref._geometry((batch, *SPATIAL[rank], 4), w.shape, None if b is None else b.shape,
                        attrs["strides"], attrs["dilations"], attrs["pads"],
                        attrs["output_padding"], attrs["group"])
    assert geo.algorithm == ALGORITHM[path]
    want = direct(x, w, b, **attrs)
    assert got.shape == want.shape
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("rank,attrs", ALL_RANK_CASES,
                         ids=[f"{r}d-{i}" for i, (r, _) in enumerate(ALL_RANK_CASES)])
@pytest.mark.parametrize("path", ["tiny", "tap", "col2im"])
def test_every_dtype_matches_definition(force_path, path, rank, attrs, dtype):
    """float64: 1e-12; float32: the accumulation bound; float16: float32 accumulation
    (the bound at float32's eps) plus the final rounding to float16 (half an ulp)."""
    force_path(path)
    x, w, b = nd_arrays(rank, attrs, dtype=dtype, seed=29)
    got = conv_transpose(x, w, b, **attrs)
    assert got.dtype == dtype
    want = direct(x, w, b, **attrs)
    err = np.abs(got.astype(np.float64) - want)
    if dtype == np.float64:
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    elif dtype == np.float32:
        assert (err <= accumulation_bound(x, w, b, attrs, 2.0 ** -24)).all()
    else:
        bound = accumulation_bound(x, w, b, attrs, 2.0 ** -24)
        assert (err <= 2.0 ** -11 * (np.abs(want) + bound) + bound + 2.0 ** -25).all()


@pytest.mark.filterwarnings("ignore:invalid value encountered")
@pytest.mark.parametrize("rank", [1, 2, 3])
@pytest.mark.parametrize("path", PATHS)
def test_non_finite_values_stay_local(force_path, path, rank):
    """An inf and a NaN in the input reach exactly the outputs the definition says."""
    force_path(path)
    attrs = ND_ATTRS[rank][0]
    x, w, b = nd_arrays(rank, attrs, batch=1, seed=31)
    x[(0, 0) + (1,) * rank] = np.inf
    x[(0, 3) + (0,) * rank] = np.nan
    got = conv_transpose(x, w, b, **attrs)
    with np.errstate(invalid="ignore"):
        want = direct(x, w, b, **attrs)
    assert np.isfinite(want).any()
    assert not np.isfinite(want).all()
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(np.isinf(got), np.isinf(want))
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)  # equal_nan: the rest


@pytest.mark.parametrize("rank", [1, 3])
def test_channels_last_equals_channels_first(rank):
    import convt_tools.reference as ref

    attrs = ND_ATTRS[rank][0]
    x, w, b = nd_arrays(rank, attrs, seed=37)
    a = conv_transpose(x, w, b, **attrs)
    c = ref.conv_transpose_channels_last(np.moveaxis(x, 1, -1), w, b, **attrs)
    np.testing.assert_array_equal(a, np.moveaxis(c, -1, 1))


def test_single_int_attributes_mean_every_axis():
    rng = np.random.default_rng(41)
    x = rng.standard_normal((1, 2, 3, 2, 3))
    w = rng.standard_normal((2, 3, 2, 2, 3))
    np.testing.assert_array_equal(
        conv_transpose(x, w, strides=2, dilations=1, pads=1, output_padding=1),
        conv_transpose(x, w, strides=(2, 2, 2), dilations=(1, 1, 1), pads=(1,) * 6,
                       output_padding=(1, 1, 1)))


@pytest.mark.parametrize("rank,bad,field", [
    (3, dict(strides=(2, 2)), "strides"),
    (1, dict(pads=(0, 0, 0, 0)), "pads"),
    (3, dict(dilations=(1, 0, 1)), "dilations"),
    (1, dict(output_padding=(-1,)), "output_padding"),
    (3, dict(group=3), "group"),
    (1, dict(pads=(9, 9)), "pads"),
    (1, dict(strides=1.5), "strides"),
])
def test_bad_attributes_name_the_field_at_every_rank(rank, bad, field):
    x = np.ones((1, 4) + (3,) * rank)
    w = np.ones((4, 1) + (2,) * rank)
    with pytest.raises(ConvtError) as err:
        conv_transpose(x, w, **bad)
    assert err.value.field == field


def test_rank_mismatches_are_clear_errors():
    import convt_tools.reference as ref

    with pytest.raises(ConvtError) as err:
        conv_transpose(np.ones((1, 2, 3, 3, 3)), np.ones((2, 1, 2, 2)))
    assert err.value.field == "w"
    with pytest.raises(ConvtError) as err:
        conv_transpose(np.ones((1, 2)), np.ones((2, 1)))
    assert err.value.field == "x"
    with pytest.raises(ConvtError) as err:   # the 2-D name keeps its contract
        ref.conv_transpose_nhwc(np.ones((1, 3, 3, 3, 2)), np.ones((2, 1, 2, 2, 2)))
    assert err.value.field == "x"


# ----------------------------------------------------------------- vs onnxruntime, 1-D and 3-D

ORT_ND = [
    (1, (4,), dict(strides=(4,), pads=(2, 2))),                        # Keras same, k=8-like
    (1, (3,), dict(strides=(3,), dilations=(2,), pads=(1, 2), output_padding=(2,), group=2)),
    (1, (2,), dict(strides=(1,), pads=(0, 1), group=4)),
    (1, (5,), dict(strides=(2,), dilations=(1,), pads=(0, 0), output_padding=(1,))),
    (3, (3, 3, 3), dict(strides=(2, 2, 2), pads=(0, 0, 0, 1, 1, 1))),  # Keras same, k=3 s=2
    (3, (2, 3, 2), dict(strides=(2, 1, 3), dilations=(1, 2, 1), pads=(0, 1, 2, 1, 0, 0),
                        output_padding=(1, 0, 2), group=2)),
    (3, (1, 2, 3), dict(strides=(1, 3, 2), pads=(0, 0, 1, 0, 2, 0), output_padding=(0, 2, 1),
                        group=4)),
]


@pytest.mark.parametrize("rank,kernel,attrs", ORT_ND, ids=[f"{r}d-{i}" for i, (r, _, _) in enumerate(ORT_ND)])
def test_matches_onnxruntime_nd(rank, kernel, attrs):
    """float32 vs onnxruntime 1.32 on a ConvTranspose node made with onnx.helper.

    Tolerance: both sides accumulate in float32 in an order of their own, so
    each is within :func:`accumulation_bound` (eps = 2^-24) of the exact
    value, and they are within twice that of each other, elementwise. The
    float64 reference equals the definition to 1e-12 on the same arrays.
    """
    g = attrs.get("group", 1)
    rng = np.random.default_rng(43 + len(ORT_ND) * rank)
    spatial = {1: (7,), 3: (3, 4, 2)}[rank]
    x = rng.standard_normal((2, 4, *spatial)).astype(np.float32)
    w = rng.standard_normal((4, 3, *kernel)).astype(np.float32)
    b = rng.standard_normal(3 * g).astype(np.float32)
    expected = ort_conv_transpose(x, w, b, **attrs)
    got = conv_transpose(x, w, b, **attrs)
    assert got.shape == expected.shape
    assert got.dtype == np.float32
    full = {**dict(strides=(1,) * rank, dilations=(1,) * rank, pads=(0,) * (2 * rank),
                   output_padding=(0,) * rank, group=1), **attrs}
    bound = 2 * accumulation_bound(x, w, b, full, 2.0 ** -24)
    assert (np.abs(got.astype(np.float64) - expected) <= bound).all()
    exact = direct(x, w, b, **full)
    np.testing.assert_allclose(conv_transpose(x.astype(np.float64), w.astype(np.float64),
                                              b.astype(np.float64), **attrs),
                               exact, rtol=1e-12, atol=1e-12)


# ----------------------------------------------------------------- Keras semantics

keras_by_hand = keras_conv_transpose   # the one loop-by-definition oracle (tests/support/oracles.py)


LAYERS = [
    dict(kernel_size=3, strides=2, padding="same"),
    dict(kernel_size=(3, 5), strides=2, padding="same", output_padding=(1, 0)),
    dict(kernel_size=2, strides=3, padding="valid"),
    dict(kernel_size=3, strides=2, padding="valid", output_padding=1),
    dict(kernel_size=3, dilation_rate=(2, 1), padding="same"),
    dict(kernel_size=4, strides=2, padding="same"),
]


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("layer", LAYERS, ids=[str(i) for i in range(len(LAYERS))])
def test_keras_semantics_layers(layer, data_format):
    spec = make_spec(filters=4, data_format=data_format, **layer)
    rng = np.random.default_rng(11)
    shape = (2, 3, 4, 3) if data_format == "channels_last" else (2, 3, 3, 4)
    x = rng.standard_normal(shape)
    kernel = rng.standard_normal(spec.kernel_shape(3))
    bias = rng.standard_normal(4)
    y = keras_conv2d_transpose(spec, x, kernel, bias)
    assert y.shape == spec.output_shape(shape)
    np.testing.assert_allclose(y, keras_by_hand(spec, x, kernel, bias), atol=1e-12)


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_keras_semantics_every_activation(activation, data_format):
    spec = make_spec(filters=4, kernel_size=3, strides=2, padding="same",
                     data_format=data_format, activation=activation)
    rng = np.random.default_rng(5)
    shape = (1, 3, 4, 2) if data_format == "channels_last" else (1, 2, 3, 4)  # even widths (glu)
    x = rng.standard_normal(shape).astype(np.float32)
    kernel = rng.standard_normal(spec.kernel_shape(2)).astype(np.float32)
    bias = rng.standard_normal(4).astype(np.float32)
    y = keras_conv2d_transpose(spec, x, kernel, bias)
    assert y.dtype == np.float32
    assert y.shape == spec.activated_output_shape(shape)
    np.testing.assert_allclose(y, keras_by_hand(spec, x.astype(np.float64), kernel.astype(np.float64),
                                                bias.astype(np.float64)), rtol=1e-5, atol=1e-5)


def test_use_bias_false_ignores_bias_and_checks_kernel_shape():
    spec = make_spec(filters=2, kernel_size=2, use_bias=False)
    x = np.ones((1, 2, 2, 3))
    k = np.ones((2, 2, 2, 3))
    np.testing.assert_array_equal(keras_conv2d_transpose(spec, x, k, np.ones(2)),
                                  keras_conv2d_transpose(spec, x, k))
    with pytest.raises(ConvtError, match="kernel"):
        keras_conv2d_transpose(spec, x, np.ones((2, 2, 3, 2)))


# ----------------------------------------------------------------- real Keras fixtures

FIXTURE_DIRS = {2: "cases", 1: "cases_1d", 3: "cases_3d"}


@pytest.mark.parametrize("entry", ["function", "prepared"])
@pytest.mark.parametrize("path", ["default", "tap", "col2im"])
@pytest.mark.parametrize("rank", [1, 2, 3])
def test_reference_equals_keras_fixtures(force_path, rank, path, entry):
    """Real Keras output (Conv1D/2D/3DTranspose): equal within atol 1e-5 (scaled by
    max|output|) and rtol 1e-5, on the path the size selects and on the per-phase path,
    through ``keras_conv_transpose`` and through a prepared ``KerasConvTranspose``.

    Not bit-equal: Keras's backends sum in another order (XLA/oneDNN) and
    their activations round differently in the last bit (REFERENCE.md); 1e-5
    is the tolerance Keras's own tests use. The fixtures are small, so
    ``default`` runs the tiny/all-taps paths and ``tap`` forces the per-phase one.
    """
    from convt_tools.reference import KerasConvTranspose, keras_conv_transpose

    def reference(spec, x, kernel, bias):
        if entry == "function":
            return keras_conv_transpose(spec, x, kernel, bias)
        return KerasConvTranspose(spec, kernel, bias)(x)

    cases = sorted(glob.glob(os.path.join(ROOT, "fixtures", FIXTURE_DIRS[rank], "*.json")))
    assert cases, f"no Keras fixtures under fixtures/{FIXTURE_DIRS[rank]}/"
    if path != "default":
        force_path(path)
    checked = 0
    for case in cases:
        with open(case) as fh:
            meta = json.load(fh)
        npz = case[:-5] + ".npz"
        if "config" not in meta or not os.path.exists(npz):
            continue
        if meta.get("keras_json") or meta.get("dtype", "float32") != "float32":
            continue  # keras.json-dependent and float16 cases: tests/test_conformance.py
        spec = parse_config(meta["config"])
        assert len(spec.kernel_size) == rank, case
        with np.load(npz, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        y = reference(spec, arrays["input"], arrays["kernel"], arrays.get("bias"))
        want = arrays["output"]
        assert y.shape == want.shape, case
        scale = max(1.0, float(np.abs(want).max())) if want.size else 1.0
        np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5 * scale, err_msg=case)
        checked += 1
    assert checked > 0


# ----------------------------------------------------------------- algorithm choice (issue 23)

def _keras_case_algorithm(shape, filters, **kwargs):
    from convt_tools.reference import _keras_algorithm
    from convt_tools.spec import make_spec

    spec = make_spec(filters=filters, rank=len(shape) - 2, **kwargs)
    cin = shape[1] if kwargs.get("data_format") == "channels_first" else shape[-1]
    return _keras_algorithm(spec, shape, spec.kernel_shape(cin))


@pytest.mark.parametrize("shape,filters,kwargs,algorithm", [
    # ISTFT layer: one output channel, 4096 taps -> one GEMM over all taps + col2im
    ((1, 2049, 340), 1, dict(kernel_size=4096, strides=1024, data_format="channels_first"),
     "col2im"),
    # 256 taps but 32 filters: per-tap GEMMs stay cache-resident (measured ~4% faster)
    ((1, 16, 16, 64), 32, dict(kernel_size=16, strides=8, padding="same"), "phase"),
    ((4, 8, 8, 512), 512, dict(kernel_size=2, strides=2), "phase"),       # wide per-tap GEMMs
    ((1, 128, 128, 32), 16, dict(kernel_size=3, dilation_rate=2, padding="same"), "phase"),
    ((1, 4, 4, 3), 2, dict(kernel_size=3, strides=2), "tiny"),
])
def test_cost_model_choices_on_benchmark_shapes(shape, filters, kwargs, algorithm):
    """The cost model is a pure function of the shapes: these choices are fixed."""
    assert _keras_case_algorithm(shape, filters, **kwargs) == algorithm


def test_cost_model_estimates_every_algorithm_and_picks_the_cheapest():
    import convt_tools.reference as ref

    geo = ref._geometry((1, 20, 20, 8), (8, 4, 3, 3), None, (2, 2), (1, 1), (0, 0, 0, 0),
                        (0, 0), 1)
    names = [name for name, _ in geo.costs]
    assert set(names) == {"phase", "col2im", "small"}
    assert [c for _, c in geo.costs] == sorted(c for _, c in geo.costs)
    assert geo.algorithm in ("tiny", names[0])
    big = ref._geometry((1, 64, 64, 8), (8, 4, 3, 3), None, (2, 2), (1, 1), (0, 0, 0, 0),
                        (0, 0), 1)
    assert "small" not in dict(big.costs)        # above _SMALL_MAX GEMM results
    assert big.algorithm == big.costs[0][0]


@pytest.mark.parametrize("k,s,d,blocks", [
    (4096, 1024, 1, [(0, 0, 1024, slice(0, 1024, 1)), (1, 1024, 2048, slice(0, 1024, 1)),
                     (2, 2048, 3072, slice(0, 1024, 1)), (3, 3072, 4096, slice(0, 1024, 1))]),
    (3, 2, 1, [(0, 0, 2, slice(0, 2, 1)), (1, 2, 3, slice(0, 1, 1))]),
    (3, 1, 2, [(0, 0, 1, slice(0, 1, 2)), (2, 1, 2, slice(0, 1, 2)), (4, 2, 3, slice(0, 1, 2))]),
    (4, 3, 2, [(0, 0, 2, slice(0, 3, 2)), (1, 2, 3, slice(1, 2, 2)), (2, 3, 4, slice(0, 1, 2))]),
])
def test_col2im_blocks_group_taps_by_shift(k, s, d, blocks):
    """Tap ``i`` lands on ``(h + j)*s + p`` with ``i*d = j*s + p``: one block per ``j``."""
    from convt_tools import _col2im

    pl = _col2im.plan((5,), (k,), (s,), (d,), (0,), ((5 - 1) * s + (k - 1) * d + 1,), 1, 1)
    got = [(b.j, b.ia, b.ib, b.phases) for b in pl.blocks[0]]
    assert got == blocks
    for b in pl.blocks[0]:                       # every tap's phase is where the block says
        assert [i * d - b.j * s for i in range(b.ia, b.ib)] == list(
            range(b.phases.start, b.phases.stop, b.phases.step))


@pytest.mark.parametrize("path", ["col2im", "col2im-chunked", "tap"])
@pytest.mark.parametrize("crop", ["valid", "same"])
def test_istft_like_layer_matches_definition(force_path, path, crop):
    """A scaled-down ISTFT layer (channels_first, kernel a multiple of the stride,
    one filter), and one with 2 filters and a kernel that is not, vs the Keras oracle."""
    from convt_tools.reference import keras_conv_transpose as reference
    from convt_tools.spec import make_spec

    from support.oracles import keras_conv_transpose as keras_oracle

    force_path(path)
    rng = np.random.default_rng(41)
    for filters, k, s in ((1, 32, 8), (2, 13, 4)):
        spec = make_spec(filters=filters, rank=1, kernel_size=k, strides=s, padding=crop,
                         data_format="channels_first")
        x = rng.standard_normal((2, 17, 9))
        kernel = rng.standard_normal(spec.kernel_shape(17))
        bias = rng.standard_normal(filters)
        got = reference(spec, x, kernel, bias)
        want = keras_oracle(spec, x, kernel, bias)
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("path", ["tap", "col2im"])
def test_results_never_share_scratch_memory(force_path, path):
    """Scratch arrays are reused between calls; results must be fresh arrays."""
    force_path(path)
    rng = np.random.default_rng(43)
    attrs = dict(strides=(2, 2), pads=(1, 1, 1, 1))
    x1, x2 = rng.standard_normal((2, 1, 4, 9, 9))
    w = rng.standard_normal((4, 3, 4, 4))
    y1 = conv_transpose(x1, w, **attrs)
    keep = y1.copy()
    y2 = conv_transpose(x2, w, **attrs)
    np.testing.assert_array_equal(y1, keep)
    assert not np.shares_memory(y1, y2)
    np.testing.assert_allclose(y2, direct(x2, w, **attrs), rtol=1e-12, atol=1e-12)


def test_col2im_is_not_chosen_when_its_buffer_would_double_a_big_output(monkeypatch):
    import convt_tools.reference as ref

    shape, filters = (1, 2049, 34), 1
    kwargs = dict(kernel_size=4096, strides=1024, padding="same",   # cropped: buffer != output
                  data_format="channels_first")
    assert _keras_case_algorithm(shape, filters, **kwargs) == "col2im"
    monkeypatch.setattr(ref, "_COL2IM_MAX_COPY", 1000)
    ref._geometry.cache_clear()
    ref._KERAS_PLANS.clear()
    try:
        assert _keras_case_algorithm(shape, filters, **kwargs) == "phase"
        # uncropped (the buffer is the output): still allowed
        assert _keras_case_algorithm((1, 2049, 34), 1, kernel_size=4096, strides=1024,
                                     data_format="channels_first") == "col2im"
    finally:
        ref._geometry.cache_clear()
        ref._KERAS_PLANS.clear()


def test_keras_plan_cache_keeps_every_error():
    """Only validated calls are cached: a bad input fails on every call, before and after."""
    from convt_tools.reference import keras_conv_transpose as reference

    spec = make_spec(filters=2, rank=2, kernel_size=3, strides=2)
    kernel = np.ones(spec.kernel_shape(3))
    good = np.ones((1, 4, 4, 3))
    for _ in range(2):
        with pytest.raises(ConvtError):
            reference(spec, np.ones((1, 4, 4, 5)), kernel, np.zeros(2))   # channel mismatch
        with pytest.raises(ConvtError):
            reference(spec, good, kernel, None)                             # bias required
        with pytest.raises(ConvtError):
            reference(spec, good, np.ones((3, 3, 2, 4)), np.zeros(2))       # kernel channels
        assert reference(spec, good, kernel, np.zeros(2)).shape == (1, 9, 9, 2)


# ----------------------------------------------------------------- prepared layer (issue 23)

PREPARED_LAYERS = [
    (1, dict(kernel_size=5, strides=3, padding="same")),
    (1, dict(kernel_size=4, padding="valid", dilation_rate=2)),
    (2, dict(kernel_size=3, strides=2, padding="same")),
    (2, dict(kernel_size=(3, 5), strides=2, padding="same", output_padding=(1, 0))),
    (2, dict(kernel_size=2, strides=2, padding="valid")),
    (2, dict(kernel_size=3, dilation_rate=(2, 1), padding="same")),
    (3, dict(kernel_size=3, strides=(2, 1, 2), padding="same")),
    (3, dict(kernel_size=2, strides=2, padding="valid", output_padding=1)),
]
PREPARED_SPATIAL = {1: (9,), 2: (5, 6), 3: (3, 4, 3)}


def _prepared_case(rank, layer, data_format, dtype, seed=41):
    spec = make_spec(filters=5, rank=rank, data_format=data_format, **layer)
    rng = np.random.default_rng(seed)
    spatial = PREPARED_SPATIAL[rank]
    shape = (2, *spatial, 3) if data_format == "channels_last" else (2, 3, *spatial)
    x = rng.standard_normal(shape).astype(dtype)
    kernel = rng.standard_normal(spec.kernel_shape(3)).astype(dtype)
    bias = rng.standard_normal(5).astype(dtype)
    return spec, x, kernel, bias


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("rank,layer", PREPARED_LAYERS,
                         ids=[f"{r}d-{i}" for i, (r, _) in enumerate(PREPARED_LAYERS)])
@pytest.mark.parametrize("path", ["default", "tiny", "all", "tap", "col2im"])
def test_prepared_layer_matches_definition(force_path, path, rank, layer, data_format):
    """``KerasConvTranspose(spec, kernel, bias)(x)`` is the Keras layer by definition
    (the loop oracle, float64, 1e-12) on every evaluation path, every rank and layout."""
    from convt_tools.reference import KerasConvTranspose

    if path != "default":
        force_path(path)
    spec, x, kernel, bias = _prepared_case(rank, layer, data_format, np.float64)
    got = KerasConvTranspose(spec, kernel, bias)(x)
    np.testing.assert_allclose(got, keras_by_hand(spec, x, kernel, bias), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("rank,layer", PREPARED_LAYERS,
                         ids=[f"{r}d-{i}" for i, (r, _) in enumerate(PREPARED_LAYERS)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_prepared_layer_equals_the_function(rank, layer, dtype):
    """Same algorithm and sums as ``keras_conv_transpose``: float32 within 4 ulp of the
    output scale (BLAS may order a dot product differently for a contiguous operand)."""
    from convt_tools.reference import KerasConvTranspose, keras_conv_transpose

    spec, x, kernel, bias = _prepared_case(rank, layer, "channels_last", dtype)
    got = KerasConvTranspose(spec, kernel, bias)(x)
    want = keras_conv_transpose(spec, x, kernel, bias)
    assert got.dtype == want.dtype
    assert got.shape == want.shape
    tol = 1e-12 if dtype == np.float64 else 4 * np.finfo(np.float32).eps
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * float(np.abs(want).max()))


@pytest.mark.filterwarnings("ignore:invalid value encountered")
@pytest.mark.parametrize("case", ["no-bias", "empty-batch", "empty-spatial", "non-finite"])
def test_prepared_layer_equals_the_function_at_the_edges(case):
    """use_bias=False (a given bias ignored), zero-size inputs (the bias broadcast) and
    inf/NaN inputs: the prepared layer returns exactly the function's array."""
    from convt_tools.reference import KerasConvTranspose, keras_conv_transpose

    layer = dict(kernel_size=3, strides=2, padding="same")
    spec = make_spec(filters=4, rank=2, use_bias=case != "no-bias", **layer)
    rng = np.random.default_rng(53)
    kernel = rng.standard_normal(spec.kernel_shape(3))
    bias = rng.standard_normal(4)
    shape = {"empty-batch": (0, 5, 6, 3), "empty-spatial": (2, 0, 6, 3)}.get(case, (2, 5, 6, 3))
    x = rng.standard_normal(shape)
    if case == "non-finite":
        x[0, 0, 0, 0], x[1, 4, 5, 2] = np.inf, np.nan
    got = KerasConvTranspose(spec, kernel, bias)(x)
    want = keras_conv_transpose(spec, x, kernel, bias)
    assert got.shape == want.shape
    np.testing.assert_array_equal(got, want)


def test_prepared_float16_layer_casts_like_the_function():
    """A float16-policy layer casts the kernel at preparation and each input at the call,
    exactly as ``keras_conv_transpose`` does (float32 accumulation, float16 result)."""
    from convt_tools.reference import KerasConvTranspose, keras_conv_transpose

    spec, x, kernel, bias = _prepared_case(2, PREPARED_LAYERS[2][1], "channels_last",
                                           np.float32)
    spec = make_spec(filters=5, rank=2, dtype="float16", **PREPARED_LAYERS[2][1])
    layer = KerasConvTranspose(spec, kernel, bias)
    assert layer.kernel.dtype == np.float16
    got = layer(x)
    assert got.dtype == np.float16
    np.testing.assert_array_equal(got, keras_conv_transpose(spec, x, kernel, bias))


def test_prepared_layer_keeps_its_own_copy_of_the_weights():
    from convt_tools.reference import KerasConvTranspose

    spec, x, kernel, bias = _prepared_case(2, PREPARED_LAYERS[2][1], "channels_last",
                                           np.float64)
    layer = KerasConvTranspose(spec, kernel, bias)
    before = layer(x)
    kernel[...] = 0.0
    bias[...] = 0.0
    np.testing.assert_array_equal(layer(x), before)
    assert not layer.kernel.flags.writeable


def test_prepared_operands_are_contiguous_and_made_once_per_dtype():
    """The GEMM operands are C-contiguous copies, made on the first call per compute
    dtype and reused (the point of preparing: no per-call layout work)."""
    from convt_tools.reference import KerasConvTranspose

    spec = make_spec(filters=64, rank=2, kernel_size=2, strides=2)
    rng = np.random.default_rng(3)
    kernel = rng.standard_normal(spec.kernel_shape(64)).astype(np.float32)
    layer = KerasConvTranspose(spec, kernel, np.zeros(64, np.float32))
    x = rng.standard_normal((4, 8, 8, 64)).astype(np.float32)
    layer(x)
    made = dict(layer._weights._made)
    assert made
    assert all(m.flags.c_contiguous for m in made.values())
    layer(x)
    assert all(layer._weights._made[k] is m for k, m in made.items())
    layer(x.astype(np.float64))
    assert {k[-1] for k in layer._weights._made} == {np.dtype(np.float32), np.dtype(np.float64)}


@pytest.mark.parametrize("bad,field", [
    (dict(kernel=np.ones((3, 3, 2, 4))), "kernel"),       # filters axis is 2, spec says 5
    (dict(kernel=np.ones((3, 3, 5))), "kernel"),          # rank
    (dict(bias=None), "bias"),                            # use_bias=True needs one
    (dict(bias=np.ones(4)), "bias"),
    (dict(spec={"filters": 5}), "spec"),
])
def test_prepared_layer_refuses_bad_weights_at_construction(bad, field):
    from convt_tools.reference import KerasConvTranspose

    args = dict(spec=make_spec(filters=5, rank=2, kernel_size=3, strides=2),
                kernel=np.ones((3, 3, 5, 2)), bias=np.zeros(5))
    args.update(bad)
    with pytest.raises(ConvtError) as err:
        KerasConvTranspose(args["spec"], args["kernel"], args["bias"])
    assert err.value.field == field


def test_prepared_layer_refuses_a_bad_input_like_the_function():
    from convt_tools.reference import KerasConvTranspose, keras_conv_transpose

    spec = make_spec(filters=5, rank=2, kernel_size=3, strides=2)
    kernel, bias = np.ones((3, 3, 5, 2)), np.zeros(5)
    x = np.ones((1, 4, 4, 3))                               # 3 channels, kernel has 2
    with pytest.raises(ConvtError) as prepared:
        KerasConvTranspose(spec, kernel, bias)(x)
    with pytest.raises(ConvtError) as function:
        keras_conv_transpose(spec, x, kernel, bias)
    assert str(prepared.value) == str(function.value)


# ----------------------------------------------------------------- flat shifted adds (issue 23)

FLAT_CASES = [
    (1, dict(strides=(2,), dilations=(1,), pads=(1, 2), output_padding=(0,), group=1), (4,)),
    (1, dict(strides=(1,), dilations=(2,), pads=(2, 2), output_padding=(0,), group=2), (3,)),
    (2, dict(strides=(2, 2), dilations=(1, 1), pads=(1, 1, 1, 1), output_padding=(0, 0),
             group=1), (4, 4)),
    (2, dict(strides=(1, 1), dilations=(2, 2), pads=(2, 2, 2, 2), output_padding=(0, 0),
             group=1), (3, 3)),
    (2, dict(strides=(2, 3), dilations=(1, 1), pads=(1, 2, 1, 3), output_padding=(0, 0),
             group=2), (3, 6)),
    (3, dict(strides=(2, 2, 2), dilations=(1, 1, 1), pads=(0, 0, 0, 1, 1, 1),
             output_padding=(0, 0, 0), group=1), (3, 3, 3)),
    (3, dict(strides=(1, 1, 1), dilations=(1, 1, 1), pads=(1, 1, 1, 1, 1, 1),
             output_padding=(0, 0, 0), group=1), (3, 3, 3)),
]


def _flat_geometry(ref, x, w, attrs):
    return ref._geometry(tuple(np.moveaxis(x, 1, -1).shape), w.shape, (w.shape[1] * attrs["group"],),
                         attrs["strides"], attrs["dilations"], attrs["pads"],
                         attrs["output_padding"], attrs["group"])


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("rank,attrs,kernel", FLAT_CASES,
                         ids=[f"{r}d-{i}" for i, (r, _, _) in enumerate(FLAT_CASES)])
def test_flat_shifted_adds_match_definition(force_path, rank, attrs, kernel, batch):
    """Phases shaped like the input take their shifted adds as one contiguous add
    (reference._flat_add): the same values as the definition, 1e-12, and the
    clipped values zeroed in the GEMM buffer never reach the output."""
    ref = force_path("tap")
    rng = np.random.default_rng(43)
    spatial = (7, 6, 5)[:rank]
    x = rng.standard_normal((batch, 4, *spatial))
    w = rng.standard_normal((4, 3, *kernel))
    b = rng.standard_normal(3 * attrs["group"])
    geo = _flat_geometry(ref, x, w, attrs)
    assert any(t.flat is not None for ph in geo.phases for t in ph.taps[1:])
    np.testing.assert_allclose(conv_transpose(x, w, b, **attrs), direct(x, w, b, **attrs),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.filterwarnings("ignore:invalid value encountered")
@pytest.mark.parametrize("rank,attrs,kernel", FLAT_CASES,
                         ids=[f"{r}d-{i}" for i, (r, _, _) in enumerate(FLAT_CASES)])
def test_flat_shifted_adds_keep_non_finite_values_local(force_path, rank, attrs, kernel):
    """inf/NaN on the input's borders: the flat span crosses the rows' ends, where the
    zeroed (clipped) values keep them out of the neighbouring rows."""
    ref = force_path("tap")
    rng = np.random.default_rng(47)
    spatial = (7, 6, 5)[:rank]
    x = rng.standard_normal((2, 4, *spatial))
    x[(0, 0) + (0,) * rank] = np.inf
    x[(1, 1) + tuple(n - 1 for n in spatial)] = np.nan
    x[(0, 2) + (0,) * (rank - 1) + (spatial[-1] - 1,)] = -np.inf
    w = rng.standard_normal((4, 3, *kernel))
    geo = _flat_geometry(ref, x, w, attrs)
    assert any(t.flat is not None for ph in geo.phases for t in ph.taps[1:])
    got = conv_transpose(x, w, None, **attrs)
    with np.errstate(invalid="ignore"):
        want = direct(x, w, None, **attrs)
    assert np.isfinite(want).any()
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(np.isinf(got), np.isinf(want))
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_flat_add_is_not_planned_where_the_phase_differs_from_the_input(force_path):
    """valid padding with k > s: the phases (7x7) are longer than the input (6x6), so the
    adds stay strided slices (a flat span would not map element for element)."""
    ref = force_path("tap")
    geo = ref._geometry((1, 6, 6, 4), (4, 3, 4, 4), None, (2, 2), (1, 1), (0, 0, 0, 0),
                        (0, 0), 1)
    taps = [t for ph in geo.phases for t in ph.taps[1:]]
    assert taps
    assert all(t.flat is None for t in taps)
