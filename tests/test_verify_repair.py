"""``convt repair MODEL --source SOURCE``: layers that are not exact rewritten from the source (issue 22).

The repaired model's WHOLE output must equal the source framework's output
(fixtures/converted/*/NAME.io.npz) on onnxruntime, OpenVINO and tract.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import onnx
import pytest
from support.assertions import assert_nothing_written, assert_one_line_error
from support.converted import CONVERTED, MEASURED_RUNTIMES, manifest, source_path
from support.optional import oracle_python, runtime_or_skip

from convt_tools.runtimes import run_isolated
from convt_tools.sources import resolve_sources
from convt_tools.verify.repair import RepairFromSourceRefused, repair_from_source


def _repairable() -> list[tuple[str, str, str]]:
    m = manifest()
    io = {c["model"]: c["io"] for c in m["conversions"]}
    out = []
    for entry in [*m["conversions"], *m["broken"]]:
        if any(r["status"] != "exact" for lay in entry["layers"] for r in lay["runtimes"].values()):
            out.append((entry["model"], entry["onnx"], io[entry["model"]]))
    return out


REPAIRABLE = _repairable()
# A stated sample for the default tier (one per converter form and error kind); the rest slow.
# (about 1-2 min each on 2 loaded cores: verify runs before and after on three runtimes)
SAMPLE = {"onnx/k_seq_cf__tf2onnx_o17_dynamic.onnx", "broken/kernel_flipped.onnx"}


def _outputs(io_rel: str) -> tuple[np.ndarray, list[np.ndarray]]:
    with np.load(CONVERTED / io_rel) as z:
        n = len([k for k in z.files if k.startswith("output.")])
        outs = [z["output"]] if "output" in z.files else [z[f"output.{i}"] for i in range(n)]
        return z["input"], outs


def _static(model: onnx.ModelProto, shape: tuple[int, ...]) -> onnx.ModelProto:
    """``model`` with its input dims fixed to ``shape``: tract 0.23 cannot type tf2onnx's
    runtime-computed Slice with symbolic dims (the untouched layers of a dynamic model);
    measure_runtimes.py runs tract the same way."""
    fixed = onnx.ModelProto()
    fixed.CopyFrom(model)
    for d, n in zip(fixed.graph.input[0].type.tensor_type.shape.dim, shape):
        d.Clear()
        d.dim_value = n
    return fixed


def _max_errors(model: onnx.ModelProto, io_rel: str, runtime: str) -> list[float]:
    x, want = _outputs(io_rel)
    if runtime == "tract":
        model = _static(model, x.shape)
    got = run_isolated(runtime, [(model.SerializeToString(), {model.graph.input[0].name: x})])[0]
    assert not isinstance(got, str), got
    assert [g.shape for g in got] == [w.shape for w in want]
    return [float(np.max(np.abs(g - w))) for g, w in zip(got, want)]


@pytest.mark.runtimes
@pytest.mark.parametrize("case", [pytest.param(c, marks=() if c[1] in SAMPLE else
                                               (pytest.mark.slow,)) for c in REPAIRABLE],
                         ids=[c[1].replace("/", ":") for c in REPAIRABLE])
def test_repaired_whole_model_equals_the_source_on_every_runtime(case) -> None:
    for rt in MEASURED_RUNTIMES:
        runtime_or_skip(rt)
    model, onnx_rel, io_rel = case
    fixed, report = repair_from_source(resolve_sources(str(source_path(model))),
                                       str(CONVERTED / onnx_rel), list(MEASURED_RUNTIMES))
    assert report.rewritten != []
    errors = {rt: max(_max_errors(fixed, io_rel, rt)) for rt in MEASURED_RUNTIMES}
    assert all(e <= 1e-4 for e in errors.values()), errors


def test_repair_on_onnxruntime_leaves_exact_layers_untouched() -> None:
    src = resolve_sources(str(source_path("k_func_branches")))
    path = CONVERTED / "onnx" / "k_func_branches__tf2onnx_o17_dynamic.onnx"
    fixed, report = repair_from_source(src, str(path), ["onnxruntime"])
    before = {n.name for n in onnx.load(path).graph.node}
    after = {n.name for n in fixed.graph.node}
    exact = [lay for lay in report.before.layers if lay.verdict == "exact"]
    assert [lay.source_layer for lay in exact] == ["up_dil"]
    assert set(exact[0].onnx_nodes) <= before & after


def test_repair_of_an_exact_model_rewrites_nothing() -> None:
    src = resolve_sources(str(source_path("t_dec2d")))
    _, report = repair_from_source(src, str(CONVERTED / "onnx" / "t_dec2d__dynamo_o18_fixed.onnx"),
                                   ["onnxruntime"])
    assert report.rewritten == []


def test_repair_refuses_an_unpaired_layer() -> None:
    with pytest.raises(RepairFromSourceRefused, match="unpaired"):
        repair_from_source(resolve_sources(str(source_path("t_3d"))),
                           str(CONVERTED / "onnx" / "t_1d__torchscript_o17_fixed.onnx"),
                           ["onnxruntime"])


def test_cli_repair_source_writes_a_model_verify_passes(cli, tmp_path: Path) -> None:
    out = tmp_path / "fixed.onnx"
    result = cli("repair", CONVERTED / "broken" / "dilation_lost.onnx", "--source",
                 source_path("t_1d"), "-o", out, "--runtime", "onnxruntime", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["rewritten"][0]["source_layer"] == "dil"
    again = cli("verify", source_path("t_1d"), out, "--runtime", "onnxruntime")
    assert again.exit_code == 0, again.output


def test_cli_repair_source_refused_writes_nothing(cli, tmp_path: Path) -> None:
    result = cli("repair", CONVERTED / "onnx" / "t_1d__torchscript_o17_fixed.onnx", "--source",
                 source_path("t_3d"), "-o", tmp_path / "fixed.onnx", "--runtime", "onnxruntime")
    assert result.exit_code == 1
    assert_nothing_written(tmp_path)


def test_cli_repair_source_does_not_combine_with_intent(cli, tmp_path: Path) -> None:
    result = cli("repair", CONVERTED / "broken" / "dilation_lost.onnx", "-o", tmp_path / "f.onnx",
                 "--intent", "tf", "--source", source_path("t_3d"))
    assert_one_line_error(result, "intent")


def test_cli_repair_weights_needs_source(cli, tmp_path: Path) -> None:
    result = cli("repair", CONVERTED / "broken" / "dilation_lost.onnx", "-o", tmp_path / "f.onnx",
                 "--weights", tmp_path / "w.npz")
    assert_one_line_error(result, "weights")


# A model that is not in the repository: converted now by the real tf2onnx (fixed and dynamic).
_FRESH = """
import os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np, keras, tensorflow as tf, tf2onnx
out = sys.argv[1]
inp = keras.Input((None, None, 3))
h = keras.layers.Conv2D(5, 3, padding="same", activation="relu", name="enc")(inp)
h = keras.layers.Conv2DTranspose(4, 4, strides=2, padding="same", activation="sigmoid", name="dec_a")(h)
h = keras.layers.Conv2DTranspose(2, (3, 2), strides=(2, 3), padding="valid", output_padding=(1, 2),
                                 name="dec_b")(h)
m = keras.Model(inp, h, name="fresh")
for w in m.weights:
    w.assign(np.random.default_rng(len(w.path)).uniform(-1, 1, w.shape).astype("float32"))
m.save(f"{out}/fresh.keras")
x = np.random.default_rng(0).standard_normal((1, 7, 5, 3)).astype("float32")
np.savez(f"{out}/io.npz", input=x, output=np.asarray(m(x)))
for mode, sig in (("fixed", [1, 7, 5, 3]), ("dynamic", [None, None, None, 3])):
    tf2onnx.convert.from_keras(m, input_signature=[tf.TensorSpec(sig, tf.float32, name="x")],
                               opset=17, output_path=f"{out}/fresh_{mode}.onnx")
"""


@pytest.mark.oracle
@pytest.mark.parametrize("mode", ["fixed", "dynamic"])
def test_fresh_tf2onnx_model_verified_and_repaired(mode: str, tmp_path: Path) -> None:
    exe = oracle_python()
    for rt in MEASURED_RUNTIMES:
        runtime_or_skip(rt)
    subprocess.run([exe, "-c", _FRESH, str(tmp_path)], capture_output=True, timeout=900,
                   check=True)
    sources = resolve_sources(str(tmp_path / "fresh.keras"))
    fixed, report = repair_from_source(sources, str(tmp_path / f"fresh_{mode}.onnx"),
                                       list(MEASURED_RUNTIMES))
    want = {"fixed": ("refused", "negative_pads"),
            "dynamic": ("mismatch", "bias_missing_in_padded_rows")}[mode]
    assert [(lay.source_layer, lay.verdict, lay.cls) for lay in report.before.layers] == \
        [("dec_a", "exact", None), ("dec_b", *want)]
    with np.load(tmp_path / "io.npz") as z:
        x, y = z["input"], z["output"]
    for rt in MEASURED_RUNTIMES:
        model = _static(fixed, x.shape) if rt == "tract" else fixed
        got = run_isolated(rt, [(model.SerializeToString(), {"x": x})])[0]
        assert not isinstance(got, str), got
        assert float(np.max(np.abs(got[0] - y))) <= 1e-4
