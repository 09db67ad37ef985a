"""The rank-generic spec: Conv1DTranspose / Conv3DTranspose configs, rank resolution, layout,
zero-size dims.

Expected shapes come from real Keras: tests/data/keras_zero_size.json (TensorFlow
and JAX backends, see its provenance) and, for ranks 1 and 3, Keras's own length
formulas as recorded in REFERENCE.md (checked against real output by the fixtures).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from convt_tools import ConvtError
from convt_tools.spec import (
    Conv2DTransposeSpec, ConvTransposeSpec, Layout, make_spec, parse_config,
)

ZERO = json.loads((Path(__file__).parent / "data" / "keras_zero_size.json").read_text())


@pytest.fixture(autouse=True)
def _isolated_keras_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))


@pytest.mark.parametrize("case", ZERO["cases"], ids=lambda c: f"{c['class_name']}-{c['input_shape']}")
def test_zero_size_dims_follow_keras(case: dict) -> None:
    """batch 0 -> batch 0; channels 0 -> pure bias; spatial 0 -> compute_output_shape (= TF)."""
    spec = make_spec(**case["kwargs"], class_name=case["class_name"])
    want = case["compute_output_shape"]
    if min(want) < 0:
        with pytest.raises(ConvtError, match="input_shape.*cannot build"):
            spec.output_shape(tuple(case["input_shape"]))
        return
    assert want == case["tensorflow_output_shape"]
    assert list(spec.output_shape(tuple(case["input_shape"]))) == want


@pytest.mark.parametrize(("cls", "rank"), [("Conv1DTranspose", 1), ("Convolution1DTranspose", 1),
                                           ("Conv2DTranspose", 2), ("Conv3DTranspose", 3),
                                           ("Convolution3DTranspose", 3)])
def test_wrapper_class_name_gives_the_rank(cls: str, rank: int) -> None:
    spec = parse_config({"class_name": cls, "config": {"filters": 2, "kernel_size": 3}})
    assert (spec.rank, spec.class_name, spec.rank_source) == (rank, f"Conv{rank}DTranspose",
                                                              "class_name")
    assert spec.kernel_size == (3,) * rank


def test_bare_config_rank_from_tuples_then_input_shape_then_default() -> None:
    spec = parse_config({"filters": 2, "kernel_size": [3], "strides": [2]})
    assert spec.rank == 1 and "tuple lengths" in spec.rank_source
    spec = parse_config({"filters": 2, "kernel_size": 3}, input_shape=(1, 4, 4, 4, 2))
    assert spec.rank == 3 and "input shape" in spec.rank_source
    spec = parse_config({"filters": 2, "kernel_size": 3, "batch_shape": [None, 9, 2]})
    assert spec.rank == 1 and spec.input_shape == (None, 9, 2)
    spec = parse_config({"filters": 2, "kernel_size": 3})
    assert spec.rank == 2 and "default" in spec.rank_source
    with pytest.raises(ConvtError, match="input_shape.*Conv2DTranspose needs a rank-4.*class_name"):
        spec.output_shape((1, 8, 2))


def test_rank_conflicts_are_errors() -> None:
    with pytest.raises(ConvtError, match="strides"):
        parse_config({"class_name": "Conv1DTranspose",
                      "config": {"filters": 2, "kernel_size": 3, "strides": [2, 2]}})
    with pytest.raises(ConvtError, match="rank"):
        make_spec(filters=2, kernel_size=3, rank=3, class_name="Conv1DTranspose")
    with pytest.raises(ConvtError, match="class_name"):
        parse_config({"class_name": "Conv4DTranspose", "config": {"filters": 2, "kernel_size": 3}})
    with pytest.raises(ConvtError, match="rank"):
        make_spec(filters=2, kernel_size=3, rank=4)


@pytest.mark.parametrize(("rank", "fmt", "shape", "want"), [
    # Keras lengths: valid op None in*s + max(K-s, 0); same in*s (REFERENCE.md)
    (1, "channels_last", (2, 7, 3), (2, 15, 4)),
    (1, "channels_first", (2, 3, 7), (2, 4, 15)),
    (3, "channels_last", (1, 2, 3, 4, 5), (1, 5, 7, 9, 4)),
    (3, "channels_first", (1, 5, 2, 3, 4), (1, 4, 5, 7, 9)),
])
def test_nd_output_shape_and_layout(rank: int, fmt: str, shape: tuple, want: tuple) -> None:
    spec = make_spec(filters=4, kernel_size=3, strides=2, data_format=fmt, rank=rank)
    assert spec.output_shape(shape) == want
    assert isinstance(spec, Conv2DTransposeSpec) and Conv2DTransposeSpec is ConvTransposeSpec
    lay = spec.layout
    assert lay == Layout(rank, fmt)
    assert [shape[i] for i in spec.spatial_axes] == list(shape[2:] if fmt == "channels_first"
                                                         else shape[1:-1])
    assert spec.kernel_shape(5) == (3,) * rank + (4, 5)
    assert len(spec.crop_plan()) == rank
    with pytest.raises(ConvtError, match=f"rank-{rank + 2}"):
        spec.output_shape(shape + (1,))


def test_explain_names_class_and_rank_source() -> None:
    spec = parse_config({"filters": 2, "kernel_size": [3, 3, 3], "strides": [2, 1, 1]})
    text = spec.explain((1, 4, 4, 4, 1))
    assert text.startswith("Conv3DTranspose (rank from the config's tuple lengths")
    assert "depth: kernel 3, stride 2" in text and "width: kernel 3, stride 1" in text


def test_keras_validation_per_rank() -> None:
    with pytest.raises(ConvtError, match="strides"):   # strides > 1 with dilation > 1
        make_spec(filters=1, kernel_size=3, strides=(1, 2, 1), dilation_rate=(2, 1, 1), rank=3)
    with pytest.raises(ConvtError, match="output_padding.*length: 2 >= 2"):
        make_spec(filters=1, kernel_size=3, strides=2, output_padding=2, rank=1)
    with pytest.raises(ConvtError, match="kernel_size.*sequence of 3"):
        make_spec(filters=1, kernel_size=(3, 3), rank=3)
