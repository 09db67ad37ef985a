"""Pictures of crop windows (issue 22): ``convt shape --svg``, ``convt check --html`` and the
library behind them (convt_tools.pictures). The drawn rectangles are read back (xml.etree,
html.parser) and compared with windows derived by hand here, never with the code's own."""

from __future__ import annotations

import json
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from support.assertions import assert_nothing_written, assert_one_line_error
from support.cli import invoke, run_convt
from support.models import convt_model, save
from support.optional import browser_or_skip
from support.pictures import Panel, chain_model, html_panels, png_pixels, svg_panels

from convt_tools.check import check_html, check_model
from convt_tools.geometry import Window
from convt_tools.pictures import Row, Section, axis_panel, axis_svg, html_document, svg_document

# ------------------------------------------------------------------ convt shape --svg

# (name, arguments, per axis (L, begin, length, output_padding)), derived by hand:
# Keras same, op None: O = in*s, T = L - O cropped T//2 at the start (odd extra at the END);
# valid, op None: O = in*s + max(K-s, 0); valid, op: (in-1)*s + K + op (T < 0: rows
# appended at the end = ONNX output_padding); same, op: (in-1)*s + K%2 + op.
# torch: window (p, L - 2p + op), output_padding op.
SHAPE_CASES: list[tuple[str, list[str], list[tuple[int, int, int, int]]]] = [
    ("keras1d_same_odd_crop", ["--rank", "1", "--filters", "2", "--kernel-size", "3",
                               "--strides", "2", "--padding", "same", "--input-shape", "1,5,3"],
     [(11, 0, 10, 0)]),
    ("keras1d_same_even_crop", ["--rank", "1", "--filters", "2", "--kernel-size", "4",
                                "--strides", "2", "--padding", "same", "--input-shape", "1,5,3"],
     [(12, 1, 10, 0)]),
    ("keras1d_valid_output_padding", ["--rank", "1", "--filters", "2", "--kernel-size", "3",
                                      "--strides", "2", "--output-padding", "1",
                                      "--input-shape", "1,5,3"],
     [(11, 0, 12, 1)]),
    ("keras1d_valid_kernel_lt_stride", ["--rank", "1", "--filters", "2", "--kernel-size", "1",
                                        "--strides", "3", "--input-shape", "1,4,3"],
     [(10, 0, 12, 2)]),
    ("keras2d_same", ["--filters", "2", "--kernel-size", "3,4", "--strides", "2,3",
                      "--padding", "same", "--input-shape", "1,5,5,3"],
     [(11, 0, 10, 0), (16, 0, 15, 0)]),
    ("keras2d_same_output_padding", ["--filters", "2", "--kernel-size", "3", "--strides", "2",
                                     "--padding", "same", "--output-padding", "1",
                                     "--input-shape", "1,5,6,3"],
     [(11, 0, 10, 0), (13, 0, 12, 0)]),
    ("keras3d_same_dilated", ["--rank", "3", "--filters", "2", "--kernel-size", "3",
                              "--dilation-rate", "2", "--padding", "same",
                              "--input-shape", "1,3,4,5,2"],
     [(7, 2, 3, 0), (8, 2, 4, 0), (9, 2, 5, 0)]),
]
TORCH_CASES: list[tuple[str, dict[str, Any], str, list[tuple[int, int, int, int]]]] = [
    ("torch2d_padding_op", {"module": "ConvTranspose2d", "kernel_size": 3, "stride": 2,
                            "padding": 1, "output_padding": 1}, "1,2,5,6",
     [(11, 1, 10, 1), (13, 1, 12, 1)]),
    ("torch1d_op_beyond_l", {"module": "ConvTranspose1d", "kernel_size": 2, "stride": 3,
                             "dilation": 2, "output_padding": 2}, "1,2,4",
     [(12, 0, 14, 2)]),
]


def _check_axis(panel: Panel, row: str, natural: int, begin: int, length: int, op: int) -> None:
    full = panel.one("full")
    assert full.length == natural
    assert full.begin == 0
    window = panel.window_rect(row)
    assert window.x == pytest.approx(panel.x_of(begin), abs=0.01)
    assert window.width == pytest.approx(length * panel.cell, abs=0.01)
    drawn_op = [r for r in panel.rects if r.kind == "op"]
    assert [(r.begin, r.length) for r in drawn_op] == ([(natural, op)] if op else [])


def _first_panel(path: Path) -> Panel:
    return next(iter(svg_panels(path.read_text(encoding="utf-8")).values()))


def _crops(panel: Panel, row: str) -> list[tuple[int, int]]:
    return sorted((r.begin, r.length) for r in panel.rects if r.kind == "crop" and r.row == row)


@pytest.mark.parametrize("name,args,axes", SHAPE_CASES, ids=[c[0] for c in SHAPE_CASES])
def test_shape_svg_draws_the_keras_window(tmp_path: Path, name: str, args: list[str],
                                          axes: list[tuple[int, int, int, int]]) -> None:
    out = tmp_path / "crops.svg"
    result = invoke("shape", *args, "--svg", out)
    assert result.exit_code == 0, result.stderr
    panels = list(svg_panels(out.read_text(encoding="utf-8")).values())
    assert len(panels) == len(axes)
    rank = {1: "Conv1DTranspose", 2: "Conv2DTranspose", 3: "Conv3DTranspose"}[len(axes)]
    for panel, (natural, begin, length, op) in zip(panels, axes):
        _check_axis(panel, f"{rank} keeps", natural, begin, length, op)
        full = natural + op
        assert _crops(panel, f"{rank} keeps") == [
            c for c in ((0, begin), (begin + length, full - begin - length)) if c[1] > 0]


@pytest.mark.parametrize("name,kwargs,shape,axes", TORCH_CASES, ids=[c[0] for c in TORCH_CASES])
def test_shape_svg_draws_the_torch_window(tmp_path: Path, name: str, kwargs: dict[str, Any],
                                          shape: str,
                                          axes: list[tuple[int, int, int, int]]) -> None:
    config = tmp_path / "torch.json"
    config.write_text(json.dumps({"framework": "torch", "in_channels": 2, "out_channels": 3,
                                  **kwargs}), encoding="utf-8")
    out = tmp_path / "crops.svg"
    result = invoke("shape", config, "--input-shape", shape, "--svg", out)
    assert result.exit_code == 0, result.stderr
    panels = list(svg_panels(out.read_text(encoding="utf-8")).values())
    assert len(panels) == len(axes)
    for panel, (natural, begin, length, op) in zip(panels, axes):
        _check_axis(panel, f"{kwargs['module']} keeps", natural, begin, length, op)


def test_shape_svg_draws_unknown_lengths_at_a_stand_in(tmp_path: Path) -> None:
    out = tmp_path / "crops.svg"
    result = invoke("shape", "--filters", "2", "--kernel-size", "3", "--strides", "2",
                    "--padding", "same", "--input-shape", "None,?,6,3", "--svg", out)
    assert result.exit_code == 0, result.stderr
    first = _first_panel(out)
    # in = 4 (the stand-in): L = 3*2 + 3 = 9, O = 8, crop 0 at the start.
    _check_axis(first, "Conv2DTranspose keeps", 9, 0, 8, 0)
    assert "drawn at 4" in out.read_text(encoding="utf-8")


def test_shape_svg_still_prints_the_shape(tmp_path: Path) -> None:
    result = invoke("shape", "--filters", "2", "--kernel-size", "3", "--strides", "2",
                    "--input-shape", "1,5,5,3", "--svg", tmp_path / "a.svg")
    assert result.stdout.strip() == "(1, 11, 11, 2)"


def test_shape_svg_is_deterministic(tmp_path: Path) -> None:
    args = ["shape", "--filters", "2", "--kernel-size", "3", "--strides", "2", "--padding",
            "same", "--input-shape", "1,5,5,3", "--svg"]
    invoke(*args, tmp_path / "a.svg")
    invoke(*args, tmp_path / "b.svg")
    assert (tmp_path / "a.svg").read_bytes() == (tmp_path / "b.svg").read_bytes()


def test_shape_svg_as_a_real_subprocess(tmp_path: Path) -> None:
    out = tmp_path / "crops.svg"
    done = run_convt("shape", "--filters", "2", "--kernel-size", "4", "--strides", "2",
                     "--padding", "same", "--input-shape", "1,5,5,3", "--svg", out)
    assert done.returncode == 0, done.stderr
    _check_axis(_first_panel(out), "Conv2DTranspose keeps", 12, 1, 10, 0)


# ------------------------------------------------------------------ bad destinations

def test_shape_svg_into_a_missing_folder_is_one_line(tmp_path: Path) -> None:
    result = invoke("shape", "--filters", "2", "--kernel-size", "3", "--input-shape", "1,5,5,3",
                    "--svg", tmp_path / "nowhere" / "a.svg")
    assert_one_line_error(result, "svg")


def test_shape_svg_onto_its_config_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "torch.json"
    text = json.dumps({"framework": "torch", "module": "ConvTranspose1d", "in_channels": 2,
                       "out_channels": 3, "kernel_size": 3})
    config.write_text(text, encoding="utf-8")
    result = invoke("shape", config, "--input-shape", "1,2,5", "--svg", config)
    assert_one_line_error(result, "svg")
    assert config.read_text(encoding="utf-8") == text


def test_shape_svg_onto_a_folder_is_one_line(tmp_path: Path) -> None:
    result = invoke("shape", "--filters", "2", "--kernel-size", "3", "--input-shape", "1,5,5,3",
                    "--svg", f"{tmp_path}/")
    assert_one_line_error(result)


def test_check_html_onto_the_model_is_refused(tmp_path: Path) -> None:
    model = save(convt_model({"strides": [2, 2], "auto_pad": "SAME_UPPER"}), tmp_path / "m.onnx")
    before = Path(model).read_bytes()
    result = invoke("check", model, "--no-numeric", "--html", model)
    assert_one_line_error(result, "html")
    assert Path(model).read_bytes() == before


def test_check_html_into_a_missing_folder_writes_nothing(tmp_path: Path) -> None:
    model = save(convt_model({"strides": [2, 2], "auto_pad": "SAME_UPPER"}), tmp_path / "m.onnx")
    result = invoke("check", model, "--no-numeric", "--html", tmp_path / "no" / "r.html")
    assert_one_line_error(result, "html")
    assert_nothing_written(tmp_path, Path(model))


def test_check_html_replaces_a_file_without_leaving_temporaries(tmp_path: Path) -> None:
    model = save(convt_model({"strides": [2, 2], "auto_pad": "SAME_UPPER"}), tmp_path / "m.onnx")
    out = tmp_path / "r.html"
    out.write_text("old", encoding="utf-8")
    invoke("check", model, "--no-numeric", "--html", out)
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert_nothing_written(tmp_path, Path(model), out)


# ------------------------------------------------------------------ convt check --html

def _spec_window(attrs: dict[str, Any], n: int, s: int, k: int, i: int) -> tuple[int, int, int]:
    """(L, begin, length) the ONNX spec text gives, derived here (kernel k, dilation 1)."""
    natural = (n - 1) * s + k
    op = attrs.get("output_padding", [0] * 3)[i]
    auto = attrs.get("auto_pad", "NOTSET")
    if "output_shape" in attrs or auto.startswith("SAME"):
        out = attrs["output_shape"][i] if "output_shape" in attrs else n * s
        total = natural + op - out
        begin = total // 2 if auto == "SAME_UPPER" else total - total // 2
        return natural, begin, out
    pads = attrs.get("pads", [0] * 6)
    rank = len(pads) // 2
    return natural, pads[i], natural + op - pads[i] - pads[i + rank]


# (name, attrs, spatial input sizes): the forms converters write, ranks 1-3.
CHECK_CASES: list[tuple[str, dict[str, Any], tuple[int, ...]]] = [
    ("same_lower_1d", {"strides": [2], "auto_pad": "SAME_LOWER"}, (5,)),
    ("same_lower_2d", {"strides": [2, 2], "auto_pad": "SAME_LOWER"}, (4, 5)),
    ("same_upper_2d", {"strides": [2, 3], "auto_pad": "SAME_UPPER"}, (4, 5)),
    ("same_upper_3d", {"strides": [2, 2, 2], "auto_pad": "SAME_UPPER"}, (3, 4, 5)),
    ("output_shape_odd_2d", {"strides": [2, 2], "output_shape": [8, 10]}, (4, 5)),
    ("output_padding_ge_stride_2d", {"strides": [2, 2], "output_padding": [2, 2]}, (4, 5)),
    ("negative_pads_1d", {"strides": [2], "pads": [0, -1]}, (5,)),
    ("asymmetric_pads_3d", {"strides": [2, 1, 2], "pads": [1, 0, 0, 0, 1, 1]}, (3, 4, 5)),
]
AXES = {1: ("W",), 2: ("H", "W"), 3: ("D", "H", "W")}


def _check_report(attrs: dict[str, Any], sizes: tuple[int, ...], name: str = "up") -> Any:
    model = convt_model(attrs, x_shape=(1, 2, *sizes), k=(3,) * len(sizes), name=name)
    return check_model(model, numeric=False)


@pytest.mark.parametrize("case,attrs,sizes", CHECK_CASES, ids=[c[0] for c in CHECK_CASES])
def test_check_html_draws_the_spec_window(case: str, attrs: dict[str, Any],
                                          sizes: tuple[int, ...]) -> None:
    report = html_panels(check_html(_check_report(attrs, sizes)))
    for i, axis in enumerate(AXES[len(sizes)]):
        panel = report.panels[f"node-0-size0-{axis}"]
        natural, begin, length = _spec_window(attrs, sizes[i], attrs["strides"][i], 3, i)
        op = attrs.get("output_padding", [0] * 3)[i]
        _check_axis(panel, "ONNX spec", natural, begin, length, op)


@pytest.mark.parametrize("case,attrs,sizes", CHECK_CASES, ids=[c[0] for c in CHECK_CASES])
def test_check_html_draws_each_runtime_window(case: str, attrs: dict[str, Any],
                                              sizes: tuple[int, ...]) -> None:
    node = _check_report(attrs, sizes).nodes[0]
    report = html_panels(check_html(_check_report(attrs, sizes)))
    readings = node.readings
    assert readings is not None
    for entry in readings["runtimes"]:
        if entry["runtime"] not in readings["judged_on"]:
            continue
        row = f"{entry['runtime']} ({entry['source'].split(' ')[0].rstrip(':')})"
        at = entry["at"][0]
        for i, axis in enumerate(AXES[len(sizes)]):
            panel = report.panels[f"node-0-size0-{axis}"]
            drawn = [r for r in panel.rects if r.row == row and r.kind in ("same", "differs")]
            if at["status"] != "window":
                assert drawn == []
                continue
            begin, length = at["windows"][i]
            assert drawn[0].x == pytest.approx(panel.x_of(begin), abs=0.01)
            assert drawn[0].width == pytest.approx(length * panel.cell, abs=0.01)
            spec = panel.window_rect("ONNX spec")
            assert drawn[0].kind == ("same" if (begin, length) == (spec.begin, spec.length)
                                     else "differs")


def test_check_html_marks_the_swapped_same_reading_as_different() -> None:
    # SAME_LOWER, in 4, s 2, k 3: L = 9, O = 8, T = 1; the spec crops the odd row at the
    # start (begin 1); onnxruntime <= 1.12 swapped the sides (begin 0).
    html = check_html(_check_report({"strides": [2, 2], "auto_pad": "SAME_LOWER"}, (4, 5)))
    panel = html_panels(html).panels["node-0-size0-H"]
    swapped = panel.window_rect("onnxruntime<=1.12 (documented)")
    assert (swapped.kind, swapped.begin) == ("differs", 0)


def test_check_html_has_a_section_per_node_and_no_external_assets() -> None:
    model = chain_model([("a", {"strides": [2, 2], "auto_pad": "SAME_UPPER"}),
                         ("b", {"strides": [1, 1], "pads": [1, 1, 1, 1]})])
    report = html_panels(check_html(check_model(model, numeric=False)))
    assert sorted(report.sections) == ["node-0", "node-1"]
    assert {"script", "link", "img", "iframe"}.isdisjoint(report.tags)


def test_check_html_says_why_a_plain_node_has_no_picture() -> None:
    model = chain_model([("plain", {"strides": [1, 1], "pads": [1, 1, 1, 1]})])
    html = check_html(check_model(model, numeric=False))
    assert html_panels(html).panels == {}
    assert "no picture: not a risky node" in html


def test_check_html_escapes_node_names() -> None:
    name = 'up<&">\x01'
    html = check_html(_check_report({"strides": [2, 2], "auto_pad": "SAME_UPPER"}, (4, 5), name))
    assert html_panels(html).sections["node-0"] == "[main] node 'up<&\">\\x01' (index 0)"


def test_check_html_cli_writes_the_report(tmp_path: Path) -> None:
    model = save(convt_model({"strides": [2, 2], "auto_pad": "SAME_UPPER"}), tmp_path / "m.onnx")
    out = tmp_path / "r.html"
    result = invoke("check", model, "--no-numeric", "--html", out)
    assert result.exit_code == 1, result.stderr     # CT010: runtimes differ
    assert sorted(html_panels(out.read_text(encoding="utf-8")).panels) == [
        "node-0-size0-H", "node-0-size0-W"]


# ------------------------------------------------------------------ the library itself

INTENDED = Window(1, 10)


def _panel(rows: tuple[Row, ...] = (), intended: Window | None = INTENDED) -> Any:
    return axis_panel("H", "H", 5, 3, 2, 1, 1, Row("intended <&\">", intended), rows)


def test_svg_labels_with_markup_are_escaped() -> None:
    svg = axis_svg(_panel((Row('rt<&">', Window(2, 10)),)), 'id<&">')
    root = ET.fromstring(svg)
    assert root.get("id") == 'id<&">'


def test_svg_row_label_with_markup_survives_as_data() -> None:
    panel = svg_panels(svg_document("t", [_panel((Row('rt<&">', Window(2, 10)),))]))["H"]
    assert panel.window_rect('rt<&">').kind == "differs"


def test_svg_zero_rows_before_the_full_output_are_drawn() -> None:
    panel = svg_panels(svg_document("t", [_panel((Row("rt", Window(-2, 10)),))]))["H"]
    zeros = panel.one("zeros", "rt")
    assert (zeros.begin, zeros.length) == (-2, 2)


def test_svg_zero_rows_start_left_of_the_full_output() -> None:
    panel = svg_panels(svg_document("t", [_panel((Row("rt", Window(-2, 10)),))]))["H"]
    assert panel.window_rect("rt").x == pytest.approx(panel.x_of(-2), abs=0.01)


def test_svg_a_refused_row_draws_no_window_but_its_reason() -> None:
    text = svg_document("t", [_panel((Row("rt", None, "refused: pads < 0"),))])
    panel = svg_panels(text)["H"]
    assert [r for r in panel.rects if r.row == "rt"] == []
    assert "refused: pads &lt; 0" in text


def test_svg_without_an_intended_window_draws_neutral_rows() -> None:
    panel = svg_panels(svg_document("t", [_panel((Row("rt", Window(0, 11)),), None)]))["H"]
    assert panel.window_rect("rt").kind == "window"


def test_html_document_puts_each_panel_under_its_section_id() -> None:
    html = html_document("t", [Section("layer-a", "a", (), (_panel(),))])
    assert list(html_panels(html).panels) == ["layer-a-H"]


# ------------------------------------------------------------------ once in a real browser

@pytest.mark.slow
def test_check_html_in_a_real_browser(tmp_path: Path) -> None:
    browser = browser_or_skip()
    model = save(chain_model([
        ("same_lower", {"strides": [2, 2], "auto_pad": "SAME_LOWER"}),
        ("odd_output_shape", {"strides": [2, 2], "output_shape": [18, 22]}),
        ("negative_pads", {"strides": [1, 1], "pads": [0, 0, -1, -1]}),
    ]), tmp_path / "chain.onnx")
    out = tmp_path / "report.html"
    result = invoke("check", model, "--no-numeric", "--html", out)
    assert result.exit_code == 1, result.stderr
    panel_ids = sorted(html_panels(out.read_text(encoding="utf-8")).panels)
    assert len(panel_ids) == 6
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([browser, *flags, "--dump-dom", out.as_uri()], capture_output=True,
                         text=True, timeout=120, check=True).stdout
    shown = sorted(html_panels(dom).panels)
    assert shown == panel_ids
    shot = tmp_path / "shot.png"
    subprocess.run([browser, *flags, f"--screenshot={shot}", "--window-size=960,900",
                    out.as_uri()], capture_output=True, timeout=120, check=True)
    pixels = png_pixels(shot.read_bytes()).astype(np.float64)
    assert pixels.std() > 20.0


@pytest.mark.usefixtures("runtimes_off")
def test_check_html_draws_the_measured_onnxruntime_window() -> None:
    # SAME_LOWER, in 4, s 2, k 3: the installed onnxruntime crops the odd row at the start,
    # as the spec text does (measured by check's probe, drawn as the same window).
    model = convt_model({"strides": [2, 2], "auto_pad": "SAME_LOWER"})
    panel = html_panels(check_html(check_model(model))).panels["node-0-size0-H"]
    assert (panel.window_rect("onnxruntime (measured)").kind,
            panel.window_rect("onnxruntime (measured)").begin) == ("same", 1)


def test_check_html_draws_every_probe_size_of_a_free_input() -> None:
    # Free spatial dims: check probes two stand-in sizes; each gets its own panels.
    model = convt_model({"strides": [2, 2], "auto_pad": "SAME_UPPER"}, x_shape=(1, 2, None, None))
    report = html_panels(check_html(check_model(model, numeric=False)))
    assert sorted(report.panels) == ["node-0-size0-H", "node-0-size0-W", "node-0-size1-H",
                                     "node-0-size1-W"]


def test_svg_a_long_note_is_cut_and_kept_whole_in_a_tooltip() -> None:
    note = "refused: " + "x" * 300
    root = ET.fromstring(axis_svg(_panel((Row("rt", None, note),))))
    tips = [t.findtext("{http://www.w3.org/2000/svg}title")
            for t in root.iter("{http://www.w3.org/2000/svg}text") if t.get("class") == "note"]
    assert [tip for tip in tips if tip is not None] == [note]


def test_shape_svg_follows_torch_output_size(tmp_path: Path) -> None:
    # k 3, s 2, p 1, in (5, 6): L = (11, 13), smallest outputs (9, 11); output_size (10, 11)
    # makes op (1, 0), so the windows are (1, 10) on H and (1, 11) on W.
    config = tmp_path / "torch.json"
    config.write_text(json.dumps({"framework": "torch", "module": "ConvTranspose2d",
                                  "in_channels": 2, "out_channels": 3, "kernel_size": 3,
                                  "stride": 2, "padding": 1}), encoding="utf-8")
    out = tmp_path / "crops.svg"
    result = invoke("shape", config, "--input-shape", "1,2,5,6", "--output-size", "10,11",
                    "--svg", out)
    assert result.exit_code == 0, result.stderr
    panels = list(svg_panels(out.read_text(encoding="utf-8")).values())
    _check_axis(panels[0], "ConvTranspose2d keeps", 11, 1, 10, 1)
    _check_axis(panels[1], "ConvTranspose2d keeps", 13, 1, 11, 0)
