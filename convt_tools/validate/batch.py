"""Validation at CI scale: deterministic shards and a process pool with ordered results.

- :func:`parse_shard` / :func:`take_shard`: ``--shard K/N`` keeps the configs
  whose position ``i`` (0-based, in the expanded, sorted config list) has
  ``i % N == K - 1``. Every config lands in exactly one of the N shards, the
  split depends only on the list (not on timing or the machine), and the
  round-robin spreads slow and fast configs evenly.
- :func:`run_ordered`: ``func`` over ``items`` in ``jobs`` worker processes
  (``jobs == 1``: in this process), results in the input order. Each item is
  computed by the same deterministic code whichever process runs it, so the
  results equal a ``jobs=1`` run. Workers are forked (they inherit the
  imported modules: no start-up cost) while no runtime has created a session
  in this process (no engine thread pools to inherit), else spawned; they
  limit onnxruntime, OpenMP and BLAS to one thread each, so N jobs use N
  cores. ``progress`` is called with the number of items finished.
"""

from __future__ import annotations

import os
import re
from typing import Any, Callable, Sequence, TypeVar

from ..errors import ConvtError

T = TypeVar("T")
R = TypeVar("R")

_SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")
_THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def parse_shard(text: str) -> tuple[int, int]:
    """``"K/N"`` -> ``(K, N)`` with ``1 <= K <= N``; else a ConvtError naming ``shard``."""
    match = _SHARD.match(text) if isinstance(text, str) else None
    if match:
        from ..spec.values import parse_int

        k, n = (parse_int(match.group(i), "shard", "expected K/N with 1 <= K <= N")
                for i in (1, 2))
        if 1 <= k <= n:
            return k, n
    raise ConvtError(f"shard: got {text!r}; expected K/N with 1 <= K <= N (e.g. 1/4: the "
                     f"first of four shards).", field="shard")


def take_shard(items: Sequence[T], shard: tuple[int, int] | None) -> list[T]:
    """The items of shard ``(K, N)``: positions ``i`` with ``i % N == K - 1``."""
    if shard is None:
        return list(items)
    k, n = shard
    return [item for i, item in enumerate(items) if i % n == k - 1]


def check_jobs(jobs: Any) -> int:
    """``jobs`` as a positive int; else a ConvtError naming ``jobs``."""
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ConvtError(f"jobs: got {jobs!r}; expected an integer >= 1 (worker processes).",
                         field="jobs")
    return jobs


def _init_worker() -> None:
    for name in _THREAD_ENV:
        os.environ.setdefault(name, "1")
    os.environ["CONVT_WORKER_THREADS"] = "1"


def worker_threads() -> int | None:
    """Threads a runtime session should use in this process (1 in a pool worker, else None)."""
    value = os.environ.get("CONVT_WORKER_THREADS")
    return int(value) if value and value.isdigit() else None


def run_ordered(func: Callable[[T], R], items: Sequence[T], jobs: int,
                progress: Callable[[int], None] | None = None) -> list[R]:
    """``[func(item) for item in items]`` in ``jobs`` processes; order kept (module doc)."""
    jobs = check_jobs(jobs)
    if jobs == 1 or len(items) <= 1:
        out = []
        for item in items:
            out.append(func(item))
            if progress:
                progress(1)
        return out
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    workers = min(jobs, len(items))
    # Small chunks keep the workers busy to the end; a few per worker amortise the IPC.
    chunk = max(1, min(16, len(items) // (workers * 4)))
    from ..runtimes.base import Runtime

    fork = "fork" in multiprocessing.get_all_start_methods() and not Runtime.sessions_created
    ctx = multiprocessing.get_context("fork" if fork else "spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx,
                             initializer=_init_worker) as pool:
        out = []
        for result in pool.map(func, items, chunksize=chunk):
            out.append(result)
            if progress:
                progress(1)
        return out

