"""Integrity of the rank-1/3 Keras fixtures (cases_1d/, cases_3d/, invalid_nd.json).

These files were written by real Keras (``fixtures/generate_nd.py``); this
module does not judge convt-tools against them (the conformance suite does).
It checks that each file is what the generator's schema promises, from the
files alone, so a truncated, hand-edited or mis-merged fixture fails CI:

* every case json has the documented keys, its ``rank``/``class_name`` match
  its directory, its id is its file name, its config (plain or wrapped)
  carries the class's keys;
* its npz opens without pickle, holds exactly ``input``, ``kernel``,
  ``output`` (+ ``bias`` iff ``use_bias``, + ``output_<backend>`` iff the
  backends disagreed), with the input shape declared, the kernel in Keras
  layout ``(k..., filters, in_channels)`` read from the config, the output
  shape equal to ``output_tensor_shape``, the declared dtype, finite values;
* ``output_tensor_shape`` equals Keras's ``compute_output_shape`` except that
  ``glu`` halves the last axis;
* ``invalid_nd.json`` rows are rejections with a stage, an exception and the
  config field at fault.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from support.tiers import fast_sample

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
CLASS = {1: "Conv1DTranspose", 3: "Conv3DTranspose"}
CASE_KEYS = {"id", "rank", "class_name", "backend", "backend_version", "keras_version",
             "config", "config_form", "layer_kwargs", "input_shape", "output_shape",
             "output_tensor_shape", "torch_check", "cross_check", "dtype"}
OPTIONAL_KEYS = {"dtype_policy", "dtypes", "keras_json", "keras_json_resolution"}
CONFIG_KEYS = {"filters", "kernel_size", "strides", "padding", "output_padding", "data_format",
               "dilation_rate", "activation", "use_bias"}
FIELDS = CONFIG_KEYS | {"input_shape"}


def _cases(rank: int) -> list[Path]:
    return sorted((FIXTURES / f"cases_{rank}d").glob("*.json"))


CASES = [pytest.param(r, p, id=f"{r}d-{p.stem}") for r in CLASS for p in _cases(r)]


def _tuple(v: Any, rank: int) -> tuple[int, ...]:
    return (v,) * rank if isinstance(v, int) else tuple(v)


@pytest.mark.parametrize("rank", sorted(CLASS))
def test_fixture_directory_present(rank: int) -> None:
    cases = _cases(rank)
    assert len(cases) >= 30, f"cases_{rank}d holds {len(cases)} cases"
    stems = {p.stem for p in (FIXTURES / f"cases_{rank}d").iterdir()}
    assert {p.stem for p in cases} == stems, "every json has its npz and vice versa"
    assert all((FIXTURES / f"cases_{rank}d" / f"{s}.npz").exists() for s in stems)


@pytest.mark.parametrize("rank,path", fast_sample(CASES, 4))
def test_case_schema_and_arrays(rank: int, path: Path) -> None:
    meta = json.loads(path.read_text())
    assert CASE_KEYS <= set(meta) <= CASE_KEYS | OPTIONAL_KEYS
    assert meta["id"] == path.stem
    assert meta["rank"] == rank and meta["class_name"] == CLASS[rank]
    assert meta["backend"] in ("tensorflow", "jax")
    if meta["config_form"] == "wrapper":
        assert meta["config"]["class_name"] == CLASS[rank]
        cfg = meta["config"]["config"]
    else:
        assert meta["config_form"] == "get_config"
        cfg = meta["config"]
    assert CONFIG_KEYS <= set(cfg)
    shape = meta["input_shape"]
    assert len(shape) == rank + 2
    fmt = cfg["data_format"]
    if fmt is None:  # resolved from the keras.json the case records
        fmt = meta["keras_json"]["image_data_format"]
    cin = shape[1] if fmt == "channels_first" else shape[-1]

    with zipfile.ZipFile(path.with_suffix(".npz")) as zf:
        names = set(zf.namelist())
    extra = {n for n in names if n.startswith("output_")}
    assert extra == ({f"output_{o}.npy" for o in ("tensorflow", "jax") if o != meta["backend"]}
                     if meta["cross_check"].get("backends_disagree") else set())
    want = {"input.npy", "kernel.npy", "output.npy"} | ({"bias.npy"} if cfg["use_bias"] else set())
    assert names - extra == want
    with np.load(path.with_suffix(".npz"), allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}

    assert list(arrays["input"].shape) == shape
    kernel = _tuple(cfg["kernel_size"], rank)
    assert arrays["kernel"].shape == (*kernel, cfg["filters"], cin)
    if cfg["use_bias"]:
        assert arrays["bias"].shape == (cfg["filters"],)
    assert list(arrays["output"].shape) == meta["output_tensor_shape"]
    assert str(arrays["output"].dtype) == meta["dtype"]
    assert str(arrays["input"].dtype) == meta["dtype"]
    for name, a in arrays.items():
        assert a.dtype in (np.float32, np.float16), name
        assert np.all(np.isfinite(a)), f"{name} has non-finite values"

    concrete = meta["output_shape"]["concrete"]
    expect = list(concrete)
    if cfg["activation"] == "glu":
        expect[-1] //= 2
    assert meta["output_tensor_shape"] == expect
    assert len(meta["output_shape"]["unknown"]) == 4
    for row in meta["output_shape"]["unknown"]:
        assert len(row["input_shape"]) == len(row["output_shape"]) == rank + 2


@pytest.mark.parametrize("rank", sorted(CLASS))
def test_rank_coverage(rank: int) -> None:
    """The families README.md lists are all present (a lost directory half fails here)."""
    metas = [json.loads(p.read_text()) for p in _cases(rank)]
    cfgs = [m["config"]["config"] if m["config_form"] == "wrapper" else m["config"]
            for m in metas]
    assert {c["padding"] for c in cfgs} == {"valid", "same"}
    assert {c["data_format"] for c in cfgs} >= {"channels_last", "channels_first", None}
    assert any(c["output_padding"] is None for c in cfgs)
    assert any(max(_tuple(c["dilation_rate"], rank)) > 1 for c in cfgs)
    assert {c["use_bias"] for c in cfgs} == {True, False}
    assert {"softmax", "log_softmax", "glu", "sparsemax"} <= {c["activation"] for c in cfgs}
    assert {m["config_form"] for m in metas} == {"get_config", "wrapper"}
    assert {m["dtype"] for m in metas} == {"float32", "float16"}
    assert any(0 in m["input_shape"] for m in metas)
    assert any(0 in m["output_tensor_shape"] and 0 not in m["input_shape"] for m in metas)


def test_invalid_nd_schema() -> None:
    rows = json.loads((FIXTURES / "invalid_nd.json").read_text())
    assert {r["rank"] for r in rows} == set(CLASS)
    assert len({r["id"] for r in rows}) == len(rows)
    for r in rows:
        assert r["class_name"] == CLASS[r["rank"]]
        assert r["rejected"] is True, r["id"]
        assert r["stage"] in ("construct", "build", "call"), r["id"]
        assert r["exception"] and r["message"], r["id"]
        assert r["field"] in FIELDS, r["id"]
        assert set(r["kwargs"]) <= CONFIG_KEYS, r["id"]
        assert isinstance(r["jax_agrees"], bool)
