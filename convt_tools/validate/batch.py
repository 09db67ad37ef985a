"""Validation at CI scale: deterministic shards and a process pool with ordered results.

- :func:`parse_shard` / :func:`take_shard`: ``--shard K/N`` keeps the configs
  whose position ``i`` (0-based, in the expanded, sorted config list) has
  ``i % N == K - 1``. Every config lands in exactly one of the N shards, the
  split depends only on the list (not on timing or the machine), and the
  round-robin spreads slow and fast configs evenly.
- :func:`run_ordered`: ``func`` over ``items`` in ``jobs`` worker processes
  (``jobs == 1``: in this process), results in the input order. Each item is
  computed by the same deterministic code whichever process runs it, so the
  results equal a ``jobs=1`` run. The start method and the threads are
  explicit arguments (nothing travels through the environment or a global
  flag): the CLI forks (workers inherit the imported modules; it creates no
  engine session before); spawned workers start even when the caller's main
  module cannot be re-imported (a script on stdin). The CLI gives each
  runtime adapter ``threads=1`` in a worker, so N jobs use N cores. Ctrl-C
  stops the workers and raises KeyboardInterrupt (the CLI exits 130).
  ``progress`` is called with the number of items finished.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from typing import Any, Callable, Iterator, Sequence, TypeVar

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


def default_start_method() -> str:
    """``"fork"`` where the platform has it, else ``"spawn"``.

    Fork is right for a caller that has not created engine sessions (their
    thread pools do not survive a fork): the ``convt`` CLI creates none before
    its workers start. A library caller that has run models in this process
    passes ``"spawn"`` to :func:`run_ordered`.
    """
    import multiprocessing

    return "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"


def _init_worker(threads: int) -> None:
    """A worker: ``threads`` for OpenMP/BLAS, and Ctrl-C left to the parent (it stops us)."""
    import signal

    for name in _THREAD_ENV:
        os.environ.setdefault(name, str(threads))
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextlib.contextmanager
def _main_not_reimported(start_method: str) -> Iterator[None]:
    """While inside, spawned workers do not re-import a ``__main__`` that is no file.

    ``spawn`` re-runs the caller's main module from its ``__file__`` in each
    worker; a script fed on stdin (``python - < script.py``: ``"<stdin>"``) or
    an interactive caller has none to run, and the workers need only
    importable functions, so ``__file__`` is hidden while they start.
    """
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    hide = (start_method != "fork" and main is not None and path is not None
            and getattr(getattr(main, "__spec__", None), "name", None) is None
            and not os.path.isfile(path))
    if hide:
        del main.__file__  # type: ignore[union-attr]
    try:
        yield
    finally:
        if hide:
            main.__file__ = path  # type: ignore[union-attr]


def _stop_workers(pool: Any) -> None:
    """Kill the pool's workers now (Ctrl-C or an error in the parent): no pending item runs."""
    for proc in list((getattr(pool, "_processes", None) or {}).values()):
        if proc.is_alive():
            proc.terminate()
    pool.shutdown(wait=False, cancel_futures=True)


def run_ordered(func: Callable[[T], R], items: Sequence[T], jobs: int,
                progress: Callable[[int], None] | None = None, *,
                start_method: str | None = None, threads: int = 1) -> list[R]:
    """``[func(item) for item in items]`` in ``jobs`` processes; order kept (module doc).

    ``start_method``: ``fork``, ``spawn`` or ``forkserver`` (default
    :func:`default_start_method`); ``threads``: OpenMP/BLAS threads of each
    worker (the runtimes' own thread counts travel in the items). Ctrl-C in
    the parent kills the workers and raises :class:`KeyboardInterrupt`.
    """
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

    method = start_method or default_start_method()
    workers = min(jobs, len(items))
    # Small chunks keep the workers busy to the end; a few per worker amortise the IPC.
    chunk = max(1, min(16, len(items) // (workers * 4)))
    ctx = multiprocessing.get_context(method)
    with _main_not_reimported(method):
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx,
                                   initializer=_init_worker, initargs=(threads,))
        try:
            out = []
            for result in pool.map(func, items, chunksize=chunk):
                out.append(result)
                if progress:
                    progress(1)
        except BaseException:
            _stop_workers(pool)
            raise
        pool.shutdown(wait=True)
        return out
