"""Outcomes: what a runtime computed for a corpus case, and what check's table predicts.

The truth is the ONNX-spec reference: ``y = apply_window(F, B, onnx-spec windows)``
with ``F`` the float64 NumPy full output (:mod:`convt_tools.check.windows`). One
:class:`Outcome` per (case, runtime), :data:`OUTCOMES`:

* ``exact``: same shape and :func:`~convt_tools.check.close` to the reference;
* ``refused``: the runtime would not load or run it (``reason``: its first line);
* ``wrong window``: the output is another window of ``F`` (``window``: ``[[begin,
  length], ...]`` per spatial axis), identified as check's reading matrix does
  (:func:`convt_tools.check.matrix.identify_reading`: the documented readings and
  named interpretations first, then a search; ``undetermined`` when two candidates
  fit, then ``window`` is None and ``reason`` says so);
* ``wrong values``: no window explains it (``max_abs_error``, None when the shapes
  differ; ``reason`` gives the shape), or two loads of the model computed different
  outputs (:func:`not_repeatable`; ``reason`` says so, ``max_abs_error`` is the larger
  of the two loads' errors).

:func:`predict` is the same outcome from check's DOCUMENTED table
(:func:`~convt_tools.check.readings.documented_reading`) for every ConvTranspose
node of the case's model, then the table's
:meth:`~convt_tools.check.readings.RuntimeRules.wrong_values` (e.g. a bias on a
runtime that ``needs_bias_add``: ``wrong values``); ``unknown`` where the table
documents nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..check import (
    apply_window, close, full_output, intent_windows, iter_convtranspose, max_abs_diff,
)
from ..check.attrs import ConvTAttrs, read_attrs
from ..check.matrix import candidate_windows, identify_reading
from ..check.readings import documented_reading, needed_for, rules_for
from ..check.runners import Refusal
from ..geometry import Window
from ..onnxbase import infer_shapes
from .corpus import Built

__all__ = ["OUTCOMES", "Outcome", "Unrepeatable", "judge_output", "not_repeatable", "predict",
           "reference_output"]

EXACT, REFUSED, WRONG_WINDOW, WRONG_VALUES, UNKNOWN = (
    "exact", "refused", "wrong window", "wrong values", "unknown")
OUTCOMES = (EXACT, REFUSED, WRONG_WINDOW, WRONG_VALUES)


@dataclass(frozen=True)
class Outcome:
    """One runtime's result on one case (module doc)."""

    outcome: str
    window: tuple[tuple[int, int], ...] | None = None
    reason: str = ""
    max_abs_error: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"outcome": self.outcome,
                "window": None if self.window is None else [list(w) for w in self.window],
                "reason": self.reason or None, "max_abs_error": self.max_abs_error}

    def key(self) -> tuple[str, tuple[tuple[int, int], ...] | None]:
        """What a prediction must share with a measurement: the outcome, and the window
        of a wrong window."""
        return self.outcome, self.window if self.outcome == WRONG_WINDOW else None

    def cell(self) -> str:
        """The markdown table's cell: ``exact``, ``refused``, ``window (b, l)...`` or
        ``wrong values``."""
        if self.outcome == WRONG_WINDOW:
            return ("window " + " ".join(f"({b}, {n})" for b, n in self.window)
                    if self.window is not None else "window (undetermined)")
        return self.outcome


def _pairs(windows: tuple[Window, ...]) -> tuple[tuple[int, int], ...]:
    return tuple((w.begin, w.length) for w in windows)


def reference_output(built: Built) -> tuple[np.ndarray, np.ndarray]:
    """``(F, y)``: the float64 full output and the ONNX-spec result of the case's node."""
    a = built.case.conv_attrs()
    full = full_output(built.x, built.w, a)
    b = None if built.b is None else built.b.astype(np.float64)
    return full, apply_window(full, b, intent_windows(a, built.case.sizes, "onnx-spec"))


@dataclass(frozen=True)
class Unrepeatable:
    """Two loads of one model on one runtime that did not compute the same thing."""

    first: list[np.ndarray] | Refusal
    second: list[np.ndarray] | Refusal
    detail: str


def _diff(a: list[np.ndarray], b: list[np.ndarray]) -> str | None:
    """None when both loads gave bitwise the same outputs (NaN equal to NaN), else why not."""
    if len(a) != len(b):
        return f"{len(a)} outputs, then {len(b)}"
    for x, y in zip(a, b):
        if np.shape(x) != np.shape(y):
            return f"output shape {list(np.shape(x))}, then {list(np.shape(y))}"
        if not np.array_equal(x, y, equal_nan=True):
            d = np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64))
            return f"values differ by up to {float(np.nanmax(d, initial=0.0)):.3g}"
    return None


def not_repeatable(first: list[np.ndarray] | Refusal, second: list[np.ndarray] | Refusal
                   ) -> list[np.ndarray] | Refusal | Unrepeatable:
    """The result of two loads of one model: the first when both agree bitwise (or both
    are refused), else an :class:`Unrepeatable` that :func:`judge_output` calls wrong
    values."""
    if isinstance(first, str) or isinstance(second, str):
        if isinstance(first, str) and isinstance(second, str):
            return first
        return Unrepeatable(first, second, "refused on one load and ran on the other")
    why = _diff(first, second)
    return first if why is None else Unrepeatable(first, second, why)


def judge_output(built: Built, out: list[np.ndarray] | Refusal | Unrepeatable) -> Outcome:
    """The outcome of one runtime's output (or refusal) on ``built`` (module doc)."""
    if isinstance(out, Unrepeatable):
        errs = [judge_output(built, o).max_abs_error for o in (out.first, out.second)]
        known = [e for e in errs if e is not None]
        return Outcome(WRONG_VALUES, reason="not repeatable: a second load of the same model "
                       f"gave other outputs ({out.detail})",
                       max_abs_error=max(known) if known else None)
    if isinstance(out, str):
        return Outcome(REFUSED, reason=out)
    if not out:
        return Outcome(WRONG_VALUES, reason="no output")
    y = np.asarray(out[0], np.float64)
    full, want = reference_output(built)
    err = max_abs_diff(y, want)
    if close(y, want):
        return Outcome(EXACT, max_abs_error=err)
    case = built.case
    b = None if built.b is None else built.b.astype(np.float64)
    reading = identify_reading(y, full, b, candidate_windows(case.conv_attrs(), case.sizes,
                                                             case.static))
    if reading.status == "window" and reading.windows is not None:
        return Outcome(WRONG_WINDOW, _pairs(reading.windows), max_abs_error=err)
    if reading.status == "undetermined":
        return Outcome(WRONG_WINDOW, None, reading.note, err)
    shape = "" if err is not None else f"output shape {list(y.shape)}, expected {list(want.shape)}"
    return Outcome(WRONG_VALUES, reason=shape, max_abs_error=err)


def _writes_graph_output(built: Built) -> list[bool]:
    """Per ConvTranspose node of the case's model (in :func:`_node_attrs` order): its output
    is a graph output."""
    outputs = {v.name for v in built.model.graph.output}
    return [ref.node.output[0] in outputs for ref in iter_convtranspose(built.model)]


def _node_attrs(built: Built) -> list[ConvTAttrs]:
    """The attributes of every ConvTranspose node of the case's model."""
    shapes, _, _ = infer_shapes(built.model)
    out = []
    for ref in iter_convtranspose(built.model):
        known = shapes.get(ref.graph_path, {})
        w_shape = known.get(ref.node.input[1])
        known_w = None if w_shape is None or None in w_shape else [int(d or 0) for d in w_shape]
        attrs, _ = read_attrs(ref.node, known_w, built.case.rank + 2)
        assert attrs is not None, f"{built.case.id}: unreadable node {ref.label}"
        out.append(attrs)
    return out


def predict(built: Built, runtime: str) -> Outcome:
    """What check's documented table says ``runtime`` computes for the case (module doc).

    A one-node case that the table reads as another window is a ``wrong window`` with
    that window; in a derived form (several nodes) the window is not composed (None).
    """
    case = built.case
    nodes = _node_attrs(built)
    rules = rules_for(runtime)
    windows = []
    for attrs, last in zip(nodes, _writes_graph_output(built)):
        r = documented_reading(runtime, attrs, case.sizes, case.static, attrs.output_shape_full)
        if r.status == "refused":
            return Outcome(REFUSED, reason=r.note)
        if last and needed_for(rules.needs_rank_restore, attrs.rank):
            return Outcome(WRONG_VALUES, reason="its output, a graph output, gets a trailing "
                                                "unit dim (needs_rank_restore)")
        if r.status != "window" or r.windows is None:
            return Outcome(UNKNOWN, reason=r.note)
        why = rules.wrong_values(attrs)
        if why is not None:
            return Outcome(WRONG_VALUES, reason=why)
        windows.append((attrs, r.windows))
    wrong = [(a, w) for a, w in windows if tuple(w) != intent_windows(a, case.sizes, "onnx-spec")]
    if not wrong:
        return Outcome(EXACT)
    return Outcome(WRONG_WINDOW, _pairs(wrong[0][1]) if len(nodes) == 1 else None)
