"""Issue 17 regressions, torch side: external data on the torch export path (item 7),
translate's activations run in real torch (12), the proof input chosen from the layer (13),
ONNX/onnxruntime size limits (14), torch configs detected by keys (20), dtype policies
carried by translate (18)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest

from support.cli import invoke
from support.optional import need

TORCH_CFG = {"module": "ConvTranspose2d", "in_channels": 2, "out_channels": 3,
             "kernel_size": 3, "stride": 2, "padding": 1}


def one_line_error(result, field: str) -> str:
    """Exit 2, exactly one stderr line ``Error: <field>: ...``, no traceback."""
    assert result.exit_code == 2, (result.output, result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"Error: {field}:"), lines[0]
    assert "Traceback" not in result.output
    return lines[0]


def _write(path: Path, obj: dict) -> Path:
    path.write_text(json.dumps(obj))
    return path


def _torch():
    return need("torch")


# ------------------------------------------------------------ item 7: external data

def test_torch_export_external_data_writes_onnx_and_data(cli, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import onnxruntime as ort
    monkeypatch.setenv("CONVT_EXTERNAL_DATA_BYTES", "1")
    cfg = _write(tmp_path / "up.json", TORCH_CFG)
    out = tmp_path / "up.onnx"
    r = cli("export", cfg, "-o", out, "--json")
    assert r.exit_code == 0, (r.output, r.exception)
    assert json.loads(r.stdout)["external_data"] == f"{out}.data"
    assert (tmp_path / "up.onnx.data").stat().st_size == 2 * 3 * 3 * 3 * 4   # W float32
    onnx.checker.check_model(str(out))
    model = onnx.load(str(out), load_external_data=False)
    w = [t for t in model.graph.initializer if t.name == "W"][0]
    assert w.data_location == onnx.TensorProto.EXTERNAL
    # the written pair runs and equals the in-memory export without external data
    monkeypatch.delenv("CONVT_EXTERNAL_DATA_BYTES")
    ref = tmp_path / "ref.onnx"
    assert cli("export", cfg, "-o", ref).exit_code == 0
    x = np.random.default_rng(0).standard_normal((1, 2, 4, 5)).astype(np.float32)
    got = ort.InferenceSession(str(out)).run(None, {"input": x})[0]
    want = ort.InferenceSession(str(ref)).run(None, {"input": x})[0]
    np.testing.assert_array_equal(got, want)


def test_torch_validate_and_run_with_external_data(cli, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVT_EXTERNAL_DATA_BYTES", "1")
    cfg = _write(tmp_path / "up.json", TORCH_CFG)
    r = cli("validate", cfg)
    assert r.exit_code == 0, (r.output, r.exception)
    assert "1 passed, 0 failed" in r.output
    np.save(tmp_path / "x.npy", np.ones((1, 2, 4, 4), np.float32))
    r = cli("run", cfg, "-i", tmp_path / "x.npy", "--engine", "onnxruntime",
            "-o", tmp_path / "y.npy")
    assert r.exit_code == 0, (r.output, r.exception)
    assert np.load(tmp_path / "y.npy").shape == (1, 3, 7, 7)


def test_keras_validate_other_runtimes_with_external_data(cli, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The shared loaders (onnxruntime session, temporary model file) write the .data too."""
    import importlib.util

    names = ["onnxruntime"] + [n for n in ("openvino", "tract")
                               if importlib.util.find_spec(n) is not None]
    if len(names) < 2:
        pytest.skip("needs openvino or tract (optional runtimes)")
    monkeypatch.setenv("CONVT_EXTERNAL_DATA_BYTES", "1")
    cfg = _write(tmp_path / "k.json", {"class_name": "Conv2DTranspose",
                                       "config": {"filters": 3, "kernel_size": 3, "strides": 2}})
    r = cli("validate", cfg, "--input-shape", "1,5,5,2", "--runtime", ",".join(names))
    assert r.exit_code == 0, (r.output, r.exception)
    assert f"{len(names)} passed, 0 failed" in r.output


# ------------------------------------------------------------ item 14: size limits

@pytest.mark.parametrize("framework,cfg,field", [
    ("torch", {"module": "ConvTranspose2d", "in_channels": 1, "out_channels": 1,
               "kernel_size": 3, "dilation": 2**62}, "dilation"),
    ("keras", {"class_name": "Conv2DTranspose",
               "config": {"filters": 1, "kernel_size": 3, "dilation_rate": 2**62}},
     "dilation_rate"),
])
def test_dilation_beyond_int64_is_refused(cli, tmp_path: Path, framework: str, cfg: dict,
                                          field: str) -> None:
    """(3 - 1) * 2**62 + 1 > 2**63 - 1: onnxruntime refuses to load such a model."""
    path = _write(tmp_path / "c.json", cfg)
    shape = [] if framework == "torch" else ["--input-shape", "None,?,?,1"]
    out = tmp_path / "c.onnx"
    line = one_line_error(cli("export", path, "-o", out, *shape), field)
    assert "9223372036854775807" in line and "4611686018427387903" in line
    assert not out.exists()


def test_largest_loadable_dilation_is_exported_and_loads(cli, tmp_path: Path) -> None:
    """The limit is onnxruntime's: dilation 2**62 - 1 with kernel 3 (K = 2**63 - 1) loads."""
    import onnxruntime as ort
    path = _write(tmp_path / "c.json", {"module": "ConvTranspose1d", "in_channels": 1,
                                        "out_channels": 1, "kernel_size": 3,
                                        "dilation": 2**62 - 1})
    out = tmp_path / "c.onnx"
    r = cli("export", path, "-o", out)
    assert r.exit_code == 0, (r.output, r.exception)
    ort.InferenceSession(str(out))       # loads


def test_uncropped_length_beyond_int64_is_refused(cli, tmp_path: Path) -> None:
    """Output 2**63 - 3 fits int64, but L = 2**63 + 3 does not: onnxruntime's shape
    inference overflows at load, so the export is refused."""
    path = _write(tmp_path / "c.json", {"module": "ConvTranspose1d", "in_channels": 1,
                                        "out_channels": 1, "kernel_size": 3, "stride": 2**62,
                                        "padding": 3})
    line = one_line_error(cli("export", path, "-o", tmp_path / "c.onnx",
                              "--input-shape", "1,1,3"), "input_shape")
    assert "9223372036854775807" in line


def test_size_check_is_in_the_shared_graph_builder() -> None:
    from convt_tools.errors import ConvtError
    from convt_tools.geometry import OnnxAxis
    from convt_tools.op import ConvTransposeOp
    from convt_tools.spec.layout import Layout

    op = ConvTransposeOp(layout=Layout(rank=1, data_format="channels_first"), kernel_shape=(2,),
                         strides=(1,), dilations=(2**63 - 2,), axes=(OnnxAxis(0, 0, 0, 0, 0),))
    op.check_sizes([None])                           # K = 2**63 - 1: fits
    with pytest.raises(ConvtError, match="input_shape: the uncropped"):
        op.check_sizes([2])                          # L = K + 1 does not
    # zero taps count: one appended to a 2-tap kernel makes K = 2 * d + 1
    big = ConvTransposeOp(layout=op.layout, kernel_shape=(2,), strides=(1,),
                          dilations=(2**62,), axes=(OnnxAxis(0, 0, 0, 0, 1),))
    with pytest.raises(ConvtError) as exc:
        big.check_sizes([None], "dilation")
    assert exc.value.field == "dilation"


# ------------------------------------------------------------ item 20: detection by keys

@pytest.mark.parametrize("name", ["up.txt", "up.cfg", "up"])
def test_torch_config_detected_by_keys_whatever_the_extension(cli, tmp_path: Path,
                                                              name: str) -> None:
    path = _write(tmp_path / name, TORCH_CFG)
    r = cli("shape", path, "--input-shape", "1,2,5,5")
    assert r.exit_code == 0, (r.output, r.exception)
    assert r.stdout.strip() == "(1, 3, 9, 9)"        # torch: (5-1)*2 - 2 + 3


def test_keras_config_with_other_extension_still_keras(cli, tmp_path: Path) -> None:
    path = _write(tmp_path / "k.txt", {"class_name": "Conv2DTranspose",
                                       "config": {"filters": 3, "kernel_size": 3}})
    r = cli("shape", path, "--input-shape", "1,5,5,2")
    assert r.exit_code == 0, (r.output, r.exception)
    assert r.stdout.strip() == "(1, 7, 7, 3)"


# ------------------------------------------------------------ item 12: activations

def _keras_translation(activation: str, data_format: str):
    from convt_tools.spec import parse_config
    from convt_tools.translate import translate

    cfg = {"filters": 4, "kernel_size": 3, "strides": 2, "padding": "same",
           "activation": activation, "data_format": data_format}
    return translate(parse_config(cfg), "torch", 2)


def _all_activations() -> list[str]:
    from convt_tools.activations import ACTIVATIONS

    return sorted(ACTIVATIONS)


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("activation", _all_activations())
def test_translate_snippet_activation_in_real_torch(activation: str, data_format: str) -> None:
    """Every activation: the emitted snippet, run in real torch, equals the Keras layer
    (NumPy table in activations.py), and the proof runs the snippet's own line."""
    torch = _torch()
    from convt_tools.translate.proof import keras_forward, keras_kernel_to_torch, prove
    from convt_tools.translate.snippet import torch_snippet

    tr = _keras_translation(activation, data_format)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 2, 5, 6)) * 3
    kernel, bias = rng.standard_normal((3, 3, 4, 2)), rng.standard_normal(4)
    want = keras_forward(tr.keras, ((0, 0), (0, 0)), x, kernel, bias)
    ns: dict = {}
    exec(torch_snippet(tr), ns)
    conv = ns["conv"].double()
    conv.load_state_dict({"weight": torch.from_numpy(keras_kernel_to_torch(kernel)),
                          "bias": torch.from_numpy(bias)})
    with torch.no_grad():
        got = ns["forward"](torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    assert prove(tr).exact


@pytest.mark.parametrize("activation", _all_activations())
def test_torch_activation_twins_match_real_torch(activation: str) -> None:
    """The proof's NumPy twin of each snippet line equals that line in real torch."""
    torch = _torch()
    import torch.nn.functional as F  # noqa: N812

    from convt_tools.translate.snippet import (TORCH_ACTIVATIONS, TORCH_ACTIVATIONS_NUMPY,
                                               TORCH_HELPERS)

    y = np.random.default_rng(2).standard_normal((2, 4, 3, 6)) * 4
    y[0, 0, 0, :] = [-1.0, 1.0, 0.5, -0.5, 25.0, -30.0]     # the kinks and softplus's threshold
    ns = {"torch": torch, "F": F}
    if activation in TORCH_HELPERS:
        exec(TORCH_HELPERS[activation], ns)
    for dim in (1, -1):
        ns["y"] = torch.from_numpy(y)
        got = eval(TORCH_ACTIVATIONS[activation].format(dim=dim), ns).numpy()
        np.testing.assert_allclose(TORCH_ACTIVATIONS_NUMPY[activation](y, dim), got,
                                   rtol=1e-12, atol=1e-12)


def test_proof_runs_the_snippet_activation(monkeypatch: pytest.MonkeyPatch) -> None:
    """A snippet line that differs from Keras makes the proof fail (was: Keras's table on
    both sides, error 0 whatever the snippet said)."""
    from convt_tools.translate import snippet
    from convt_tools.translate.proof import prove

    tr = _keras_translation("squareplus", "channels_last")
    assert prove(tr).exact
    monkeypatch.setitem(snippet.TORCH_ACTIVATIONS_NUMPY, "squareplus", lambda y, d: y)
    proof = prove(tr)
    assert not proof.exact and proof.max_abs_error > 0.1


@pytest.mark.parametrize("activation", ["sparsemax", "squareplus", "sparse_plus"])
def test_translate_cli_emits_activation_code(cli, tmp_path: Path, activation: str) -> None:
    path = _write(tmp_path / "k.json", {"class_name": "Conv2DTranspose", "config": {
        "filters": 3, "kernel_size": 3, "activation": activation}})
    r = cli("translate", path, "--to", "torch", "--in-channels", "2", "--json")
    assert r.exit_code == 0, (r.output, r.exception)
    info = json.loads(r.stdout)
    assert "apply Keras's" not in info["snippet"]
    assert f"# Keras activation {activation!r}" in info["snippet"]


def test_translate_refuses_activation_without_torch_code(monkeypatch: pytest.MonkeyPatch) -> None:
    from convt_tools.errors import ConvtError
    from convt_tools.translate import snippet

    monkeypatch.delitem(snippet.TORCH_ACTIVATIONS, "mish")
    with pytest.raises(ConvtError) as exc:
        _keras_translation("mish", "channels_last")
    assert exc.value.field == "activation"


# ------------------------------------------------------------ item 13: proof input size

def test_translate_accepts_large_padding(cli, tmp_path: Path) -> None:
    path = _write(tmp_path / "p.json", {"module": "ConvTranspose2d", "in_channels": 2,
                                        "out_channels": 3, "kernel_size": 3, "padding": 5})
    r = cli("translate", path, "--to", "keras", "--json")
    assert r.exit_code == 0, (r.output, r.exception)
    proof = json.loads(r.stdout)["proof"]
    assert proof["exact"] and proof["source_shape"][2] >= 1


def test_translate_large_padding_in_real_torch(tmp_path: Path) -> None:
    """The chosen proof input is one real torch accepts, with the shape the proof reports."""
    torch = _torch()
    from convt_tools.torchconv.spec import parse_torch_config
    from convt_tools.translate import translate
    from convt_tools.translate.proof import prove

    cfg = {"module": "ConvTranspose2d", "in_channels": 2, "out_channels": 3,
           "kernel_size": 3, "padding": [5, 7], "stride": [1, 2]}
    proof = prove(translate(parse_torch_config(cfg), "keras"))
    assert proof.exact
    kw = {k: v for k, v in cfg.items() if k != "module"}
    y = torch.nn.ConvTranspose2d(**kw)(torch.zeros(proof.input_shape))
    assert tuple(y.shape) == proof.source_shape


def test_translate_input_shape_option(cli, tmp_path: Path) -> None:
    path = _write(tmp_path / "p.json", {"module": "ConvTranspose2d", "in_channels": 2,
                                        "out_channels": 3, "kernel_size": 3, "padding": 5})
    r = cli("translate", path, "--to", "keras", "--input-shape", "1,2,12,13", "--json")
    assert r.exit_code == 0, (r.output, r.exception)
    proof = json.loads(r.stdout)["proof"]
    assert proof["input_shape"] == [1, 2, 12, 13] and proof["source_shape"] == [1, 3, 4, 5]
    one_line_error(cli("translate", path, "--to", "keras", "--input-shape", "1,2,?,13"),
                   "input_shape")
    one_line_error(cli("translate", path, "--to", "keras", "--input-shape", "1,3,12,13"),
                   "input_shape")
    k = _write(tmp_path / "k.json", {"class_name": "Conv2DTranspose",
                                     "config": {"filters": 3, "kernel_size": 3}})
    r = cli("translate", k, "--to", "torch", "--input-shape", "1,6,7,2", "--json")
    assert r.exit_code == 0, (r.output, r.exception)   # Keras layout; gives in_channels too
    assert json.loads(r.stdout)["proof"]["input_shape"] == [1, 2, 6, 7]


def test_translate_padding_too_large_to_prove_is_one_line(cli, tmp_path: Path) -> None:
    path = _write(tmp_path / "p.json", {"module": "ConvTranspose2d", "in_channels": 2,
                                        "out_channels": 3, "kernel_size": 3,
                                        "padding": 100000})
    one_line_error(cli("translate", path, "--to", "keras"), "input_shape")


# ------------------------------------------------------------ item 18: dtype policies

@pytest.mark.parametrize("dtype", ["float64", "float16", "bfloat16"])
def test_translate_carries_keras_dtype_to_torch(cli, tmp_path: Path, dtype: str) -> None:
    path = _write(tmp_path / "k.json", {"class_name": "Conv2DTranspose", "config": {
        "filters": 3, "kernel_size": 3, "dtype": dtype}})
    np.savez(tmp_path / "kw.npz", kernel=np.ones((3, 3, 3, 2), np.float32),
             bias=np.zeros(3, np.float32))
    r = cli("translate", path, "--to", "torch", "-w", tmp_path / "kw.npz",
            "-o", tmp_path / "tw.npz", "--json")
    assert r.exit_code == 0, (r.output, r.exception)
    info = json.loads(r.stdout)
    assert info["config"]["dtype"] == dtype
    assert f"dtype=torch.{dtype}" in info["snippet"]
    w = np.load(tmp_path / "tw.npz")
    assert w["weight"].dtype == np.dtype("float32" if dtype == "bfloat16" else dtype)


def test_translate_dtype_snippet_runs_in_real_torch(cli, tmp_path: Path) -> None:
    torch = _torch()
    path = _write(tmp_path / "k.json", {"class_name": "Conv2DTranspose", "config": {
        "filters": 3, "kernel_size": 3, "dtype": "float64"}})
    np.savez(tmp_path / "kw.npz", kernel=np.ones((3, 3, 3, 2)), bias=np.zeros(3))
    r = cli("translate", path, "--to", "torch", "-w", tmp_path / "kw.npz",
            "-o", tmp_path / "tw.npz", "--json")
    assert r.exit_code == 0, (r.output, r.exception)
    ns: dict = {}
    exec(json.loads(r.stdout)["snippet"], ns)
    assert ns["conv"].weight.dtype == torch.float64
    y = ns["forward"](torch.ones((1, 2, 4, 4), dtype=torch.float64))
    assert y.dtype == torch.float64


def test_translate_mixed_policy_refused(cli, tmp_path: Path) -> None:
    path = _write(tmp_path / "k.json", {"class_name": "Conv2DTranspose", "config": {
        "filters": 3, "kernel_size": 3, "dtype": "mixed_float16"}})
    line = one_line_error(cli("translate", path, "--to", "torch", "--in-channels", "2"), "dtype")
    assert "float64" in line and "bfloat16" in line


def test_translate_carries_torch_dtype_to_keras(cli, tmp_path: Path) -> None:
    path = _write(tmp_path / "t.json", dict(TORCH_CFG, dtype="torch.float64"))
    r = cli("translate", path, "--to", "keras", "--json")
    assert r.exit_code == 0, (r.output, r.exception)
    info = json.loads(r.stdout)
    assert info["config"][0]["config"]["dtype"] == "float64"
    assert "dtype='float64'" in info["snippet"]
