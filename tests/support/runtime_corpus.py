"""The runtime-readings corpus (fixtures/runtimes/): one-node ConvTranspose forms and the
forms derived from them, each run on a runtime and classified against the ONNX spec.

``fixtures/runtimes/corpus.json`` lists the cases (written by
``fixtures/generate_runtimes.py``): ``id``, ``form`` (``node``, ``portable``,
``group_split``, ``bias_add``), ``model`` (the file under ``models/``),
``meaning`` (the one-node model whose ONNX-spec output every form of the case
must give), ``x_shape``, ``seed`` (of the input), ``static`` (spatial input
dims fixed in the model, else symbolic) and ``full_output_shape``.

The expected output is the ONNX spec's, computed in float64 by
:func:`spec_output` from the meaning node alone: the full transposed
convolution, the ``onnx-spec`` window (:func:`convt_tools.check.windows.intent_windows`)
and the bias, independent of every runtime. :func:`classify` names what a
runtime's output is: ``exact`` (the spec's window, values within
:func:`convt_tools.check.probe.close`), ``window`` (another window, which),
``wrong`` (no window explains it) or ``refused`` (with the runtime's first line).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

from convt_tools.check.attrs import ConvTAttrs, read_attrs
from convt_tools.check.probe import close, identify_window, max_abs_diff
from convt_tools.check.windows import apply_window, full_output, intent_windows, interpretations

HERE = Path(__file__).resolve().parents[2] / "fixtures" / "runtimes"
CORPUS = HERE / "corpus.json"


def load_corpus(root: Path = HERE) -> list[dict[str, Any]]:
    """The cases of ``root/corpus.json`` (a list of dicts, module doc)."""
    return list(json.loads((root / "corpus.json").read_text(encoding="utf-8"))["cases"])


def measured(runtime: str, root: Path = HERE) -> dict[str, Any]:
    """``root/<runtime>.json``: ``{"version": ..., "outcomes": {case id: outcome}}``."""
    return dict(json.loads((root / f"{runtime}.json").read_text(encoding="utf-8")))


def case_input(case: dict[str, Any]) -> np.ndarray:
    """The case's seeded float32 input."""
    rng = np.random.default_rng(int(case["seed"]))
    return rng.standard_normal(tuple(case["x_shape"])).astype(np.float32)


def meaning_node(case: dict[str, Any], root: Path = HERE
                 ) -> tuple[ConvTAttrs, np.ndarray, np.ndarray | None]:
    """The meaning model's ConvTranspose attributes, W and B (None without a bias)."""
    model = onnx.load(str(root / "models" / case["meaning"]))
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    node = next(n for n in model.graph.node if n.op_type == "ConvTranspose")
    w = inits[node.input[1]]
    b = inits[node.input[2]] if len(node.input) > 2 and node.input[2] else None
    attrs, problems = read_attrs(node, w.shape, len(case["x_shape"]))
    assert attrs is not None, problems
    return attrs, w, b


def spec_output(case: dict[str, Any], root: Path = HERE) -> np.ndarray:
    """The ONNX-spec output of the case (float64), from its meaning node (module doc)."""
    attrs, w, b = meaning_node(case, root)
    x = case_input(case)
    windows = intent_windows(attrs, x.shape[2:], "onnx-spec")
    return apply_window(full_output(x, w, attrs), b, windows)


def classify(case: dict[str, Any], y: np.ndarray | str, root: Path = HERE) -> dict[str, Any]:
    """What output ``y`` (or refusal ``y``, a string) is for ``case`` (module doc).

    ``{"outcome", "window", "reason", "max_abs_error"}``; ``window`` is a list of
    ``[begin, length]`` per spatial axis (on the natural full output) or None.
    """
    if isinstance(y, str):
        return {"outcome": "refused", "window": None, "reason": y, "max_abs_error": None}
    attrs, w, b = meaning_node(case, root)
    x = case_input(case)
    full = full_output(x, w, attrs)
    spec = intent_windows(attrs, x.shape[2:], "onnx-spec")
    y64 = np.asarray(y, np.float64)
    want = apply_window(full, b, spec)
    if close(y64, want):
        return {"outcome": "exact", "window": [[v.begin, v.length] for v in spec],
                "reason": None, "max_abs_error": _rounded(max_abs_diff(y64, want))}
    b64 = None if b is None else b.astype(np.float64)
    found = (identify_window(y64, full, b64, interpretations(attrs, x.shape[2:]))
             if y64.ndim == full.ndim else None)
    if found is None:
        return {"outcome": "wrong", "window": None,
                "reason": f"output {list(y64.shape)} matches no window "
                          f"(spec output {list(want.shape)})",
                "max_abs_error": _rounded(max_abs_diff(y64, want))}
    return {"outcome": "window", "window": [[v.begin, v.length] for v in found],
            "reason": None, "max_abs_error": _rounded(max_abs_diff(y64, want))}


def _rounded(value: float | None) -> float | None:
    return None if value is None else float(f"{value:.3g}")


def same_outcome(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Two classifications agree: outcome and window (refusal texts and errors may differ)."""
    return bool(a["outcome"] == b["outcome"] and a["window"] == b["window"])
