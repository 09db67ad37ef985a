"""``convt shape/run/export/validate`` with PyTorch configs, against real-torch fixtures.

Expected shapes and values come from ``fixtures/torch/`` (real torch 2.13);
tolerance ``rtol = atol = 1e-5`` as in ``tests/test_torch_conformance.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

FIX = Path(__file__).resolve().parent.parent / "fixtures"
CASES = {c["id"]: c for c in json.loads((FIX / "torch" / "cases.json").read_text())}
# one per kind: op >= stride < dilation, groups 4 3-D, output_size, unbatched, 1-D
PICK = ["grid_r2_k3_s1_p1_d2_op1_in2x2x4x3_c3", "grp_r3_k3_s2_p1_op1_g4_in1x4x3x2x3_c8",
        "osize_r2_k3_s3_p1_in2x2x4x3_c3_os2x3x11x8", "unb_r2_k3_s2_p1_op1_in2x4x3_c3",
        "nd_r1_k3_s2_p1_d3_op2_in2x2x5_c3"]


def _write(tmp: Path, case: dict, form: str) -> tuple[str, str, str]:
    cfg = dict(case["kwargs"])
    if form == "module":
        cfg = {"framework": "torch", "module": case["module"], **cfg}
    (tmp / "c.json").write_text(json.dumps(cfg))
    with np.load(FIX / "torch" / f"{case['id']}.npz") as z:
        np.save(tmp / "x.npy", z["input"])
        np.savez(tmp / "w.npz", **{k: z[k] for k in ("weight", "bias") if k in z.files})
    return str(tmp / "c.json"), str(tmp / "x.npy"), str(tmp / "w.npz")


def _shape_text(shape: list[int]) -> str:
    return ",".join(map(str, shape))


@pytest.mark.parametrize("cid", PICK)
def test_shape_and_run_match_torch(cid: str, tmp_path: Path, cli) -> None:
    case = CASES[cid]
    form = "bare" if cid.startswith(("osize", "nd")) else "module"
    cfg, x, w = _write(tmp_path, case, form)
    extra = [] if case["output_size"] is None else ["--output-size",
                                                     _shape_text(case["output_size"])]
    fw = ["--framework", "torch"] if cid.startswith("nd") else []
    r = cli("shape", cfg, "--input-shape", _shape_text(case["input_shape"]), *extra, *fw)
    assert r.exit_code == 0, r.output
    assert r.stdout.strip() == str(tuple(case["output_shape"]))
    with np.load(FIX / "torch" / f"{cid}.npz") as z:
        want = z["output"]
    for engine in ("reference", "onnxruntime"):
        out = tmp_path / f"y_{engine}.npy"
        r = cli("run", cfg, "-i", x, "-w", w, "--engine", engine, "-o", out, *extra, *fw)
        assert r.exit_code == 0, r.output
        np.testing.assert_allclose(np.load(out), want, rtol=1e-5, atol=1e-5)


def test_export_and_validate(tmp_path: Path, cli, ort_run) -> None:
    case = CASES["grid_r2_k3_s1_p1_d2_op1_in2x2x4x3_c3"]
    cfg, x, w = _write(tmp_path, case, "module")
    model = tmp_path / "m.onnx"
    r = cli("export", cfg, "-o", model, "-w", w, "--json")
    assert r.exit_code == 0, r.output
    info = json.loads(r.stdout)
    assert info["input"]["shape"] == ["batch", 2, "height", "width"]
    # output_padding 1 >= stride 1: written in a form onnxruntime accepts
    assert all(o < s for o, s in zip(info["output_padding"] or [0, 0], info["strides"]))
    got = ort_run(model, np.load(x))[0]
    with np.load(FIX / "torch" / f"{case['id']}.npz") as z:
        np.testing.assert_allclose(got, z["output"], rtol=1e-5, atol=1e-5)
    r = cli("validate", cfg, "--model", model, "--input-shape", "1,2,6,5", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["passed"] is True
    r = cli("validate", cfg, "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["results"][0]["max_abs_error"] < 1e-5


@pytest.mark.parametrize("cfg,args,field", [
    ({"module": "ConvTranspose2d", "in_channels": 2, "out_channels": 3, "kernel_size": 3,
      "stride": 2, "output_padding": 2}, ["--input-shape", "1,2,4,4"], "output_padding"),
    ({"module": "ConvTranspose2d", "in_channels": 3, "out_channels": 4, "kernel_size": 3,
      "groups": 2}, ["--input-shape", "1,3,4,4"], "groups"),
    ({"in_channels": 2, "out_channels": 3, "kernel_size": 3, "stride": 2},
     ["--input-shape", "1,2,4,4", "--output-size", "11,9"], "output_size"),
    ({"in_channels": 2, "out_channels": 3, "kernel_size": 3, "padding_mode": "reflect"},
     ["--input-shape", "1,2,4,4"], "padding_mode"),
    ({"module": "ConvTranspose2d", "in_channels": 2, "out_channels": 3, "kernel_size": 3},
     ["--input-shape", "1,2,4,4", "--filters", "3"], "filters"),
    ({"module": "ConvTranspose2d", "in_channels": 2, "out_channels": 3, "kernel_size": 3},
     ["--input-shape", "1,2,4,4", "--layer", "0"], "layer"),
])
def test_bad_torch_configs_exit_2(cfg: dict, args: list, field: str, tmp_path: Path, cli) -> None:
    path = tmp_path / "c.json"
    path.write_text(json.dumps(cfg))
    r = cli("shape", path, *args)
    assert r.exit_code == 2
    assert r.stderr.startswith(f"Error: {field}:") and r.stderr.count("\n") == 1


def test_real_subprocess(tmp_path: Path) -> None:
    case = CASES["grp_r3_k3_s2_p1_op1_g4_in1x4x3x2x3_c8"]
    cfg, x, w = _write(tmp_path, case, "module")
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    out = tmp_path / "y.npy"
    proc = subprocess.run([sys.executable, "-m", "convt_tools", "run", cfg, "-i", x, "-w", w,
                           "-o", str(out)], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    with np.load(FIX / "torch" / f"{case['id']}.npz") as z:
        np.testing.assert_allclose(np.load(out), z["output"], rtol=1e-5, atol=1e-5)


def test_shape_and_solve_import_no_numpy(tmp_path: Path) -> None:
    """``convt shape`` on a torch config and ``convt solve`` stay standard-library only."""
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"module": "ConvTranspose2d", "in_channels": 2, "out_channels": 3,
                               "kernel_size": 3, "stride": 2}))
    code = ("import sys\nfrom click.testing import CliRunner\nfrom convt_tools.cli import main\n"
            f"r = CliRunner().invoke(main, ['shape', {str(cfg)!r}, '--input-shape', '1,2,4,4'])\n"
            "assert r.exit_code == 0 and r.output.strip() == '(1, 3, 9, 9)', r.output\n"
            "r = CliRunner().invoke(main, ['solve', '--input', '10', '--output', '20'])\n"
            "assert r.exit_code == 0, r.output\n"
            "print(sorted(m for m in ('numpy', 'onnx', 'onnxruntime') if m in sys.modules))\n")
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_torch_config_reader_refuses_a_fifo(tmp_path: Path) -> None:
    """The torch config reader is the spec's strict reader: a FIFO is refused, not read (it would hang)."""
    from convt_tools import ConvtError
    from convt_tools.torchconv import read_json_config

    fifo = tmp_path / "layer.json"
    os.mkfifo(fifo)
    with pytest.raises(ConvtError, match="FIFO") as info:
        read_json_config(fifo)
    assert info.value.field == "config"


def test_torch_config_reader_refuses_duplicate_keys(tmp_path: Path) -> None:
    from convt_tools import ConvtError
    from convt_tools.torchconv import read_json_config

    path = tmp_path / "layer.json"
    path.write_text('{"in_channels": 2, "in_channels": 3}')
    with pytest.raises(ConvtError, match="given twice"):
        read_json_config(path)
