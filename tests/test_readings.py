"""The reading matrix: the documented table against what installed runtimes compute,
size-independent verdicts, and probes that tell readings apart.

The table (:mod:`convt_tools.check.readings`) is checked against real runs of
every installed runtime (onnxruntime and onnx.reference always; OpenVINO and
tract when importable, else those cases skip with the reason), on 1-D, 2-D
and 3-D nodes, static and symbolic spatial dims. Equality of windows is
checked on seeded random x/W/B with ``|y - ref| <= 1e-4 (1 + max|ref|)``.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from support import models as M
from support.optional import runtime_params
from convt_tools import check_model
from convt_tools.check import iter_convtranspose, node_context
from convt_tools.check.attrs import ConvTAttrs
from convt_tools.check.matrix import _identify, _single_node, node_matrix, probe_sizes
from convt_tools.check.readings import RUNTIMES, Reading, documented_reading
from convt_tools.check.runners import installed, run_many
from convt_tools.onnxbase import infer_shapes
from convt_tools.check.sizes import crop_total, size_verdict
from convt_tools.check.windows import Window, apply_window, full_output
from convt_tools.cli import main

# (attrs, x spatial sizes, kernel): forms converters emit, over ranks 1-3.
CASES = [
    ({"strides": [2], "output_shape": [O]}, (4,), (3,)) for O in (5, 6, 7, 8, 10)
] + [
    ({"strides": [3], "output_shape": [11]}, (4,), (3,)),
    ({"strides": [2, 2], "output_shape": [8, 10]}, (4, 5), (3, 3)),
    ({"strides": [2, 2], "output_shape": [8, 10], "auto_pad": "SAME_UPPER"}, (4, 5), (3, 3)),
    ({"strides": [2, 2, 2], "output_shape": [5, 6, 4]}, (3, 3, 3), (3, 3, 3)),
    ({"strides": [2], "auto_pad": "SAME_UPPER"}, (4,), (4,)),
    ({"strides": [2], "auto_pad": "SAME_LOWER"}, (4,), (3,)),
    ({"strides": [2, 2], "auto_pad": "SAME_UPPER"}, (4, 5), (3, 3)),
    ({"strides": [2], "auto_pad": "SAME_UPPER", "output_padding": [1]}, (4,), (3,)),
    ({"strides": [3], "auto_pad": "SAME_LOWER"}, (4,), (2,)),
    ({"strides": [2, 2, 2], "pads": [0, 1, 0, 1, 0, 1]}, (3, 3, 3), (3, 3, 3)),
    ({"strides": [1], "dilations": [2], "output_padding": [1]}, (4,), (3,)),
    ({"strides": [2], "pads": [0, -1]}, (4,), (3,)),
    ({"strides": [2], "output_shape": [1, 3, 7]}, (4,), (3,)),
    ({"strides": [2], "pads": [1, 1]}, (4,), (3,), 2),
]
MEASURED = [r for r in ("onnxruntime", "openvino", "tract", "onnx-reference")]


# check_model measures OpenVINO/tract in child processes; only the table test needs them.
pytestmark = pytest.mark.usefixtures("runtimes_off")


def _ctx(model):
    shapes, types, _ = infer_shapes(model)
    return node_context(iter_convtranspose(model)[0], shapes["main"], types["main"])


def _case_model(case, static: bool):
    attrs, sizes, k = case[:3]
    group = case[3] if len(case) > 3 else 1
    c = 2 * group
    dims = list(sizes) if static else [f"d{i}" for i in range(len(sizes))]
    return M.convt_model(attrs, x_shape=(1, c, *dims), k=k, c_out=3 * group if group > 1 else 3,
                         group=group)


@pytest.mark.parametrize("runtime", runtime_params(MEASURED, slow_compiled=True))
def test_documented_table_matches_every_installed_runtime(runtime: str,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONVT_RUNTIMES_OFF")
    have = installed()
    if runtime not in have:
        pytest.skip(f"{runtime} is not installed here (the table covers it from its sources)")
    rng = np.random.default_rng(1)
    jobs, expect = [], []
    for case in CASES:
        for static in (True, False):
            model = _case_model(case, static)
            ctx = _ctx(model)
            a = ctx.attrs
            sizes = tuple(case[1])
            w = rng.standard_normal(ctx.w_shape).astype(np.float32)
            b = rng.standard_normal(ctx.w_shape[1] * a.group).astype(np.float32)
            x = rng.standard_normal((1, ctx.w_shape[0], *sizes)).astype(np.float32)
            jobs.append((_single_node(ctx, ctx.w_shape[0], a.rank, static, w, b, 17, sizes), x))
            doc = documented_reading(runtime, a, sizes, static, a.output_shape_full)
            expect.append((case, static, doc, full_output(x, w, a), b))
    outs = run_many(runtime, jobs)
    wrong = []
    for out, (case, static, doc, full, b) in zip(outs, expect):
        if isinstance(out, str):
            got = Reading("refused", None, out)
        else:
            got = _identify(np.asarray(out, np.float64), full, b.astype(np.float64),
                            {"doc": doc.windows} if doc.windows else {})
        if doc.status != "unknown" and got.key() != doc.key():
            wrong.append(f"{case} static={static}: table {doc}, measured {got}")
    assert not wrong, "\n".join(wrong)


def test_size_verdict_parity_of_the_crop_total() -> None:
    # s = 2: T = 2*(n-1) + K - O has one parity at every n. K=4, O=8 -> T even: the
    # runtimes that split evenly agree at every size; K=3 -> T odd: never (T >= 0).
    chosen = ("onnxruntime", "onnxruntime<1.14", "tensorrt")
    for k, agree in ((4, True), (3, False)):
        a = ConvTAttrs(1, "NOTSET", None, (0,), (8,), (2,), (1,), (k,), (k,), 1)
        assert {crop_total(a, 0, n) % 2 for n in range(1, 30)} == {k % 2}
        v = size_verdict(a, [None], lambda at: {r: documented_reading(r, a, at, False)
                                                for r in chosen})
        assert v.agree_always is agree
    # s = 3: parity alternates with n -> depends on the size, said per length class
    a = ConvTAttrs(1, "NOTSET", None, (0,), (8,), (3,), (1,), (3,), (3,), 1)
    v = size_verdict(a, [None], lambda at: {r: documented_reading(r, a, at, False)
                                            for r in chosen})
    assert not v.independent and not v.agree_always and not v.agree_never
    assert any(c.tail is not None and c.tail[1] is not None for c in v.axes[0])


@pytest.mark.parametrize("k,s,expect", [(4, 2, "CT015"), (3, 2, "CT013"), (3, 3, "CT014")])
def test_check_decides_without_input_shape(k: int, s: int, expect: str) -> None:
    model = M.convt_model({"strides": [s], "output_shape": [16]}, x_shape=(1, 2, "n"), k=(k,))
    report = check_model(model, runtimes="onnxruntime,onnxruntime<1.14,tensorrt")
    found = {f.code for f in report.nodes[0].findings}
    assert expect in found, report.to_text()
    # and what onnxruntime really computes at several sizes is what the table says
    a = _ctx(model).attrs
    for n in (5, 6, 7, 8, 9):
        x = np.random.default_rng(n).standard_normal((1, 2, n)).astype(np.float32)
        ctx = _ctx(model)
        w = np.random.default_rng(0).standard_normal(ctx.w_shape).astype(np.float32)
        b = np.zeros(3, np.float32)
        (y,) = run_many("onnxruntime", [(_single_node(ctx, 2, 1, False, w, b, 17, (n,)), x)])
        doc = documented_reading("onnxruntime", a, (n,), False)
        if doc.status == "window":
            assert np.allclose(y, apply_window(full_output(x, w, a), b, doc.windows), atol=1e-4)


def test_zero_kernel_does_not_claim_a_reading() -> None:
    model = M.convt_model({"strides": [2, 2], "output_shape": [8, 10]})
    w = next(t for t in model.graph.initializer if t.name == "W")
    w.CopyFrom(__import__("onnx").numpy_helper.from_array(
        np.zeros((2, 3, 3, 3), np.float32), "W"))
    report = check_model(model, runtimes="onnxruntime")
    numeric = report.nodes[0].numeric
    assert numeric["matches"] == ["onnx-spec"], report.to_text()
    ort = next(e for e in report.nodes[0].readings["runtimes"] if e["runtime"] == "onnxruntime")
    assert ort["at"][0]["windows"] == [[1, 8], [1, 10]]


def test_indistinguishable_windows_are_undetermined() -> None:
    full = np.zeros((1, 1, 6))
    y = np.zeros((1, 1, 4))
    r = _identify(y, full, None, {"a": (Window(0, 4),), "b": (Window(1, 4),)})
    assert r.status == "undetermined"
    full[0, 0] = np.arange(6)
    r = _identify(full[:, :, 1:5], full, None, {"a": (Window(0, 4),), "b": (Window(1, 4),)})
    assert r.status == "window" and r.windows == (Window(1, 4),)


def test_matrix_in_text_json_and_junit(tmp_path: Path) -> None:
    path = M.save(M.convt_model({"strides": [2], "output_shape": [8]}, x_shape=(1, 2, 4), k=(3,)),
                  tmp_path / "m.onnx")
    runner = CliRunner()
    text = runner.invoke(main, ["check", path]).output
    assert "readings:" in text and "tensorrt (documented" in text
    data = json.loads(runner.invoke(main, ["check", path, "--json"]).output)
    names = [e["runtime"] for e in data["nodes"][0]["readings"]["runtimes"]]
    assert names == list(RUNTIMES)
    junit = tmp_path / "r.xml"
    runner.invoke(main, ["check", path, "--junit-xml", str(junit)])
    out = ET.parse(junit).getroot().find("testcase/system-out").text
    assert "reading onnxruntime (measured" in out
    # judged only on runtimes that read it the same way: not an error for that user
    ok = runner.invoke(main, ["check", path, "--runtime", "onnxruntime,openvino"])
    assert ok.exit_code == 0, ok.output


def test_probe_sizes_keep_known_axes() -> None:
    ctx = _ctx(M.convt_model({"strides": [2, 2], "output_shape": [8, 10]}, x_shape=(1, 2, 4, "w")))
    assert probe_sizes(ctx, [(5, 6), (8, 9)]) == [(4, 6), (4, 9)]
    assert node_matrix(ctx, 17, np.random.default_rng(0), RUNTIMES, [(4, 6)], measure=False) \
        .entries[0].source.startswith("documented")
