"""Issue 17 (hardening round 3): inputs of saved models, FIFOs, hostile layer names,
all-or-nothing folder export, layers keyed by index, ``--layer`` rules, messages.

Every file a command reads (a saved model's archive, config and weights included)
is an input no output may name; bad input is one line ``Error: <field>: ...``,
exit 2, nothing written.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

import h5py  # noqa: E402

MODELS = Path(__file__).resolve().parent.parent / "fixtures" / "models"


def _copy(tmp_path: Path, name: str, dest: str | None = None) -> Path:
    target = tmp_path / (dest or name)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(MODELS / name, target)
    return target


def _seq_model(tmp_path: Path, layers: list[tuple[str, int, int]], stem: str = "m",
               weights: bool = True, stored_names: bool = False) -> tuple[Path, Path | None]:
    """A Sequential model config (+ Keras 3 weights .h5): ``layers`` = (name, filters, in)."""
    entries: list[dict[str, Any]] = [{"class_name": "InputLayer", "config": {
        "batch_shape": [None, 3, 4, layers[0][2]], "name": "input_layer"}}]
    for name, filters, cin in layers:
        entries.append({"class_name": "Conv2DTranspose", "config": {
            "name": name, "filters": filters, "kernel_size": [3, 3], "strides": [2, 2],
            "padding": "same", "activation": "linear", "use_bias": True,
            "data_format": "channels_last"},
            "build_config": {"input_shape": [None, 3, 4, cin]}})
    cfg = tmp_path / f"{stem}.config.json"
    cfg.write_text(json.dumps({"class_name": "Sequential",
                               "config": {"name": "seq", "layers": entries}}))
    if not weights:
        return cfg, None
    w = tmp_path / f"{stem}.weights.h5"
    rng = np.random.default_rng(0)
    with h5py.File(w, "w") as f:
        for i, (name, filters, cin) in enumerate(layers):
            group = f.create_group(f"layers/conv2d_transpose{'' if i == 0 else f'_{i}'}/vars")
            if stored_names:
                group.attrs["name"] = name
            group.create_dataset("0", data=rng.standard_normal((3, 3, filters, cin))
                                 .astype("float32"))
            group.create_dataset("1", data=rng.standard_normal(filters).astype("float32"))
    return cfg, w


def _one_line_error(result: Any, field: str) -> str:
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    err = result.stderr.strip()
    assert "\n" not in err and "Traceback" not in err, err
    assert err.startswith(f"Error: {field}:"), err
    return err


# ------------------------------------------------------------------ item 1

@pytest.mark.parametrize("name", ["unet_nested.keras", "unet_nested.h5"])
def test_junit_xml_naming_the_saved_model_is_refused(cli, tmp_path, name):
    model = _copy(tmp_path, name)
    before = model.read_bytes()
    err = _one_line_error(cli("validate", model, "--junit-xml", model), "junit_xml")
    assert "destroy the input" in err
    assert model.read_bytes() == before


@pytest.mark.parametrize("target", ["config", "weights"])
def test_junit_xml_naming_a_model_config_or_its_weights_is_refused(cli, tmp_path, target):
    cfg = _copy(tmp_path, "seq_decoder.config.json")
    w = _copy(tmp_path, "seq_decoder.weights.h5")
    victim = cfg if target == "config" else w
    before = victim.read_bytes()
    _one_line_error(cli("validate", cfg, "--weights", w, "--junit-xml", victim), "junit_xml")
    assert victim.read_bytes() == before


# ------------------------------------------------------------------ item 2

def test_folder_export_never_replaces_the_weights_it_reads(cli, tmp_path):
    cfg = _copy(tmp_path, "seq_decoder.config.json")
    w = _copy(tmp_path, "seq_decoder.weights.h5", "od/index.json")
    before = w.read_bytes()
    _one_line_error(cli("export", cfg, "--weights", w, "-o", f"{tmp_path / 'od'}/"), "output")
    assert w.read_bytes() == before
    assert sorted(os.listdir(tmp_path / "od")) == ["index.json"]   # nothing else written


@pytest.mark.parametrize("via", ["model", "weights"])
def test_external_data_file_never_replaces_a_saved_model_input(cli, tmp_path, monkeypatch, via):
    monkeypatch.setenv("CONVT_EXTERNAL_DATA_BYTES", "1")   # every export gets a .data file
    if via == "model":
        victim = _copy(tmp_path, "seq_decoder.keras", "m.onnx.data")
        args = [victim]
    else:
        cfg = _copy(tmp_path, "seq_decoder.config.json")
        victim = _copy(tmp_path, "seq_decoder.weights.h5", "m.onnx.data")
        args = [cfg, "-w", victim]
    before = victim.read_bytes()
    err = _one_line_error(cli("export", *args, "--layer", "0", "-o", tmp_path / "m.onnx"),
                          "output")
    assert "m.onnx.data" in err
    assert victim.read_bytes() == before
    assert not (tmp_path / "m.onnx").exists()


# ------------------------------------------------------------------ items 3 and 11

@pytest.mark.slow
@pytest.mark.parametrize("command", ["shape", "export", "run", "validate", "translate", "layers"])
def test_weights_fifo_with_a_saved_model_is_refused_not_hung(tmp_path, command):
    cfg = _copy(tmp_path, "seq_decoder.config.json")
    fifo = tmp_path / "w.fifo"
    os.mkfifo(fifo)
    np.save(tmp_path / "x.npy", np.zeros((1, 3, 4, 2), "float32"))
    extra = {"shape": ["--layer", "0"],
             "export": ["--layer", "0", "-o", tmp_path / "o.onnx"],
             "run": ["--layer", "0", "-i", tmp_path / "x.npy", "-o", tmp_path / "y.npy"],
             "validate": [], "translate": ["--layer", "0", "--to", "torch"],
             "layers": []}[command]
    try:
        proc = subprocess.run([sys.executable, "-m", "convt_tools", command, str(cfg),
                               "--weights", str(fifo), *map(str, extra)],
                              capture_output=True, text=True, timeout=60, cwd=tmp_path,
                              env={**os.environ, "PYTHONPATH": os.pathsep.join(
                                  [str(MODELS.parent.parent), os.environ.get("PYTHONPATH", "")])})
    except subprocess.TimeoutExpired:
        pytest.fail(f"convt {command} --weights FIFO hung (the FIFO was opened)")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == f"Error: weights: {str(fifo)!r} is a pipe (FIFO); " \
                                  f"expected a regular file."


@pytest.mark.parametrize("kind", ["missing", "npz", "keras_zip", "folder"])
def test_layers_refuses_weights_it_cannot_use(cli, tmp_path, kind):
    cfg = _copy(tmp_path, "seq_decoder.config.json")
    if kind == "missing":
        w = tmp_path / "nope.h5"
    elif kind == "npz":
        w = tmp_path / "w.npz"
        np.savez(w, kernel=np.zeros((3, 3, 3, 2), "float32"))
    elif kind == "keras_zip":
        w = _copy(tmp_path, "seq_decoder.keras")
    else:
        w = tmp_path / "d"
        w.mkdir()
    result = cli("layers", cfg, "--weights", w)
    if kind == "folder":   # click refuses a folder for a file option itself
        assert result.exit_code == 2 and "weights" in result.stderr.lower()
        return
    err = _one_line_error(result, "weights")
    assert "none" not in result.stdout


def test_missing_weights_for_a_saved_model_names_the_weights_field(cli, tmp_path):
    cfg = _copy(tmp_path, "seq_decoder.config.json")
    err = _one_line_error(cli("shape", cfg, "--weights", tmp_path / "nope.h5", "--layer", "0"),
                          "weights")
    assert "missing" in err


# ------------------------------------------------------------------ item 9

HOSTILE = ["sur\ud800rogate", "\x1b[31mred\x1b[0m", "new\nline"]


def _hostile_model(tmp_path: Path) -> Path:
    cfg, _ = _seq_model(tmp_path, [(HOSTILE[0], 2, 2), (HOSTILE[1], 2, 2), (HOSTILE[2], 2, 2)],
                        weights=False)
    return cfg


def _no_raw(text: str) -> None:
    assert "\x1b" not in text and not any(0xD800 <= ord(c) <= 0xDFFF for c in text)


def test_layers_escapes_hostile_names(cli, tmp_path):
    result = cli("layers", _hostile_model(tmp_path))
    assert result.exit_code == 0, (result.stderr, result.exception)
    _no_raw(result.stdout)
    assert "sur\\ud800rogate" in result.stdout and "\\x1b[31mred" in result.stdout
    assert "new\\x0aline" in result.stdout
    rows = json.loads(cli("layers", _hostile_model(tmp_path), "--json").stdout)["layers"]
    assert [r["path"] for r in rows] == HOSTILE    # JSON keeps the names (escaped by JSON)


def test_validate_escapes_hostile_names(cli, tmp_path):
    result = cli("validate", _hostile_model(tmp_path))
    assert result.exit_code == 0, (result.stderr, result.exception)
    _no_raw(result.stdout + result.stderr)
    assert "\\x1b[31mred" in result.stdout and "3 passed" in result.stdout


def test_folder_export_escapes_hostile_names(cli, tmp_path):
    out = tmp_path / "out"
    result = cli("export", _hostile_model(tmp_path), "-o", f"{out}/")
    assert result.exit_code == 0, (result.stderr, result.exception)
    _no_raw(result.stdout)
    names = sorted(os.listdir(out))
    assert all(n.isascii() and n.isprintable() for n in names), names
    assert len(names) == 4


def test_error_messages_escape_hostile_names(cli, tmp_path):
    result = cli("export", _hostile_model(tmp_path), "--layer", "nope", "-o", tmp_path / "o.onnx")
    err = _one_line_error(result, "layer")
    _no_raw(err)


# ------------------------------------------------------------------ item 10

def test_folder_export_shortens_long_names_with_a_stable_hash(cli, tmp_path):
    long = "x" * 308
    cfg, _ = _seq_model(tmp_path, [("up", 2, 2), (long, 2, 2), (long + "y", 2, 2)],
                        weights=False)
    names = []
    for run in ("a", "b"):
        out = tmp_path / run
        result = cli("export", cfg, "-o", f"{out}/")
        assert result.exit_code == 0, result.stderr
        names.append(sorted(os.listdir(out)))
        index = json.loads((out / "index.json").read_text())
        assert [e["path"] for e in index["layers"]] == ["up", long, long + "y"]
        assert sorted(e["onnx"] for e in index["layers"]) + ["index.json"] == names[-1]
    assert names[0] == names[1]                                  # stable
    assert all(len(n.encode()) <= 200 for n in names[0]), names[0]
    assert len(set(names[0])) == 4


def test_folder_export_is_all_or_nothing(cli, tmp_path):
    cfg, _ = _seq_model(tmp_path, [("up", 2, 2), ("blocked", 2, 2)], weights=False)
    out = tmp_path / "out"
    (out / "01_blocked.onnx").mkdir(parents=True)          # the second file cannot be written
    _one_line_error(cli("export", cfg, "-o", f"{out}/"), "output")
    assert sorted(os.listdir(out)) == ["01_blocked.onnx"]    # the first was not written either


def test_folder_export_into_a_new_folder_leaves_nothing_on_failure(cli, tmp_path, monkeypatch):
    from convt_tools import onnxbase

    cfg, _ = _seq_model(tmp_path, [("a", 2, 2), ("b", 2, 2)], weights=False)
    real = onnxbase.save_model
    calls = []

    def flaky(model: Any, path: Any) -> None:
        calls.append(path)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real(model, path)
    monkeypatch.setattr(onnxbase, "save_model", flaky)
    result = cli("export", cfg, "-o", f"{tmp_path / 'new'}/")
    _one_line_error(result, "output")
    assert not (tmp_path / "new").exists()


def test_file_names_resolve_collisions():
    from convt_tools.cli.export_saved import file_names

    recs = [SimpleNamespace(index=0, path="A"), SimpleNamespace(index=0, path="a"),
            SimpleNamespace(index=0, path="a?")]
    names = file_names(recs)
    assert len({n.lower() for n in names}) == 3, names


def test_export_into_an_existing_file_with_a_slash_is_one_line(cli, tmp_path):
    f = tmp_path / "file"
    f.write_bytes(b"keep")
    err = _one_line_error(cli("export", _copy(tmp_path, "unet_nested.keras"), "-o", f"{f}/"),
                          "output")
    assert "Errno" not in err and f.read_bytes() == b"keep"


def test_folder_export_survives_a_concurrent_mkdir(cli, tmp_path, monkeypatch):
    from convt_tools.cli import export_saved

    real = os.mkdir
    calls = []

    def racing(path: Any, *args: Any, **kw: Any) -> None:
        real(path, *args, **kw)
        calls.append(path)
        if len(calls) == 1:              # the target: another export made it first
            raise FileExistsError(17, "File exists", path)
    monkeypatch.setattr(export_saved.os, "mkdir", racing)
    out = tmp_path / "od"
    result = cli("export", _copy(tmp_path, "unet_nested.keras"), "-o", f"{out}/")
    assert result.exit_code == 0, result.stderr
    assert "index.json" in os.listdir(out) and len(os.listdir(out)) == 6


# ------------------------------------------------------------------ item 16

def test_layers_sharing_a_path_are_keyed_by_index(cli, tmp_path):
    cfg, w = _seq_model(tmp_path, [("up", 3, 2), ("up", 5, 3)])
    result = cli("validate", cfg, "--weights", w, "--json")
    assert result.exit_code == 0, (result.stdout[-2000:], result.stderr)
    report = json.loads(result.stdout)
    assert [r["passed"] for r in report["results"]] == [True, True]
    names = [r["name"] for r in report["results"]]
    assert len(set(names)) == 2 and names[0].endswith("up#0") and names[1].endswith("up#1")
    err = _one_line_error(cli("shape", cfg, "--weights", w, "--layer", "up"), "layer")
    assert "give the index" in err


# ------------------------------------------------------------------ item 18

def test_integer_layer_selects_by_index_and_says_so(cli, tmp_path):
    cfg, w = _seq_model(tmp_path, [("up", 3, 2), ("0", 5, 3)])
    info = json.loads(cli("export", cfg, "-w", w, "--layer", "0", "-o", tmp_path / "a.onnx",
                          "--json").stdout)
    assert info["layer"] == "up" and info["selected_by"].startswith("index 0")
    assert "path:0" in info["selected_by"]       # the layer named "0" is pointed out
    info = json.loads(cli("export", cfg, "-w", w, "--layer", "path:0", "-o", tmp_path / "b.onnx",
                          "--json").stdout)
    assert info["layer"] == "0" and info["selected_by"] == "path '0'"
    human = cli("export", cfg, "-w", w, "--layer", "1", "-o", tmp_path / "c.onnx").stdout
    assert "selected by index 1" in human
    shape = cli("shape", cfg, "-w", w, "--layer", "0")   # commands without a report: a note
    assert shape.exit_code == 0 and "(None, 6, 8, 3)" in shape.stdout
    assert "selected 'up' by index 0" in shape.stderr and "path:0" in shape.stderr


def test_weights_group_of_a_name_with_a_slash_is_not_contradictory(cli, tmp_path):
    cfg, w = _seq_model(tmp_path, [("a/b", 3, 2)], stored_names=True)
    result = cli("layers", cfg, "--weights", w)
    assert result.exit_code == 0, result.stderr
    assert "a/b" in result.stdout


def test_malformed_nested_entry_message_names_its_position(cli, tmp_path):
    cfg = tmp_path / "n.json"
    cfg.write_text(json.dumps({"class_name": "Sequential", "config": {"layers": [
        {"class_name": "Sequential", "config": {"layers": [1]}}]}}))
    err = _one_line_error(cli("layers", cfg), "model")
    assert "<layer 0>" not in err and "layers[0] > layers[0]" in err


def test_duplicate_key_in_a_saved_model_config_names_the_field(cli, tmp_path):
    path = tmp_path / "dup.keras"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("config.json", '{"class_name": "Sequential", "class_name": "Functional", '
                                  '"config": {"layers": []}}')
    err = _one_line_error(cli("layers", path), "model")
    assert "'class_name' is given twice" in err
