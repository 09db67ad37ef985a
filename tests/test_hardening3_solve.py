"""Issue 17 items 4, 5, 15 and 18: bounded ``solve``, the memory guard on every
allocation path, integers over Python's 4300-digit limit, no raw RuntimeWarning.

Work is asserted by counting (``Search.examined``: per-axis candidates computed
plus combinations pushed on the search heap), never by timing.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import random
import warnings
from pathlib import Path

import numpy as np
import pytest

from convt_tools.errors import ConvtError
from convt_tools.solve import solve

FIX = Path(__file__).resolve().parent.parent / "fixtures"
BIG = "9" * 5000               # over Python's int-string conversion limit (4300 digits)


def _one_line_error(r, field: str) -> None:
    assert r.exit_code == 2, r.output
    assert r.stderr.startswith(f"Error: {field}:"), r.stderr
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.output
    assert len(r.stderr) < 600            # the 5000 digits are not echoed back


# ----------------------------------------------------------------- item 4: solve


def _full_sort_reference(inputs, outputs, framework, **kw):
    """Today's semantics, written out: every combination of the per-axis candidates, sorted."""
    from convt_tools.solve import _solution, search

    found = search(inputs, outputs, framework=framework, **kw)
    every = []
    for framework_, padding, op_given, axes, group, prefer in found._streams:
        for combo in itertools.product(*(a.cands for a in axes)):
            s = [c[1] for c in combo]
            d = [c[2] for c in combo]
            if framework == "keras" and any(x > 1 for x in s) and any(x > 1 for x in d):
                continue
            every.append(_solution(framework_, padding, op_given, combo, prefer))
    return found, sorted(every, key=lambda x: x.key)


@pytest.mark.slow
def test_lazy_rank_order_equals_the_full_sort_on_a_sample() -> None:
    rng = random.Random(17)
    compared = 0
    for _ in range(60):
        framework = rng.choice(["keras", "torch"])
        rank = rng.choice([1, 2, 2, 3])
        inputs = [rng.randint(1, 9) for _ in range(rank)]
        outputs = [rng.randint(1, 3 * n + 6) for n in inputs]
        kw = {"max_kernel": rng.randint(1, 5), "max_dilation": rng.randint(1, 3)}
        found, want = _full_sort_reference(inputs, outputs, framework, **kw)
        if len(want) > 20000:
            continue
        got = list(found.solutions())
        assert found.count == len(want)
        assert [dataclasses.astuple(x) for x in got] == [dataclasses.astuple(x) for x in want]
        compared += len(want)
    assert compared > 1000


def test_agrees_torch_closed_form_matches_the_keras_crop_search() -> None:
    from convt_tools.geometry import keras_crop
    from convt_tools.solve import _agrees_torch

    def by_search(k, s, d, p, op):
        return any(c.begin == p and c.total == 2 * p - op
                   for padding in ("valid", "same") for kop in (None, *range(s))
                   for c in [keras_crop(k, s, d, padding, kop)])
    for k, s, d in itertools.product(range(1, 8), range(1, 8), range(1, 4)):
        for p in range((k - 1) * d + 1):
            for op in range(max(s, d)):
                assert _agrees_torch(k, s, d, p, op) == by_search(k, s, d, p, op), (k, s, d, p, op)


@pytest.mark.parametrize("framework", ["torch", "keras"])
def test_the_first_solution_of_a_huge_query_costs_little_work(framework) -> None:
    """2,2,2 -> 20,20,20 has 2e8 torch combinations (today: all built and sorted)."""
    from convt_tools.solve import search

    found = search((2, 2, 2), (20, 20, 20), framework=framework)
    assert found.count > (10**8 if framework == "torch" else 10**5)
    first = list(itertools.islice(found.solutions(), 10))
    assert len(first) == 10 and [x.key for x in first] == sorted(x.key for x in first)
    assert found.examined < 20_000


def test_a_huge_stride_bound_is_cut_to_the_reachable_strides() -> None:
    from convt_tools.solve import search

    found = search((2, 2, 2), (20, 20, 20), framework="torch", max_stride=100_000)
    next(found.solutions())
    assert found.examined < 20_000


def test_a_huge_kernel_bound_is_refused_before_any_work() -> None:
    from convt_tools.solve import search

    with pytest.raises(ConvtError, match="max_kernel") as exc:
        search((2, 2, 2), (20, 20, 20), framework="torch", max_kernel=10**9)
    assert exc.value.field == "max_kernel"


def test_a_search_that_grows_past_the_cap_is_refused_while_counting() -> None:
    from convt_tools.solve import MAX_AXIS_WORK, search

    # input length 1: no stride can be ruled out; torch's padding range grows with the stride
    with pytest.raises(ConvtError, match="max_kernel"):
        search((1,), (50,), framework="torch", max_kernel=8, max_stride=100_000,
               max_axis_work=MAX_AXIS_WORK // 100)


def test_solve_refuses_a_list_it_cannot_hold() -> None:
    with pytest.raises(ConvtError, match="search"):
        solve((2, 2, 2), (20, 20, 20), framework="torch")


def test_cli_limit_1_on_the_issue_query_says_what_it_examined(cli) -> None:
    r = cli("solve", "--framework", "torch", "--input", "2,2,2", "--output", "20,20,20",
            "--limit", "1")
    assert r.exit_code == 0, r.output
    head, first, more = r.stdout.splitlines()
    assert head.startswith("torch: [2, 2, 2] -> [20, 20, 20]: 201230056 configuration(s); ")
    examined = int(head.split("; ")[1].split()[0])
    assert examined < 20_000
    assert first.startswith("  1. ") and more.startswith("... 201230055 more")


def test_cli_huge_kernel_bound_is_one_line(cli) -> None:
    r = cli("solve", "--framework", "torch", "--input", "2,2,2", "--output", "20,20,20",
            "--max-kernel", "1000000000")
    _one_line_error(r, "max_kernel")


def test_cli_json_streams_every_solution_and_limit_0_lists_all(cli) -> None:
    r = cli("solve", "--input", "10,8", "--output", "20,16", "--framework", "torch", "--json")
    assert r.exit_code == 0, r.output
    info = json.loads(r.stdout)
    _, sols = solve((10, 8), (20, 16), framework="torch")
    assert info["count"] == len(info["solutions"]) == len(sols)
    assert [s["config"] for s in info["solutions"]] == [s.config() for s in sols]
    assert info["examined"] > 0
    r = cli("solve", "--input", "10,8", "--output", "20,16", "--limit", "0")
    lines = r.stdout.splitlines()
    assert r.exit_code == 0 and len(lines) == 1 + len(solve((10, 8), (20, 16))[1])
    r = cli("solve", "--input", "10", "--output", "7", "--json")
    assert r.exit_code == 1 and json.loads(r.stdout)["solutions"] == []


def test_cli_negative_limit_is_refused(cli) -> None:
    r = cli("solve", "--input", "1", "--output", "3", "--limit", "-1")
    assert r.exit_code == 2 and "--limit" in r.stderr and r.stdout == ""


# ------------------------------------------------------------ item 5: memory guard


def _torch_config(tmp_path, **kw) -> Path:
    cfg = {"module": "ConvTranspose2d", "in_channels": 3, "out_channels": 2, "kernel_size": 3}
    cfg.update(kw)
    p = tmp_path / "t.json"
    p.write_text(json.dumps(cfg))
    return p


def test_torch_default_weights_respect_the_memory_limit(cli, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("CONVT_MAX_BYTES", "1e8")
    cfg = _torch_config(tmp_path, in_channels=4000, out_channels=4000, kernel_size=9)
    r = cli("export", cfg, "-o", tmp_path / "m.onnx")
    _one_line_error(r, "in_channels")
    assert "CONVT_MAX_BYTES" in r.stderr and not (tmp_path / "m.onnx").exists()
    r = cli("validate", cfg)
    _one_line_error(r, "in_channels")


def test_torch_in_channels_1e30_is_one_line(cli, tmp_path) -> None:
    cfg = _torch_config(tmp_path, in_channels=10**30)
    r = cli("export", cfg, "-o", tmp_path / "m.onnx", "--input-shape", f"1,{10**30},4,4")
    _one_line_error(r, "in_channels")
    r = cli("translate", cfg, "--to", "keras")
    _one_line_error(r, "in_channels")


def test_translate_respects_the_memory_limit(cli, tmp_path, monkeypatch) -> None:
    layer = tmp_path / "k.json"
    layer.write_text(json.dumps({"filters": 3000, "kernel_size": [9, 9], "strides": 2}))
    monkeypatch.setenv("CONVT_MAX_BYTES", "1e8")
    r = cli("translate", layer, "--to", "torch", "--in-channels", "3000")
    _one_line_error(r, "in_channels")
    monkeypatch.delenv("CONVT_MAX_BYTES")
    layer.write_text(json.dumps({"filters": 10**30, "kernel_size": 3, "strides": 2}))
    r = cli("translate", layer, "--to", "torch", "--in-channels", "3")
    _one_line_error(r, "filters")


# --------------------------------------------------- item 15: over 4300 digits


def test_input_shape_over_4300_digits(cli, tmp_path) -> None:
    layer = tmp_path / "k.json"
    layer.write_text(json.dumps({"filters": 2, "kernel_size": 3, "strides": 2}))
    _one_line_error(cli("shape", layer, "--input-shape", f"1,{BIG},4,3"), "input_shape")
    _one_line_error(cli("export", layer, "-o", tmp_path / "m.onnx", "--input-shape",
                        f"1,{BIG},4,3"), "input_shape")
    _one_line_error(cli("shape", "--filters", "2", "--kernel-size", BIG, "--input-shape",
                        "1,4,4,3"), "kernel_size")


def test_shard_over_4300_digits(cli) -> None:
    _one_line_error(cli("validate", FIX / "examples", "--shard", f"1/{BIG}"), "shard")


def test_layer_over_4300_digits(cli) -> None:
    model = FIX / "models" / "functional_in_functional.keras"
    _one_line_error(cli("shape", model, "--layer", BIG), "layer")


def test_solve_fields_over_4300_digits(cli) -> None:
    _one_line_error(cli("solve", "--input", BIG, "--output", "4"), "input")
    _one_line_error(cli("solve", "--mirror", "--framework", "torch", "--input", "8",
                        "--kernel-size", "3", "--padding", BIG), "padding")


def test_config_files_with_integers_over_4300_digits(cli, tmp_path) -> None:
    layer = tmp_path / "k.json"
    layer.write_text('{"filters": %s, "kernel_size": 3}' % BIG)
    r = cli("shape", layer, "--input-shape", "1,4,4,3")
    _one_line_error(r, "config")
    assert "4300" in r.stderr and "sys.set_int_max_str_digits" not in r.stderr
    torch_cfg = tmp_path / "t.json"
    torch_cfg.write_text('{"module": "ConvTranspose2d", "in_channels": %s, "out_channels": 2,'
                         ' "kernel_size": 3}' % BIG)
    _one_line_error(cli("shape", torch_cfg, "--input-shape", "1,3,4,4"), "config")
    model_cfg = tmp_path / "model.json"
    model_cfg.write_text('{"class_name": "Sequential", "config": {"layers": [%s]}}' % BIG)
    from convt_tools.saved.configs import parse_model_json

    with pytest.raises(ConvtError, match="4300 digits") as exc:
        parse_model_json(model_cfg.read_bytes(), "model.json")
    assert exc.value.field == "model"


# ------------------------------------------------ item 18: no raw RuntimeWarning


@pytest.fixture
def _float64_files(tmp_path):
    np.save(tmp_path / "x64.npy", np.full((1, 4, 4, 3), 1e300))
    np.save(tmp_path / "xt64.npy", np.full((1, 3, 4, 4), 1e300))
    np.savez(tmp_path / "kw.npz", kernel=np.full((3, 3, 2, 3), 1e300), bias=np.full(2, 1e300))
    np.savez(tmp_path / "tw.npz", weight=np.full((3, 2, 3, 3), 1e300), bias=np.full(2, 1e300))
    (tmp_path / "k.json").write_text(json.dumps({"filters": 2, "kernel_size": 3, "strides": 2}))
    (tmp_path / "t.json").write_text(json.dumps({"module": "ConvTranspose2d", "in_channels": 3,
                                                 "out_channels": 2, "kernel_size": 3}))
    return tmp_path


@pytest.mark.parametrize("args,field", [
    (["run", "k.json", "--input", "x64.npy", "-o", "y.npy"], "input"),
    (["export", "k.json", "-o", "m.onnx", "--weights", "kw.npz"], "kernel"),
    (["export", "t.json", "-o", "m.onnx", "--weights", "tw.npz"], "weight"),
    (["validate", "t.json", "--weights", "tw.npz"], "weight"),
    (["run", "t.json", "--input", "xt64.npy", "-o", "y.npy", "--engine", "onnxruntime"], "input"),
])
def test_values_beyond_float32_are_a_field_error_not_a_warning(cli, _float64_files, args,
                                                               field) -> None:
    paths = [str(_float64_files / a) if a.endswith((".json", ".npy", ".npz", ".onnx")) else a
             for a in args]
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        r = cli(*paths)
    _one_line_error(r, field)
    assert "float32 range" in r.stderr


def test_reference_overflow_gives_inf_without_a_warning(cli, _float64_files) -> None:
    """Finite float64 values whose products overflow: the reference's IEEE answer, silently."""
    from convt_tools.reference import conv_transpose

    x = np.full((1, 3, 4, 4), 1e300)
    w = np.full((3, 2, 3, 3), 1e300)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        y = conv_transpose(x, w, None, strides=(2, 2))
        r = cli("run", _float64_files / "t.json", "--input", _float64_files / "xt64.npy",
                "-o", _float64_files / "y.npy", "--weights", _float64_files / "tw.npz")
    assert np.isinf(y).all()
    assert r.exit_code == 0, r.output
    assert "RuntimeWarning" not in r.output
