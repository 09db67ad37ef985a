"""Every installed runtime over the real-Keras fixtures, default (portable) export (issue 11).

For each golden case (``fixtures/cases*/``: output computed by real Keras)
and each runtime of :mod:`convt_tools.runtimes`, the default export is
loaded and run at the case's fixed input shape and with every dim but the
channels symbolic (one model for all sizes), and must equal Keras's output
with the conformance suite's tolerance (``test_conformance._assert_close``:
``rtol = atol = 1e-5`` for float32; the derived float16 bound).

A runtime that is not installed is skipped with the pip extra in the reason
(``pytest -ra`` lists it). By default a deterministic subset of the cases
runs (every ``SUBSET_STEP``-th case of the sorted list), to keep the suite
fast; ``CONVT_RUNTIME_MATRIX=full`` runs every case (CI does, see
``.ci/run``). Cases with a zero-size non-batch dim are skipped (the exporter
refuses them: onnxruntime rejects such ConvTranspose tensors); an empty batch
runs everywhere but on ``onnx.reference`` (which fails on it: skipped).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from convt_tools.runtimes import ADAPTERS, RuntimeUnavailable, get_runtime

ROOT = Path(__file__).resolve().parent.parent / "fixtures"
CASE_DIRS = [d for d in (ROOT / "cases", ROOT / "cases_1d", ROOT / "cases_3d") if d.is_dir()]
ALL_CASES = [p for d in CASE_DIRS for p in sorted(d.glob("*.json"))]
FULL = os.environ.get("CONVT_RUNTIME_MATRIX", "") == "full"
SUBSET_STEP = 40
CASES = ALL_CASES if FULL else ALL_CASES[::SUBSET_STEP]


def _id(path: Path) -> str:
    return f"{path.parent.name}/{path.stem}"


@pytest.fixture(scope="module", params=list(ADAPTERS))
def runtime(request: pytest.FixtureRequest) -> Any:
    rt = get_runtime(request.param)
    try:
        rt.module()
    except RuntimeUnavailable as exc:
        pytest.skip(f"runtime {request.param} not installed: {exc}")
    return rt


def _case(path: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
          ) -> tuple[dict[str, Any], dict[str, np.ndarray], Any]:
    from convt_tools.spec import parse_config

    meta = json.loads(path.read_text())
    if "keras_json" in meta:  # data_format=None: the keras.json Keras resolved it from
        home = tmp_path / "keras_home"
        home.mkdir()
        (home / "keras.json").write_text(json.dumps(meta["keras_json"]))
        monkeypatch.setenv("KERAS_HOME", str(home))
    with np.load(path.with_suffix(".npz"), allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    try:
        spec = parse_config(meta["config"])
    except Exception as exc:  # an N-d case before the rank-generic spec is in
        pytest.skip(f"{_id(path)}: config not parsed by this convt_tools ({exc})")
    return meta, arrays, spec


_MODELS: dict[tuple[Path, bool], Any] = {}  # one export per case and shape kind, all runtimes


def test_matrix_is_not_empty():
    assert len(ALL_CASES) >= 150
    assert len(CASES) >= 15


@pytest.mark.parametrize("symbolic", [False, True], ids=["fixed", "symbolic"])
@pytest.mark.parametrize("path", CASES, ids=[_id(p) for p in CASES])
def test_runtime_matches_keras(runtime, path, symbolic, monkeypatch, tmp_path):
    from convt_tools.exporter import export_spec
    from test_conformance import _assert_close

    meta, arrays, spec = _case(path, monkeypatch, tmp_path)
    if 0 in meta["output_tensor_shape"][1:] or 0 in meta["input_shape"][1:]:
        pytest.skip("zero-size non-batch dim: onnxruntime refuses such ConvTranspose tensors, "
                    "so the exporter does too")
    if meta["input_shape"][0] == 0 and runtime.name == "onnx-reference":
        pytest.skip("onnx.reference 1.23 fails on an empty batch (the other runtimes run it)")
    shape = tuple(meta["input_shape"])
    ch = spec.channels_axis
    in_shape = tuple(d if i == ch else None for i, d in enumerate(shape)) if symbolic else shape
    key = (path, symbolic)
    if key not in _MODELS:
        _MODELS[key] = export_spec(spec, arrays["kernel"], arrays.get("bias"),
                                   input_shape=in_shape)
    model = _MODELS[key]
    x = arrays["input"].astype(np.dtype(spec.dtype))
    got = runtime.load(model).run({"input": x})[0]
    what = f"{runtime.name} ({'symbolic' if symbolic else 'fixed'} input dims)"
    _assert_close(np.asarray(got), arrays["output"], what, meta)
