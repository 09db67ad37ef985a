"""Every installed runtime over the real-Keras fixtures, default (portable) export (issue 11).

For each golden case (``fixtures/cases*/``: output computed by real Keras)
and each runtime of :mod:`convt_tools.runtimes`, the default export is
loaded and run at the case's fixed input shape and with every dim but the
channels symbolic (one model for all sizes), and must equal Keras's output
with the conformance suite's tolerance (``support.tolerance.assert_close``:
``rtol = atol = 1e-5`` for float32; the derived float16 bound).

A runtime that is not installed is skipped with the pip extra in the reason
(``pytest -ra`` lists it; presence is decided by ``find_spec``, so an
installed runtime that breaks fails). Every (case, runtime) pair is collected;
tiers (markers, see pyproject.toml and ``.ci/run``):

* fast tier: every ``SUBSET_STEP``-th case of the sorted list, on every
  runtime (the optional ones marked ``runtimes``, see ``.ci/run``), on TVM
  and IREE (``SAMPLED``: a compile per model) every ``SAMPLED_STEP``-th of those
  (the rest of the fast subset in ``matrix``, all other cases in ``matrix_exhaustive``);
* ``matrix`` (CI, once): every case on the in-process runtimes
  (``IN_PROCESS``), and every ``COMPILED_STEP``-th case on the compile-based
  ones (``COMPILED``: OpenVINO and tract compile each model, seconds apiece);
* ``matrix_exhaustive`` (by hand, ``-m matrix_exhaustive``): the other cases
  on the compile-based runtimes;
* the converted runtimes (``CONVERTED``: MNN, ncnn; an external converter per model,
  seconds apiece) run the ``export --target`` form (:func:`apply_target_forms` for the
  runtime, the same rewrite ``validate --runtime`` makes): every ``CONVERTED_STEP``-th
  case in the fast tier (marked ``runtimes``, 7 cases: GLU, 1-D without a Slice, 3-D
  with a bias), every ``SUBSET_STEP``-th in ``matrix``, the rest ``matrix_exhaustive``.
  The pairs of :data:`REFUSED` (measured: an empty batch on MNN and ncnn, ncnn's float16
  models and the activations pnnx or ncnn lack, sparsemax on TVM) must be refused with the
  one-line reason it names; IREE may refuse an empty batch and sparsemax (by shapes),
  saying why, and must otherwise equal Keras.

Cases with a zero-size non-batch dim are skipped (the exporter refuses them: onnxruntime rejects such ConvTranspose tensors); an empty batch
runs everywhere but on ``onnx.reference`` (which fails on it: skipped).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
from support.optional import BASE_RUNTIMES, runtime_or_skip
from support.tolerance import assert_close as _assert_close

from convt_tools.repair.targets import apply_target_forms, target_rewrites
from convt_tools.runtimes import ADAPTERS, RuntimeRefused, get_runtime

ROOT = Path(__file__).resolve().parent.parent / "fixtures"
CASE_DIRS = [d for d in (ROOT / "cases", ROOT / "cases_1d", ROOT / "cases_3d") if d.is_dir()]
ALL_CASES = [p for d in CASE_DIRS for p in sorted(d.glob("*.json"))]
SUBSET_STEP = 40     # fast tier: every 40th case, all runtimes
COMPILED_STEP = 4    # matrix tier: every 4th case on the compile-based runtimes
COMPILED = ("openvino", "tract", "tvm", "iree")
# TVM and IREE compile each model (2-5 s apiece): in the fast tier only every
# SAMPLED_STEP-th case of the fast subset; the rest of the subset goes to `matrix`, every
# other case to `matrix_exhaustive` (CI's matrix tier would otherwise compile ~800 models).
SAMPLED = ("tvm", "iree")
SAMPLED_STEP = 5
# Runtimes that convert each model with an external tool (pnnx, MNN's converter core). The
# plain export is not exact on them (measured: MNN drops a 3-D bias on alternate depth slices
# and gives 1-D outputs a trailing unit dim; pnnx turns a GLU's Split into an ncnn Slice that
# segfaults): they run the export --target form, on a small sample (module doc).
CONVERTED = ("mnn", "ncnn")
CONVERTED_STEP = 120  # fast tier on the converted runtimes: 7 cases (ranks 1-3, GLU, bias)
# The runtimes that load ONNX (litert runs the .tflite export: tests/test_tflite_export.py).
ONNX_ADAPTERS = tuple(r for r in ADAPTERS if get_runtime(r).model_kind == "onnx")
IN_PROCESS = tuple(r for r in ONNX_ADAPTERS if r not in COMPILED + CONVERTED)
CASES = ALL_CASES[::SUBSET_STEP]


@dataclass(frozen=True)
class Refused:
    """A (case, runtime) pair the runtime refuses, measured: the one-line refusal must
    contain ``says``; ``when(meta, spec, symbolic)`` picks the pairs."""

    runtime: str
    when: Callable[[dict[str, Any], Any, bool], bool]
    says: str
    why: str
    # False: the runtime refuses some of the picked pairs, by shapes no rule here names;
    # those must be refused saying one of ``says.split(" | ")``, the others equal Keras.
    always: bool = True


def _empty_batch(meta: dict[str, Any], spec: Any, symbolic: bool) -> bool:
    return bool(meta["input_shape"][0] == 0)


def _activation(*names: str) -> Callable[[dict[str, Any], Any, bool], bool]:
    return lambda meta, spec, symbolic: spec.activation in names


def _glu_on_a_symbolic_axis(meta: dict[str, Any], spec: Any, symbolic: bool) -> bool:
    # GLU splits the last axis: a spatial one for channels_first, symbolic in that export
    rank = len(meta["input_shape"])
    return spec.activation == "glu" and symbolic and spec.channels_axis % rank != rank - 1


# Every refusal the matrix expects (the full matrix on TVM, IREE, MNN and ncnn measured
# after stop 27, whose CI ran it by accident). Anything else must equal Keras.
REFUSED = (
    Refused("mnn", _empty_batch, "", "an empty batch: MNN fails to map it"),
    Refused("ncnn", _empty_batch, "", "an empty batch: ncnn runs one sample at a time"),
    Refused("iree", _empty_batch, "out-of-bounds", "an empty batch: IREE's compiler refuses "
            "a zero-size tensor in some exports and runs the others", always=False),
    Refused("ncnn", lambda meta, spec, symbolic: spec.dtype == "float16", "",
            "float16: pnnx converts ConvTranspose with float32 weights only"),
    Refused("ncnn", _activation("softsign"), "todo Softsign", "pnnx has no Softsign (and "
            "fuses its decomposition into F.softsign, which ncnn lacks)"),
    Refused("ncnn", _activation("hard_shrink"), "torch.gt", "ncnn has no comparison layer"),
    Refused("ncnn", _activation("soft_shrink", "sparse_plus"), "torch.lt",
            "ncnn has no comparison layer"),
    Refused("ncnn", _activation("tanh_shrink"), "F.tanhshrink",
            "pnnx fuses x - tanh(x) into a layer ncnn lacks"),
    Refused("ncnn", _activation("sparsemax"), "SIGSEGV", "pnnx crashes on sparsemax's TopK"),
    Refused("ncnn", _glu_on_a_symbolic_axis, "SIGSEGV",
            "a Split without sizes on a symbolic axis: ncnn's Slice crashes"),
    Refused("tvm", _activation("sparsemax"), "Reshape requires",
            "TVM's ONNX frontend: sparsemax's Reshape of a scalar"),
    Refused("iree", _activation("sparsemax"), "stack allocation limit | linalg.generic",
            "IREE 3.13 fails to compile sparsemax on 6 of its 18 fixture exports (2-D "
            "channels_last and 3-D, symbolic; one 3-D fixed)", always=False),
)


def _refused(runtime: str, meta: dict[str, Any], spec: Any, symbolic: bool) -> Refused | None:
    return next((r for r in REFUSED if r.runtime == runtime and r.when(meta, spec, symbolic)),
                None)


def _id(path: Path) -> str:
    return f"{path.parent.name}/{path.stem}"


def _tier(i: int, runtime: str) -> tuple[Any, ...]:
    if runtime in CONVERTED:
        return ((pytest.mark.runtimes,) if i % CONVERTED_STEP == 0 else
                (pytest.mark.matrix,) if i % SUBSET_STEP == 0 else (pytest.mark.matrix_exhaustive,))
    if runtime in SAMPLED and i % (SUBSET_STEP * SAMPLED_STEP):
        # CI's matrix tier: the rest of the fast subset (~16 cases); by hand: all the others
        return (pytest.mark.matrix,) if i % SUBSET_STEP == 0 else (pytest.mark.matrix_exhaustive,)
    if i % SUBSET_STEP == 0:
        return () if runtime in BASE_RUNTIMES else (pytest.mark.runtimes,)
    if runtime in COMPILED and i % COMPILED_STEP:
        return (pytest.mark.matrix_exhaustive,)
    return (pytest.mark.matrix,)


PAIRS = [pytest.param(rt, path, marks=_tier(i, rt), id=f"{_id(path)}-{rt}")
         for i, path in enumerate(ALL_CASES) for rt in ONNX_ADAPTERS]


@pytest.fixture(scope="module")
def runtime(request: pytest.FixtureRequest) -> Any:  # parametrized by PAIRS (indirect)
    return runtime_or_skip(request.param)


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
    spec = parse_config(meta["config"])
    return meta, arrays, spec


# one export per case, shape kind and target rewrites (most runtimes need none)
_MODELS: dict[tuple[Path, bool, tuple[str, ...]], Any] = {}


def test_matrix_is_not_empty():
    assert len(ALL_CASES) >= 150
    assert len(CASES) >= 15
    assert set(IN_PROCESS) == {"onnxruntime", "torch", "onnx-reference", "opencv"}


def test_every_pair_is_in_one_tier():
    tiers = [tuple(m.name for m in p.marks) for p in PAIRS if p.values[0] not in CONVERTED]
    matrix = [r for r in ONNX_ADAPTERS if r not in CONVERTED]
    assert len(tiers) == len(ALL_CASES) * len(matrix)
    sampled = len(ALL_CASES[::SUBSET_STEP * SAMPLED_STEP]) * len(SAMPLED)
    assert tiers.count(()) + tiers.count(("runtimes",)) == (
        len(CASES) * (len(matrix) - len(SAMPLED)) + sampled)
    assert tiers.count(("matrix_exhaustive",)) < tiers.count(("matrix",))


@pytest.mark.parametrize("entry", REFUSED, ids=lambda r: f"{r.runtime}-{r.says or r.why[:20]}")
def test_every_expected_refusal_picks_a_fixture(entry: Refused, monkeypatch, tmp_path) -> None:
    picked = 0
    for path in ALL_CASES:
        (tmp_path / path.stem).mkdir()
        meta, _, spec = _case(path, monkeypatch, tmp_path / path.stem)
        picked += sum(entry.when(meta, spec, sym) for sym in (False, True))
    assert picked > 0


@pytest.mark.parametrize("converted", CONVERTED)
def test_a_converted_runtime_runs_a_small_sample_in_the_fast_tier(converted):
    tiers = [tuple(m.name for m in p.marks) for p in PAIRS if p.values[0] == converted]
    assert tiers.count(("runtimes",)) == len(ALL_CASES[::CONVERTED_STEP])


@pytest.mark.parametrize("symbolic", [False, True], ids=["fixed", "symbolic"])
@pytest.mark.parametrize("runtime,path", PAIRS, indirect=["runtime"])
def test_runtime_matches_keras(runtime, path, symbolic, monkeypatch, tmp_path):
    from convt_tools.exporter import export_spec

    meta, arrays, spec = _case(path, monkeypatch, tmp_path)
    if 0 in meta["output_tensor_shape"][1:] or 0 in meta["input_shape"][1:]:
        pytest.skip("zero-size non-batch dim: onnxruntime refuses such ConvTranspose tensors, "
                    "so the exporter does too")
    if meta["input_shape"][0] == 0 and runtime.name == "onnx-reference":
        pytest.skip("onnx.reference 1.23 fails on an empty batch (the other runtimes run it)")
    shape = tuple(meta["input_shape"])
    ch = spec.channels_axis
    in_shape = tuple(d if i == ch else None for i, d in enumerate(shape)) if symbolic else shape
    key = (path, symbolic, target_rewrites([runtime.name]))
    if key not in _MODELS:
        model = export_spec(spec, arrays["kernel"], arrays.get("bias"), input_shape=in_shape)
        apply_target_forms(model, [runtime.name])   # export --target NAME
        _MODELS[key] = model
    model = _MODELS[key]
    x = arrays["input"].astype(np.dtype(spec.dtype))
    refused = _refused(runtime.name, meta, spec, symbolic)
    if refused is not None and refused.always:
        with pytest.raises(RuntimeRefused) as info:
            runtime.load(model).run({"input": x})
        assert any(text in str(info.value) for text in refused.says.split(" | ")), refused.why
        return
    try:
        got = runtime.load(model).run({"input": x})[0]
    except RuntimeRefused as exc:
        if refused is None:
            raise
        assert any(text in str(exc) for text in refused.says.split(" | ")), refused.why
        return
    what = f"{runtime.name} ({'symbolic' if symbolic else 'fixed'} input dims)"
    _assert_close(np.asarray(got), arrays["output"], what, meta)
