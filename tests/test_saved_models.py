"""Saved Keras models (.keras, legacy .h5, config + weights) against real Keras.

The models in ``fixtures/models/`` were saved by real Keras 3.15.1
(``fixtures/generate_models.py``), which also stored, per transposed-conv
layer, its path, the h5 group Keras wrote, a seeded input and the layer's real
Keras output. Nothing expected here comes from convt-tools itself.

Tolerance against Keras's outputs: ``rtol = 1e-5``, ``atol = 1e-5 * max(1, max|y|)``
(the conformance suite's float32 tolerance; observed errors are ~1e-6).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from xml.etree import ElementTree as ET

import numpy as np
import pytest

import h5py  # noqa: E402
import onnxruntime as ort  # noqa: E402
from click.testing import CliRunner  # noqa: E402

from convt_tools.cli import main  # noqa: E402
from convt_tools.errors import ConvtError  # noqa: E402
from convt_tools.saved import open_model  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = os.path.join(ROOT, "fixtures", "models")
NAMES = ["seq_decoder", "unet_nested", "functional_in_functional", "ranks_1d_3d", "wrapped_lazy"]
FORMS = ["keras", "h5", "config"]
# (model, form): Keras 3 models in all three forms; the real Keras 2 (tf_keras) model as its
# legacy .h5 (kernel:0 names) and as to_json() + a Keras 2 weights-only .h5.
CASES = [(n, f) for n in NAMES for f in FORMS] + [("keras2_legacy", "h5"),
                                                  ("keras2_legacy", "config")]


def _expected(name: str) -> dict:
    with open(os.path.join(MODELS, f"{name}.expected.json")) as fh:
        return json.load(fh)


def _arrays(name: str) -> dict[str, np.ndarray]:
    with np.load(os.path.join(MODELS, f"{name}.expected.npz"), allow_pickle=False) as d:
        return {k: d[k] for k in d.files}


def _args(name: str, form: str) -> list[str]:
    if form == "config":
        return [os.path.join(MODELS, f"{name}.config.json"), "--weights",
                os.path.join(MODELS, f"{name}.weights.h5")]
    return [os.path.join(MODELS, f"{name}.{form}")]


def _open(name: str, form: str):
    args = _args(name, form)
    return open_model(args[0], args[2] if len(args) > 2 else None)


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _close(got: np.ndarray, want: np.ndarray) -> None:
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * max(1.0, float(np.abs(want).max())))


def _supported(name: str) -> list[dict]:
    return [r for r in _expected(name)["layers"] if r["class"] == "Conv2DTranspose"]


# ------------------------------------------------------------------ discovery and mapping

@pytest.mark.parametrize("name,form", CASES)
def test_every_transposed_conv_layer_is_found_with_keras_paths(name, form):
    want = _expected(name)["layers"]
    model = _open(name, form)
    assert [(r.path, r.class_name) for r in model.layers] == \
        [(w["path"], w["class"]) for w in want]
    if want[0]["h5_group"] is not None and form != "h5":  # Keras 3 layout: the group Keras really wrote (checked by the generator)
        assert [r.group for r in model.layers] == [w["h5_group"] for w in want]


@pytest.mark.parametrize("name,form", [c for c in CASES if c[0] != "ranks_1d_3d"])
def test_real_weights_reproduce_each_layers_keras_output(name, form):
    """Reference evaluator with the weights read from the file == Keras's output."""
    from convt_tools.reference import keras_conv2d_transpose

    arrays = _arrays(name)
    model = _open(name, form)
    for want in _supported(name):
        record = model.select(want["path"])
        kernel, bias = model.weights(record)
        assert (bias is not None) == want["use_bias"]
        i = want["index"]
        y = keras_conv2d_transpose(record.spec, arrays[f"x{i}"], kernel, bias)
        _close(np.asarray(y), arrays[f"y{i}"])


def test_one_and_three_d_layers_are_listed_with_their_stored_shapes():
    model = _open("ranks_1d_3d", "keras")
    shapes = {r.path: model._kernel_shapes[r.index] for r in model.layers}
    assert shapes == {"up1d": (3, 3, 2), "up1d_b": (2, 2, 3), "up3d": (2, 3, 2, 2, 2)}
    assert [r.rank for r in model.layers] == [1, 1, 3]


def _copy(tmp_path, name: str, suffix: str) -> str:
    dst = str(tmp_path / f"{name}{suffix}")
    shutil.copy(os.path.join(MODELS, f"{name}{suffix}"), dst)
    return dst


def test_swapped_weight_groups_are_caught_by_the_stored_layer_name(tmp_path):
    path = _copy(tmp_path, "unet_nested", ".weights.h5")
    with h5py.File(path, "r+") as f:
        f.move("layers/conv2d_transpose", "layers/tmp")
        f.move("layers/conv2d_transpose_1", "layers/conv2d_transpose")
        f.move("layers/tmp", "layers/conv2d_transpose_1")
    with pytest.raises(ConvtError, match="belongs to layer 'head'.*'Final Up'"):
        open_model(os.path.join(MODELS, "unet_nested.config.json"), path)


def test_swapped_weights_without_names_are_caught_by_shapes(tmp_path):
    """Older Keras 3 files carry no ``name`` attribute: the shape check alone proves the mapping."""
    path = _copy(tmp_path, "unet_nested", ".weights.h5")
    with h5py.File(path, "r+") as f:
        for g in ("layers/conv2d_transpose", "layers/conv2d_transpose_1"):
            del f[g]["vars"].attrs["name"]
        f.move("layers/conv2d_transpose", "layers/tmp")
        f.move("layers/conv2d_transpose_1", "layers/conv2d_transpose")
        f.move("layers/tmp", "layers/conv2d_transpose_1")
    with pytest.raises(ConvtError, match="layer 'Final Up': the stored kernel"):
        open_model(os.path.join(MODELS, "unet_nested.config.json"), path)


def test_weights_of_another_model_are_refused(tmp_path):
    r = invoke("layers", os.path.join(MODELS, "unet_nested.config.json"), "--weights",
               os.path.join(MODELS, "seq_decoder.weights.h5"))
    assert r.exit_code == 2 and r.output.startswith("Error: weights:")
    assert len(r.output.strip().splitlines()) == 1


def test_keras2_style_names_with_colon_zero_are_read(tmp_path):
    """Keras 2 wrote ``kernel:0``; rewrite a real legacy file that way and read the same arrays."""
    path = _copy(tmp_path, "unet_nested", ".h5")
    with h5py.File(path, "r+") as f:
        mw = f["model_weights"]
        for layer in mw.attrs["layer_names"]:
            group = mw[layer]
            names = [n.decode() if isinstance(n, bytes) else n for n in group.attrs["weight_names"]]
            for n in names:
                group.move(n, n + ":0")
            if names:
                group.attrs["weight_names"] = [(n + ":0").encode() for n in names]
    a, b = open_model(path), _open("unet_nested", "keras")
    for ra, rb in zip(a.layers, b.layers):
        ka, ba = a.weights(ra)
        kb, bb = b.weights(rb)
        assert np.array_equal(ka, kb) and (ba is None) == (bb is None)
        assert ba is None or np.array_equal(ba, bb)


# ------------------------------------------------------------------ commands

def test_layers_json_lists_nested_layers_with_shapes_and_onnx_form():
    r = invoke("layers", *_args("unet_nested", "keras"), "--json")
    assert r.exit_code == 0, r.output
    rows = json.loads(r.output)["layers"]
    want = _expected("unet_nested")["layers"]
    assert [row["path"] for row in rows] == [w["path"] for w in want]
    for row, w in zip(rows, want):
        assert row["output_shape"][1:] == w["output_shape"][1:]
        assert row["onnx"].count("ConvTranspose") == 1


@pytest.mark.parametrize("form", FORMS)
def test_validate_model_passes_with_real_weights_one_testcase_per_layer(form, tmp_path):
    junit = tmp_path / "r.xml"
    r = invoke("validate", *_args("unet_nested", form), "--junit-xml", junit)
    assert r.exit_code == 0, r.output
    cases = ET.parse(junit).getroot().findall("testcase")
    assert [c.get("name").split(":")[-1] for c in cases] == \
        [w["path"] for w in _expected("unet_nested")["layers"]]
    assert "the model's own weights" in r.output


@pytest.mark.parametrize("name,form", [c for c in CASES if c[0] in
                                       ("unet_nested", "functional_in_functional",
                                        "keras2_legacy", "wrapped_lazy")])
def test_export_layer_in_onnxruntime_equals_keras_output(name, form, tmp_path):
    arrays = _arrays(name)
    for want in _supported(name):
        out = tmp_path / f"{want['index']}.onnx"
        r = invoke("export", *_args(name, form), "--layer", want["path"], "-o", out)
        assert r.exit_code == 0, r.output
        sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
        x = arrays[f"x{want['index']}"]
        y = sess.run(None, {sess.get_inputs()[0].name: x})[0]
        _close(y, arrays[f"y{want['index']}"])


def test_export_folder_writes_one_model_per_layer_and_an_index(tmp_path):
    arrays = _arrays("seq_decoder")
    r = invoke("export", *_args("seq_decoder", "h5"), "-o", f"{tmp_path}/out/")
    assert r.exit_code == 0, r.output
    index = json.loads((tmp_path / "out" / "index.json").read_text())
    assert [e["path"] for e in index["layers"]] == ["up_1", "up_2"]
    for e in index["layers"]:
        sess = ort.InferenceSession(str(tmp_path / "out" / e["onnx"]),
                                    providers=["CPUExecutionProvider"])
        x = arrays[f"x{e['index']}"]
        _close(sess.run(None, {sess.get_inputs()[0].name: x})[0], arrays[f"y{e['index']}"])


@pytest.mark.parametrize("selection", ["decoder/up_b", "up_b", "2"])
def test_run_selects_by_path_name_or_index(selection, tmp_path):
    arrays = _arrays("unet_nested")
    np.save(tmp_path / "x.npy", arrays["x2"])
    r = invoke("run", *_args("unet_nested", "keras"), "--layer", selection,
               "--input", tmp_path / "x.npy", "-o", tmp_path / "y.npy")
    assert r.exit_code == 0, r.output
    _close(np.load(tmp_path / "y.npy"), arrays["y2"])


def test_shape_of_a_layer_matches_keras():
    want = _expected("functional_in_functional")["layers"][1]
    r = invoke("shape", *_args("functional_in_functional", "keras"), "--layer", want["path"],
               "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["output_shape"][1:] == want["output_shape"][1:]


@pytest.mark.parametrize("args", [["shape", "--layer", "nope"], ["shape"],
                                  ["run", "--layer", "7", "-i", "x.npy", "-o", "y.npy"]])
def test_a_selection_that_matches_nothing_lists_the_layers(args, tmp_path):
    cmd, *rest = args
    r = invoke(cmd, *_args("functional_in_functional", "keras"), *rest)
    assert r.exit_code == 2
    line = r.output.strip()
    assert line.startswith("Error: layer:") and "\n" not in line
    assert "block/up" in line and "block/up_nobias" in line


def test_layers_as_a_real_process():
    proc = subprocess.run([sys.executable, "-m", "convt_tools", "layers",
                           os.path.join(MODELS, "seq_decoder.keras")],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": ROOT})
    assert proc.returncode == 0, proc.stderr
    assert "up_1" in proc.stdout and "up_2" in proc.stdout


def test_keras_2_2_list_form_sequential_config_is_read(tmp_path):
    """Keras <= 2.2 wrote a Sequential's config as the bare list of its layers."""
    cfg = json.load(open(os.path.join(MODELS, "keras2_legacy.config.json")))
    inner = next(e for e in cfg["config"]["layers"] if e["class_name"] == "Sequential")
    inner["config"] = inner["config"]["layers"]
    path = tmp_path / "old.json"
    path.write_text(json.dumps(cfg))
    model = open_model(str(path), os.path.join(MODELS, "keras2_legacy.weights.h5"))
    assert [r.path for r in model.layers] == \
        [w["path"] for w in _expected("keras2_legacy")["layers"]]


def test_a_model_without_a_layer_list_is_a_clear_error(tmp_path):
    members = {}
    import zipfile

    with zipfile.ZipFile(os.path.join(MODELS, "seq_decoder.keras")) as z:
        members = {n: z.read(n) for n in z.namelist()}
    members["config.json"] = json.dumps({"module": "my_models", "class_name": "MyDecoder",
                                         "config": {"units": 3}}).encode()
    path = tmp_path / "sub.keras"
    with zipfile.ZipFile(path, "w") as z:
        for n, d in members.items():
            z.writestr(n, d)
    r = invoke("layers", path)
    assert r.exit_code == 2 and "subclassed" in r.output


@pytest.mark.parametrize("name", ["seq_decoder", "unet_nested", "functional_in_functional"])
def test_layers_onnx_form_is_what_export_writes(name, tmp_path):
    import onnx

    rows = json.loads(invoke("layers", *_args(name, "keras"), "--json").output)["layers"]
    for row in rows:
        out = tmp_path / f"{row['index']}.onnx"
        assert invoke("export", *_args(name, "keras"), "--layer", row["index"], "-o",
                      out).exit_code == 0
        nodes = onnx.load(str(out)).graph.node
        conv = next(n for n in nodes if n.op_type == "ConvTranspose")
        pads = next(list(a.ints) for a in conv.attribute if a.name == "pads")
        assert f"pads={pads}" in row["onnx"]
        assert ("Slice" in row["onnx"]) == any(n.op_type == "Slice" for n in nodes)
        assert ("Transpose," in row["onnx"]) == any(n.op_type == "Transpose" for n in nodes)


def test_telling_a_layer_config_from_a_saved_model_imports_no_numpy_or_h5py():
    """``convt shape layer.json`` stays light: the MODEL resolver sniffs before importing."""
    layer = os.path.join(ROOT, "fixtures", "examples", "seed.json")
    code = ("import sys; from click.testing import CliRunner; from convt_tools.cli import main; "
            f"r = CliRunner().invoke(main, ['shape', {layer!r}, '--input-shape', '1,4,4,128']); "
            "assert r.exit_code == 0, r.output; "
            "print(sorted(m for m in ('onnx', 'numpy', 'h5py') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": ROOT}, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("form", FORMS)
def test_one_and_three_d_layers_match_keras(form, tmp_path):
    """Conv1DTranspose / Conv3DTranspose with their real weights: run, export, validate vs Keras."""
    model = _open("ranks_1d_3d", form)
    assert all(r.spec is not None for r in model.layers)
    arrays = _arrays("ranks_1d_3d")
    for want in _expected("ranks_1d_3d")["layers"]:
        i = want["index"]
        np.save(tmp_path / "x.npy", arrays[f"x{i}"])
        r = invoke("run", *_args("ranks_1d_3d", form), "--layer", want["path"],
                   "--input", tmp_path / "x.npy", "-o", tmp_path / "y.npy")
        assert r.exit_code == 0, r.output
        _close(np.load(tmp_path / "y.npy"), arrays[f"y{i}"])
        r = invoke("export", *_args("ranks_1d_3d", form), "--layer", want["path"],
                   "-o", tmp_path / "m.onnx")
        assert r.exit_code == 0, r.output
        sess = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
        _close(sess.run(None, {sess.get_inputs()[0].name: arrays[f"x{i}"]})[0], arrays[f"y{i}"])
    r = invoke("validate", *_args("ranks_1d_3d", form))
    assert r.exit_code == 0, r.output


def test_python_api_as_in_the_readme():
    import convt_tools as ct

    arrays = _arrays("unet_nested")
    model = ct.open_model(os.path.join(MODELS, "unet_nested.keras"))
    record = model.select("decoder/up_b")
    kernel, bias = model.weights(record)
    onnx_model = ct.export_spec(record.spec, kernel, bias, input_shape=model.input_shape(record))
    sess = ort.InferenceSession(onnx_model.SerializeToString(), providers=["CPUExecutionProvider"])
    _close(sess.run(None, {sess.get_inputs()[0].name: arrays["x2"]})[0], arrays["y2"])


@pytest.mark.parametrize("content", [b"x", b"\x00\x01garbage", b'{"filters": 4, "kernel_size": 3}'])
def test_layers_on_a_file_that_is_no_saved_model_says_so_in_one_line(content, tmp_path):
    path = tmp_path / "evil.keras"
    path.write_bytes(content)
    r = invoke("layers", str(path))
    assert r.exit_code == 2
    line = r.output.strip()
    assert "\n" not in line
    assert line.startswith("Error: model:")
    assert "is not a saved model" in line
