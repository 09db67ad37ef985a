"""Conformance against golden fixtures produced by real Keras 3 (issue 5).

Every case in ``fixtures/cases/`` was computed by Keras itself (TensorFlow
backend, or JAX where TensorFlow on CPU cannot run the case or gives a wrong
result; see ``fixtures/README.md``). The expected values here are ONLY those
files: nothing in this module derives an expected value from convt_tools.

For every case:

1. shapes: ``parse_config(config)`` then ``spec.output_shape`` equals Keras's
   ``compute_output_shape`` for the concrete input and for inputs with unknown
   batch/spatial dims; ``spec.activated_output_shape`` equals the shape of the
   tensor Keras really returned (``glu`` halves the last axis);
2. the NumPy reference ``keras_conv2d_transpose`` equals Keras's output;
3. onnxruntime on ``export_spec(...)`` equals Keras's output, both for the
   fixed input shape and for a model with unknown batch/height/width.

Tolerance: ``rtol = atol = 1e-5``, as Keras's own layer tests use. Keras,
the reference and onnxruntime all compute in float32 but sum the
``kh * kw * C_in`` products in different orders (oneDNN / XLA / BLAS / MLAS),
and transcendental activations (exp, erf, tanh, log1p) differ in the last
bits between libraries; with the fixtures' magnitudes (|y| < ~30) these stay
below ~4e-6 absolute. A crop or extension off by one row, a wrong constant or
a wrong axis gives errors of order 0.1-1, far above the tolerance.

float16 cases (``mp16_*``: ``mixed_float16`` policy, float32 variables;
``f16_*``: ``float16`` policy, float16 variables) hold Keras's float16 output,
the float16 input Keras was fed, and the weights as the layer holds them. The
harness does what the layer's ``call`` does before the reference runs: cast
input, kernel and bias to the compute dtype (``spec.dtype``); the exporter is
given the variables unchanged (it casts them to the model dtype itself).
Tolerance (per case, ``S`` = ``torch_check.float16_error_scale``, the largest
``sum |x||w| + |b|`` of an output element, computed by the generator in float64
from the oracle's arrays; ``u = 2**-11``, float16 eps ``= 2u = 9.8e-4``)::

    |ours - keras| <= 4 * u * S + 4 * eps * |keras|

Why: (a) Keras: JAX matches bit for bit "float32 accumulation, the conv sum
rounded to float16, then the float16 bias added and rounded" (a second
rounding); TensorFlow's oneDNN float16 kernel rounds partial sums too (it
matches neither a float32 nor a tap-by-tap float16 accumulation; with 200
products per output its error is ~200 float16 ulps of the result, JAX's ~7).
Against float64 from the same float16 values both stay below 2.0 * u * S per
element and below 1.3 * u * S(max) over the committed cases. (b) Ours:
float32 accumulation and one rounding: <= u * |y| <= u * S. (c) The activation
is at most 1.13-Lipschitz (gelu; relu/tanh 1, sigmoid 1/4, hard_sigmoid 1/6,
softmax 1/2): (2 + 1) * 1.13 = 3.4 < 4. (d) Each side then rounds the
activation to float16, onnxruntime after each op of a chain (gelu is 5 ops):
<= ~6 roundings of u = 3 eps relative, covered by 4 * eps. A wrong crop, axis
or constant gives errors of order 0.1-1 = hundreds of u * S.

``dnull`` cases: ``data_format: null`` in the config; Keras resolved it from a
keras.json recorded as ``keras_json`` in the case (``channels_first``). The
tests write that keras.json into a temporary ``KERAS_HOME`` before parsing.

Invalid configs (``fixtures/invalid.json``, each rejected by real Keras) must
be rejected by convt_tools with a :class:`ConvtError` naming the field.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from convt_tools.errors import ConvtError
from convt_tools.spec import Conv2DTransposeSpec, make_spec, parse_config
from support.tolerance import ATOL, F16_OBSERVED, F16_RTOL, RTOL  # noqa: F401
from support.tiers import fast_sample
from support.tolerance import assert_close as _assert_close

ROOT = Path(__file__).resolve().parent.parent
CASES_DIR = ROOT / "fixtures" / "cases"
INVALID_PATH = ROOT / "fixtures" / "invalid.json"


CASE_IDS = sorted(p.stem for p in CASES_DIR.glob("*.json"))
INVALID = json.loads(INVALID_PATH.read_text()) if INVALID_PATH.exists() else []
# Conv1DTranspose / Conv3DTranspose (fixtures/generate_nd.py): same schema plus
# "class_name" and "rank"; their ids carry the folder ("cases_1d/<id>").
ND_DIRS = {1: ROOT / "fixtures" / "cases_1d", 3: ROOT / "fixtures" / "cases_3d"}
ND_CASE_IDS = {rank: sorted(f"{d.name}/{p.stem}" for p in d.glob("*.json"))
               for rank, d in ND_DIRS.items()}
INVALID_ND_PATH = ROOT / "fixtures" / "invalid_nd.json"
INVALID += json.loads(INVALID_ND_PATH.read_text()) if INVALID_ND_PATH.exists() else []
ALL_CASE_IDS = CASE_IDS + ND_CASE_IDS[1] + ND_CASE_IDS[3]


def _case_path(case_id: str, suffix: str) -> Path:
    """A 2-D id names a file in fixtures/cases/; an N-d id is "<folder>/<id>"."""
    if "/" in case_id:
        return ROOT / "fixtures" / f"{case_id}{suffix}"
    return CASES_DIR / f"{case_id}{suffix}"


def _load(case_id: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    meta = json.loads(_case_path(case_id, ".json").read_text())
    with np.load(_case_path(case_id, ".npz")) as data:
        arrays = {k: data[k] for k in data.files}
    return meta, arrays


def _shape(value: Any) -> tuple[int | None, ...]:
    return tuple(value)


def _is_empty(meta: dict[str, Any]) -> bool:
    return 0 in meta["output_tensor_shape"]


def _export_refused(meta: dict[str, Any]) -> bool:
    """A zero-size dim other than the batch, in the input or the output: onnxruntime refuses
    such ConvTranspose tensors (a batch of 0 runs), so the exporter must refuse the fixed size."""
    return 0 in meta["input_shape"][1:] or 0 in meta["output_tensor_shape"][1:]


@pytest.fixture(autouse=True)
def _case_keras_json(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch,
                         tmp_path: Path) -> None:
    """For a case recorded with a keras.json (``data_format: null``), use exactly that one."""
    callspec = getattr(request.node, "callspec", None)
    case_id = callspec.params.get("case_id") if callspec else None
    if not case_id:
        return
    meta = json.loads(_case_path(case_id, ".json").read_text())
    if "keras_json" in meta:
        home = tmp_path / "keras_home"
        home.mkdir()
        (home / "keras.json").write_text(json.dumps(meta["keras_json"]))
        monkeypatch.setenv("KERAS_HOME", str(home))


def _spec(meta: dict[str, Any]) -> Conv2DTransposeSpec:
    return parse_config(meta["config"])


def _is_f16(meta: dict[str, Any]) -> bool:
    return meta["dtype"] == "float16"


def _as_called(spec: Conv2DTransposeSpec, arrays: dict[str, np.ndarray]
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Input, kernel and bias as the layer's call() uses them: cast to the compute dtype."""
    dt = np.dtype(spec.dtype)
    bias = arrays.get("bias")
    return (arrays["input"].astype(dt), arrays["kernel"].astype(dt),
            None if bias is None else bias.astype(dt))


# ----------------------------------------------------------------- the fixture set

def test_fixture_set_is_present_and_small() -> None:
    """The suite must not pass vacuously, and the committed data stays <= 5 MB."""
    assert len(CASE_IDS) >= 150, f"only {len(CASE_IDS)} golden cases in {CASES_DIR}"
    for cid in CASE_IDS:
        assert (CASES_DIR / f"{cid}.npz").exists(), f"{cid}.npz missing"
    total = sum(p.stat().st_size for p in CASES_DIR.iterdir()) + INVALID_PATH.stat().st_size
    assert total <= 5 * 1024 * 1024, f"fixtures take {total} bytes (> 5 MB)"
    assert len(INVALID) >= 10


def test_float16_fixtures_are_what_keras_used() -> None:
    """float16 cases: float16 input and output; variables float32 (mixed) / float16."""
    metas = [json.loads((CASES_DIR / f"{c}.json").read_text()) for c in CASE_IDS]
    f16 = [m for m in metas if _is_f16(m)]
    policies = {m["dtype_policy"] for m in f16}
    assert policies == {"mixed_float16", "float16"}
    assert sum(m["dtype_policy"] == "mixed_float16" for m in f16) >= 10
    assert {m["backend"] for m in f16} == {"tensorflow", "jax"}
    assert any(m["layer_kwargs"].get("data_format") == "channels_first" for m in f16)
    for m in f16:
        _, arrays = _load(m["id"])
        var = "float32" if m["dtype_policy"] == "mixed_float16" else "float16"
        assert m["dtypes"] == {"compute": "float16", "variable": var, "kernel": var,
                               "output": "float16"}
        assert arrays["input"].dtype == np.float16
        assert arrays["output"].dtype == np.float16
        assert arrays["kernel"].dtype == np.dtype(var)
        assert m["torch_check"]["agrees"], m["id"]
        assert _spec(m).dtype == "float16"
        assert _spec(m).variable_dtype == var


def test_fixture_set_covers_the_semantic_space() -> None:
    """Coverage guard: the generator's grid must not silently shrink."""
    metas = [json.loads((CASES_DIR / f"{c}.json").read_text()) for c in CASE_IDS]
    kw = [m["layer_kwargs"] for m in metas]
    assert {m["backend"] for m in metas} == {"tensorflow", "jax"}
    assert {k.get("padding") for k in kw} >= {"valid", "same", "SAME"}
    assert {k.get("data_format", "channels_last") for k in kw} == {"channels_last",
                                                                    "channels_first", None}
    assert {json.dumps(m.get("keras_json")) for m in metas
            if m["layer_kwargs"].get("data_format", "") is None} == \
        {json.dumps({"image_data_format": "channels_first"})}
    assert {m["dtype"] for m in metas} == {"float32", "float16"}
    assert any(k.get("dilation_rate", 1) not in (1, [1, 1]) for k in kw)
    assert any(k.get("use_bias") is False for k in kw)
    assert {m["config_form"] for m in metas} == {"get_config", "wrapper"}
    acts = {k.get("activation") for k in kw}
    for name in ("softmax", "glu", "sparsemax", "hard_sigmoid", "gelu", "swish", "hard_swish"):
        assert name in acts
    assert any(_is_empty(m) for m in metas), "the empty-output case is missing"


@pytest.mark.parametrize("rank", sorted(ND_DIRS))
def test_nd_fixture_sets_cover_the_semantic_space(rank: int) -> None:
    """Conv1DTranspose / Conv3DTranspose: the families of the 2-D set, from real Keras."""
    ids = ND_CASE_IDS[rank]
    assert len(ids) >= 100, f"only {len(ids)} rank-{rank} cases in {ND_DIRS[rank]}"
    metas = [_load(c)[0] for c in ids]
    assert {m["class_name"] for m in metas} == {f"Conv{rank}DTranspose"}
    assert {m["rank"] for m in metas} == {rank}
    kw = [m["layer_kwargs"] for m in metas]
    assert {m["backend"] for m in metas} >= {"tensorflow"}
    assert {k.get("padding") for k in kw} >= {"valid", "same"}
    assert {k.get("data_format", "channels_last") for k in kw} >= {"channels_last",
                                                                    "channels_first"}
    assert any(k.get("output_padding") is not None for k in kw)
    assert any(k.get("dilation_rate", 1) not in (1, [1] * rank) for k in kw)
    assert any(k.get("use_bias") is False for k in kw)
    assert {m["config_form"] for m in metas} == {"get_config", "wrapper"}
    acts = {k.get("activation") for k in kw}
    for name in ("softmax", "glu", "gelu"):
        assert name in acts
    assert sum(r.get("rank") == rank for r in INVALID) >= 5


# ----------------------------------------------------------------- 1. shapes

@pytest.mark.parametrize("case_id", fast_sample(ALL_CASE_IDS, 4))
def test_shapes_match_keras(case_id: str) -> None:
    meta, arrays = _load(case_id)
    spec = _spec(meta)
    shape = _shape(meta["input_shape"])
    assert arrays["input"].shape == shape
    assert spec.output_shape(shape) == _shape(meta["output_shape"]["concrete"])
    for variant in meta["output_shape"]["unknown"]:
        assert spec.output_shape(_shape(variant["input_shape"])) == \
            _shape(variant["output_shape"]), variant
    assert spec.activated_output_shape(shape) == _shape(meta["output_tensor_shape"])
    assert arrays["output"].shape == _shape(meta["output_tensor_shape"])
    if meta["config_form"] == "wrapper":
        # model.to_json()'s build_config carries the concrete input shape.
        assert spec.input_shape == shape


@pytest.mark.parametrize("case_id", [c for c in ALL_CASE_IDS if "_dnull_" in c])
def test_data_format_null_resolves_from_keras_json(case_id: str) -> None:
    meta, _ = _load(case_id)
    cfg = meta["config"]["config"] if meta["config_form"] == "wrapper" else meta["config"]
    assert cfg["data_format"] is None
    spec = _spec(meta)
    assert spec.data_format == meta["keras_json"]["image_data_format"] == \
        meta["keras_json_resolution"]["layer.data_format"]


@pytest.mark.parametrize("case_id", fast_sample(ALL_CASE_IDS, 4))
def test_layer_kwargs_match_keras(case_id: str) -> None:
    """The arguments given to Keras (e.g. padding='SAME', ints for pairs) mean the same."""
    meta, arrays = _load(case_id)
    spec = make_spec(**meta["layer_kwargs"], class_name=meta.get("class_name"))
    shape = _shape(meta["input_shape"])
    assert spec.output_shape(shape) == _shape(meta["output_shape"]["concrete"])
    assert spec.activated_output_shape(shape) == _shape(meta["output_tensor_shape"])
    from convt_tools import reference
    y = reference.keras_conv2d_transpose(spec, *_as_called(spec, arrays))
    _assert_close(np.asarray(y), arrays["output"], "reference (from layer kwargs)", meta)


# ----------------------------------------------------------------- 2. reference

@pytest.mark.parametrize("case_id", fast_sample(ALL_CASE_IDS, 4))
def test_reference_matches_keras(case_id: str) -> None:
    from convt_tools import reference
    meta, arrays = _load(case_id)
    spec = _spec(meta)
    y = reference.keras_conv2d_transpose(spec, *_as_called(spec, arrays))
    _assert_close(np.asarray(y), arrays["output"], "reference", meta)


# ----------------------------------------------------------------- 3. ONNX export

def _run_onnx(model: Any, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["input"]
    assert [o.name for o in sess.get_outputs()] == ["output"]
    return sess.run(["output"], {"input": x})[0]


def _exporter() -> Any:
    from convt_tools import exporter

    return exporter


@pytest.mark.parametrize("case_id", fast_sample(ALL_CASE_IDS, 4))
def test_onnx_export_matches_keras(case_id: str) -> None:
    exporter = _exporter()
    meta, arrays = _load(case_id)
    spec = _spec(meta)
    shape = _shape(meta["input_shape"])
    if _export_refused(meta):
        # Keras returns an empty tensor (or takes a zero-size input) here; onnxruntime
        # cannot run such ConvTranspose tensors, so the exporter must refuse this size.
        with pytest.raises(ConvtError) as err:
            exporter.export_spec(spec, arrays["kernel"], arrays.get("bias"), input_shape=shape)
        assert err.value.field == "input_shape"
        assert "input_shape" in str(err.value)
        return
    model = exporter.export_spec(spec, arrays["kernel"], arrays.get("bias"), input_shape=shape)
    _assert_close(_run_onnx(model, arrays["input"]), arrays["output"], "onnxruntime (fixed shape)",
                  meta)


@pytest.mark.parametrize("case_id", fast_sample(ALL_CASE_IDS, 4))
def test_onnx_export_dynamic_shape_matches_keras(case_id: str) -> None:
    """Pads do not depend on the input size, so one model with unknown N/H/W is exact."""
    exporter = _exporter()
    meta, arrays = _load(case_id)
    if _export_refused(meta):
        pytest.skip("zero-size dim: onnxruntime cannot run such ConvTranspose tensors")
    spec = _spec(meta)
    shape = list(meta["input_shape"])
    ch = spec.channels_axis % len(shape)
    dynamic = tuple(d if i == ch else None for i, d in enumerate(shape))
    model = exporter.export_spec(spec, arrays["kernel"], arrays.get("bias"), input_shape=dynamic)
    _assert_close(_run_onnx(model, arrays["input"]), arrays["output"],
                  "onnxruntime (dynamic shape)", meta)


# ----------------------------------------------------------------- the empty output

@pytest.mark.parametrize("case_id", [c for c in ALL_CASE_IDS
                                     if c.rsplit("/", 1)[-1].startswith("empty_")])
def test_empty_output_reference_returns_empty_array(case_id: str) -> None:
    from convt_tools import reference
    meta, arrays = _load(case_id)
    assert _is_empty(meta)
    y = reference.keras_conv2d_transpose(_spec(meta), *_as_called(_spec(meta), arrays))
    assert isinstance(y, np.ndarray)
    assert y.size == 0
    assert y.shape == _shape(meta["output_tensor_shape"])


# ----------------------------------------------------------------- invalid configs

def _invalid_ids() -> list[str]:
    return [row["id"] for row in INVALID]


def _reject(row: dict[str, Any], build: Any) -> ConvtError:
    with pytest.raises(ConvtError) as err:
        spec = build(row["kwargs"])
        spec.activated_output_shape(tuple(row["input_shape"]))
    return err.value


@pytest.mark.parametrize("row", INVALID, ids=_invalid_ids())
def test_invalid_config_rejected_like_keras(row: dict[str, Any]) -> None:
    assert row["rejected"], f"Keras accepted {row['id']}: not an invalid fixture"
    # The rows were made with Conv2DTranspose (hfx's N-d rows name their class).
    cls = row.get("class_name", "Conv2DTranspose")
    for build in (lambda kw: make_spec(**kw, class_name=cls),
                  lambda kw: parse_config({"class_name": cls, "config": kw})):
        err = _reject(row, build)
        assert err.field == row["field"], f"{row['id']}: field {err.field!r}: {err}"
        assert row["field"] in str(err), f"message does not name {row['field']!r}: {err}"
