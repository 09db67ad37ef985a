"""Tests of the spec module: parsing, normalisation, validation, shapes, crop plan.

Expected shapes and crop sides come from real Keras (tests/data/keras_spec_golden.json,
see its "provenance"), never from the code under test.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from convt_tools import ConvtError, make_spec, parse_config, parse_shape
from convt_tools.spec import (
    AxisCrop,
    crop_for_axis,
    keras_output_length,
    load_config,
    resolve_data_format,
)

GOLDEN = json.loads((Path(__file__).parent / "data" / "keras_spec_golden.json").read_text())


# ---------------------------------------------------------------- shapes

def test_seed_example() -> None:
    spec = make_spec(filters=32, kernel_size=2, strides=2)
    assert spec.output_shape((4, 10, 8, 128)) == (4, 20, 16, 32)


@pytest.mark.parametrize("case", GOLDEN["shapes"],
                         ids=[json.dumps(c["kwargs"], sort_keys=True) for c in GOLDEN["shapes"]])
def test_output_shape_matches_keras(case: dict) -> None:
    spec = make_spec(**case["kwargs"])
    assert spec.output_shape(tuple(case["input_shape"])) == tuple(case["output_shape"])


@pytest.mark.parametrize("case", GOLDEN["crops"],
                         ids=[f"{c['padding']}-k{c['kernel']}s{c['stride']}d{c['dilation']}"
                              f"op{c['output_padding']}" for c in GOLDEN["crops"]])
def test_crop_begin_and_length_match_keras(case: dict) -> None:
    k, s, d, op = case["kernel"], case["stride"], case["dilation"], case["output_padding"]
    crop = crop_for_axis(k, s, d, case["padding"], op)
    assert crop.begin == case["crop_begin"]
    assert keras_output_length(4, k, s, d, case["padding"], op) == case["output_length"]
    # The plan is consistent: natural length minus crops plus extension is the Keras length.
    natural = 3 * s + (k - 1) * d + 1
    assert natural - crop.begin - crop.end + crop.extend == case["output_length"]


@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("k,s", [(3, 2), (4, 2), (1, 3), (2, 4), (5, 1), (7, 3)])
@pytest.mark.parametrize("op_kind", ["none", "zero", "max"])
def test_crop_plan_invariants(padding: str, k: int, s: int, op_kind: str) -> None:
    """At most one of crop/extension is non-zero; extension < stride; odd crop at the END."""
    op = {"none": None, "zero": 0, "max": s - 1}[op_kind]
    crop = crop_for_axis(k, s, 1, padding, op)
    assert min(crop.begin, crop.end, crop.extend) >= 0
    assert crop.extend == 0 or crop.begin + crop.end == 0
    assert crop.extend < s
    assert crop.end - crop.begin in (0, 1)
    for n in (1, 2, 5, 9):
        natural = (n - 1) * s + k
        assert natural - crop.begin - crop.end + crop.extend == keras_output_length(
            n, k, s, 1, padding, op)


def test_kernel_smaller_than_stride_extends_at_end() -> None:
    assert crop_for_axis(1, 3, 1, "valid", None) == AxisCrop(0, 0, 2)
    assert crop_for_axis(2, 4, 1, "same", None) == AxisCrop(0, 0, 2)
    spec = make_spec(filters=1, kernel_size=(1, 2), strides=(3, 4))
    assert spec.output_shape((1, 5, 5, 1)) == (1, 15, 20, 1)


def test_unknown_dims_propagate_batch_passes_through() -> None:
    spec = make_spec(filters=8, kernel_size=3, strides=2, padding="same")
    assert spec.output_shape((None, None, 7, 4)) == (None, None, 14, 8)
    assert spec.output_shape((0, 3, 3, 4)) == (0, 6, 6, 8)
    cf = make_spec(filters=8, kernel_size=3, strides=(1, 2), data_format="channels_first")
    assert cf.output_shape((2, 4, None, 5)) == (2, 8, None, 11)


def test_empty_output_is_a_shape_not_an_error() -> None:
    spec = make_spec(filters=2, kernel_size=2, strides=2, padding="same", output_padding=0)
    assert spec.output_shape((1, 1, 1, 3)) == (1, 0, 0, 2)


def test_glu_halves_the_returned_last_axis() -> None:
    spec = make_spec(filters=8, kernel_size=2, strides=2, activation="glu")
    assert spec.output_shape((1, 3, 3, 2)) == (1, 6, 6, 8)
    assert spec.activated_output_shape((1, 3, 3, 2)) == (1, 6, 6, 4)
    odd = make_spec(filters=7, kernel_size=2, activation="glu")
    with pytest.raises(ConvtError, match="glu"):
        odd.activated_output_shape((1, 3, 3, 2))


def test_explain_states_the_numbers() -> None:
    spec = make_spec(filters=4, kernel_size=5, strides=2, padding="same")
    text = spec.explain((1, 7, 7, 3))
    assert "effective kernel K = (k-1)*d + 1 = (5-1)*1 + 1 = 5" in text
    assert "natural length L = (in-1)*s + K = (7-1)*2 + 5 = 17" in text
    assert "Keras length O = in*s = 7*2 = 14" in text
    assert "crop 1 at the start, 2 at the end" in text
    assert text.rstrip().endswith("output (1, 14, 14, 4)")


# ---------------------------------------------------------------- parsing

def test_parses_real_keras3_get_config_and_wrapper() -> None:
    config = {
        "name": "up", "trainable": True,
        "dtype": {"module": "keras", "class_name": "DTypePolicy",
                  "config": {"name": "mixed_float16"}, "registered_name": None},
        "filters": 4, "kernel_size": [3, 2], "strides": [2, 2], "padding": "same",
        "output_padding": [1, 1], "data_format": "channels_last", "dilation_rate": [1, 1],
        "activation": "relu", "use_bias": True,
        "kernel_initializer": {"module": "keras.initializers", "class_name": "GlorotUniform",
                               "config": {"seed": None}, "registered_name": None},
        "bias_initializer": {"module": "keras.initializers", "class_name": "Zeros",
                             "config": {}, "registered_name": None},
        "kernel_regularizer": {"module": "keras.regularizers", "class_name": "L2",
                               "config": {"l2": 0.01}, "registered_name": None},
        "bias_regularizer": None, "activity_regularizer": None,
        "kernel_constraint": {"module": "keras.constraints", "class_name": "NonNeg",
                              "config": {}, "registered_name": None},
        "bias_constraint": None,
    }
    spec = parse_config(config)
    assert (spec.filters, spec.kernel_size, spec.strides) == (4, (3, 2), (2, 2))
    assert spec.output_padding == (1, 1)
    assert spec.padding == "same"
    assert (spec.dtype, spec.variable_dtype) == ("float16", "float32")
    assert spec.kernel_initializer[0] == "glorot_uniform"
    assert any("kernel_regularizer" in n and "kernel_constraint" in n for n in spec.notes())
    wrapped = parse_config({"module": "keras.layers", "class_name": "Conv2DTranspose",
                            "config": config, "registered_name": None,
                            "build_config": {"input_shape": [None, 8, 8, 3]}})
    assert wrapped.input_shape == (None, 8, 8, 3)
    assert wrapped.output_shape(wrapped.input_shape) == (None, 16, 15, 4)  # Keras 3.15.1


def test_old_keras_config_without_output_padding_means_none() -> None:
    spec = parse_config({"name": "x", "trainable": True, "dtype": "float32", "filters": 2,
                         "kernel_size": [3, 3], "strides": [2, 2], "padding": "valid",
                         "data_format": "channels_last", "dilation_rate": [1, 1],
                         "groups": 1, "activation": "linear", "use_bias": True})
    assert spec.output_padding is None
    assert spec.output_shape((1, 4, 4, 1)) == (1, 9, 9, 2)


@pytest.mark.parametrize("act,expected", [
    (None, "linear"), ("linear", "linear"), ("swish", "silu"), ("hard_swish", "hard_silu"),
    ({"module": "keras.activations", "class_name": "function", "config": "gelu",
      "registered_name": "gelu"}, "gelu"),
])
def test_activation_forms(act: object, expected: str) -> None:
    assert make_spec(filters=1, kernel_size=1, activation=act).activation == expected


def test_padding_and_data_format_case_insensitive() -> None:
    spec = make_spec(filters=1, kernel_size=3, padding="SAME", data_format="Channels_First")
    assert (spec.padding, spec.data_format) == ("same", "channels_first")


def test_data_format_none_reads_keras_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    assert resolve_data_format(None)[0] == "channels_last"
    (tmp_path / "keras.json").write_text(json.dumps({"image_data_format": "channels_first"}))
    fmt, source = resolve_data_format(None)
    assert fmt == "channels_first"
    assert "keras.json" in source
    spec = make_spec(filters=1, kernel_size=1)
    assert spec.data_format == "channels_first"
    assert any("resolved to channels_first" in n for n in spec.notes())


def test_load_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConvtError, match="is missing"):
        load_config(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConvtError, match="not valid JSON"):
        load_config(bad)


@pytest.mark.parametrize("text,expected", [
    ("4,10,8,128", (4, 10, 8, 128)), ("None,?,8,3", (None, None, 8, 3)),
    ("(1, -1, 2, 3)", (1, None, 2, 3)), ("[2,3]", (2, 3)),
])
def test_parse_shape(text: str, expected: tuple) -> None:
    assert parse_shape(text) == expected


@pytest.mark.parametrize("text", ["", "4,x,3", "1.5,2", ",,"])
def test_parse_shape_rejects(text: str) -> None:
    with pytest.raises(ConvtError, match="input_shape"):
        parse_shape(text)


# ---------------------------------------------------------------- validation

INVALID = [
    (dict(filters=0, kernel_size=3), "filters"),
    (dict(filters=-2, kernel_size=3), "filters"),
    (dict(filters=2.5, kernel_size=3), "filters"),
    (dict(filters=2, kernel_size=0), "kernel_size"),
    (dict(filters=2, kernel_size=(3, 3, 3)), "kernel_size"),
    (dict(filters=2, kernel_size="3"), "kernel_size"),
    (dict(filters=2, kernel_size=3, strides=0), "strides"),
    (dict(filters=2, kernel_size=3, dilation_rate=(1, 0)), "dilation_rate"),
    (dict(filters=2, kernel_size=3, strides=2, dilation_rate=2), "strides"),
    (dict(filters=2, kernel_size=3, strides=(1, 2), dilation_rate=(2, 1)), "strides"),
    (dict(filters=2, kernel_size=3, strides=2, output_padding=2), "output_padding"),
    (dict(filters=2, kernel_size=3, strides=(3, 1), output_padding=(1, 1)), "output_padding"),
    (dict(filters=2, kernel_size=3, strides=2, output_padding=-1), "output_padding"),
    (dict(filters=2, kernel_size=3, padding="causal"), "padding"),
    (dict(filters=2, kernel_size=3, padding="full"), "padding"),
    (dict(filters=2, kernel_size=3, data_format="NHWC"), "data_format"),
    (dict(filters=2, kernel_size=3, activation="nope"), "activation"),
    (dict(filters=2, kernel_size=3, activation="threshold"), "activation"),
    (dict(filters=2, kernel_size=3, kernel_initializer="magic"), "kernel_initializer"),
    (dict(filters=2, kernel_size=3, use_bias="yes"), "use_bias"),
    (dict(filters=2, kernel_size=3, dtype="int8"), "dtype"),
]


@pytest.mark.parametrize("kwargs,field", INVALID, ids=[f"{f}-{i}" for i, (_, f) in enumerate(INVALID)])
def test_validation_rules(kwargs: dict, field: str) -> None:
    with pytest.raises(ConvtError) as info:
        make_spec(**kwargs)
    message = str(info.value)
    assert info.value.field == field
    assert message.startswith(f"{field}:")
    assert "\n" not in message
    assert "got" in message  # quotes the value given


def test_error_says_what_is_allowed() -> None:
    with pytest.raises(ConvtError, match="expected 'valid' or 'same'"):
        make_spec(filters=1, kernel_size=1, padding="causal")
    with pytest.raises(ConvtError, match="relu"):  # lists the valid activations
        make_spec(filters=1, kernel_size=1, activation="rleu")


def test_unknown_config_keys_are_named() -> None:
    with pytest.raises(ConvtError, match="'kernal_size'"):
        parse_config({"filters": 2, "kernel_size": 3, "kernal_size": 3})
    with pytest.raises(ConvtError, match="class_name"):
        parse_config({"class_name": "Conv2D", "config": {"filters": 2, "kernel_size": 3}})
    with pytest.raises(ConvtError, match="missing required key"):
        parse_config({"filters": 2})
    with pytest.raises(ConvtError, match="config"):
        parse_config([1, 2])


@pytest.mark.parametrize("shape", [(1, 4, 4), (1, 4, 4, 3, 1), (1, 4, -2, 3),
                                   (1, 4.0, 4, 3)])
def test_input_rank_and_dims(shape: tuple) -> None:
    spec = make_spec(filters=2, kernel_size=3)
    with pytest.raises(ConvtError, match="input_shape"):
        spec.output_shape(shape)


def test_input_channels_must_match_kernel() -> None:
    spec = make_spec(filters=2, kernel_size=3)
    assert spec.output_shape((1, 4, 4, 3), in_channels=3) == (1, 6, 6, 2)
    with pytest.raises(ConvtError, match="input channels"):
        spec.output_shape((1, 4, 4, 5), in_channels=3)
    cf = make_spec(filters=2, kernel_size=3, data_format="channels_first")
    with pytest.raises(ConvtError, match="input channels"):
        cf.output_shape((1, 5, 4, 4), in_channels=3)


def test_groups_other_than_one_rejected() -> None:
    with pytest.raises(ConvtError, match="groups"):
        parse_config({"filters": 2, "kernel_size": 3, "groups": 2})


def test_to_config_round_trips() -> None:
    spec = make_spec(filters=3, kernel_size=(3, 1), strides=(2, 1), padding="same",
                     output_padding=(1, 0), activation="swish", use_bias=False,
                     data_format="channels_first")
    again = parse_config(spec.to_config())
    assert again == spec
    # A None data_format is written out resolved, and the source says where it came from.
    resolved = make_spec(filters=3, kernel_size=1)
    assert parse_config(resolved.to_config()).to_config() == resolved.to_config()
    assert resolved.data_format_source != "config"


# ---------------------------------------------------------------- robustness (review findings)

def test_numpy_integers_are_accepted() -> None:
    import numpy as np

    spec = make_spec(filters=np.int64(4), kernel_size=np.array([3, 3]), strides=np.int32(2))
    assert (spec.filters, spec.kernel_size, spec.strides) == (4, (3, 3), (2, 2))
    assert type(spec.filters) is int
    assert spec.output_shape(np.array([1, 5, 5, 3])) == (1, 11, 11, 4)  # valid: 5*2 + (3-2)
    with pytest.raises(ConvtError, match="filters"):
        make_spec(filters=np.bool_(True), kernel_size=3)


def test_input_shape_as_text_or_garbage() -> None:
    spec = make_spec(filters=4, kernel_size=2, strides=2)
    assert spec.output_shape("1,5,5,3") == (1, 10, 10, 4)
    for bad in (None, 5, {"a": 1}):
        with pytest.raises(ConvtError, match="input_shape"):
            spec.output_shape(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("text", ["1,,5,3", "1,\u0665,5,3", "1,+5,5,3", "1, 5 5,3"])
def test_parse_shape_is_strict(text: str) -> None:
    with pytest.raises(ConvtError, match="input_shape"):
        parse_shape(text)


@pytest.mark.parametrize("value", [None, 5, b"1,2"])
def test_parse_shape_rejects_non_text(value: object) -> None:
    with pytest.raises(ConvtError, match="input_shape"):
        parse_shape(value)  # type: ignore[arg-type]


@pytest.mark.parametrize("args,field", [
    ((-3, 3, 2, 1, "same", None), "input length"),
    ((5, 3, 2, 1, "foo", None), "padding"),
    ((5, 0, 2, 1, "same", None), "kernel_size"),
    ((5, 3, 2, 1, "same", 2), "output_padding"),
])
def test_keras_output_length_validates(args: tuple, field: str) -> None:
    with pytest.raises(ConvtError, match=field):
        keras_output_length(*args)


def test_crop_for_axis_validates() -> None:
    with pytest.raises(ConvtError, match="kernel_size"):
        crop_for_axis(0, 2, 1, "same", None)
    with pytest.raises(ConvtError, match="output_padding"):
        crop_for_axis(3, 2, 1, "same", 5)


def test_config_file_encodings_and_structure(tmp_path: Path) -> None:
    good = {"filters": 4, "kernel_size": 3}
    bom = tmp_path / "bom.json"
    bom.write_bytes(b"\xef\xbb\xbf" + json.dumps(good).encode())
    assert load_config(bom).filters == 4
    latin = tmp_path / "latin.json"
    latin.write_bytes(b'{"filters": 4, "kernel_size": 3, "name": "\xe9"}')
    with pytest.raises(ConvtError, match="not UTF-8"):
        load_config(latin)
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100000 + "]" * 100000)
    with pytest.raises(ConvtError, match="config"):
        load_config(deep)
    dup = tmp_path / "dup.json"
    dup.write_text('{"filters": 4, "kernel_size": 3, "filters": 8}')
    with pytest.raises(ConvtError, match="'filters' is given twice"):
        load_config(dup)


def test_bad_keras_json_value_is_attributed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    (tmp_path / "keras.json").write_text(json.dumps({"image_data_format": "NCHW"}))
    with pytest.raises(ConvtError, match="image_data_format in .*keras.json.* is 'NCHW'"):
        make_spec(filters=1, kernel_size=1)
