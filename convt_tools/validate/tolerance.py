"""How close the model must be to the reference: ``|model - ref| <= atol + rtol * |ref|``.

Default tolerances (stated in every result), with ``eps`` the machine epsilon
of the model's dtype, ``eps_acc`` that of the accumulation (float32 for
float16 and float32 models: runtimes accumulate float16 in float32),
``n = C_in * kh * kw`` the accumulation length and ``Y`` the largest
magnitude of the reference output before its activation::

    P    = sqrt(n) * max|x| * max|kernel|
    atol = 8 * eps_acc * (P + max|bias|) + 2 * eps * Y
    rtol = 8 * eps_acc * P + 2 * eps * max(2, Y)

The ``eps_acc`` terms bound the rounding of the length-``n`` dot products
(random-walk growth ``sqrt(n)``); the ``eps`` terms the rounding of the
output and of the pre-activation values in the model's dtype. ``rtol`` also
carries absolute errors through activations that turn them into relative
ones (``exp``, ``softmax``). A wrong crop side, a flipped or untransposed kernel, or a
missing bias gives errors of the size of the output itself, orders of
magnitude above these.

A given ``atol``/``rtol`` (a number ``>= 0``) replaces its default; the
other keeps the formula (:func:`resolve_tolerance`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import ConvtError

TOL_FACTOR = 8.0


@dataclass(frozen=True)
class Tolerance:
    """``|model - ref| <= atol + rtol * |ref|``; ``source`` says where the numbers came from."""

    atol: float
    rtol: float
    source: str


def default_tolerance(dtype: np.dtype | str, x: np.ndarray, kernel: np.ndarray,
                      bias: np.ndarray | None, pre_max: float) -> Tolerance:
    """The module docstring's formula for ``atol`` and ``rtol``.

    ``pre_max`` is ``max|y|`` of the reference before its activation.
    """
    dt = np.dtype(dtype)
    eps_out = float(np.finfo(dt).eps)
    eps_acc = float(np.finfo(np.float64 if dt == np.float64 else np.float32).eps)
    n = math.prod(kernel.shape[:-2]) * kernel.shape[-1]   # C_in * prod(kernel_size)
    amax = lambda a: float(np.max(np.abs(a))) if a is not None and a.size else 0.0  # noqa: E731
    p = math.sqrt(n) * amax(x) * amax(kernel)
    atol = TOL_FACTOR * eps_acc * (p + amax(bias)) + 2 * eps_out * pre_max
    rtol = TOL_FACTOR * eps_acc * p + 2 * eps_out * max(2.0, pre_max)
    src = (f"default for {dt.name}: atol = 8*eps_acc*(P + max|bias|) + 2*eps*Y, "
           f"rtol = 8*eps_acc*P + 2*eps*max(2, Y); P = sqrt(n)*max|x|*max|kernel| = {p:.3g}, "
           f"n = C_in*prod(kernel_size) = {n}, Y = max|pre-activation output| = {pre_max:.3g}, "
           f"eps = {eps_out:.3g}, eps_acc = {eps_acc:.3g} (accumulation in "
           f"{'float64' if dt == np.float64 else 'float32'})")
    return Tolerance(atol, rtol, src)


def resolve_tolerance(dtype: np.dtype, x: np.ndarray, kernel: np.ndarray,
                      bias: np.ndarray | None, pre_max: float, rtol: float | None,
                      atol: float | None) -> Tolerance:
    """:func:`default_tolerance` with a given ``rtol``/``atol`` (number ``>= 0``) in its place."""
    tol = default_tolerance(dtype, x, kernel, bias, pre_max)
    for name, value in (("rtol", rtol), ("atol", atol)):
        if value is not None and (not isinstance(value, (int, float)) or not value >= 0
                                  or not math.isfinite(value)):
            raise ConvtError(f"{name}: got {value!r}; expected a finite number >= 0.", field=name)
    if rtol is None and atol is None:
        return tol
    return Tolerance(tol.atol if atol is None else float(atol),
                     tol.rtol if rtol is None else float(rtol),
                     "given" + ("" if rtol is not None and atol is not None
                                else f" (the other: {tol.source})"))
