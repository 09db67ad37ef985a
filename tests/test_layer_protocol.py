"""The layer protocol, the one resolver, and the commands without framework branches.

* Keras and torch specs both implement :class:`convt_tools.layer.LayerSpec`
  (``runtime_checkable`` and member by member), with exact weight layouts.
* :func:`convt_tools.sources.resolve_input` classifies every input kind by
  content, whatever its name, and reads each file once.
* ``cli/`` holds no framework branch (an ast scan), and the geometry of
  solve/translate/readings/dynamic repair comes from ``geometry.py``.
"""

from __future__ import annotations

import ast
import builtins
import io
import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from convt_tools.frameworks import as_layer
from convt_tools.layer import LayerSpec, input_shape
from convt_tools.sources import resolve_input, resolve_sources
from convt_tools.spec import make_spec
from convt_tools.torchconv import parse_torch_config

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "convt_tools"
FIX = ROOT / "fixtures"
MODELS = FIX / "models"

MEMBERS = ("framework", "rank", "class_name", "check_input_shape", "output_shape",
           "default_input_shape", "onnx_op", "weights_to_onnx", "weights_from_onnx",
           "kernel_in_channels", "explain", "to_config", "load_weights", "init_weights",
           "reference", "export_onnx")


def _keras(rank: int) -> Any:
    return as_layer(make_spec(filters=4, kernel_size=(3,) * rank, strides=2, padding="same",
                              rank=rank))


def _torch(rank: int) -> Any:
    return as_layer(parse_torch_config({"in_channels": 6, "out_channels": 4,
                                        "kernel_size": [3] * rank, "stride": 2, "padding": 1,
                                        "output_padding": 1, "groups": 2}))


@pytest.mark.parametrize("rank", [1, 2, 3])
@pytest.mark.parametrize("make", [_keras, _torch], ids=["keras", "torch"])
def test_both_frameworks_satisfy_the_protocol(make: Any, rank: int) -> None:
    spec = make(rank)
    assert isinstance(spec, LayerSpec)
    for name in MEMBERS:
        assert hasattr(spec, name), name
    assert spec.framework in ("keras", "torch") and spec.rank == rank
    assert spec.class_name.lower().startswith("conv")
    op = spec.onnx_op()
    assert op.rank == rank and len(op.axes) == rank
    shape = input_shape(spec, None, 6)
    assert shape is not None and len(shape) == rank + 2
    out = spec.output_shape(shape)
    assert len(out) == rank + 2
    x_shape = tuple(5 if d is None else d for d in shape)
    assert isinstance(spec.explain(x_shape), str)
    kernel, bias, _ = spec.init_weights(6, 0)
    x = np.random.default_rng(0).standard_normal(x_shape).astype(np.float32)
    y = spec.reference(x, kernel, bias)
    assert y.shape == spec.output_shape(x_shape)
    model = spec.export_onnx(kernel, bias, input_shape=shape, opset=17, seed=0)
    assert [n.op_type for n in model.graph.node].count("ConvTranspose") == 1
    assert as_layer(spec) is spec and as_layer(spec.spec) == spec


@pytest.mark.parametrize("rank", [1, 2, 3])
def test_weight_layouts_round_trip(rank: int) -> None:
    rng = np.random.default_rng(rank)
    keras = _keras(rank)
    kernel = rng.standard_normal((3,) * rank + (4, 6))
    w, b = keras.weights_to_onnx(kernel, None)
    assert w.shape == (6, 4) + (3,) * rank and b is None
    assert w[5, 3][(0,) * rank] == kernel[(0,) * rank + (3, 5)]       # no flip
    assert np.array_equal(keras.weights_from_onnx(w, None)[0], kernel)
    assert keras.kernel_in_channels(kernel) == 6
    torch = _torch(rank)
    weight = rng.standard_normal(torch.weight_shape())
    assert torch.weights_to_onnx(weight, None)[0] is weight
    assert torch.weights_from_onnx(weight, None)[0] is weight
    assert torch.kernel_in_channels(weight) == 6


def test_one_input_shape_resolver() -> None:
    keras = _keras(2)
    assert input_shape(keras, (1, 5, 7, 3)) == (1, 5, 7, 3)            # given wins
    assert input_shape(keras, None, 3) == (None, None, None, 3)
    assert input_shape(keras, None, None, required=False) is None
    with pytest.raises(Exception, match="input_shape"):
        input_shape(keras, None, None)
    built = make_spec(filters=4, kernel_size=3, input_shape=(8, 5, 7, 3))
    assert input_shape(built) == (None, 5, 7, 3)                     # build_config, batch dynamic
    assert input_shape(built, dynamic_batch=False) == (8, 5, 7, 3)
    assert input_shape(_torch(2)) == (None, 6, None, None)


# ------------------------------------------------------------------ the resolver

TORCH_CFG = {"in_channels": 2, "out_channels": 3, "kernel_size": [3, 3], "stride": 2}
KERAS_CFG = {"class_name": "Conv2DTranspose",
             "config": {"filters": 3, "kernel_size": [3, 3], "strides": [2, 2]}}


def _inputs(tmp: Path) -> dict[str, tuple[Path, str, str]]:
    """name -> (path, kind, framework of the first source)."""
    (tmp / "torch.txt").write_text(json.dumps(TORCH_CFG))
    (tmp / "keras.bin").write_text(json.dumps(KERAS_CFG))
    (tmp / "module.cfg").write_text(json.dumps({"module": "ConvTranspose1d", "in_channels": 2,
                                                "out_channels": 3, "kernel_size": 3}))
    shutil.copy(MODELS / "seq_decoder.keras", tmp / "model.json")        # a zip named .json
    shutil.copy(MODELS / "seq_decoder.h5", tmp / "model.bin")            # HDF5 named .bin
    shutil.copy(MODELS / "seq_decoder.config.json", tmp / "model.dat")   # model config JSON
    return {"torch.txt": (tmp / "torch.txt", "torch", "torch"),
            "keras.bin": (tmp / "keras.bin", "keras", "keras"),
            "module.cfg": (tmp / "module.cfg", "torch", "torch"),
            "model.json": (tmp / "model.json", "saved", "keras"),
            "model.bin": (tmp / "model.bin", "saved", "keras"),
            "model.dat": (tmp / "model.dat", "saved", "keras")}


def test_resolver_classifies_by_content_not_name(tmp_path: Path) -> None:
    for name, (path, kind, framework) in _inputs(tmp_path).items():
        resolved = resolve_input(str(path))
        assert resolved.kind == kind, name
        sources = resolve_sources(str(path))
        assert sources and all(s.spec.framework == framework for s in sources), name
        assert all(isinstance(s.layer, LayerSpec) for s in sources), name


def test_framework_flag_overrides_content(tmp_path: Path) -> None:
    path = tmp_path / "bare.json"
    path.write_text(json.dumps({"in_channels": 2, "out_channels": 3, "kernel_size": 3}))
    spec = resolve_sources(str(path), framework="torch", rank=1)[0].spec
    assert spec.framework == "torch" and spec.rank == 1


def test_layer_on_a_layer_config_is_an_error(tmp_path: Path) -> None:
    from convt_tools.errors import ConvtError

    paths = _inputs(tmp_path)
    for name in ("torch.txt", "keras.bin"):
        with pytest.raises(ConvtError) as exc:
            resolve_sources(str(paths[name][0]), layer="0")
        assert exc.value.field == "layer"


def _count_opens(monkeypatch: pytest.MonkeyPatch, path: Path, call: Any) -> int:
    opened: list[str] = []
    real_open, real_io_open = builtins.open, io.open

    def counting(open_: Any) -> Any:
        def wrapper(file: Any, *args: Any, **kwargs: Any) -> Any:
            if isinstance(file, (str, os.PathLike)) and os.fspath(file) == str(path):
                opened.append(os.fspath(file))
            return open_(file, *args, **kwargs)
        return wrapper

    with monkeypatch.context() as m:
        m.setattr(builtins, "open", counting(real_open))
        m.setattr(io, "open", counting(real_io_open))
        call()
    return len(opened)


@pytest.mark.parametrize("name", ["torch.txt", "keras.bin", "module.cfg", "model.dat"])
def test_each_config_is_read_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                  name: str) -> None:
    """A config (layer or model JSON) is opened once: kind and content from one read."""
    path = _inputs(tmp_path)[name][0]
    assert _count_opens(monkeypatch, path, lambda: resolve_sources(str(path))) == 1


@pytest.mark.parametrize("name", ["model.json", "model.bin"])
def test_a_saved_model_costs_the_resolver_one_look(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   name: str) -> None:
    """A .keras/.h5 (whatever its name) costs what the saved-model reader alone costs:
    the resolver's 8-byte look replaces the reader's own sniff (no second look, no
    second parse)."""
    from convt_tools.saved.model import open_model
    from convt_tools.sources import select_sources

    path = _inputs(tmp_path)[name][0]
    reader = _count_opens(monkeypatch, path,
                          lambda: select_sources(open_model(str(path)), None))
    resolver = _count_opens(monkeypatch, path, lambda: resolve_sources(str(path)))
    assert resolver == reader


# ------------------------------------------------------------ no framework branches

def _framework_branches(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in ("is_torch_config", "torch_spec_or_none"):
            found.append(node.id)
        elif isinstance(node, ast.Attribute) and node.attr in ("is_torch_config",
                                                               "torch_spec_or_none"):
            found.append(node.attr)
        elif isinstance(node, ast.Compare):
            names = [n for n in (node.left, *node.comparators)
                     if (isinstance(n, ast.Name) and n.id == "framework")
                     or (isinstance(n, ast.Attribute) and n.attr == "framework")
                     or (isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
                         and n.func.id == "getattr" and len(n.args) > 1
                         and isinstance(n.args[1], ast.Constant)
                         and n.args[1].value == "framework")]
            if names:
                found.append(ast.unparse(node))
    return found


def test_cli_has_no_framework_branches() -> None:
    bad = {}
    for path in sorted((PKG / "cli").glob("*.py")):
        hits = _framework_branches(ast.parse(path.read_text()))
        if hits:
            bad[path.name] = hits
    assert not bad, bad


GEOMETRY_USERS = ["solve.py", "translate/plan.py", "translate/proof.py", "check/readings.py",
                  "repair/dynamic.py", "torchconv/spec.py", "spec/layer.py"]


def _re_derivations(tree: ast.AST) -> list[str]:
    """``(a - 1) * b + c`` (K and L) and ``t // 2`` (a crop split) in code, not in strings."""
    found = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add)
                and isinstance(node.left, ast.BinOp) and isinstance(node.left.op, ast.Mult)
                and isinstance(node.left.left, ast.BinOp) and isinstance(node.left.left.op, ast.Sub)
                and isinstance(node.left.left.right, ast.Constant)
                and node.left.left.right.value == 1):
            found.append(ast.unparse(node))
        elif (isinstance(node, ast.BinOp) and isinstance(node.op, ast.FloorDiv)
              and isinstance(node.right, ast.Constant) and node.right.value == 2
              and isinstance(node.left, ast.Name) and node.left.id in ("t", "T", "total")):
            found.append(ast.unparse(node))
    return found


@pytest.mark.parametrize("rel", GEOMETRY_USERS)
def test_geometry_is_not_re_derived(rel: str) -> None:
    """``K = (k-1)*d + 1``, ``L = (n-1)*s + K`` and the crop splits (``t // 2``) live in
    geometry.py; these modules call it."""
    assert not _re_derivations(ast.parse((PKG / rel).read_text()))


def test_the_scan_sees_a_re_derivation() -> None:
    code = "K = (k - 1) * d + 1\nL = (n - 1) * s + K\nb = t // 2\n"
    assert len(_re_derivations(ast.parse(code))) == 3


@pytest.mark.parametrize("rank", [1, 3])
def test_a_models_static_input_is_read_at_every_rank(rank: int) -> None:
    """validate --model reads the model's static input dims at ranks 1 and 3 too (it
    assumed rank 4 tensors): an input that does not fit is refused, naming ``input``."""
    from convt_tools.errors import ConvtError
    from convt_tools.exporter import export_spec
    from convt_tools.validate import validate_model

    spec = make_spec(filters=2, kernel_size=3, strides=2, rank=rank)
    shape = (2,) + (5,) * rank + (3,)
    model = export_spec(spec, input_shape=shape)
    wrong = np.zeros((2,) + (6,) * rank + (3,), np.float32)
    with pytest.raises(ConvtError) as exc:
        validate_model(model, spec, x=wrong)
    assert exc.value.field == "input"


def test_keras_total_exists_is_keras_crop_in_closed_form() -> None:
    from convt_tools.geometry import keras_crop, keras_total_exists

    for k in range(1, 7):
        for s in range(1, 6):
            for d in (1, 2, 3):
                if s > 1 and d > 1:
                    continue
                totals = {keras_crop(k, s, d, pad, op).total for pad in ("valid", "same")
                          for op in (None, *range(s))}
                for t in range(-8, 12):
                    assert keras_total_exists(k, s, d, t) == (t in totals), (k, s, d, t)
