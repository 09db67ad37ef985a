"""``convt translate``: every translation is exact, checked three ways.

1. Property sweep (both directions): the source evaluated by the loop oracles
   of ``tests/support/oracles.py`` under its own framework's rules (Keras's crop rule
   written out there again; torch = ONNX with pads ``[p, p]`` and
   ``output_padding``) equals the translated target evaluated the same way
   with the converted weights; the target config is legal in its framework.
2. Real framework output: torch fixtures (real torch 2.13) translated to
   Keras, and Keras fixtures (real Keras 3.15) translated to torch, reproduce
   the stored outputs (``rtol = atol = 1e-5``, float32 fixtures).
3. The pasteable snippets run in real torch and real Keras and match the
   source layer run in its own framework (oracle tier: skips unless
   ``CONVT_ORACLE_PYTHON`` to an interpreter that has them).
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import textwrap
from pathlib import Path

import numpy as np
import pytest

from convt_tools.spec import parse_config
from convt_tools.torchconv import parse_torch_config
from convt_tools.translate import KerasLayer, keras_to_torch, torch_to_keras
from convt_tools.translate.proof import keras_kernel_to_torch, prove, torch_weight_to_keras
from support import oracles
from support.optional import oracle_python

FIX = Path(__file__).resolve().parent.parent / "fixtures"
TOL = {"rtol": 1e-5, "atol": 1e-5}


def _crop(y: np.ndarray, crop) -> np.ndarray:
    return y[(slice(None), slice(None)) + tuple(slice(b, y.shape[2 + i] - e)
                                                 for i, (b, e) in enumerate(crop))]


def _torch_oracle(spec, x, weight, bias):
    return oracles.onnx_conv_transpose(x, weight, bias if spec.bias else None, strides=spec.stride,
                                       dilations=spec.dilation, pads=list(spec.padding) * 2,
                                       output_padding=spec.output_padding, group=spec.groups)


def _keras_oracle(layer, x_cf, kernel, bias):
    y = oracles.keras_conv_transpose(layer, np.moveaxis(x_cf, 1, -1), kernel,
                                     bias if layer.use_bias else None)
    return np.moveaxis(y, -1, 1)


def _keras_layers():
    for k, s, d, pad in itertools.product((1, 2, 3, 4), (1, 2, 3), (1, 2), ("valid", "same")):
        if s > 1 and d > 1:
            continue
        for op in [None, *range(s)]:
            yield KerasLayer(3, (k, k + 1), (s, 1), pad, None if op is None else (op, 0),
                             (d, 1), use_bias=True, activation="linear")


@pytest.mark.parametrize("layer", list(_keras_layers()), ids=str)
def test_keras_to_torch_is_exact(layer: KerasLayer) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 2, 3, 2))
    kernel = rng.standard_normal((*layer.kernel_size, 3, 2))
    bias = rng.standard_normal(3)
    tr = keras_to_torch(layer, 2)
    want = _keras_oracle(layer, x, kernel, bias)
    got = _crop(_torch_oracle(tr.torch, x, keras_kernel_to_torch(kernel), bias), tr.crop)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    parse_torch_config(tr.torch.to_config())           # legal in torch
    odd = [c.total % 2 == 1 and not c.extend for c in layer.crops()]
    assert tr.single_layer == (not any(odd))


def _torch_specs():
    for k, s, d, p, op, g in itertools.product((1, 2, 3), (1, 2, 3), (1, 2, 3), (0, 1, 2),
                                               (0, 1, 2), (1, 2)):
        if (op >= s and op >= d) or (d == 3 and k == 3 and s == 3):
            continue
        spec = parse_torch_config({"module": "ConvTranspose2d", "in_channels": 2 * g,
                                   "out_channels": 2 * g, "kernel_size": [k, 2], "stride": [s, 1],
                                   "dilation": [d, 1], "padding": [p, 0],
                                   "output_padding": [op, 0], "groups": g})
        try:
            spec.output_shape((1, 2 * g, 2, 2))
        except ValueError:
            continue
        yield spec


@pytest.mark.parametrize("spec", list(_torch_specs()), ids=lambda s: s.snippet())
def test_torch_to_keras_is_exact(spec) -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, spec.in_channels, 2, 2))
    weight = rng.standard_normal(spec.weight_shape())
    bias = rng.standard_normal(spec.out_channels)
    tr = torch_to_keras(spec)
    want = _torch_oracle(spec, x, weight, bias)
    got = _crop(_keras_oracle(tr.keras, x, torch_weight_to_keras(tr, weight), bias), tr.crop)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    keras = parse_config(tr.keras.to_config())          # legal in Keras (convt's Keras rules)
    assert keras.output_padding is None or all(o < s for o, s in
                                               zip(keras.output_padding, keras.strides))
    assert tr.single_layer == (spec.groups == 1 and not (max(spec.stride) > 1 < max(spec.dilation))
                               and not any(tr.crop[0]) and not any(tr.taps_after))


def test_the_issue_example() -> None:
    """Keras k3 s2 same: torch needs padding 0 + a slice; padding=1, output_padding=1 is shifted."""
    layer = KerasLayer(4, (3, 3), (2, 2), "same", None, (1, 1))
    tr = keras_to_torch(layer, 2)
    assert tr.torch.padding == (0, 0) and tr.torch.output_padding == (0, 0)
    assert tr.crop == ((0, 1), (0, 1)) and not tr.single_layer
    rng = np.random.default_rng(2)
    x, kernel, bias = rng.standard_normal((1, 2, 4, 4)), rng.standard_normal((3, 3, 4, 2)), None
    keras = _keras_oracle(layer, x, kernel, bias)
    popular = parse_torch_config({"module": "ConvTranspose2d", "in_channels": 2, "out_channels": 4,
                                  "kernel_size": 3, "stride": 2, "padding": 1,
                                  "output_padding": 1, "bias": False})
    wrong = _torch_oracle(popular, x, keras_kernel_to_torch(kernel), None)
    assert wrong.shape == keras.shape
    np.testing.assert_allclose(wrong[:, :, :-1, :-1], keras[:, :, 1:, 1:], atol=1e-12)
    assert np.abs(wrong - keras).max() > 0.1


def test_torch_fixtures_translate_to_keras() -> None:
    """Real torch output reproduced by the Keras translation (every rank, groups, op >= stride)."""
    cases = [c for c in json.loads((FIX / "torch" / "cases.json").read_text())
             if c["output_size"] is None and len(c["input_shape"]) == int(c["module"][-2]) + 2]
    for c in cases[::4]:
        spec = parse_torch_config({"module": c["module"], **c["kwargs"]})
        with np.load(FIX / "torch" / f"{c['id']}.npz") as z:
            a = {k: z[k] for k in z.files}
        tr = torch_to_keras(spec)
        got = _crop(_keras_oracle(tr.keras, a["input"], torch_weight_to_keras(tr, a["weight"]),
                                  a.get("bias")), tr.crop)
        np.testing.assert_allclose(got, a["output"], **TOL, err_msg=c["id"])


def test_keras_fixtures_translate_to_torch() -> None:
    """Real Keras output (channels_last float32 grid) reproduced by the torch translation."""
    from convt_tools.torchconv.compute import torch_conv_transpose
    from convt_tools.translate import keras_layer_from_spec

    ids = sorted(p.stem for p in (FIX / "cases").glob("grid_*_cl_*.json"))
    assert ids
    for cid in ids[::3]:
        case = json.loads((FIX / "cases" / f"{cid}.json").read_text())
        layer = keras_layer_from_spec(parse_config(case["config"]))
        with np.load(FIX / "cases" / f"{cid}.npz") as z:
            x, kernel, out = z["input"], z["kernel"], z["output"]
            bias = z["bias"] if "bias" in z.files else None
        tr = keras_to_torch(layer, x.shape[-1])
        y = torch_conv_transpose(tr.torch, np.moveaxis(x, -1, 1), keras_kernel_to_torch(kernel),
                                 bias)
        np.testing.assert_allclose(np.moveaxis(_crop(y, tr.crop), 1, -1), out, **TOL,
                                   err_msg=cid)


def test_cli_translate_round_trip(tmp_path: Path, cli) -> None:
    cfg = tmp_path / "k.json"
    cfg.write_text(json.dumps({"filters": 4, "kernel_size": 3, "strides": 2, "padding": "same"}))
    rng = np.random.default_rng(3)
    kernel = rng.standard_normal((3, 3, 4, 2)).astype(np.float32)
    np.savez(tmp_path / "kw.npz", kernel=kernel, bias=np.ones(4, np.float32))
    r = cli("translate", cfg, "--to", "torch", "-w", tmp_path / "kw.npz", "-o", tmp_path / "tw.npz",
            "--json")
    assert r.exit_code == 0, r.output
    info = json.loads(r.stdout)
    assert info["proof"]["exact"] and info["proof"]["max_abs_error"] == 0.0
    assert info["config"]["slice_after"] == [[0, 1], [0, 1]]
    with np.load(tmp_path / "tw.npz") as z:
        np.testing.assert_array_equal(z["weight"], kernel.transpose(3, 2, 0, 1))
    tcfg = tmp_path / "t.json"
    tcfg.write_text(json.dumps({k: v for k, v in info["config"].items() if k != "slice_after"}))
    r = cli("translate", tcfg, "--to", "keras", "--json")   # the module alone (no slice)
    assert r.exit_code == 0, r.output
    back = json.loads(r.stdout)
    assert back["single_layer"] and back["config"][0]["config"]["padding"] == "valid"
    r = cli("translate", cfg, "--to", "torch")
    assert r.exit_code == 2 and r.stderr.startswith("Error: in_channels:")


# ---------------------------------------------------------------- real frameworks

_HARNESS = textwrap.dedent('''
    import json, os, sys
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import numpy as np, torch, keras
    job = json.loads(open(sys.argv[1]).read())
    out = {}
    for item in job:
        ns = {}
        exec(item["snippet"], ns)
        x = np.load(item["x"])
        w = np.load(item["w"])
        n = x.ndim - 2
        if item["source"] == "keras":
            layer = getattr(keras.layers, f"Conv{n}DTranspose")(**item["source_config"])
            layer.build((None,) + (None,) * n + (x.shape[1],))
            layer.set_weights([w[k] for k in ("kernel", "bias") if k in w.files])
            ref = keras.ops.convert_to_numpy(layer(np.moveaxis(x, 1, -1)))
            got = ns["forward"](torch.from_numpy(x)).detach().numpy()
            got = np.moveaxis(got, 1, -1)
        else:
            kw = {k: v for k, v in item["source_config"].items() if k not in ("framework", "module")}
            m = getattr(torch.nn, item["source_config"]["module"])(**kw)
            m.load_state_dict({k: torch.from_numpy(w[k]) for k in w.files})
            ref = np.moveaxis(m(torch.from_numpy(x)).detach().numpy(), 1, -1)
            got = keras.ops.convert_to_numpy(ns["model"](np.moveaxis(x, 1, -1)))
        out[item["name"]] = [list(ref.shape), list(got.shape),
                             float(np.abs(ref - got).max()) if ref.shape == got.shape else None]
    print(json.dumps(out))
''')

_ORACLE_CASES = [
    ("keras", {"filters": 4, "kernel_size": 3, "strides": 2, "padding": "same",
               "activation": "relu"}, 2),
    ("keras", {"filters": 3, "kernel_size": [4, 5], "strides": [2, 3], "padding": "same",
               "output_padding": [1, 2]}, 2),
    ("keras", {"filters": 3, "kernel_size": 2, "strides": 3, "padding": "valid",
               "activation": "softmax"}, 2),
    ("keras", {"filters": 2, "kernel_size": 3, "strides": 1, "padding": "same",
               "dilation_rate": 2}, 1),
    ("torch", {"module": "ConvTranspose2d", "in_channels": 2, "out_channels": 3,
               "kernel_size": 3, "stride": 2, "padding": 1, "output_padding": 1}, 2),
    ("torch", {"module": "ConvTranspose2d", "in_channels": 4, "out_channels": 6,
               "kernel_size": 3, "stride": [1, 2], "dilation": [3, 2], "padding": 1,
               "output_padding": [2, 1], "groups": 2}, 2),
    ("torch", {"module": "ConvTranspose1d", "in_channels": 2, "out_channels": 2,
               "kernel_size": 2, "stride": 1, "dilation": 3, "output_padding": 2}, 1),
    ("torch", {"module": "ConvTranspose3d", "in_channels": 2, "out_channels": 2,
               "kernel_size": 3, "stride": 2, "padding": 1}, 3),
]


@pytest.mark.oracle
def test_snippets_run_in_real_torch_and_keras(tmp_path: Path) -> None:
    exe = oracle_python()
    from convt_tools.translate import translate
    from convt_tools.translate.snippet import keras_snippet, torch_snippet

    rng = np.random.default_rng(4)
    job = []
    for i, (src, cfg, rank) in enumerate(_ORACLE_CASES):
        if src == "keras":
            c_in = 2
            if rank == 2:
                tr = translate(parse_config(cfg), "torch", c_in)
            else:
                tr = keras_to_torch(KerasLayer(cfg["filters"], (cfg["kernel_size"],),
                                               (cfg["strides"],), cfg["padding"], None,
                                               (cfg.get("dilation_rate", 1),)), c_in)
            kernel = rng.standard_normal((*tr.keras.kernel_size, tr.keras.filters, c_in))
            src_w = {"kernel": kernel.astype(np.float32),
                     "bias": rng.standard_normal(tr.keras.filters).astype(np.float32)}
            tgt_w = {"weight": keras_kernel_to_torch(src_w["kernel"]), "bias": src_w["bias"]}
            snippet_fn, x_ch = torch_snippet, c_in
        else:
            spec = parse_torch_config(cfg)
            tr = translate(spec, "keras")
            src_w = {"weight": rng.standard_normal(spec.weight_shape()).astype(np.float32),
                     "bias": rng.standard_normal(spec.out_channels).astype(np.float32)}
            tgt_w = {"kernel": torch_weight_to_keras(tr, src_w["weight"]), "bias": src_w["bias"]}
            snippet_fn, x_ch = keras_snippet, spec.in_channels
        assert prove(tr).exact
        np.savez(tmp_path / f"src{i}.npz", **src_w)
        np.savez(tmp_path / f"tgt{i}.npz", **tgt_w)
        x = rng.standard_normal((2, x_ch) + (5,) * rank).astype(np.float32)
        np.save(tmp_path / f"x{i}.npy", x)
        job.append({"name": f"{src}{i}", "source": src, "source_config": cfg,
                    "snippet": snippet_fn(tr, str(tmp_path / f"tgt{i}.npz")),
                    "x": str(tmp_path / f"x{i}.npy"), "w": str(tmp_path / f"src{i}.npz")})
    (tmp_path / "job.json").write_text(json.dumps(job))
    (tmp_path / "harness.py").write_text(_HARNESS)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([exe, str(tmp_path / "harness.py"), str(tmp_path / "job.json")],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    print(json.dumps(result))
    for name, (ref_shape, got_shape, err) in result.items():
        assert ref_shape == got_shape, name
        assert err <= 1e-4, (name, err)


def test_cli_translate_saved_model_layers_match_real_keras(tmp_path: Path, cli) -> None:
    """``--layer`` of a saved .keras model (real weights): the torch translation reproduces the
    per-layer outputs real Keras stored (channels_first layers, odd crop, no bias, dilation)."""
    from convt_tools.torchconv.compute import torch_conv_transpose

    model = FIX / "models" / "functional_in_functional.keras"
    expected = json.loads((FIX / "models" / "functional_in_functional.expected.json").read_text())
    with np.load(FIX / "models" / "functional_in_functional.expected.npz") as z:
        arrays = {k: z[k] for k in z.files}
    for layer in expected["layers"]:
        i = layer["index"]
        out = tmp_path / f"w{i}.npz"
        r = cli("translate", model, "--layer", layer["path"], "--to", "torch", "-o", out, "--json")
        assert r.exit_code == 0, r.output
        info = json.loads(r.stdout)
        assert info["proof"]["exact"]
        cfg = {k: v for k, v in info["config"].items() if k != "slice_after"}
        spec = parse_torch_config(cfg)
        with np.load(out) as z:
            y = torch_conv_transpose(spec, arrays[f"x{i}"], z["weight"],
                                     z["bias"] if "bias" in z.files else None)
        y = _crop(y, info["config"].get("slice_after", [[0, 0]] * spec.rank))
        np.testing.assert_allclose(y, arrays[f"y{i}"], **TOL, err_msg=layer["path"])
