"""Safe I/O: destinations, permissions, pickle-free and allocation-safe loading, memory guard."""

from __future__ import annotations

import json
import os
import stat
import zipfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from convt_tools import ConvtError
from convt_tools.cli import main
from convt_tools.io import (
    atomic_write, check_allocation, ensure_distinct, load_npy, load_npz, save_npy,
)


def _write(text: bytes):
    def write(tmp: str) -> None:
        Path(tmp).write_bytes(text)
    return write


def test_never_replaces_a_non_regular_file(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(ConvtError, match="^output: .* is not a regular file"):
        atomic_write(fifo, _write(b"x"))
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    with pytest.raises(ConvtError, match="^output: .* is a folder"):
        atomic_write(tmp_path, _write(b"x"))
    with pytest.raises(ConvtError, match="^output: got ''"):
        atomic_write("", _write(b"x"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe"]


def test_new_files_get_umask_permissions_and_overwrites_keep_mode(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        atomic_write(tmp_path / "a.bin", _write(b"1"))
        assert stat.S_IMODE((tmp_path / "a.bin").stat().st_mode) == 0o644
        os.chmod(tmp_path / "a.bin", 0o640)
        atomic_write(tmp_path / "a.bin", _write(b"2"))
        assert stat.S_IMODE((tmp_path / "a.bin").stat().st_mode) == 0o640
        assert (tmp_path / "a.bin").read_bytes() == b"2"
    finally:
        os.umask(old)


def test_os_errors_name_the_output_not_the_temp_file(tmp_path: Path) -> None:
    def fail(tmp: str) -> None:
        raise OSError(28, "No space left on device")
    with pytest.raises(ConvtError) as info:
        atomic_write(tmp_path / "m.onnx", fail)
    assert str(info.value).startswith("output: cannot write")
    assert ".tmp" not in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_ensure_distinct(tmp_path: Path) -> None:
    cfg = tmp_path / "layer.json"
    cfg.write_text("{}")
    ensure_distinct(tmp_path / "out.onnx", config=cfg, weights=None)
    with pytest.raises(ConvtError, match="also the config file"):
        ensure_distinct(cfg, config=cfg)
    with pytest.raises(ConvtError, match="also the input file"):
        ensure_distinct(tmp_path / "." / "layer.json", input=str(cfg))


def test_npy_and_npz_confusions(tmp_path: Path) -> None:
    arr = np.zeros((3, 3, 4, 3), np.float32)
    np.save(tmp_path / "w.npy", arr)
    os.replace(tmp_path / "w.npy", tmp_path / "w.npz")
    with pytest.raises(ConvtError, match="^weights: .* is a single .npy array"):
        load_npz(tmp_path / "w.npz")
    np.savez(tmp_path / "real.npz", kernel=arr)
    with pytest.raises(ConvtError, match="^input: .* is an .npz archive"):
        load_npy(tmp_path / "real.npz")
    (tmp_path / "text.npy").write_text("1 2 3\n")
    with pytest.raises(ConvtError, match="^input: .* is not a .npy file"):
        load_npy(tmp_path / "text.npy")
    with pytest.raises(ConvtError, match="is a folder"):
        load_npy(tmp_path)


def test_truncated_npz_is_a_clean_error(tmp_path: Path) -> None:
    np.savez(tmp_path / "w.npz", kernel=np.ones((30, 30), np.float32))
    data = (tmp_path / "w.npz").read_bytes()
    (tmp_path / "t.npz").write_bytes(data[:300])
    with pytest.raises(ConvtError, match="^weights: .* not a readable .npz archive"):
        load_npz(tmp_path / "t.npz")


def _lying_npy(shape: tuple[int, ...]) -> bytes:
    """A .npy header declaring ``shape`` float32, followed by only 16 bytes of data."""
    import io
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": "<f4", "fortran_order": False, "shape": shape})
    return buf.getvalue() + b"\0" * 16


def test_lying_headers_are_refused_before_allocating(tmp_path: Path) -> None:
    (tmp_path / "x.npy").write_bytes(_lying_npy((1, 100000, 100000, 3)))
    with pytest.raises(ConvtError, match="truncated or corrupt: its header declares"):
        load_npy(tmp_path / "x.npy")
    with zipfile.ZipFile(tmp_path / "w.npz", "w") as z:
        z.writestr("kernel.npy", _lying_npy((3, 3, 4, 10**10)))
    with pytest.raises(ConvtError, match="member 'kernel.npy' .* truncated or corrupt"):
        load_npz(tmp_path / "w.npz")


def test_round_trip(tmp_path: Path) -> None:
    y = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    save_npy(tmp_path / "y.npy", y)
    np.testing.assert_array_equal(load_npy(tmp_path / "y.npy"), y)


def test_check_allocation(monkeypatch: pytest.MonkeyPatch) -> None:
    check_allocation((1, 64, 64, 8), np.float32, "input_shape", "the output")
    with pytest.raises(ConvtError, match="^input_shape: the output would need 160 GB"):
        check_allocation((1, 100000, 100000, 4), np.float32, "input_shape", "the output")
    monkeypatch.setenv("CONVT_MAX_BYTES", "1000")
    with pytest.raises(ConvtError, match="CONVT_MAX_BYTES"):
        check_allocation((1, 16, 16, 1), np.float32, "input_shape", "the output")


# ---------------------------------------------------------------- through the CLI

@pytest.fixture
def layer(tmp_path: Path) -> Path:
    cfg = tmp_path / "layer.json"
    cfg.write_text(json.dumps({"filters": 4, "kernel_size": 3, "strides": 2,
                               "data_format": "channels_last"}))
    np.save(tmp_path / "x.npy", np.ones((1, 5, 5, 3), np.float32))
    return cfg


def _one_line_exit_2(result, starts: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"Error: {starts}"), result.stderr


def test_cli_refuses_to_overwrite_its_inputs(layer: Path, tmp_path: Path) -> None:
    before = layer.read_bytes(), (tmp_path / "x.npy").read_bytes()
    run = CliRunner()
    _one_line_exit_2(run.invoke(main, ["export", str(layer), "-o", str(layer),
                                       "--input-shape", "None,?,?,3"]), "output:")
    _one_line_exit_2(run.invoke(main, ["run", str(layer), "-i", str(tmp_path / "x.npy"),
                                       "-o", str(tmp_path / "x.npy")]), "output:")
    assert (layer.read_bytes(), (tmp_path / "x.npy").read_bytes()) == before


def test_cli_refuses_huge_outputs_before_allocating(tmp_path: Path) -> None:
    cfg = tmp_path / "big.json"
    cfg.write_text(json.dumps({"filters": 4, "kernel_size": 1, "strides": [20000, 20000],
                               "data_format": "channels_last"}))
    np.save(tmp_path / "x.npy", np.ones((1, 5, 5, 3), np.float32))
    for engine in ("reference", "onnxruntime"):
        result = CliRunner().invoke(main, ["run", str(cfg), "-i", str(tmp_path / "x.npy"),
                                           "--engine", engine, "-o", str(tmp_path / "y.npy")])
        _one_line_exit_2(result, "input_shape: the output (1, 100000, 100000, 4)")
    huge = tmp_path / "huge.json"
    huge.write_text(json.dumps({"filters": 10**30, "kernel_size": 3}))
    result = CliRunner().invoke(main, ["export", str(huge), "-o", str(tmp_path / "m.onnx"),
                                       "--input-shape", "1,5,5,3"])
    _one_line_exit_2(result, "filters: the kernel")
    assert not (tmp_path / "y.npy").exists()
    assert not (tmp_path / "m.onnx").exists()


def test_memory_guard_applies_to_arrays_in_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A small, highly compressed .npz (a zip bomb) is refused before it is inflated."""
    import io
    big = io.BytesIO()
    np.save(big, np.zeros((1000, 1000), np.float32))          # 4 MB of zeros
    with zipfile.ZipFile(tmp_path / "bomb.npz", "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("kernel.npy", big.getvalue())
    assert (tmp_path / "bomb.npz").stat().st_size < 50_000
    np.save(tmp_path / "x.npy", np.zeros((1000, 1000), np.float32))
    monkeypatch.setenv("CONVT_MAX_BYTES", "1e6")
    with pytest.raises(ConvtError, match=r"^weights: member 'kernel.npy' .* would need .* \(set by CONVT_MAX_BYTES\)"):
        load_npz(tmp_path / "bomb.npz")
    with pytest.raises(ConvtError, match=r"^input: .* would need"):
        load_npy(tmp_path / "x.npy")


@pytest.mark.parametrize("value", ["inf", "1e999", "-5", "0", "nan", "lots"])
def test_bad_max_bytes_setting(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVT_MAX_BYTES", value)
    with pytest.raises(ConvtError, match="^CONVT_MAX_BYTES: got"):
        check_allocation((2, 2), np.float32, "input_shape", "the output")


def test_xml_safe() -> None:
    from xml.etree import ElementTree as ET
    from convt_tools.io import xml_safe
    name = 'a<b>&"\x01\x1b]]>\ud800z'
    el = ET.Element("testcase", name=xml_safe(name))
    el.text = xml_safe(name)
    parsed = ET.fromstring(ET.tostring(el, encoding="unicode").encode("utf-8", "surrogatepass"))
    assert parsed.get("name") == 'a<b>&"??]]>?z'


def test_reference_memory_guard_counts_float64(monkeypatch: pytest.MonkeyPatch) -> None:
    import convt_tools as ct
    x, w = np.ones((1, 1, 8, 8)), np.ones((1, 1, 1, 1))          # output 1x8x8x1
    monkeypatch.setenv("CONVT_MAX_BYTES", str(8 * 8 * 4))         # fits in float32 only
    ct.conv_transpose(x.astype(np.float32), w.astype(np.float32))
    with pytest.raises(ConvtError, match="^input_shape: the output .* float64"):
        ct.conv_transpose(x, w)
