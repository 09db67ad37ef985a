"""Issue 9 regressions: outputs never overwrite inputs or name folders, inputs are regular files,
SIGTERM leaves no temporary file, every CLI error is one line with exit status 2."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

import _models as M
from conftest import invoke

ROOT = Path(__file__).resolve().parents[1]
LAYER = {"filters": 2, "kernel_size": 3, "strides": 2, "padding": "same"}


def one_line_error(result, field: str | None = None) -> str:
    """Assert exit 2 and exactly one stderr line ``Error: <field>: ...``; return it."""
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: " + (f"{field}:" if field else "")), lines[0]
    assert "Traceback" not in result.output
    return lines[0]


@pytest.fixture
def work(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "l.json").write_text(json.dumps(LAYER))
    (tmp_path / "cf.json").write_text(json.dumps(   # the layer of _models.convt_model
        {"filters": 3, "kernel_size": 3, "strides": 2, "padding": "same",
         "data_format": "channels_first"}))
    np.save(tmp_path / "x.npy", np.ones((1, 4, 4, 2), np.float32))
    np.savez(tmp_path / "w.npz", kernel=np.ones((3, 3, 2, 2), np.float32),
             bias=np.zeros(2, np.float32))
    onnx.save(M.convt_model({"strides": [2, 2], "pads": [1, 1, 0, 0]}), str(tmp_path / "m.onnx"))
    sub = tmp_path / "sub"
    sub.mkdir()
    onnx.save(M.convt_model({"strides": [2, 2], "pads": [1, 1, 0, 0]}), str(sub / "m.onnx"),
              save_as_external_data=True, all_tensors_to_one_file=True, location="ok.bin",
              size_threshold=0)
    return tmp_path


def _snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


# ------------------------------------------------------------- 1. trailing slash = a folder

SLASH_COMMANDS = {
    "export": ["export", "l.json", "--input-shape", "1,4,4,2", "-o"],
    "run": ["run", "l.json", "-i", "x.npy", "-o"],
    "repair": ["repair", "m.onnx", "--intent", "tf", "-o"],
    "check": ["check", "m.onnx", "--no-numeric", "--junit-xml"],
    "validate": ["validate", "l.json", "--input-shape", "1,4,4,2", "--junit-xml"],
}


@pytest.mark.parametrize("command", sorted(SLASH_COMMANDS))
@pytest.mark.parametrize("target", ["p.txt/", "out/", "p.txt/."])
def test_a_trailing_slash_is_refused_before_anything_is_written(work, command, target):
    (work / "p.txt").write_text("keep me")
    before = _snapshot(work)
    result = invoke(*SLASH_COMMANDS[command], target)
    field = "junit_xml" if command in ("check", "validate") else "output"
    assert "slash" in one_line_error(result, field)
    assert _snapshot(work) == before
    assert not (work / "out").exists()


# ------------------------------------------------------------- 2. external data is an input

@pytest.mark.parametrize("args", [
    ["repair", "sub/m.onnx", "--intent", "tf", "-o"],
    ["check", "sub/m.onnx", "--no-numeric", "--junit-xml"],
    ["check", "sub/m.onnx", "--junit-xml"],
    ["validate", "cf.json", "--model", "sub/m.onnx", "--input-shape", "1,2,4,5", "--junit-xml"],
], ids=["repair", "check-junit", "check-numeric-junit", "validate-junit"])
@pytest.mark.parametrize("target", ["sub/ok.bin", "sub/../sub/ok.bin"])
def test_an_output_never_overwrites_external_data_read(work, args, target):
    before = _snapshot(work)
    result = invoke(*args, target)
    line = one_line_error(result)
    assert "ok.bin" in line
    assert "reads" in line
    assert _snapshot(work) == before


def test_an_output_hard_linked_to_an_input_is_refused(work):
    os.link(work / "x.npy", work / "alias.npy")
    result = invoke("run", "l.json", "-i", "x.npy", "-o", "alias.npy")
    assert "input" in one_line_error(result, "output")


def test_outputs_that_are_not_inputs_are_still_written(work):
    assert invoke("repair", "sub/m.onnx", "--intent", "tf", "-o", "sub/fixed.onnx").exit_code == 0
    assert (work / "sub" / "fixed.onnx").is_file()


# ------------------------------------------------------------- 3. SIGTERM cleans up

_SIGTERM_DURING_SAVE = """
import os, signal, sys
import onnx
real = onnx.save_model
def save(model, path, *a, **k):
    real(model, path, *a, **k)
    os.kill(os.getpid(), signal.SIGTERM)   # arrives while the temporary file exists
onnx.save_model = save
from convt_tools.cli import main
main(sys.argv[1:])
"""


def test_sigterm_during_export_leaves_no_temporary_file(work):
    proc = subprocess.run([sys.executable, "-c", _SIGTERM_DURING_SAVE, "export", "l.json",
                           "--input-shape", "1,4,4,2", "-o", "out.onnx"],
                          capture_output=True, text=True, cwd=work, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 143, proc.stderr
    assert sorted(p.name for p in work.iterdir()) == ["cf.json", "l.json", "m.onnx", "sub", "w.npz", "x.npy"]
    assert "Traceback" not in proc.stderr


def test_sigterm_handler_is_restored_after_a_write(tmp_path):
    import signal

    from convt_tools.io import atomic_write

    before = signal.getsignal(signal.SIGTERM)
    atomic_write(tmp_path / "a.txt", lambda tmp: Path(tmp).write_text("x"))
    assert signal.getsignal(signal.SIGTERM) == before


# ------------------------------------------------------------- 7. --seed

@pytest.mark.parametrize("args", [
    ["check", "m.onnx"], ["repair", "m.onnx", "--intent", "tf", "-o", "r.onnx"],
    ["validate", "l.json"], ["run", "l.json", "-i", "x.npy", "-o", "y.npy"],
    ["export", "l.json", "--input-shape", "1,4,4,2", "-o", "e.onnx"]])
def test_a_negative_seed_is_a_one_line_error(work, args):
    before = _snapshot(work)
    assert "seed" in one_line_error(invoke(*args, "--seed", "-1"))
    assert _snapshot(work) == before


# ------------------------------------------------------------- 9. non-regular inputs

@pytest.fixture
def fifo(work):
    """A FIFO whose writer end opens and closes as soon as a reader opens it (so code that
    wrongly reads it fails instead of hanging the suite)."""
    import errno
    import threading

    path = work / "fifo"
    os.mkfifo(path)
    stop = threading.Event()

    def unblock() -> None:
        while not stop.is_set():
            try:
                os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
            except OSError as exc:
                if exc.errno != errno.ENXIO:
                    return
            stop.wait(0.01)

    thread = threading.Thread(target=unblock, daemon=True)
    thread.start()
    yield "fifo"
    stop.set()
    thread.join(1)


@pytest.mark.parametrize("where", ["config", "input", "weights", "model"])
@pytest.mark.parametrize("special", ["fifo", "/dev/zero", "/dev/urandom"])
def test_non_regular_input_files_are_refused_without_reading(work, where, special, request):
    path = request.getfixturevalue("fifo") if special == "fifo" else special
    if not os.path.exists(path):
        pytest.skip(f"{path} does not exist here")
    commands = {
        "config": [["shape", path, "--input-shape", "1,4,4,2"],
                   ["export", path, "-o", "e.onnx"],
                   ["run", path, "-i", "x.npy", "-o", "y.npy"],
                   ["validate", path]],
        "input": [["run", "l.json", "-i", path, "-o", "y.npy"],
                  ["validate", "l.json", "--input", path]],
        "weights": [["export", "l.json", "-w", path, "-o", "e.onnx"],
                    ["run", "l.json", "-i", "x.npy", "-w", path, "-o", "y.npy"]],
        "model": [["check", path], ["repair", path, "--intent", "tf", "-o", "r.onnx"],
                  ["validate", "l.json", "--model", path]],
    }[where]
    for args in commands:
        line = one_line_error(invoke(*args))
        assert "regular file" in line or "expected a file" in line or "not a" in line, line
        assert "missing" not in line, line
    assert not (work / "e.onnx").exists()
    assert not (work / "y.npy").exists()


# ------------------------------------------------------------- 10. click usage errors

@pytest.mark.parametrize("args", [
    ["check", "."], ["repair", "m.onnx", "--intent", "bad", "-o", "r.onnx"],
    ["run", "l.json", "-i", "x.npy", "-o", "y.npy", "--engine", "bad"],
    ["export"], ["check", "m.onnx", "--no-such-flag"], ["no-such-command"],
    ["check", "m.onnx", "--fail-on", "sometimes"],
])
def test_click_usage_errors_are_one_line_exit_2(work, args):
    one_line_error(invoke(*args))


def test_usage_errors_are_one_line_in_a_real_process(work):
    proc = subprocess.run([sys.executable, "-m", "convt_tools", "check", str(work)],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1
    assert proc.stderr.startswith("Error: ")


# ------------------------------------------------------------- 5. malformed initializers

def _huge_dims(w):
    del w.dims[:]
    w.dims.extend([2, 3, 100000, 100000])
    w.raw_data = b"\0" * 16


def _ragged_raw(w):
    w.raw_data = w.raw_data[:-3]


def _few_floats(w):
    values = np.frombuffer(w.raw_data, np.float32)[:5].tolist()
    w.ClearField("raw_data")
    w.float_data.extend(values)


def _string(w):
    w.ClearField("raw_data")
    w.data_type = onnx.TensorProto.STRING
    w.string_data.extend([b"a"] * 54)


def _type_999(w):
    w.data_type = 999


MALFORMED = {"huge-dims": _huge_dims, "raw-not-multiple": _ragged_raw, "few-floats": _few_floats,
             "string": _string, "data-type-999": _type_999}


def _model_with_w(tmp_path: Path, mutate) -> str:
    model = M.convt_model({"strides": [2, 2], "pads": [1, 1, 0, 0]})
    w = next(t for t in model.graph.initializer if t.name == model.graph.node[0].input[1])
    mutate(w)
    path = tmp_path / "bad.onnx"
    path.write_bytes(model.SerializeToString())
    return str(path)


@pytest.mark.parametrize("kind", sorted(MALFORMED))
@pytest.mark.parametrize("command", [["check"], ["check", "--no-numeric"],
                                     ["repair", "--intent", "tf", "-o", "r.onnx"],
                                     ["validate", "cf.json", "--input-shape", "1,2,4,5",
                                      "--model"]], ids=["check", "no-numeric", "repair", "validate"])
def test_malformed_initializers_are_one_line_errors(work, kind, command):
    path = _model_with_w(work, MALFORMED[kind])
    args = [*command, path] if command[0] == "validate" else [command[0], path, *command[1:]]
    line = one_line_error(invoke(*args), "model")
    assert "'W'" in line
    assert not (work / "r.onnx").exists()


def test_check_tensor_accepts_well_formed_tensors():
    from onnx import numpy_helper

    from convt_tools.check.loading import tensor_to_array

    for arr in (np.arange(6, dtype=np.float32).reshape(2, 3), np.zeros((0, 3), np.float16),
                np.array(3, np.int64)):
        np.testing.assert_array_equal(tensor_to_array(numpy_helper.from_array(arr, "t")), arr)
    typed = onnx.helper.make_tensor("t", onnx.TensorProto.FLOAT, [2, 2], [1.0, 2.0, 3.0, 4.0])
    np.testing.assert_array_equal(tensor_to_array(typed), [[1, 2], [3, 4]])


# ------------------------------------------------------------- 6. broken ConvTranspose nodes

def _one_input(node):
    del node.input[1:]


def _empty_w(node):
    node.input[1] = ""


def _undefined_w(node):
    node.input[1] = "nope"


def _untyped_attribute(node):
    next(a for a in node.attribute if a.name == "strides").type = onnx.AttributeProto.UNDEFINED


BROKEN = {"one-input": (_one_input, "1 input"), "empty-w": (_empty_w, "empty name"),
          "undefined-w": (_undefined_w, "'nope'"), "untyped-attribute": (_untyped_attribute,
                                                                          "no type")}


@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_broken_nodes_are_error_findings_not_tracebacks(work, kind):
    mutate, words = BROKEN[kind]
    model = M.convt_model({"strides": [2, 2], "pads": [1, 1, 0, 0]}, name="up")
    mutate(model.graph.node[0])
    (work / "broken.onnx").write_bytes(model.SerializeToString())
    for numeric in ("--numeric", "--no-numeric"):
        result = invoke("check", "broken.onnx", numeric, "--json")
        assert result.exit_code == 1, result.output
        assert "Traceback" not in result.output
        node = json.loads(result.stdout)["nodes"][0]
        assert node["name"] == "up"
        errors = [f for f in node["findings"] if f["severity"] == "error"]
        assert [f["code"] for f in errors] == ["CT006"]
        assert words in errors[0]["message"]
    repaired = invoke("repair", "broken.onnx", "--intent", "tf", "-o", "r.onnx")
    assert repaired.exit_code == 1
    assert "CT006" in repaired.stderr
    assert not (work / "r.onnx").exists()
