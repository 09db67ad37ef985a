"""Hostile saved models, built here: every one is refused in one line, exit 2,
with nothing executed and nothing written.

Threat model: Keras's own loader bypasses (CVE-2024-3660 Lambda bytecode,
CVE-2025-1550 module import from config.json, CVE-2025-9905 legacy .h5 Lambda,
CVE-2025-9906 re-enabling unsafe deserialization from a config), zip slip and
zip bombs, and HDF5 links, external/virtual datasets and shape bombs.
"""

from __future__ import annotations

import base64
import json
import marshal
import os
import zipfile

import numpy as np

import h5py  # noqa: E402
from click.testing import CliRunner  # noqa: E402

from convt_tools.cli import main  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = os.path.join(ROOT, "fixtures", "models")
REAL = os.path.join(MODELS, "seq_decoder.keras")


def _real_members() -> dict[str, bytes]:
    with zipfile.ZipFile(REAL) as z:
        return {n: z.read(n) for n in z.namelist()}


def _config() -> dict:
    return json.loads(_real_members()["config.json"])


def _write_keras(path, members: dict[str, bytes], compression=zipfile.ZIP_STORED) -> str:
    with zipfile.ZipFile(path, "w", compression) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return str(path)


def _keras_with_config(tmp_path, config: dict) -> str:
    members = _real_members()
    members["config.json"] = json.dumps(config).encode()
    return _write_keras(tmp_path / "model.keras", members)


def _payload(marker) -> str:
    """Marshalled bytecode that would create ``marker`` if anything ever ran it."""
    code = compile(f"open({str(marker)!r}, 'w').write('pwned')", "<payload>", "exec")
    return base64.b64encode(marshal.dumps(code)).decode()


def _listing(folder) -> set[str]:
    return {os.path.relpath(os.path.join(d, f), folder)
            for d, _, files in os.walk(folder) for f in files}


COMMANDS = [["layers"], ["validate"], ["export", "-o", "{out}.onnx"]]  # a trailing slash would be refused first


def _refused(tmp_path, model: str, *extra: str, commands=COMMANDS, weights: str | None = None,
             match: str = ""):
    marker = tmp_path / "PWNED"
    for cmd in commands:
        before = _listing(tmp_path)
        args = [a.replace("{out}", str(tmp_path / "out")) for a in cmd]
        argv = [args[0], model, *args[1:], *extra]
        if weights:
            argv += ["--weights", weights]
        r = CliRunner().invoke(main, argv)
        assert r.exit_code == 2, (cmd, r.output)
        lines = r.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: "), r.output
        assert match in lines[0], lines[0]
        assert _listing(tmp_path) == before, "something was written"
        assert not marker.exists(), "the payload ran"
    return lines[0]


# ------------------------------------------------------------------ code in configs

def test_cve_2024_3660_lambda_bytecode_in_keras_archive(tmp_path):
    cfg = _config()
    cfg["config"]["layers"].append({
        "module": "keras.layers", "class_name": "Lambda", "registered_name": None,
        "config": {"name": "evil", "function": {
            "class_name": "__lambda__",
            "config": {"code": _payload(tmp_path / "PWNED"), "defaults": None,
                       "closure": None}}}})
    _refused(tmp_path, _keras_with_config(tmp_path, cfg), match="CVE-2024-3660")


def test_cve_2025_1550_module_import_from_config(tmp_path):
    cfg = _config()
    cfg["config"]["layers"][1]["config"]["activation"] = {
        "module": "os", "class_name": "system", "registered_name": None,
        "config": {"command": f"touch {tmp_path / 'PWNED'}"}}
    _refused(tmp_path, _keras_with_config(tmp_path, cfg), match="CVE-2025-1550")


def test_builtins_eval_reference_is_refused(tmp_path):
    cfg = _config()
    cfg["config"]["layers"][1]["config"]["activation"] = {
        "module": "builtins", "class_name": "function", "registered_name": "function",
        "config": "eval"}
    _refused(tmp_path, _keras_with_config(tmp_path, cfg), commands=[["layers"]],
             match="builtins.eval")


def test_cve_2025_9906_enable_unsafe_deserialization(tmp_path):
    cfg = _config()
    cfg["config"]["layers"].append({
        "module": "keras.layers", "class_name": "Lambda", "registered_name": None,
        "config": {"name": "unlock", "function": {
            "module": "keras.config", "class_name": "function",
            "config": "enable_unsafe_deserialization", "registered_name": "function"}}})
    _refused(tmp_path, _keras_with_config(tmp_path, cfg), match="CVE-2025-9906")


def test_cve_2025_9905_legacy_h5_lambda_bytecode(tmp_path):
    src = os.path.join(MODELS, "seq_decoder.h5")
    path = tmp_path / "model.h5"
    path.write_bytes(open(src, "rb").read())
    with h5py.File(path, "r+") as f:
        cfg = json.loads(f.attrs["model_config"])
        cfg["config"]["layers"].append({"class_name": "Lambda", "config": {
            "name": "evil", "function": [_payload(tmp_path / "PWNED"), None, None],
            "function_type": "lambda", "output_shape": None, "arguments": {}}})
        f.attrs["model_config"] = json.dumps(cfg)
    _refused(tmp_path, str(path), match="CVE-2025-9905")


def test_model_config_json_with_code_is_refused_too(tmp_path):
    cfg = json.load(open(os.path.join(MODELS, "seq_decoder.config.json")))
    cfg["config"]["layers"][1]["config"]["kernel_initializer"] = {
        "module": "subprocess", "class_name": "Popen", "config": {"args": ["true"]}}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    _refused(tmp_path, str(path), weights=os.path.join(MODELS, "seq_decoder.weights.h5"),
             match="subprocess.Popen")


# ------------------------------------------------------------------ zip

def test_zip_slip_member_is_refused(tmp_path):
    members = _real_members()
    members["../../escaped.txt"] = b"x"
    _refused(tmp_path, _write_keras(tmp_path / "m.keras", members), match="escape")


def test_absolute_member_is_refused(tmp_path):
    members = _real_members()
    members["/etc/evil"] = b"x"
    _refused(tmp_path, _write_keras(tmp_path / "m.keras", members), commands=[["layers"]],
             match="escape")


def test_zip_bomb_member_is_refused(tmp_path):
    members = _real_members()
    members["config.json"] = members["config.json"] + b" " * (20 << 20)  # 20 MB -> ~20 KB
    path = _write_keras(tmp_path / "m.keras", members, zipfile.ZIP_DEFLATED)
    _refused(tmp_path, path, match="decompression bomb")


def test_member_over_the_memory_limit_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVT_MAX_BYTES", "4096")
    _refused(tmp_path, REAL, commands=[["layers"]], match="CONVT_MAX_BYTES")


def test_too_many_members_are_refused(tmp_path, monkeypatch):
    import convt_tools.saved.archive as archive

    monkeypatch.setattr(archive, "MAX_MEMBERS", 8)
    members = _real_members()
    members.update({f"assets/{i}": b"" for i in range(10)})
    _refused(tmp_path, _write_keras(tmp_path / "m.keras", members), commands=[["layers"]],
             match="members")


def test_lying_member_size_is_refused(tmp_path):
    """A central directory that declares fewer bytes than the member holds."""
    members = _real_members()
    path = tmp_path / "m.keras"
    _write_keras(path, members)
    data = bytearray(path.read_bytes())
    # shrink config.json's declared size in the central directory entry
    name = b"config.json"
    pos = data.find(b"PK\x01\x02")
    while pos != -1:
        nlen = int.from_bytes(data[pos + 28:pos + 30], "little")
        if bytes(data[pos + 46:pos + 46 + nlen]) == name:
            size = int.from_bytes(data[pos + 24:pos + 28], "little")
            data[pos + 24:pos + 28] = (size - 10).to_bytes(4, "little")
        pos = data.find(b"PK\x01\x02", pos + 4)
    path.write_bytes(bytes(data))
    _refused(tmp_path, str(path), commands=[["layers"]])


# ------------------------------------------------------------------ HDF5

def _weights_copy(tmp_path) -> str:
    dst = tmp_path / "w.weights.h5"
    dst.write_bytes(open(os.path.join(MODELS, "seq_decoder.weights.h5"), "rb").read())
    return str(dst)


CONFIG = os.path.join(MODELS, "seq_decoder.config.json")
KERNEL = "layers/conv2d_transpose/vars/0"


def test_external_link_is_refused(tmp_path):
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["k"] = np.zeros((3, 3, 3, 2), "float32")
    path = _weights_copy(tmp_path)
    with h5py.File(path, "r+") as f:
        del f[KERNEL]
        f[KERNEL] = h5py.ExternalLink(str(other), "/k")
    _refused(tmp_path, CONFIG, weights=path, match="ExternalLink")


def test_soft_link_is_refused(tmp_path):
    path = _weights_copy(tmp_path)
    with h5py.File(path, "r+") as f:
        f.move("layers/conv2d_transpose", "layers/hidden")
        f["layers/conv2d_transpose"] = h5py.SoftLink("/layers/hidden")
    _refused(tmp_path, CONFIG, weights=path, match="SoftLink")


def test_external_dataset_is_refused(tmp_path):
    raw = tmp_path / "raw.bin"
    raw.write_bytes(np.zeros((3, 3, 3, 2), "float32").tobytes())
    path = _weights_copy(tmp_path)
    with h5py.File(path, "r+") as f:
        del f[KERNEL]
        f.create_dataset(KERNEL, shape=(3, 3, 3, 2), dtype="float32",
                         external=[(str(raw), 0, raw.stat().st_size)])
    _refused(tmp_path, CONFIG, weights=path, match="external file")


def test_virtual_dataset_is_refused(tmp_path):
    src = tmp_path / "src.h5"
    with h5py.File(src, "w") as f:
        f["k"] = np.zeros((3, 3, 3, 2), "float32")
    path = _weights_copy(tmp_path)
    with h5py.File(path, "r+") as f:
        del f[KERNEL]
        layout = h5py.VirtualLayout(shape=(3, 3, 3, 2), dtype="float32")
        layout[...] = h5py.VirtualSource(str(src), "k", shape=(3, 3, 3, 2))
        f.create_virtual_dataset(KERNEL, layout)
    _refused(tmp_path, CONFIG, weights=path, match="virtual")


def test_shape_bomb_dataset_is_refused_before_reading(tmp_path, monkeypatch):
    """A kernel declaring 600 MB that stores nothing (chunked, never written)."""
    monkeypatch.setenv("CONVT_MAX_BYTES", "1e12")
    cfg = json.load(open(CONFIG))
    layer = cfg["config"]["layers"][1]  # up_1
    layer["config"]["filters"] = 4096
    layer["build_config"]["input_shape"] = [None, 3, 4, 4096]
    cfg_path = tmp_path / "config.json"
    cfg_path.write_text(json.dumps(cfg))
    path = _weights_copy(tmp_path)
    with h5py.File(path, "r+") as f:
        del f[KERNEL]
        del f["layers/conv2d_transpose/vars/1"]
        f.create_dataset(KERNEL, shape=(3, 3, 4096, 4096), dtype="float32",
                         chunks=(3, 3, 64, 64), compression="gzip")
        f.create_dataset("layers/conv2d_transpose/vars/1", shape=(4096,), dtype="float32")
    _refused(tmp_path, str(cfg_path),
             commands=[["layers"], ["validate", "--layer", "up_1"],
                       ["export", "--layer", "up_1", "-o", "{out}.onnx"]], weights=path,
             match="bomb")


def test_dataset_over_the_memory_limit_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVT_MAX_BYTES", "100")
    _refused(tmp_path, CONFIG, weights=os.path.join(MODELS, "seq_decoder.weights.h5"),
             match="CONVT_MAX_BYTES")


def test_non_float_dataset_is_refused(tmp_path):
    path = _weights_copy(tmp_path)
    with h5py.File(path, "r+") as f:
        del f[KERNEL]
        f[KERNEL] = np.zeros((3, 3, 3, 2), "int64")
    _refused(tmp_path, CONFIG, weights=path, match="float")


def test_legacy_h5_without_model_config_points_to_weights_option(tmp_path):
    r = CliRunner().invoke(main, ["layers", os.path.join(MODELS, "seq_decoder.weights.h5")])
    assert r.exit_code == 2 and "--weights" in r.output


def test_truncated_archive_is_refused(tmp_path):
    data = open(REAL, "rb").read()
    path = tmp_path / "t.keras"
    path.write_bytes(data[: len(data) // 2])
    _refused(tmp_path, str(path), commands=[["layers"]])


def test_reader_never_imports_a_framework(tmp_path):
    """Opening every fixture model loads none of keras/tensorflow/jax/torch."""
    import subprocess
    import sys

    code = ("import sys, glob; from convt_tools.saved import open_model\n"
            f"for p in glob.glob({MODELS + '/*.keras'!r}) + glob.glob({MODELS + '/*.h5'!r}):\n"
            "    p.endswith('.weights.h5') or open_model(p)\n"
            "print([m for m in ('keras', 'tensorflow', 'jax', 'torch') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": ROOT}, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_deeply_nested_config_is_refused(tmp_path):
    members = _real_members()
    members["config.json"] = b"[" * 200_000 + b"]" * 200_000
    _refused(tmp_path, _write_keras(tmp_path / "m.keras", members), commands=[["layers"]],
             match="nested too deeply")


def test_custom_layers_from_user_packages_stay_data(tmp_path):
    """Not every reference is hostile: a custom layer (user package, registered or not) is
    listed as data and never imported; the model's transposed-conv layers still work."""
    cfg = _config()
    cfg["config"]["layers"].insert(2, {
        "module": "my_project.layers", "class_name": "FancyNorm",
        "registered_name": "my_project>FancyNorm", "config": {"name": "fancy", "eps": 1e-3}})
    cfg["config"]["layers"].insert(3, {
        "module": "__main__", "class_name": "Scale", "registered_name": "Scale",
        "config": {"name": "scale", "activation": {"module": "builtins", "class_name": "function",
                                                   "config": "relu",
                                                   "registered_name": "function"}}})
    r = CliRunner().invoke(main, ["validate", _keras_with_config(tmp_path, cfg)])
    assert r.exit_code == 0, r.output
    assert "2 passed" in r.output
    assert "my_project" not in __import__("sys").modules
