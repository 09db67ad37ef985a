"""The conformance tolerance against real-Keras golden outputs (see tests/test_conformance.py's
docstring for the derivation): float32 ``rtol = atol = 1e-5``; float16
``|ours - keras| <= 4 * u * S + 4 * eps * |keras|`` with ``S`` the case's
``torch_check.float16_error_scale``."""

from __future__ import annotations

from typing import Any

import numpy as np

RTOL = 1e-5
ATOL = 1e-5
F16_U = 2.0 ** -11              # float16 unit roundoff (eps / 2)
F16_EPS = 2.0 ** -10            # 9.8e-4
F16_ATOL_U_SCALE = 4            # atol = 4 * u * S (see test_conformance.py)
F16_RTOL = 4 * F16_EPS          # 3.9e-3


# Largest error seen per check on float16 cases, in units of the tolerance (for the log).
F16_OBSERVED: dict[str, float] = {}


def assert_close(actual: np.ndarray, expected: np.ndarray, what: str,
                 meta: dict[str, Any] | None = None) -> None:
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != Keras {expected.shape}"
    assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype}, Keras {expected.dtype}"
    if expected.dtype == np.float16:
        assert meta is not None
        scale = meta["torch_check"]["float16_error_scale"]
        atol = F16_ATOL_U_SCALE * F16_U * scale
        a64, e64 = actual.astype(np.float64), expected.astype(np.float64)
        if a64.size:
            frac = float(np.max(np.abs(a64 - e64) / (atol + F16_RTOL * np.abs(e64))))
            key = what.split(" (")[0]
            F16_OBSERVED[key] = max(F16_OBSERVED.get(key, 0.0), frac)
        np.testing.assert_allclose(a64, e64, rtol=F16_RTOL, atol=atol,
                                   err_msg=f"{what} differs from Keras (float16, S={scale:.3g})")
        return
    assert actual.dtype == np.float32, f"{what}: dtype {actual.dtype}, expected float32"
    np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=ATOL,
                               err_msg=f"{what} differs from Keras")
