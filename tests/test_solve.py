"""``convt solve``: every returned config reproduces the target size under its framework's rules.

Sizes are recomputed here independently (``oracles.keras_length`` for Keras,
torch's ``(in-1)*s + (k-1)*d + 1 - 2p + op`` written out), legality by each
framework's parser; and configs that real torch / real Keras ran in the
fixtures (input size -> the output size they really produced) are found.
"""

from __future__ import annotations

import json
from pathlib import Path

from support import oracles
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convt_tools.solve import forward_output_length, solve
from convt_tools.spec import parse_config
from convt_tools.torchconv import parse_torch_config

FIX = Path(__file__).resolve().parent.parent / "fixtures"


def _check(framework: str, inputs, outputs, sols) -> None:
    for sol in sols:
        cfg = sol.config()
        if framework == "keras":
            ops = cfg["output_padding"] or [None] * len(inputs)
            got = [oracles.keras_length(n, k, s, d, cfg["padding"], o) for n, k, s, d, o in
                   zip(inputs, cfg["kernel_size"], cfg["strides"], cfg["dilation_rate"], ops)]
            if len(inputs) == 2:
                parse_config({"filters": 1, **cfg})
        else:
            got = [(n - 1) * s + (k - 1) * d + 1 - 2 * p + o for n, k, s, d, p, o in
                   zip(inputs, cfg["kernel_size"], cfg["stride"], cfg["dilation"], cfg["padding"],
                       cfg["output_padding"])]
            parse_torch_config({"in_channels": 1, "out_channels": 1, **cfg}, rank=len(inputs))
        assert got == list(outputs), cfg


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(["keras", "torch"]), st.lists(st.integers(1, 12), min_size=1, max_size=2),
       st.data())
def test_every_solution_reproduces_the_target(framework, inputs, data) -> None:
    outputs = [data.draw(st.integers(1, 3 * n + 6)) for n in inputs]
    _, sols = solve(inputs, outputs, framework=framework, max_kernel=5, max_dilation=2)
    _check(framework, inputs, outputs, sols)
    keys = [s.key for s in sols]
    assert keys == sorted(keys)


def test_ranking_prefers_simple_symmetric_agreeing() -> None:
    _, sols = solve((10, 8), (20, 16), framework="keras")
    first = sols[0].config()
    assert first["kernel_size"] == [2, 2] and first["strides"] == [2, 2]
    k3 = [i for i, s in enumerate(sols) if s.config()["kernel_size"] == [3, 3]
          and s.config()["padding"] == "same" and s.output_padding is None]
    k4 = [i for i, s in enumerate(sols) if s.config()["kernel_size"] == [4, 4]
          and s.config()["padding"] == "same" and s.output_padding is None]
    assert k4[0] < k3[0]        # even crop (Keras and torch agree) before the odd one
    assert sols[k3[0]].agrees is False and sols[k4[0]].agrees is True
    _, tsols = solve((10, 8), (20, 16), framework="torch")
    assert tsols[0].config()["kernel_size"] == [2, 2] and tsols[1].config()["padding"] == [1, 1]


def test_torch_fixture_configs_are_found() -> None:
    """Real torch's output sizes: the module that produced them is among the solutions."""
    cases = json.loads((FIX / "torch" / "cases.json").read_text())
    checked = 0
    for c in cases:
        rank = int(c["module"][-2])
        if c["output_size"] is not None or len(c["input_shape"]) != rank + 2:
            continue
        spec = parse_torch_config({"module": c["module"], **c["kwargs"]})
        if any(p > (k - 1) * d for p, k, d in zip(spec.padding, spec.kernel_size, spec.dilation)):
            continue         # beyond the search's padding bound (p <= K-1)
        inputs, outputs = c["input_shape"][2:], c["output_shape"][2:]
        _, sols = solve(inputs, outputs, framework="torch", kernel_size=list(spec.kernel_size),
                        strides=list(spec.stride), max_dilation=max(spec.dilation))
        _check("torch", inputs, outputs, sols)
        want = (spec.padding, spec.output_padding, spec.dilation)
        assert want in [(s.padding, s.output_padding, s.dilation) for s in sols], c["id"]
        checked += 1
    assert checked > 100


@pytest.mark.parametrize("prefix", ["grid_", "nsq_", "dil_", "kls_"])
def test_keras_fixture_configs_are_found(prefix: str) -> None:
    """Real Keras's output sizes: the layer that produced them is among the solutions."""
    checked = 0
    for path in sorted((FIX / "cases").glob(f"{prefix}*_cl_*.json"))[::3]:
        case = json.loads(path.read_text())
        spec = parse_config(case["config"])
        inputs, outputs = case["input_shape"][1:3], case["output_shape"]["concrete"][1:3]
        _, sols = solve(inputs, outputs, framework="keras", kernel_size=list(spec.kernel_size),
                        strides=list(spec.strides), max_dilation=max(spec.dilation_rate))
        _check("keras", inputs, outputs, sols)
        want = (spec.padding, spec.output_padding, spec.dilation_rate)
        assert want in [(s.padding, s.output_padding, s.dilation) for s in sols], path.name
        checked += 1
    assert checked


@pytest.mark.parametrize("framework,padding", [("keras", "same"), ("keras", "valid"),
                                               ("torch", 1), ("torch", 0)])
def test_mirror_restores_the_forward_input(framework: str, padding) -> None:
    inputs = (63, 64)
    start, sols = solve(inputs, framework=framework, mirror={"kernel_size": 3, "strides": 2,
                                                              "padding": padding})
    for n, m in zip(inputs, start):      # the forward conv's output, written out
        K = 3
        want = (-(-n // 2) if padding == "same" else
                (n - K) // 2 + 1 if padding == "valid" else (n + 2 * padding - K) // 2 + 1)
        assert m == want == forward_output_length(n, 3, 2, 1, padding, framework)
    _check(framework, start, inputs, sols)
    assert sols and sols[0].config()["kernel_size"] == [3, 3]


def test_cli_solve(cli) -> None:
    r = cli("solve", "--input", "10,8", "--output", "20,16", "--framework", "torch", "--json")
    assert r.exit_code == 0, r.output
    info = json.loads(r.stdout)
    assert info["count"] == len(info["solutions"]) > 0
    assert info["solutions"][0]["config"]["kernel_size"] == [2, 2]
    r = cli("solve", "--input", "10", "--output", "7")
    assert r.exit_code == 1 and "no configuration" in r.stdout
    r = cli("solve", "--input", "10,y", "--output", "7")
    assert r.exit_code == 2 and r.stderr.startswith("Error: input:")
    r = cli("solve", "--mirror", "--input", "64,64", "--kernel-size", "3", "--strides", "2",
            "--padding", "same", "--explain", "--limit", "1")
    assert r.exit_code == 0 and "kernel_size=3, strides=2, padding='same'" in r.stdout


def test_public_api_names() -> None:
    import convt_tools as ct
    import convt_tools.translate  # noqa: F401 - the subpackage shadows no API name
    from convt_tools.translate import translate

    assert ct.solve_sizes is solve and ct.translate_spec is translate
    spec = ct.parse_torch_config({"module": "ConvTranspose1d", "in_channels": 1,
                                  "out_channels": 1, "kernel_size": 3, "stride": 2})
    assert isinstance(spec, ct.TorchConvTransposeSpec)
