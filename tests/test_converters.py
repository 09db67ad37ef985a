"""check and repair on models real converters made (torch.onnx 2.13, tf2onnx 1.17 + Keras 3.15).

The models and the frameworks' own outputs are in tests/data/converters (generator scripts
there). Claims tested: check's verdicts; the reading matrix / documented table predicts
what each installed runtime computes on the real export (whole model vs the framework's
own output, atol/rtol 1e-4); repairs reproduce the framework's output at every recorded
size (dynamic exports included).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from convt_tools import check_model, repair_model
from convt_tools.check import iter_convtranspose, node_context
from convt_tools.check.readings import documented_reading
from convt_tools.check.runners import installed, run_many
from convt_tools.onnxbase import infer_shapes
from support.optional import runtime_params

DATA = Path(__file__).parent / "data" / "converters"


# In-process runtimes only (OpenVINO/tract run in child processes).
pytestmark = pytest.mark.usefixtures("runtimes_off")


def _arrays(name: str) -> list[tuple[np.ndarray, np.ndarray]]:
    with np.load(DATA / f"{name}.npz", allow_pickle=False) as z:
        return [(z[f"x{j}"], z[f"y{j}"]) for j in range(len(z.files) // 2)]


def _codes(report, severity=None):
    return {f.code for n in report.nodes for f in n.findings
            if severity is None or f.severity == severity}


@pytest.mark.parametrize("name,errors,warnings", [
    ("torch_ct1d_s2_p1_op1_dyn", set(), set()),
    ("torch_ct2d_s2_p1_op1", set(), set()),
    ("torch_ct3d_s2_p1_op1_dyn", set(), set()),
    ("torch_ct2d_s1_d2_op1", {"CT008", "CT033"}, set()),
    ("torch_ct1d_s2_d2_op1_g2", set(), {"CT021"}),
    ("tf2onnx_k1d_valid_k1_s2", {"CT001", "CT033"}, set()),
    ("tf2onnx_k2d_same_k3_s2", set(), {"CT020"}),
    ("tf2onnx_k3d_same_k3_s2", set(), {"CT020", "CT023"}),
    ("tf2onnx_k2d_same_k3_s2_dyn", set(), set()),
])
def test_check_verdicts_on_converter_models(name: str, errors: set, warnings: set) -> None:
    report = check_model(str(DATA / f"{name}.onnx"))
    assert _codes(report, "error") == errors, report.to_text()
    assert _codes(report, "warning") == warnings, report.to_text()


TORCH = ["torch_ct1d_s2_p1_op1_dyn", "torch_ct2d_s2_p1_op1", "torch_ct3d_s2_p1_op1_dyn",
         "torch_ct2d_s1_d2_op1", "torch_ct1d_s2_d2_op1_g2"]


@pytest.mark.parametrize("runtime", runtime_params(["onnxruntime", "openvino", "tract",
                                                    "onnx-reference"], slow_compiled=True))
def test_table_predicts_each_runtime_on_torch_exports(runtime: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the table says a runtime computes torch's window it equals torch; where it says
    refused, the runtime refuses."""
    monkeypatch.delenv("CONVT_RUNTIMES_OFF")
    if runtime not in installed():
        pytest.skip(f"{runtime} is not installed here")
    jobs, expect = [], []
    for name in TORCH:
        model = onnx.load(str(DATA / f"{name}.onnx"))
        shapes, types, _ = infer_shapes(model)
        ctx = node_context(iter_convtranspose(model)[0], shapes["main"], types["main"])
        static = all(n is not None for n in ctx.sizes)
        for x, y in _arrays(name):
            reading = documented_reading(runtime, ctx.attrs, x.shape[2:], static)
            jobs.append((model.SerializeToString(), x))
            expect.append((name, reading, y))
    bad = []
    for out, (name, reading, y) in zip(run_many(runtime, jobs), expect):
        if reading.status == "refused":
            ok = isinstance(out, str)
        elif reading.status == "window":
            # torch's meaning is the explicit-pads window, so the table's window must give y
            ok = not isinstance(out, str) and out.shape == y.shape and np.allclose(
                out, y, rtol=1e-4, atol=1e-4)
        else:
            continue
        if not ok:
            bad.append(f"{name}: table {reading.status}, got {out if isinstance(out, str) else 'values'}")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("name,intent", [("torch_ct2d_s1_d2_op1", "tf"),
                                         ("torch_ct2d_s1_d2_op1", "onnx-spec"),
                                         ("tf2onnx_k1d_valid_k1_s2", "tf")])
def test_repair_reproduces_the_framework(name: str, intent: str) -> None:
    repaired, report = repair_model(str(DATA / f"{name}.onnx"), intent)
    onnx.checker.check_model(repaired)
    for x, y in _arrays(name):
        (out,) = run_many("onnxruntime", [(repaired.SerializeToString(), x)])
        assert not isinstance(out, str), out
        np.testing.assert_allclose(out, y, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", ["tf2onnx_k2d_same_k3_s2", "tf2onnx_k3d_same_k3_s2",
                                  "tf2onnx_k2d_same_k3_s2_dyn", "torch_ct1d_s2_p1_op1_dyn",
                                  "torch_ct3d_s2_p1_op1_dyn"])
def test_clean_exports_run_as_the_framework_at_every_recorded_size(name: str) -> None:
    model = onnx.load(str(DATA / f"{name}.onnx"))
    outs = run_many("onnxruntime", [(model.SerializeToString(), x) for x, _ in _arrays(name)])
    for out, (_, y) in zip(outs, _arrays(name)):
        np.testing.assert_allclose(out, y, rtol=1e-4, atol=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("runtime", runtime_params(["openvino", "tract"]))
def test_dynamic_repair_is_exact_on_other_runtimes(runtime: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The dynamic form (output_shape, free input size) runs unchanged on OpenVINO and tract
    and equals onnxruntime's (proven) output at sizes of both parities."""
    from support import models as M

    monkeypatch.delenv("CONVT_RUNTIMES_OFF")
    if runtime not in installed():
        pytest.skip(f"{runtime} is not installed here")
    jobs = []
    for attrs, x_shape, k in [({"strides": [2, 2], "output_shape": [8, 10]}, (1, 2, "h", "w"),
                               (3, 3)),
                              ({"strides": [3], "output_shape": [11]}, (1, 2, "n"), (3,)),
                              ({"strides": [2, 2, 2], "output_shape": [5, 6, 4]},
                               (1, 2, "a", "b", "c"), (3, 3, 3))]:
        repaired, _ = repair_model(M.convt_model(attrs, x_shape=x_shape, k=k), "tf")
        for n in (2, 3, 4, 7):
            x = np.random.default_rng(n).standard_normal((1, 2) + (n,) * len(k))
            jobs.append((repaired.SerializeToString(), x.astype(np.float32)))
    for got, want in zip(run_many(runtime, jobs), run_many("onnxruntime", jobs)):
        assert not isinstance(got, str), got
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
