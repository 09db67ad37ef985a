"""``convt bench``: which runtime and export form runs a layer fastest, and exactly.

For every layer (a layer config, or each transposed-conv layer of a saved
model, as :mod:`convt_tools.sources` resolves them), every export form
(``portable``, ``compact``; torch configs have the portable one), every
thread count and every runtime of the registry (:mod:`convt_tools.runtimes`):

- ``median_ms``: the median latency of one call, over runs until the
  median's 95% interval is within ``precision`` (default 3%) or the time
  budget per cell (default 1 s) is spent (:func:`measure`);
- ``spread_ms``: the interquartile range of those runs;
- ``first_run_ms``: loading (session creation, compilation) plus the first run;
- ``exact``: the first output judged against the NumPy reference by the
  validate verb (its tolerance), and the last timed output against the first;
- ``ratio_to_fastest``: median / the fastest exact median of the same layer
  at the same thread count; None when not exact (a fast wrong answer is
  never the fastest).

Timings are figures, never assertions: they move with the machine's load.
"""

from __future__ import annotations

from ._recorder import Recorded, RecordedModel, Timer, recording
from ._run import (BENCH_FORMS, TARGET_FORM, BenchReport, BenchResult, LayerSourceLike, Skipped,
                   bench_layers, installed_runtime_names, parse_forms, parse_threads,
                   rank_results)
from ._timing import Timing, measure, median_interval

__all__ = ["BENCH_FORMS", "TARGET_FORM", "BenchReport", "BenchResult", "LayerSourceLike",
           "Recorded", "RecordedModel", "Skipped", "Timer", "Timing", "bench_layers",
           "installed_runtime_names", "measure", "median_interval", "parse_forms", "parse_threads",
           "rank_results", "recording"]
