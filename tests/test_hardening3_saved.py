"""Issue 17: corrupt saved models, deep configs, input channels, broken pipes, extras.

Damaged HDF5/zip files (hand-made and fuzzed) must give one line ``Error: ...``
with exit 2 or succeed, never a traceback; ``layers --json`` prints any
nesting depth; an input shape whose channel count differs from the layer's
is refused by every command; a closed stdout ends a command quietly; the
optional-runtime extras never pull torchvision or CUDA wheels.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import struct
import subprocess
import sys
import zipfile

import numpy as np
import pytest

import h5py  # a runtime dependency

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = os.path.join(ROOT, "fixtures", "models")


def _model(name: str) -> str:
    return os.path.join(MODELS, name)


def _one_line_error(r, *needles: str) -> str:
    """``r`` exited 2 with exactly one ``Error: ...`` line (no traceback) holding ``needles``."""
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    assert r.exit_code == 2, (r.exit_code, r.output)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), r.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def _copy(tmp_path, name: str) -> str:
    dst = tmp_path / name
    shutil.copyfile(_model(name), dst)
    return str(dst)


# ------------------------------------------------------------------ item 6: damaged files

def test_null_dataspace_kernel_is_one_line(cli, tmp_path):
    path = _copy(tmp_path, "seq_decoder.weights.h5")
    with h5py.File(path, "r+") as f:
        del f["layers/conv2d_transpose/vars/0"]
        f.create_dataset("layers/conv2d_transpose/vars/0", data=h5py.Empty("float32"))
    r = cli("layers", _model("seq_decoder.config.json"), "--weights", path)
    _one_line_error(r, "w.weights.h5" if False else "seq_decoder.weights.h5",
                    "layers/conv2d_transpose/vars/0", "null dataspace")


def test_null_dataspace_bias_is_one_line(cli, tmp_path):
    path = _copy(tmp_path, "seq_decoder.weights.h5")
    with h5py.File(path, "r+") as f:
        del f["layers/conv2d_transpose/vars/1"]
        f.create_dataset("layers/conv2d_transpose/vars/1", data=h5py.Empty("float32"))
    r = cli("export", _model("seq_decoder.config.json"), "--weights", path, "--layer", "up_1",
            "-o", tmp_path / "o.onnx")
    _one_line_error(r, "layers/conv2d_transpose/vars/1", "null dataspace")
    assert not (tmp_path / "o.onnx").exists()


def test_non_utf8_model_config_is_one_line(cli, tmp_path):
    path = _copy(tmp_path, "seq_decoder.h5")
    with h5py.File(path, "r+") as f:
        text = f.attrs["model_config"]
        text = text.encode() if isinstance(text, str) else bytes(text)
        f.attrs["model_config"] = np.bytes_(text.replace(b'"up_1"', b'"up_\xff"'))
    r = cli("layers", path)
    _one_line_error(r, "seq_decoder.h5", "model_config", "UTF-8")


@pytest.mark.parametrize("names", [[b"./up_a/kernel:0", b"./up_a/bias:0"], [b""], [b"", b""]],
                         ids=["dot-component", "empty-name", "two-empty-names"])
def test_odd_weight_names_are_one_line_or_read(cli, tmp_path, names):
    path = _copy(tmp_path, "keras2_legacy.h5")
    with h5py.File(path, "r+") as f:
        f["model_weights/up_a"].attrs["weight_names"] = np.array(names, dtype="S")
    for args in (["layers", path], ["export", path, "--layer", "up_a", "-o", tmp_path / "o.onnx"]):
        r = cli(*args)
        _one_line_error(r, "keras2_legacy.h5")
    assert not (tmp_path / "o.onnx").exists()


def test_empty_string_array_weight_names_is_one_line(cli, tmp_path):
    path = _copy(tmp_path, "keras2_legacy.h5")
    with h5py.File(path, "r+") as f:
        del f["model_weights/up_a"].attrs["weight_names"]
        f["model_weights/up_a"].attrs.create("weight_names", np.array([], dtype=object),
                                             dtype=h5py.string_dtype())
    r = cli("layers", path)
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    _one_line_error(r, "keras2_legacy.h5", "up_a")


def _patch_central_directory(data: bytes, offset_in_entry: int, value: bytes) -> bytes:
    buf = bytearray(data)
    pos = buf.find(b"PK\x01\x02")
    while pos >= 0:
        buf[pos + offset_in_entry:pos + offset_in_entry + len(value)] = value
        pos = buf.find(b"PK\x01\x02", pos + 4)
    return bytes(buf)


def test_unsupported_zip_version_is_one_line(cli, tmp_path):
    data = open(_model("seq_decoder.keras"), "rb").read()
    path = tmp_path / "v.keras"
    path.write_bytes(_patch_central_directory(data, 6, struct.pack("<H", 99)))  # version needed
    r = cli("layers", path)
    _one_line_error(r, "v.keras", "zip")


def test_unsupported_compression_of_weights_is_one_line(cli, tmp_path):
    data = open(_model("seq_decoder.keras"), "rb").read()
    path = tmp_path / "c.keras"
    path.write_bytes(_patch_central_directory(data, 10, struct.pack("<H", 97)))  # method 97
    r = cli("layers", path)
    _one_line_error(r, "c.keras")


def test_compressed_weights_member_is_read(cli, tmp_path):
    """A deflated model.weights.h5 (not what Keras writes) is decompressed to a temporary
    file and read like a stored one."""
    with zipfile.ZipFile(_model("unet_nested.keras")) as z:
        members = {n: z.read(n) for n in z.namelist()}
    path = tmp_path / "deflated.keras"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    plain = cli("layers", _model("unet_nested.keras"), "--json")
    deflated = cli("layers", path, "--json")
    assert plain.exit_code == 0 and deflated.exit_code == 0, deflated.output
    strip = lambda text: [dict(row, config=None) for row in json.loads(text)["layers"]]  # noqa: E731
    assert strip(plain.stdout) == strip(deflated.stdout)
    out = tmp_path / "up.onnx"
    r = cli("export", path, "--layer", "0", "-o", out)
    assert r.exit_code == 0, r.output


# Fuzzing: fixed seed, fixed count, in process. Each mutant flips 1 to 8 random bytes.
FUZZ_SEED = 20261207
FUZZ_MUTANTS = 60


def _mutants(data: bytes, rng: random.Random, count: int):
    for _ in range(count):
        buf = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            buf[rng.randrange(len(buf))] = rng.randrange(256)
        yield bytes(buf)


def _fuzz(cli, tmp_path, make_argv, data: bytes, suffix: str, seed: int) -> dict[str, int]:
    """Every mutant: no traceback, and either exit 0 or one ``Error:`` line with exit 2."""
    rng = random.Random(seed)
    outcomes = {"ok": 0, "refused": 0}
    for i, mutant in enumerate(_mutants(data, rng, FUZZ_MUTANTS)):
        path = tmp_path / f"m{i}{suffix}"
        path.write_bytes(mutant)
        for argv in make_argv(str(path), tmp_path / f"out{i}"):
            r = cli(*argv)
            assert r.exception is None or isinstance(r.exception, SystemExit), \
                (i, argv[0], "".join(__import__("traceback").format_exception(r.exception)))
            if r.exit_code == 0:
                outcomes["ok"] += 1
                continue
            assert r.exit_code == 2, (i, argv, r.exit_code, r.output)
            lines = r.stderr.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("Error: "), (i, argv, r.stderr)
            outcomes["refused"] += 1
            assert not os.path.exists(f"{tmp_path / f'out{i}'}.onnx"), "written half way"
    assert outcomes["ok"] + outcomes["refused"] == 2 * FUZZ_MUTANTS
    return outcomes


def _model_argv(path: str, out) -> list[list[str]]:
    return [["layers", path, "--json"], ["export", path, "--layer", "0", "-o", f"{out}.onnx"]]


@pytest.mark.parametrize("name", ["seq_decoder.keras", "unet_nested.h5", "keras2_legacy.h5"])
def test_fuzzed_saved_model_never_tracebacks(cli, tmp_path, name):
    data = open(_model(name), "rb").read()
    outcomes = _fuzz(cli, tmp_path, _model_argv, data, "." + name.split(".", 1)[1], FUZZ_SEED)
    assert outcomes["refused"] > 0


@pytest.mark.parametrize("stem", ["unet_nested", "seq_decoder"])
def test_fuzzed_weights_h5_never_tracebacks(cli, tmp_path, stem):
    config = _model(f"{stem}.config.json")

    def argv(path: str, out) -> list[list[str]]:
        return [["layers", config, "--weights", path, "--json"],
                ["export", config, "--weights", path, "--layer", "0", "-o", f"{out}.onnx"]]

    data = open(_model(f"{stem}.weights.h5"), "rb").read()
    outcomes = _fuzz(cli, tmp_path, argv, data, ".weights.h5", FUZZ_SEED + 1)
    assert outcomes["refused"] > 0 and outcomes["ok"] > 0


def test_fuzzed_weights_inside_keras_archive_never_tracebacks(cli, tmp_path):
    """Flips inside model.weights.h5 with the zip's CRC made right again: the HDF5 reader
    (not the CRC check) meets the damage."""
    with zipfile.ZipFile(_model("unet_nested.keras")) as z:
        members = {n: z.read(n) for n in z.namelist()}
    rng = random.Random(FUZZ_SEED + 2)
    archives = []
    for i, mutant in enumerate(_mutants(members["model.weights.h5"], rng, FUZZ_MUTANTS)):
        path = tmp_path / f"a{i}.keras"
        with zipfile.ZipFile(path, "w") as z:
            for name, data in members.items():
                z.writestr(name, mutant if name == "model.weights.h5" else data)
        archives.append(path.read_bytes())
    outcomes = {"ok": 0, "refused": 0}
    for i, data in enumerate(archives):
        path = tmp_path / f"a{i}.keras"
        for argv in _model_argv(str(path), tmp_path / f"out{i}"):
            r = cli(*argv)
            assert r.exception is None or isinstance(r.exception, SystemExit), \
                (i, argv[0], repr(r.exception))
            if r.exit_code == 0:
                outcomes["ok"] += 1
            else:
                _one_line_error(r, f"a{i}.keras", "model.weights.h5")
                outcomes["refused"] += 1
    assert outcomes["refused"] > 0


# ------------------------------------------------------------------ item 8: deep configs

def test_layers_json_prints_a_config_nested_500_deep(cli, tmp_path):
    with zipfile.ZipFile(_model("seq_decoder.keras")) as z:
        members = {n: z.read(n) for n in z.namelist()}
    cfg = json.loads(members["config.json"])
    layer = next(e for e in cfg["config"]["layers"] if e["class_name"] == "Conv2DTranspose")
    deep: object = 0.5
    for _ in range(500):
        deep = [deep]
    layer["config"]["kernel_regularizer"] = {"module": "keras.regularizers", "class_name": "L2",
                                             "config": {"l2": deep}, "registered_name": None}
    members["config.json"] = json.dumps(cfg).encode()
    path = tmp_path / "deep.keras"
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    r = cli("layers", path, "--json")
    assert r.exit_code == 0, r.output[-500:]
    text = r.stdout
    assert text.count("[") >= 500
    flat = text.replace(" ", "").replace("\n", "")
    assert '"l2":' + "[" * 500 + "0.5" + "]" * 500 in flat
    assert '"path":"up_1"' in flat


def test_deep_json_text_is_json_dumps_text():
    from convt_tools.cli.common import _dumps_deep, _finite

    cases = [{"a": [1, 2.5, {"b": None, "c": []}, {}], "d": "x\u00e9\"", "e": float("nan"),
              "f": [float("-inf")], "g": (1, 2), 3: True}, [], {}, 7, "s", [[[]]]]
    for case in cases:
        assert _dumps_deep(case) == json.dumps(_finite(case), indent=2)


# ------------------------------------------------------------------ item 18: broken pipe

@pytest.mark.parametrize("argv", [
    ["shape", "--filters", "3", "--kernel-size", "2", "--input-shape", "1,4,4,2", "--explain"],
    ["layers", os.path.join(MODELS, "unet_nested.keras"), "--json"],
    ["--help"],
], ids=["shape-explain", "layers-json", "help"])
def test_closed_stdout_exits_quietly(argv):
    """``convt ... | head -1``: the reader is gone before convt writes; no message."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run([sys.executable, "-m", "convt_tools", *argv], stdout=write_end,
                              stderr=subprocess.PIPE, timeout=120,
                              env={**os.environ, "PYTHONPATH": ROOT})
    finally:
        os.close(write_end)
    assert proc.stderr == b"", proc.stderr
    assert proc.returncode == 141


def test_head_pipe_exits_quietly(tmp_path):
    """A real shell pipe into ``head -1``."""
    if shutil.which("sh") is None or shutil.which("head") is None:
        pytest.skip("no sh/head on this machine")
    err = tmp_path / "err"
    cmd = (f"{sys.executable} -m convt_tools layers {os.path.join(MODELS, 'unet_nested.keras')} "
           f"--json 2>{err} | head -1")
    proc = subprocess.run(["sh", "-c", cmd], capture_output=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": ROOT})
    assert proc.stdout == b"{\n"
    assert err.read_bytes() == b""


# ------------------------------------------------------------------ item 21: extras, no CUDA

_NETWORK_TROUBLE = ("Network is unreachable", "Temporary failure in name resolution",
                    "Max retries exceeded", "ConnectionError", "Connection refused",
                    "NewConnectionError", "Could not fetch URL", "timed out",
                    "No matching distribution found")


def _extras() -> dict[str, list[str]]:
    import tomllib

    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as fh:
        return tomllib.load(fh)["project"].get("optional-dependencies", {})


def _heavy(name: str, version: str) -> bool:
    name = name.lower().replace("_", "-")
    return (name in {"torch", "torchvision", "torchaudio", "triton", "onnx2torch", "pnnx"}
            or name.startswith(("nvidia-", "cuda-")) or "+cu" in version)


def test_no_extra_names_a_cuda_pulling_package():
    for extra, deps in _extras().items():
        names = {re.split(r"[<>=!~ \[;]", d)[0].lower() for d in deps}
        assert not names & {"torch", "torchvision", "onnx2torch", "pnnx"}, (extra, names)


@pytest.mark.slow
@pytest.mark.parametrize("extra", ["openvino", "tract", "all-runtimes", "litert", "opencv", "tvm",
                                   "iree"])
def test_extra_resolves_without_torchvision_or_cuda(tmp_path, extra):
    """``pip install --dry-run --report`` of the extra in an empty environment
    (--ignore-installed): nothing of torch, torchvision or CUDA is pulled."""
    assert extra in _extras()
    report = tmp_path / "report.json"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
         "--report", str(report), f"{ROOT}[{extra}]"],
        capture_output=True, text=True, timeout=600,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    if proc.returncode != 0:
        trouble = [t for t in _NETWORK_TROUBLE if t in proc.stderr]
        if trouble:
            pytest.skip(f"pip cannot reach a package index ({trouble[0]}): "
                        f"{proc.stderr.strip().splitlines()[-1][:200]}")
        raise AssertionError(proc.stderr[-2000:])
    installs = json.loads(report.read_text())["install"]
    pulled = {i["metadata"]["name"]: i["metadata"]["version"] for i in installs}
    assert "convt-tools" in pulled
    heavy = sorted(f"{n}=={v}" for n, v in pulled.items() if _heavy(n, v))
    assert not heavy, f"[{extra}] pulls {heavy}"


# ------------------------------------------------------------------ item 17: input channels

def _built_config(tmp_path, data_format: str = "channels_last") -> str:
    shape = [None, 7, 2] if data_format == "channels_last" else [None, 2, 7]
    path = tmp_path / f"built_{data_format}.json"
    path.write_text(json.dumps({"class_name": "Conv1DTranspose",
                                "config": {"filters": 4, "kernel_size": 3, "strides": 2,
                                           "data_format": data_format},
                                "build_config": {"input_shape": shape}}))
    return str(path)


@pytest.mark.parametrize("data_format,bad,good,axis", [
    ("channels_last", "1,7,3", "1,9,2", "-1"), ("channels_first", "1,3,7", "1,2,9", "1")])
def test_built_config_refuses_another_channel_count(cli, tmp_path, data_format, bad, good, axis):
    cfg = _built_config(tmp_path, data_format)
    out = tmp_path / "o.onnx"
    for argv in (["shape", cfg], ["export", cfg, "-o", out], ["validate", cfg]):
        r = cli(*argv, "--input-shape", bad)
        _one_line_error(r, "input_shape", "built for 2", f"axis {axis}")
        assert cli(*argv, "--input-shape", good).exit_code == 0
    assert out.exists()
    out.unlink()
    x = tmp_path / "x.npy"
    np.save(x, np.zeros(tuple(int(d) for d in bad.split(",")), "float32"))
    r = cli("run", cfg, "--input", x, "-o", tmp_path / "y.npy")
    _one_line_error(r, "input_shape", "built for 2")
    assert not (tmp_path / "y.npy").exists()


def test_saved_model_layer_refuses_another_channel_count(cli, tmp_path):
    model = _model("seq_decoder.keras")   # up_1: kernel (3, 3, 3, 2), built for 2 channels
    out = tmp_path / "o.onnx"
    for argv in (["shape", model, "--layer", "up_1"],
                 ["export", model, "--layer", "up_1", "-o", out],
                 ["validate", model, "--layer", "up_1"]):
        r = cli(*argv, "--input-shape", "1,3,4,5")
        _one_line_error(r, "input_shape", "built for 2")
    assert not out.exists()


def test_saved_layer_without_recorded_channels_takes_the_kernels(cli, tmp_path):
    """No recorded input shape: the stored kernel's channel count is required."""
    with zipfile.ZipFile(_model("seq_decoder.keras")) as z:
        members = {n: z.read(n) for n in z.namelist()}
    cfg = json.loads(members["config.json"])
    for entry in cfg["config"]["layers"]:
        entry.pop("build_config", None)
        entry.get("config", {}).pop("batch_shape", None)
        entry.pop("inbound_nodes", None)
    cfg["config"]["layers"] = [e for e in cfg["config"]["layers"]
                               if e["class_name"] != "InputLayer"]
    members["config.json"] = json.dumps(cfg).encode()
    path = tmp_path / "unbuilt.keras"
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    r = cli("shape", path, "--layer", "up_1", "--input-shape", "1,3,4,3")
    _one_line_error(r, "input_shape", "built for 2")
    r = cli("shape", path, "--layer", "up_1", "--input-shape", "1,3,4,2")
    assert r.exit_code == 0, r.output
