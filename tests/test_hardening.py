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

from support import models as M
from support.cli import invoke

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
    try:
        os.getcwd()
    except FileNotFoundError:   # an earlier test's folder was removed under us
        os.chdir(ROOT)
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


@pytest.mark.slow
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


@pytest.mark.slow
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

    from convt_tools.onnxbase import tensor_to_array

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


# ------------------------------------------------------------- 8. int64 range on export

@pytest.mark.parametrize("config,shape,field", [
    ({"strides": 10**29}, "1,4,4,2", "strides"),
    ({"strides": 10**29}, "None,?,?,2", "strides"),
    ({}, "1,100000000000000000000000,6,2", "input_shape"),
    ({"strides": 2**63 - 1}, "1,4,4,2", "output_shape"),
])
def test_export_refuses_integers_onnx_cannot_hold(work, config, shape, field):
    (work / "big.json").write_text(json.dumps({**LAYER, **config}))
    line = one_line_error(invoke("export", "big.json", "--input-shape", shape, "-o", "b.onnx"),
                          field)
    assert "int64" in line
    assert not (work / "b.onnx").exists()


def test_the_largest_int64_stride_still_exports_with_dynamic_dims(work):
    (work / "big.json").write_text(json.dumps({**LAYER, "strides": 2**63 - 1}))
    result = invoke("export", "big.json", "--input-shape", "None,?,?,2", "-o", "b.onnx")
    assert result.exit_code == 0, result.output
    node = next(n for n in onnx.load(str(work / "b.onnx")).graph.node
                if n.op_type == "ConvTranspose")
    strides = next(a for a in node.attribute if a.name == "strides")
    assert list(strides.ints) == [2**63 - 1, 2**63 - 1]


# ------------------------------------------------------------- 13. messages

@pytest.mark.parametrize("flags,field", [
    (["--filters", "2", "--kernel-size", "100000"], "kernel_size"),
    (["--filters", "2", "--kernel-size", "3", "--input-shape", "1,4,4,1000000000"], "in_channels"),
    (["--filters", "2000000000", "--kernel-size", "3"], "filters"),
])
def test_a_memory_refusal_names_the_field_that_makes_the_kernel_big(work, flags, field):
    args = ["export", *flags, "-o", "k.onnx"]
    if "--input-shape" not in flags:
        args += ["--input-shape", "1,4,4,10"]
    assert "memory" in one_line_error(invoke(*args), field)


def test_huge_initializer_values_give_one_error_and_no_runtime_warning(work):
    import warnings

    (work / "rn.json").write_text(json.dumps({**LAYER, "kernel_initializer": {
        "class_name": "RandomNormal", "config": {"mean": 1e308, "stddev": 1e308}}}))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = invoke("export", "rn.json", "--input-shape", "1,4,4,2", "-o", "k.onnx")
    assert "finite" in one_line_error(result, "kernel")


def test_validate_names_a_config_file_not_a_number(work):
    line = one_line_error(invoke("validate", "l.json", "--junit-xml", "l.json"), "junit_xml")
    assert "config 1" not in line
    assert "'l.json'" in line


def test_a_too_long_file_name_is_a_clear_error(work):
    name = "a" * 300 + ".onnx"
    out = one_line_error(invoke("export", "l.json", "--input-shape", "1,4,4,2", "-o", name),
                         "output")
    assert "OSError" not in out
    assert "long" in out
    inp = one_line_error(invoke("check", name), "model")
    assert "OSError" not in inp


def test_api_errors_are_convt_errors(tmp_path):
    import convt_tools as ct

    with pytest.raises(ct.ConvtError, match="spec"):
        ct.export_spec({"filters": 32})
    model = ct.export_spec(ct.make_spec(filters=2, kernel_size=3), input_shape=(1, 4, 4, 2))
    with pytest.raises(ct.ConvtError, match="output"):
        ct.save_model(model, 123)


# ------------------------------------------------------------- 14. reports with missing numbers

def test_a_refused_repair_report_prints_missing_numbers_as_na():
    from convt_tools.repair.report import NodePlan, RepairReport

    plan = NodePlan(graph="main", name="up", index=0, codes=["CT010"], old={"pads": None},
                    proof=[{"input_shape": [1, 2, 4, 5], "max_abs_diff_vs_intent": None,
                            "max_abs_diff_vs_original_ort": None}])
    report = RepairReport(model="m.onnx", intent="ort", onnxruntime="x", nodes=[plan],
                          refusal="onnxruntime rejected the node")
    text = report.to_text()
    assert "n/a" in text
    assert "refused: onnxruntime rejected the node" in text


def test_an_empty_exception_message_becomes_its_type_name():
    from convt_tools.runtimes.base import first_line

    assert first_line(ValueError("")) == "ValueError"
    assert first_line(RuntimeError("\n\n  second line\n")) == "second line"


# ------------------------------------------------------------- 4. above the protobuf limit

@pytest.fixture
def small_threshold(monkeypatch):
    """Models with more than 1000 bytes of weights take the >2 GiB path (configurable)."""
    monkeypatch.setenv("CONVT_EXTERNAL_DATA_BYTES", "1000")


def test_big_weights_never_enter_the_proto(small_threshold):
    import convt_tools as ct

    spec = ct.make_spec(filters=8, kernel_size=3, strides=2, padding="same")
    model = ct.export_spec(spec, input_shape=(1, 4, 5, 16))   # W: 16*8*9*4 = 4608 bytes
    w = next(t for t in model.graph.initializer if t.name == "W")
    assert not w.HasField("raw_data")
    assert w.data_location == onnx.TensorProto.EXTERNAL
    assert model.ByteSize() < 4000


def test_external_data_export_runs_like_the_oracle_with_usual_permissions(work, small_threshold,
                                                                         ort_run):
    from support.oracles import keras_conv_transpose

    _weights16(work)
    old = os.umask(0o027)
    try:
        result = invoke("export", "l.json", "--input-shape", "1,4,5,16", "-w", "w16.npz",
                        "-o", "big.onnx")
    finally:
        os.umask(old)
    assert result.exit_code == 0, result.output
    for name in ("big.onnx", "big.onnx.data"):
        assert (work / name).stat().st_mode & 0o777 == 0o640, name
    assert (work / "big.onnx").stat().st_size < 4000
    assert (work / "big.onnx.data").stat().st_size == 3 * 3 * 2 * 16 * 4
    assert not [p for p in work.iterdir() if p.name.startswith(".")]
    x = np.random.default_rng(1).standard_normal((1, 4, 5, 16)).astype(np.float32)
    with np.load(work / "w16.npz") as arrays:
        want = keras_conv_transpose(ct_spec(work), x, arrays["kernel"], arrays["bias"])
    got = ort_run(work / "big.onnx", x)[0]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def ct_spec(work):
    from convt_tools.spec import load_config

    return load_config(work / "l.json")


def _weights16(work) -> None:
    rng = np.random.default_rng(0)
    np.savez(work / "w16.npz", kernel=rng.standard_normal((3, 3, 2, 16)).astype(np.float32),
             bias=rng.standard_normal(2).astype(np.float32))


def test_an_existing_model_keeps_its_mode(work, small_threshold):
    _weights16(work)
    args = ("export", "l.json", "--input-shape", "1,4,5,16", "-w", "w16.npz", "-o", "big.onnx")
    assert invoke(*args).exit_code == 0
    os.chmod(work / "big.onnx", 0o600)
    os.chmod(work / "big.onnx.data", 0o644)
    assert invoke(*args).exit_code == 0
    assert (work / "big.onnx").stat().st_mode & 0o777 == 0o600
    assert (work / "big.onnx.data").stat().st_mode & 0o777 == 0o644


_SIGTERM_DURING_CHECK = """
import os, signal, sys
import onnx.checker
def check(*a, **k):
    os.kill(os.getpid(), signal.SIGTERM)   # both temporary files exist now
onnx.checker.check_model = check
from convt_tools.cli import main
main(sys.argv[1:])
"""


@pytest.mark.slow
def test_sigterm_during_an_external_data_save_leaves_nothing(work):
    _weights16(work)
    before = sorted(p.name for p in work.iterdir())
    proc = subprocess.run([sys.executable, "-c", _SIGTERM_DURING_CHECK, "export", "l.json",
                           "--input-shape", "1,4,5,16", "-w", "w16.npz", "-o", "big.onnx"],
                          capture_output=True, text=True, cwd=work, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT),
                               "CONVT_EXTERNAL_DATA_BYTES": "1000"})
    assert proc.returncode == 143, proc.stderr
    assert sorted(p.name for p in work.iterdir()) == before


# ------------------------------------------------------------- 11. the probe tells readings apart

@pytest.mark.slow
@pytest.mark.parametrize("fill", [0.0, 1.0])
def test_zero_or_constant_weights_do_not_change_what_the_probe_measures(fill):
    from convt_tools.check import check_model

    attrs = {"strides": [2, 2], "output_shape": [8, 10]}
    real = M.convt_model(attrs)
    flat = M.convt_model(attrs)
    for t in flat.graph.initializer:
        t.CopyFrom(onnx.numpy_helper.from_array(
            np.full(onnx.numpy_helper.to_array(t).shape, fill, np.float32), t.name))
    want = check_model(real).nodes[0].numeric
    got = check_model(flat).nodes[0].numeric
    assert got["onnxruntime"] == want["onnxruntime"]
    assert got["matches"] == want["matches"]


def test_a_string_kernel_shape_is_a_ct006_error():
    from convt_tools.check import check_model

    model = M.convt_model({"strides": [2, 2]})
    model.graph.node[0].attribute.append(onnx.helper.make_attribute("kernel_shape", [b"3", b"3"]))
    node = check_model(model).nodes[0]
    errors = [f for f in node.findings if f.severity == "error"]
    assert [f.code for f in errors] == ["CT006"]
    assert "STRINGS" in errors[0].message
    assert "-D)" not in " ".join(f.message for f in node.findings)


def test_a_probe_skipped_for_huge_strides_does_not_blame_channels():
    from convt_tools.check import check_model

    node = check_model(M.convt_model({"strides": [10**9, 10**9]})).nodes[0]
    skipped = [f.message for f in node.findings if f.code == "CT031"]
    assert len(skipped) == 1
    assert "channels" not in skipped[0]
    assert "strides" in skipped[0]


@pytest.mark.parametrize("shape,dynamic", [("1,?,?,2", True), ("1,4,4,2", False)])
def test_validate_says_when_dynamic_model_dims_got_defaults(work, shape, dynamic):
    assert invoke("export", "l.json", "--input-shape", shape, "-o", "d.onnx").exit_code == 0
    result = invoke("validate", "l.json", "--model", "d.onnx", "--json")
    assert result.exit_code == 0, result.output
    source = json.loads(result.stdout)["results"][0]["input_source"]
    assert source.startswith("the model's static input dims")
    assert ("defaults for its dynamic" in source) == dynamic
