"""``convt verify``: converted models proven layer by layer against their source (issue 22).

Judged against fixtures/converted/ (real tf2onnx, Keras model.export and torch.onnx
outputs, hand-broken variants; the verdict and class per layer and runtime measured on
the real runtimes by measure_runtimes.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from support.assertions import assert_one_line_error
from support.cli import run_convt
from support.converted import (CONVERTED, MEASURED_RUNTIMES, cases, manifest, source_path,
                               torch_models)
from support.optional import browser_or_skip, need, oracle_python, runtime_or_skip
from support.pictures import html_panels, png_pixels

from convt_tools.errors import ConvtError
from convt_tools.sources import resolve_sources
from convt_tools.verify import verify_model, weight_relation
from convt_tools.verify.html import report_html

CASES = cases()
RUNTIME_PARAMS = [pytest.param("onnxruntime"),
                  *(pytest.param(rt, marks=(pytest.mark.runtimes, pytest.mark.slow))
                    for rt in MEASURED_RUNTIMES[1:])]


# ---------------------------------------------------------------- weight relations

@pytest.fixture
def w() -> np.ndarray:
    return np.random.default_rng(0).standard_normal((4, 3, 3, 2)).astype(np.float32)


def test_weight_relation_exact(w: np.ndarray) -> None:
    assert weight_relation(w.copy(), w) == "exact"


def test_weight_relation_flipped(w: np.ndarray) -> None:
    assert weight_relation(w[:, :, ::-1, ::-1], w) == "kernel_flipped"


def test_weight_relation_layout_swapped(w: np.ndarray) -> None:
    assert weight_relation(w.transpose(1, 0, 2, 3), w) == "layout_swapped"


def test_weight_relation_group_blocks_exchanged(w: np.ndarray) -> None:
    assert weight_relation(np.concatenate([w[2:], w[:2]]), w, groups=2) == "group_slicing"


def test_weight_relation_unit_axis_of_a_1d_layer_run_as_2d(w: np.ndarray) -> None:
    w1 = w[:, :, 0, :]
    assert weight_relation(w1[:, :, None, :], w1) == "exact"


def test_weight_relation_unrelated(w: np.ndarray) -> None:
    assert weight_relation(w + 1, w) is None


# ---------------------------------------------------------------- torch model descriptions

@pytest.mark.parametrize("model", torch_models())
def test_torch_description_layers_are_its_convtranspose_modules(model: str) -> None:
    doc = json.loads((CONVERTED / "torch" / f"{model}.json").read_text())
    want = [m["qualname"] for m in doc["modules"] if "ConvTranspose" in m["module_class"]]
    got = [s.record.path for s in resolve_sources(str(source_path(model)))]
    assert got == want


@pytest.mark.parametrize("model", torch_models())
def test_torch_description_weights_and_chained_input_shapes(model: str) -> None:
    with np.load(CONVERTED / "torch" / f"{model}.weights.npz") as z:
        weights = {k: z[k] for k in z.files}
    with np.load(CONVERTED / "torch" / f"{model}.io.npz") as z:
        shapes = {k: z[k].shape for k in z.files}
    for s in resolve_sources(str(source_path(model))):
        q = s.record.path
        assert np.array_equal(s.kernel, weights[f"{q}.weight"])
        assert s.record.input_shape == shapes[f"layer.{q}.input"]


def test_torch_description_reference_is_the_recorded_torch_output() -> None:
    with np.load(CONVERTED / "torch" / "t_groups2d.io.npz") as z:
        io = {k: z[k] for k in z.files}
    for s in resolve_sources(str(source_path("t_groups2d"))):
        q = s.record.path
        got = s.layer.reference(io[f"layer.{q}.input"], s.kernel, s.bias)
        assert np.max(np.abs(got - io[f"layer.{q}.output"])) < 1e-4


def _description(tmp_path: Path, weights: dict[str, np.ndarray]) -> Path:
    src = CONVERTED / "torch" / "t_1d.json"
    (tmp_path / "m.json").write_text(src.read_text())
    np.savez(tmp_path / "m.weights.npz", **weights)
    return tmp_path / "m.json"


def test_torch_description_missing_weight_names_the_key(tmp_path: Path) -> None:
    with np.load(CONVERTED / "torch" / "t_1d.weights.npz") as z:
        weights = {k: z[k] for k in z.files if k != "dil.weight"}
    with pytest.raises(ConvtError, match=r"'dil\.weight'"):
        resolve_sources(str(_description(tmp_path, weights)))


def test_torch_description_refuses_a_pickled_array(tmp_path: Path) -> None:
    with np.load(CONVERTED / "torch" / "t_1d.weights.npz") as z:
        weights = {k: z[k] for k in z.files}
    weights["up.weight"] = np.array([{"a": 1}], dtype=object)
    with pytest.raises(ConvtError) as info:
        resolve_sources(str(_description(tmp_path, weights)))
    assert info.value.field == "weights"


def test_torch_description_explicit_weights_flag(tmp_path: Path) -> None:
    (tmp_path / "d.json").write_text((CONVERTED / "torch" / "t_3d.json").read_text())
    got = resolve_sources(str(tmp_path / "d.json"),
                          weights=str(CONVERTED / "torch" / "t_3d.weights.npz"))
    assert [s.record.path for s in got] == ["up"]


# ---------------------------------------------------------------- verify vs the measurements

@pytest.mark.parametrize("runtime", RUNTIME_PARAMS)
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_verify_matches_the_measured_verdict_and_class(case, runtime: str) -> None:
    runtime_or_skip(runtime)
    _, source, onnx_path, want = case
    report = verify_model(resolve_sources(str(source)), str(onnx_path), [runtime]).to_dict()
    got = {lay["source_layer"]: (lay["runtimes"][runtime]["verdict"],
                                 lay["runtimes"][runtime]["class"]) for lay in report["layers"]}
    assert got == {layer: per[runtime] for layer, per in want.items()}


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_verify_pairs_every_layer_and_every_convtranspose(case) -> None:
    _, source, onnx_path, want = case
    report = verify_model(resolve_sources(str(source)), str(onnx_path), []).to_dict()
    assert [lay["source_layer"] for lay in report["layers"] if lay["onnx_nodes"]] == list(want)
    assert report["unpaired_nodes"] == []


def test_verify_layer_verdict_is_the_worst_and_class_the_first_not_exact() -> None:
    for rt in MEASURED_RUNTIMES:
        runtime_or_skip(rt)
    report = verify_model(resolve_sources(str(source_path("k_seq_dec"))),
                          str(CONVERTED / "broken" / "output_shape_odd_crop.onnx"),
                          ["tract", "openvino", "onnxruntime"]).to_dict()
    lay = report["layers"][0]
    assert (lay["verdict"], lay["class"], lay["runtimes"]["tract"]["verdict"]) == \
        ("mismatch", "output_shape_odd_crop", "exact")


def test_verify_unpaired_layer_from_another_model() -> None:
    report = verify_model(resolve_sources(str(source_path("t_3d"))),
                          str(CONVERTED / "onnx" / "t_1d__torchscript_o17_fixed.onnx"),
                          ["onnxruntime"])
    assert [lay.verdict for lay in report.layers] == ["unpaired"]
    assert len(report.unpaired_nodes) == 2


def test_verify_dynamic_layer_runs_both_parities_per_axis() -> None:
    report = verify_model(resolve_sources(str(source_path("k_seq_dec"))),
                          str(CONVERTED / "onnx" / "k_seq_dec__tf2onnx_o17_dynamic.onnx"),
                          ["onnxruntime"]).to_dict()
    sizes = [s["input_shape"][1:3] for s in report["layers"][0]["runtimes"]["onnxruntime"]["sizes"]]
    assert sizes == [[5, 6], [6, 5]]


# ---------------------------------------------------------------- the CLI

def test_cli_verify_exact_model_exits_0(cli) -> None:
    result = cli("verify", source_path("t_dec2d"),
                 CONVERTED / "onnx" / "t_dec2d__dynamo_default_fixed.onnx",
                 "--runtime", "onnxruntime", "--json")
    assert result.exit_code == 0, result.output
    assert [lay["verdict"] for lay in json.loads(result.stdout)["layers"]] == ["exact", "exact"]


def test_cli_verify_json_contract(cli) -> None:
    result = cli("verify", source_path("t_dec2d"), CONVERTED / "broken" / "bias_dropped.onnx",
                 "--runtime", "onnxruntime", "--json")
    lay = json.loads(result.stdout)["layers"][0]
    assert (result.exit_code, lay["source_layer"], lay["onnx_nodes"], lay["verdict"],
            lay["class"], sorted(lay["runtimes"]["onnxruntime"])) == \
        (1, "up.0", ["/up/up.0/ConvTranspose"], "mismatch", "bias_dropped",
         ["class", "max_abs_error", "sizes", "verdict"])


def test_cli_verify_junit_names_the_class(cli, tmp_path: Path) -> None:
    out = tmp_path / "v.xml"
    result = cli("verify", source_path("t_1d"), CONVERTED / "broken" / "dilation_lost.onnx",
                 "--runtime", "onnxruntime", "--junit-xml", out)
    assert result.exit_code == 1
    assert 'type="dilation_lost"' in out.read_text()


def test_cli_verify_bad_runtime_exits_2(cli) -> None:
    result = cli("verify", source_path("t_1d"), CONVERTED / "onnx" / "t_1d__torchscript_o17_fixed.onnx",
                 "--runtime", "nope")
    assert_one_line_error(result, "runtime")


def test_cli_verify_unreadable_source_exits_2(cli, tmp_path: Path) -> None:
    bad = tmp_path / "d.json"
    bad.write_text('{"modules": [{"qualname": "up", "module_class": "torch.nn.ConvTranspose2d", '
                   '"kwargs": {"in_channels": 2}}]}')
    result = cli("verify", bad, CONVERTED / "onnx" / "t_1d__torchscript_o17_fixed.onnx",
                 "--runtime", "onnxruntime")
    assert_one_line_error(result, "out_channels")


@pytest.mark.slow
def test_cli_verify_subprocess_exit_1_on_negative_pads() -> None:
    proc = run_convt("verify", source_path("k_seq_dec"),
                     CONVERTED / "onnx" / "k_seq_dec__tf2onnx_o13_fixed.onnx",
                     "--runtime", "onnxruntime")
    assert (proc.returncode, "negative_pads" in proc.stdout) == (1, True)


# ---------------------------------------------------------------- describe_torch_model

_LIVE = """
import sys, torch
from convt_tools.torchconv.model import describe_torch_model
torch.manual_seed(0)
m = torch.nn.Sequential(torch.nn.ConvTranspose2d(3, 4, 3, 2, 1, 1), torch.nn.ReLU(),
                        torch.nn.Sequential(torch.nn.ConvTranspose2d(4, 2, 4, 2, 1, bias=False,
                                                                     dilation=2)))
describe_torch_model(m, sys.argv[1] + "/m.json", input_shape=(1, 3, 5, 6))
x = torch.randn(1, 3, 5, 6)
torch.onnx.export(m, (x,), sys.argv[1] + "/m.onnx", dynamo=False, opset_version=17)
"""


def _check_described(folder: Path) -> None:
    doc = json.loads((folder / "m.json").read_text())
    sources = resolve_sources(str(folder / "m.json"))
    assert [(m["qualname"], m["module_class"]) for m in doc["modules"]] == \
        [("0", "torch.nn.ConvTranspose2d"), ("1", "torch.nn.ReLU"), ("2.0", "torch.nn.ConvTranspose2d")]
    assert [s.record.input_shape for s in sources] == [(1, 3, 5, 6), (1, 4, 10, 12)]
    report = verify_model(sources, str(folder / "m.onnx"), ["onnxruntime"])
    assert [lay.verdict for lay in report.layers] == ["exact", "exact"]


@pytest.mark.runtimes
def test_describe_torch_model_with_the_installed_torch(tmp_path: Path) -> None:
    need("torch")
    proc = subprocess.run([sys.executable, "-c", _LIVE, str(tmp_path)], capture_output=True,
                          text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    _check_described(tmp_path)


@pytest.mark.oracle
def test_describe_torch_model_in_the_fixture_environment(tmp_path: Path) -> None:
    exe = oracle_python()
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run([exe, "-c", _LIVE, str(tmp_path)], capture_output=True, text=True,
                          timeout=600, check=False,
                          env={**os.environ, "PYTHONPATH": str(root)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    _check_described(tmp_path)


def test_cli_layers_lists_a_torch_description(cli) -> None:
    result = cli("layers", source_path("t_dec2d"), "--json")
    rows = json.loads(result.stdout)["layers"]
    assert [(r["path"], r["input_shape"], r["output_shape"]) for r in rows] == \
        [("up.0", [1, 4, 5, 6], [1, 4, 10, 12]), ("up.2", [1, 4, 10, 12], [1, 2, 20, 24])]


# ---------------------------------------------------------------- the reading argument (SAME_*, output_shape)

@pytest.mark.parametrize("variant", ["output_shape_odd_crop", "auto_pad_same_upper",
                                     "auto_pad_same_lower"])
def test_documented_reading_agrees_with_the_measured_verdicts(variant: str) -> None:
    report = verify_model(resolve_sources(str(source_path("k_seq_dec"))),
                          str(CONVERTED / "broken" / f"{variant}.onnx"), []).to_dict()
    reading = report["layers"][0]["reading"]["runtimes"]
    measured = {v["label"]: v for v in manifest()["broken"]}[variant]["layers"][0]["runtimes"]
    assert {rt: reading[rt]["documented"] for rt in MEASURED_RUNTIMES} == \
        {rt: measured[rt]["status"] for rt in MEASURED_RUNTIMES}


def _free_dims(tmp_path: Path) -> Path:
    model = onnx.load(CONVERTED / "broken" / "auto_pad_same_upper.onnx")
    for d in model.graph.input[0].type.tensor_type.shape.dim[1:3]:
        d.Clear()
        d.dim_param = "spatial"
    onnx.save(model, tmp_path / "same_upper_free.onnx")
    return tmp_path / "same_upper_free.onnx"


def test_documented_reading_with_free_dims_covers_every_length(tmp_path: Path) -> None:
    report = verify_model(resolve_sources(str(source_path("k_seq_dec"))), str(_free_dims(tmp_path)),
                          []).to_dict()
    reading = report["layers"][0]["reading"]
    assert (reading["static_dims"], reading["runtimes"]["openvino"]["differs_at"],
            reading["runtimes"]["onnxruntime"]["documented"]) == (False, list(range(1, 17)), "exact")


@pytest.mark.runtimes
def test_openvino_free_dims_same_upper_measured_as_the_reading_says(tmp_path: Path) -> None:
    runtime_or_skip("openvino")
    report = verify_model(resolve_sources(str(source_path("k_seq_dec"))), str(_free_dims(tmp_path)),
                          ["openvino", "onnxruntime"]).to_dict()
    got = {rt: (r["verdict"], r["class"]) for rt, r in report["layers"][0]["runtimes"].items()}
    assert got == {"openvino": ("mismatch", "auto_pad_same_upper"), "onnxruntime": ("exact", None)}


# ---------------------------------------------------------------- --html pictures
# Drawn by convt_tools.pictures: read back with tests/support/pictures.py (html.parser), each
# window rect compared with a window derived by hand here.

def test_html_draws_each_runtimes_window_where_it_differs(cli, tmp_path: Path) -> None:
    runtime_or_skip("tract")
    out = tmp_path / "r.html"
    result = cli("verify", source_path("k_seq_dec"), CONVERTED / "broken" / "output_shape_odd_crop.onnx",
                 "--runtime", "onnxruntime,tract", "--html", out)
    assert result.exit_code == 1
    report = html_panels(out.read_text())
    assert sorted(report.sections) == ["layer-0", "layer-1"]
    panel = report.panels["layer-0-H"]  # layer up_same, axis H: input 5, k3 s2 -> L = 11
    drawn = {(r.row, r.kind): (r.begin, r.length) for r in panel.rects
             if r.kind in ("full", "intended", "same", "differs")}
    # Keras keeps [0, 10); measured (fixtures/converted): onnxruntime crops the odd extra at
    # the START, tract at the END
    assert drawn == {("full output", "full"): (0, 11), ("source", "intended"): (0, 10),
                     ("onnxruntime", "differs"): (1, 10), ("tract", "same"): (0, 10)}


def _torch_windows(description: Path, sizes: list[int]) -> list[list[tuple[int, int, int, int]]]:
    """Per ConvTranspose module of a torch description, per axis: (L, begin, length,
    output_padding) by hand: L = (n - 1) * s + d * (k - 1) + 1, window (p, L + op - 2p); the
    next module's input is this one's output."""
    out = []
    for module in json.loads(description.read_text())["modules"]:
        kw = module["kwargs"]
        if "ConvTranspose" not in module["module_class"]:
            continue
        axes, lengths = [], []
        for n in sizes:
            k, s, p = kw["kernel_size"], kw["stride"], kw.get("padding", 0)
            d, op = kw.get("dilation", 1), kw.get("output_padding", 0)
            natural = (n - 1) * s + d * (k - 1) + 1
            axes.append((natural, p, natural + op - 2 * p, op))
            lengths.append(natural + op - 2 * p)
        out.append(axes)
        sizes = lengths
    return out


def test_html_rectangles_are_drawn_at_their_windows(cli, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    cli("verify", source_path("t_dec2d"), CONVERTED / "onnx" / "t_dec2d__torchscript_o17_fixed.onnx",
        "--runtime", "onnxruntime", "--html", out)
    report = html_panels(out.read_text())
    description = source_path("t_dec2d")
    expected = _torch_windows(description, json.loads(description.read_text())["input_shape"][2:])
    assert len(report.panels) == 2 * len(expected)
    for k, axes in enumerate(expected):
        for axis, (natural, begin, length, op) in zip(("H", "W"), axes):
            panel = report.panels[f"layer-{k}-{axis}"]
            assert (panel.one("full").begin, panel.one("full").length) == (0, natural)
            assert [(r.begin, r.length) for r in panel.rects if r.kind == "op"] == \
                ([(natural, op)] if op else [])
            for row in ("source", "onnxruntime"):
                window = panel.window_rect(row)
                assert (window.begin, window.length) == (begin, length)
                assert window.x == pytest.approx(panel.x_of(begin), abs=0.01)
                assert window.width == pytest.approx(length * panel.cell, abs=0.01)


def test_html_writes_a_refusal_instead_of_a_window() -> None:
    windows = [{"input_length": 4, "kernel": 3, "stride": 2, "dilation": 1, "output_padding": 0,
                "natural": 9, "source": [1, 8], "runtimes": {"ncnn": "refused"}}]
    html = report_html({"model": "m.onnx", "source": "s.keras", "runtimes": ["ncnn"],
                        "layers": [{"source_layer": "up", "onnx_nodes": ["ct"],
                                    "verdict": "refused", "class": "refused",
                                    "runtimes": {"ncnn": {"verdict": "refused",
                                                          "class": "refused"}},
                                    "windows": windows}]})
    panel = html_panels(html).panels["layer-0-W"]
    assert [r for r in panel.rects if r.row == "ncnn"] == []
    assert "ncnn: refused (refused)" in html


@pytest.mark.slow
def test_html_in_a_real_browser_is_not_blank_and_has_every_panel(cli, tmp_path: Path) -> None:
    browser = browser_or_skip()
    out = tmp_path / "r.html"
    cli("verify", source_path("t_groups2d"), CONVERTED / "broken" / "group_slicing.onnx",
        "--runtime", "onnxruntime", "--html", out)
    written = html_panels(out.read_text())
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             f"--user-data-dir={tmp_path / 'profile'}"]
    shot = tmp_path / "shot.png"
    subprocess.run([browser, *flags, f"--screenshot={shot}", "--window-size=960,1400",
                    out.as_uri()], capture_output=True, timeout=120, check=True)
    assert png_pixels(shot.read_bytes()).astype(np.float64).std() > 20.0   # not a blank page
    dom = html_panels(subprocess.run([browser, *flags, "--dump-dom", out.as_uri()],
                                     capture_output=True, text=True, timeout=120,
                                     check=True).stdout)
    assert sorted(dom.panels) == sorted(written.panels)
    assert [dom.sections[key].split(":")[0] for key in sorted(dom.sections)] == ["g", "dw"]


def test_cli_verify_missing_source_names_the_source(cli, tmp_path: Path) -> None:
    result = cli("verify", tmp_path / "none.json",
                 CONVERTED / "onnx" / "t_1d__torchscript_o17_fixed.onnx", "--runtime", "onnxruntime")
    assert_one_line_error(result, "source")
