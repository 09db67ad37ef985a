"""The real-tool quantized fixtures of ``fixtures/quant/`` (issue 20), for tests.

``quant_entries()`` lists every written model with its manifest entry
(``hand`` or ``qs``), ``load_case(name)`` gives ``(model, entry, x, q_ref)``:
the ONNX model, its manifest entry, the float test input the generator used,
and the reference's output integers (``out/<name>.npz``'s ``q_ref``).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx

QUANT = Path(__file__).resolve().parents[2] / "fixtures" / "quant"


@functools.lru_cache(maxsize=1)
def manifest() -> dict[str, Any]:
    return json.loads((QUANT / "manifest.json").read_text())


def model_path(name: str) -> Path:
    sub = "hand" if name in manifest()["hand"] else "qs"
    return QUANT / sub / f"{name}.onnx"


def quant_entries() -> list[str]:
    """Every written model's name (hand-made and quantize_static), sorted."""
    m = manifest()
    names = list(m["hand"]) + [k for k, v in m["quantize_static"].items()
                               if v.get("quantize_static") == "ok"]
    return sorted(n for n in names if model_path(n).exists())


def entry(name: str) -> dict[str, Any]:
    m = manifest()
    return m["hand"].get(name) or m["quantize_static"][name]


def load_case(name: str) -> tuple[onnx.ModelProto, dict[str, Any], np.ndarray, np.ndarray | None]:
    e = entry(name)
    x = np.load(QUANT / "float" / f"{e['float_model']}.npz")["x"]
    out = QUANT / "out" / f"{name}.npz"
    q_ref = np.load(out)["q_ref"] if out.exists() and "q_ref" in np.load(out) else None
    return onnx.load(model_path(name)), e, x, q_ref


def is_right(name: str) -> bool:
    """RIGHT_* hand forms and every quantize_static model whose ONNX meaning is what was
    asked for (the wrong-axis / shared-scale quantize_static outputs are not right)."""
    e = entry(name)
    if "right" in e:
        return bool(e["right"])
    return e.get("w_granularity") in ("per_tensor", "per_output_channel", None)


# The form findings (check CT040-CT046) each wrong form must get; every other model none.
WRONG_FORM_CODES = {
    "WRONG_axis0_cin_scales": {"CT040"}, "WRONG_axis1_shared_groups": {"CT041"},
    "WRONG_dw_one_scale": {"CT042"}, "WRONG_bias_scale_x2": {"CT043"},
    "WRONG_bias_scale_pt_x2": {"CT043"}, "WRONG_zp_wrong_type": {"CT044"},
    "WRONG_zp_out_of_range": {"CT044"}, "WRONG_zp_wrapped_act": {"CT044"},
    "WRONG_zp_wrapped_w": {"CT044"}, "WRONG_scale_len_axis1": {"CT045"},
    "WRONG_int_outch_under_axis0": {"CT046"}, "WRONG_int_outch_under_pertensor": {"CT046"},
    "WRONG_int_pertensor_under_axis1": {"CT046"}, "WRONG_int_other_scale": {"CT046"},
}


def expected_form_codes(name: str) -> set[str]:
    """The form codes a model must get at least (wrong forms), from its recorded facts:
    quantize_static per_channel on depthwise (one scale) and grouped layers (axis-1 scales
    shared across groups), TensorQuantOverrides axis 0 on non-depthwise layers (C_in scales)."""
    form = name.split("__", 1)[1]
    if form.startswith("WRONG_"):
        return set(WRONG_FORM_CODES[form])
    e = entry(name)
    gran = e.get("w_granularity")
    return {"axis1_shared_across_groups": {"CT041"}, "per_input_channel": {"CT040"}}.get(
        gran, {"CT042"} if form.startswith("pc_") and name.split("_")[1] == "dw"
        and gran == "per_tensor" else set())


DILATED = QUANT.parent / "quant_dilated"


def dilated_cases() -> dict[str, Any]:
    """fixtures/quant_dilated/manifest.json's models: OpenVINO i8 with stride and dilation > 1."""
    return json.loads((DILATED / "manifest.json").read_text())["models"]
