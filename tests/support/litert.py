"""Running a ``.tflite`` export on the LiteRT interpreter and judging it as ``validate`` does.

Only through the ``litert`` runtime adapter (convt_tools.runtimes); callers skip first with
``runtime_or_skip("litert")`` when ai-edge-litert is not installed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from convt_tools.runtimes import get_runtime
from convt_tools.validate.diagnose import compare
from convt_tools.validate.tolerance import resolve_tolerance


def run_tflite(model: Any, x: np.ndarray) -> np.ndarray:
    """Output 0 of ``model`` (a TfliteModel, bytes or path) on the LiteRT interpreter."""
    return get_runtime("litert").load(model).run({"input": np.asarray(x)})[0]


def validate_error(got: np.ndarray, expected: np.ndarray, x: np.ndarray, kernel: np.ndarray,
                   bias: np.ndarray | None, dtype: Any, pre_max: float | None = None
                   ) -> tuple[bool, float, float]:
    """``(within, max_abs, atol)``: ``got`` against ``expected`` under the tolerance
    ``validate`` derives for ``dtype`` from the input, the weights and the output's size."""
    dt = np.dtype(dtype)
    exp64 = np.asarray(expected).astype(np.float64)
    ymax = pre_max if pre_max is not None else (float(np.abs(exp64).max()) if exp64.size else 0.0)
    tol = resolve_tolerance(dt, np.asarray(x).astype(dt),
                            np.asarray(kernel).astype(dt).astype(np.float64),
                            None if bias is None else np.asarray(bias).astype(dt).astype(np.float64),
                            ymax, None, None)
    cmp = compare(np.asarray(got), exp64, tol)
    return cmp.ok, cmp.max_abs, tol.atol
