"""Keras 3 initializers in NumPy: fans, distributions, configs, seeding.

Statistical checks use a kernel of 3*3*64*48 = 27648 values: the sample
variance of n iid values has relative standard error sqrt(2/n) ~ 0.85%
(normal) and less for uniform, so a 4% band is ~5 standard errors wide.
"""

from __future__ import annotations

import json
import math
import subprocess

import numpy as np
import pytest

from convt_tools.errors import ConvtError
from convt_tools.initializers import compute_fans, initialize, initialize_weights
from convt_tools.spec import make_spec
from support.optional import oracle_python

SHAPE = (3, 3, 64, 48)  # (kh, kw, filters, in_channels)
FAN_IN, FAN_OUT = 64 * 9, 48 * 9  # Keras: shape[-2] * rf, shape[-1] * rf, rf = kh * kw


def _draw(name, cfg=None, shape=SHAPE, seed=0):
    return initialize((name, cfg or {}), shape, np.random.default_rng(seed))


def test_compute_fans_matches_keras_layout():
    assert compute_fans(SHAPE) == (FAN_IN, FAN_OUT)
    assert compute_fans((7,)) == (7, 7)
    assert compute_fans((5, 3)) == (5, 3)
    assert compute_fans(()) == (1, 1)
    assert compute_fans(SHAPE, input_axes=[0, 3], output_axes=[2]) == (3 * 48, 64)


# name -> (expected variance, uniform limit or None, truncation bound or None)
_T = 0.87962566103423978
EXPECTED = {
    "glorot_uniform": (2 / (FAN_IN + FAN_OUT), math.sqrt(6 / (FAN_IN + FAN_OUT)), None),
    "glorot_normal": (2 / (FAN_IN + FAN_OUT), None, 2 * math.sqrt(2 / (FAN_IN + FAN_OUT)) / _T),
    "he_uniform": (2 / FAN_IN, math.sqrt(6 / FAN_IN), None),
    "he_normal": (2 / FAN_IN, None, 2 * math.sqrt(2 / FAN_IN) / _T),
    "lecun_uniform": (1 / FAN_IN, math.sqrt(3 / FAN_IN), None),
    "lecun_normal": (1 / FAN_IN, None, 2 * math.sqrt(1 / FAN_IN) / _T),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_variance_scaling_presets(name):
    var, limit, bound = EXPECTED[name]
    w = _draw(name)
    assert w.shape == SHAPE
    assert abs(w.var() / var - 1) < 0.04
    assert abs(w.mean()) < 4 * math.sqrt(var / w.size)
    if limit is not None:
        assert np.abs(w).max() <= limit
        assert np.abs(w).max() > 0.99 * limit
    if bound is not None:  # truncated at 2 stddev of the underlying normal
        assert np.abs(w).max() <= bound
        assert np.abs(w).max() > 0.97 * bound


@pytest.mark.parametrize("mode,n", [("fan_in", FAN_IN), ("fan_out", FAN_OUT),
                                    ("fan_avg", (FAN_IN + FAN_OUT) / 2)])
@pytest.mark.parametrize("distribution", ["truncated_normal", "untruncated_normal",
                                          "uniform", "normal"])
def test_variance_scaling_config(mode, n, distribution):
    w = _draw("variance_scaling", {"scale": 3.0, "mode": mode, "distribution": distribution,
                                   "seed": None})
    assert abs(w.var() / (3.0 / n) - 1) < 0.04
    if distribution == "uniform":
        assert np.abs(w).max() <= math.sqrt(9.0 / n)


def test_variance_scaling_explicit_axes():
    w = _draw("variance_scaling", {"scale": 1.0, "mode": "fan_out", "distribution": "uniform",
                                   "input_axes": [2], "output_axes": [0, 1, 3]})
    assert abs(w.var() / (1 / (9 * 48)) - 1) < 0.04


def test_random_normal_uniform_truncated_constant():
    w = _draw("random_normal", {"mean": 1.5, "stddev": 0.3, "seed": None})
    assert abs(w.mean() - 1.5) < 0.01
    assert abs(w.std() / 0.3 - 1) < 0.02
    assert abs(_draw("random_normal").std() / 0.05 - 1) < 0.02  # Keras default stddev
    u = _draw("random_uniform", {"minval": 2.0, "maxval": 3.0})
    assert u.min() >= 2.0
    assert u.max() < 3.0
    assert abs(u.mean() - 2.5) < 0.01
    d = _draw("random_uniform")
    assert d.min() >= -0.05
    assert d.max() < 0.05
    t = _draw("truncated_normal", {"mean": -1.0, "stddev": 0.2})
    assert t.min() >= -1.4
    assert t.max() <= -0.6
    assert abs(t.std() / (0.2 * _T) - 1) < 0.02  # a 2-sigma truncation shrinks the stddev
    np.testing.assert_array_equal(_draw("constant", {"value": 0.25}), np.full(SHAPE, 0.25))
    np.testing.assert_array_equal(_draw("zeros"), np.zeros(SHAPE))
    np.testing.assert_array_equal(_draw("ones"), np.ones(SHAPE))


def test_orthogonal():
    w = _draw("orthogonal", {"gain": 2.0, "seed": 3})
    flat = w.reshape(-1, SHAPE[-1])  # (kh*kw*filters, in_channels): orthogonal columns
    np.testing.assert_allclose(flat.T @ flat, 4.0 * np.eye(SHAPE[-1]), atol=1e-10)
    wide = _draw("orthogonal", shape=(1, 1, 4, 9)).reshape(4, 9)  # fewer rows: orthogonal rows
    np.testing.assert_allclose(wide @ wide.T, np.eye(4), atol=1e-10)


@pytest.mark.parametrize("name,cfg,shape,match", [
    ("identity", {}, SHAPE, r"^kernel_initializer: got identity.*rank-2"),
    ("orthogonal", {}, (4,), r"^kernel_initializer: got orthogonal.*rank >= 2"),
    ("random_normal", {"stdev": 1}, SHAPE, r"^kernel_initializer: got unknown random_normal "
                                           r"option\(s\) 'stdev'"),
    ("variance_scaling", {"mode": "fan_sum"}, SHAPE, r"mode='fan_sum'"),
    ("variance_scaling", {"distribution": "cauchy"}, SHAPE, r"distribution='cauchy'"),
    ("variance_scaling", {"scale": -1}, SHAPE, r"scale=-1"),
    ("random_uniform", {"minval": "a"}, SHAPE, r"minval='a'"),
    ("constant", {"value": [1, 2]}, SHAPE, r"value=\[1, 2\]"),
    ("he_normal", {"input_axes": [9], "output_axes": [0]}, SHAPE, r"input_axes=\[9\]"),
])
def test_bad_configs(name, cfg, shape, match):
    with pytest.raises(ConvtError, match=match):
        _draw(name, cfg, shape)


def test_identity_on_rank2():
    np.testing.assert_array_equal(_draw("identity", {"gain": 3.0}, shape=(2, 3)),
                                  3.0 * np.eye(2, 3))


def test_initialize_weights_from_spec_config():
    spec = make_spec(16, (3, 2), kernel_initializer={
        "class_name": "RandomNormal", "config": {"mean": 0.0, "stddev": 0.5, "seed": None}},
        bias_initializer={"class_name": "Constant", "config": {"value": 0.75}})
    kernel, bias = initialize_weights(spec, 32)
    assert kernel.shape == (3, 2, 16, 32)
    assert kernel.dtype == np.float32
    assert abs(kernel.std() / 0.5 - 1) < 0.05
    np.testing.assert_array_equal(bias, np.full(16, 0.75, np.float32))
    _, no_bias = initialize_weights(make_spec(4, 3, use_bias=False), 2)
    assert no_bias is None


def test_seeding():
    spec = make_spec(8, 3, bias_initializer="random_uniform")
    k0, b0 = initialize_weights(spec, 4, seed=0)
    k0b, b0b = initialize_weights(spec, 4, seed=0)
    k1, b1 = initialize_weights(spec, 4, seed=1)
    np.testing.assert_array_equal(k0, k0b)
    np.testing.assert_array_equal(b0, b0b)
    assert not np.array_equal(k0, k1)
    assert not np.array_equal(b0, b1)
    with pytest.raises(ConvtError, match=r"^seed: got -1"):
        initialize_weights(spec, 4, seed=-1)
    with pytest.raises(ConvtError, match=r"^in_channels: got 0"):
        initialize_weights(spec, 0)


@pytest.mark.oracle
def test_variances_agree_with_real_keras():
    """One run of real Keras (NumPy backend): same variance (4%) as ours, and the same
    range (3%) for the bounded (uniform, truncated) distributions."""
    cases = [("GlorotUniform", "glorot_uniform", {}), ("GlorotNormal", "glorot_normal", {}),
             ("HeUniform", "he_uniform", {}), ("HeNormal", "he_normal", {}),
             ("LecunUniform", "lecun_uniform", {}), ("LecunNormal", "lecun_normal", {}),
             ("VarianceScaling", "variance_scaling",
              {"scale": 0.5, "mode": "fan_out", "distribution": "untruncated_normal"}),
             ("TruncatedNormal", "truncated_normal", {"mean": 0.0, "stddev": 0.2}),
             ("Orthogonal", "orthogonal", {"gain": 2.0})]
    script = (
        "import os, json, sys\n"
        "os.environ['KERAS_BACKEND'] = 'numpy'\n"
        "import numpy as np, keras\n"
        "out = []\n"
        "for name, cfg in json.loads(sys.argv[2]):\n"
        "    init = keras.initializers.get({'class_name': name, 'config': dict(cfg, seed=1)})\n"
        "    w = np.asarray(init(tuple(json.loads(sys.argv[1])), dtype='float32'), 'float64')\n"
        "    out.append([float(w.var()), float(np.abs(w).max())])\n"
        "print(json.dumps(out))\n")
    proc = subprocess.run(
        [oracle_python(), "-c", script, json.dumps(SHAPE),
         json.dumps([[keras_name, cfg] for keras_name, _, cfg in cases])],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    keras_stats = json.loads(proc.stdout.strip().splitlines()[-1])
    for (keras_name, ours, cfg), (var, amax) in zip(cases, keras_stats):
        w = _draw(ours, cfg)
        assert abs(w.var() / var - 1) < 0.04, (keras_name, w.var(), var)
        if keras_name not in ("VarianceScaling", "Orthogonal"):  # those are unbounded
            assert abs(np.abs(w).max() / amax - 1) < 0.03, (keras_name, np.abs(w).max(), amax)
