"""Adaptive latency measurement: run until the median is known well enough, or the budget ends.

:func:`measure` calls ``run`` repeatedly and stops at the first of:

- at least ``min_runs`` calls and the distribution-free 95% confidence
  interval of the median (order statistics ``n/2 -+ 0.98*sqrt(n)``) no wider
  than ``precision`` times the median (both sides: ``(hi - lo) / median``);
- the time budget ``budget_s`` spent, after at least two calls (so a call
  that alone exceeds the budget is measured twice; ``min_runs`` 1: once);
- ``max_runs`` calls.

The result is the median, the spread (interquartile range, ``p75 - p25``),
the run count, whether the precision was reached and the median's interval,
and the median CPU time per call of the whole process (``cpu_clock``, by
default :func:`time.process_time`: every thread of the process, engine
workers included; not inflated by time slices lost to other processes, so
steadier than the wall clock on a shared machine, and above the wall time
when an engine computes on several threads). The clock is a
parameter, so tests drive the stopping rule with a scripted clock.
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass
from typing import Callable

__all__ = ["Timing", "median_interval", "measure"]


@dataclass(frozen=True)
class Timing:
    """What :func:`measure` found (seconds)."""

    median_s: float
    spread_s: float      # interquartile range p75 - p25
    runs: int
    converged: bool      # the median's 95% interval reached the precision asked for
    low_s: float = 0.0   # that interval (:func:`median_interval`)
    high_s: float = 0.0
    cpu_median_s: float = 0.0   # median CPU time of the process per call


def median_interval(times: list[float]) -> tuple[float, float]:
    """The distribution-free ~95% confidence interval of the median of ``times``.

    Sorted values at ranks ``floor(n/2 - 0.98*sqrt(n))`` and
    ``ceil(n/2 + 0.98*sqrt(n))`` (clamped to the sample).
    """
    s = sorted(times)
    n = len(s)
    half = 0.98 * math.sqrt(n)
    lo = max(0, math.floor(n / 2 - half))
    hi = min(n - 1, math.ceil(n / 2 + half))
    return s[lo], s[hi]


def _iqr(times: list[float]) -> float:
    if len(times) < 2:
        return 0.0
    q = statistics.quantiles(times, n=4, method="inclusive")
    return q[2] - q[0]


def measure(run: Callable[[], object], *, budget_s: float = 1.0, precision: float = 0.03,
            min_runs: int = 7, max_runs: int = 10_000,
            clock: Callable[[], float] = time.perf_counter,
            cpu_clock: Callable[[], float] = time.process_time) -> Timing:
    """Time ``run()`` adaptively (module docstring); ``run`` is called at least once."""
    times: list[float] = []
    cpu: list[float] = []
    start = clock()
    converged = False
    while len(times) < max_runs:
        c0 = cpu_clock()
        t0 = clock()
        run()
        t1 = clock()
        cpu.append(cpu_clock() - c0)
        times.append(t1 - t0)
        n = len(times)
        med = statistics.median(times)
        if n >= min_runs:
            lo, hi = median_interval(times)
            if med > 0 and (hi - lo) / med <= precision:
                converged = True
                break
        if t1 - start >= budget_s and n >= max(1, min(min_runs, 2)):
            break
    lo, hi = median_interval(times)
    return Timing(statistics.median(times), _iqr(times), len(times), converged, lo, hi,
                  statistics.median(cpu))
