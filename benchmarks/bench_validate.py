"""Throughput of ``convt validate`` at CI scale (target: >= 150 small configs/s with --jobs 2).

Writes a grid of small Keras ``Conv2DTranspose`` configs (kernel 1-4, stride
1-3, valid/same, output_padding, three activations, both data formats;
build_config input ``(2, 5, 6, C)``) to a temporary folder, then runs the
real command line as a user would (``python -m convt_tools validate DIR
--json``) with ``--jobs 1`` and ``--jobs 2``, and prints configs per second
for each (process start-up included), the speed-up, and whether the two JSON
reports are identical (``--jobs`` must not change any result). It also runs
``--shard K/3`` for K = 1..3 and checks that the shards' results together
are exactly the full run's. Usage::

    python3 benchmarks/bench_validate.py [--configs 600] [--runtime onnxruntime]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET = 150.0  # configs per second with --jobs 2


def write_configs(folder: Path, count: int) -> int:
    grid = itertools.product((1, 2, 3, 4), (1, 2, 3), ("valid", "same"), (None, 0, 1),
                             ("linear", "relu", "gelu"), ("channels_last", "channels_first"),
                             (3, 4))
    n = 0
    for k, s, padding, op, act, fmt, filters in grid:
        if op is not None and op >= s:
            continue
        shape = [None, 5, 6, 3] if fmt == "channels_last" else [None, 3, 5, 6]
        cfg = {"class_name": "Conv2DTranspose",
               "config": {"filters": filters, "kernel_size": [k, k], "strides": [s, s],
                          "padding": padding, "output_padding": None if op is None else [op, op],
                          "activation": act, "data_format": fmt, "name": f"ct{n}"},
               "build_config": {"input_shape": shape}}
        (folder / f"c{n:04d}.json").write_text(json.dumps(cfg))
        n += 1
        if n >= count:
            break
    return n


CPU: dict[str, float] = {}


def run(folder: Path, *extra: str) -> tuple[float, dict]:
    import resource

    cmd = [sys.executable, "-m", "convt_tools", "validate", str(folder), "--json", *extra]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU[" ".join(extra)] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if out.returncode not in (0, 1):
        sys.exit(f"convt validate failed ({out.returncode}): {out.stderr.strip()}")
    return wall, json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--configs", type=int, default=600)
    parser.add_argument("--runtime", default="onnxruntime")
    opts = parser.parse_args()
    env_root = str(Path(__file__).resolve().parent.parent)
    os.environ["PYTHONPATH"] = env_root + os.pathsep + os.environ.get("PYTHONPATH", "")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        n = write_configs(folder, opts.configs)
        rt = ["--runtime", opts.runtime]
        run(folder, "--shard", f"1/{n}", *rt)  # warm the file cache and imports
        t1, r1 = run(folder, "--jobs", "1", *rt)
        t2, r2 = run(folder, "--jobs", "2", *rt)
        shards = [run(folder, "--shard", f"{k}/3", "--jobs", "2", *rt)[1] for k in (1, 2, 3)]
    names = lambda report: sorted(r["name"] for r in report["results"])  # noqa: E731
    union = sorted(name for s in shards for name in names(s))
    same_shards = union == names(r1) and len(union) == len(set(union))
    by_name = {r["name"]: r for s in shards for r in s["results"]}
    same_shard_values = all(by_name[r["name"]] == r for r in r1["results"])
    results = len(r1["results"])
    print(f"{n} configs x runtime {opts.runtime} ({results} results; "
          f"{sum(r['status'] == 'PASS' for r in r1['results'])} PASS)")
    c1, c2 = CPU[f"--jobs 1 {' '.join(rt)}"], CPU[f"--jobs 2 {' '.join(rt)}"]
    print(f"--jobs 1: {t1:.2f} s wall, {n / t1:.0f} configs/s; CPU {c1:.2f} s "
          f"({1000 * c1 / n:.1f} ms per config)")
    print(f"--jobs 2: {t2:.2f} s wall, {n / t2:.0f} configs/s (speed-up {t1 / t2:.2f}x); CPU "
          f"{c2:.2f} s; target >= {TARGET:.0f} configs/s: {'MET' if n / t2 >= TARGET else 'MISSED'}")
    print(f"--jobs 2 if both cores were free: {2 * n / c2:.0f} configs/s (configs / (CPU s / 2)); "
          f"load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores "
          f"(wall figures are only meaningful on an idle machine)")
    print(f"--jobs 2 report identical to --jobs 1: {r1['results'] == r2['results']}")
    print(f"--shard 1/3..3/3 cover every config exactly once: {same_shards}; "
          f"identical results: {same_shard_values}")


if __name__ == "__main__":
    main()
