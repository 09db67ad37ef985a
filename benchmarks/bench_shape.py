"""Wall time of ``convt shape`` as a user runs it (target: <= 0.3 s).

Runs the installed ``convt`` console script as a subprocess several times and
prints min / median / max wall time, plus the import cost of the command
module. Usage: ``python3 benchmarks/bench_shape.py [--repeats N]``.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time

TARGET_S = 0.3
ARGS = ["shape", "--filters", "32", "--kernel-size", "2", "--strides", "2",
        "--input-shape", "4,10,8,128"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=15)
    opts = parser.parse_args()
    exe = shutil.which("convt")
    cmd = [exe] if exe else [sys.executable, "-m", "convt_tools"]
    subprocess.run([*cmd, *ARGS], check=True, capture_output=True)  # warm the file cache
    times = []
    for _ in range(opts.repeats):
        t0 = time.perf_counter()
        out = subprocess.run([*cmd, *ARGS], check=True, capture_output=True, text=True)
        times.append(time.perf_counter() - t0)
    assert out.stdout.strip() == "(4, 20, 16, 32)", out.stdout
    bare = []
    for _ in range(5):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        bare.append(time.perf_counter() - t0)
    med = statistics.median(times)
    print(f"convt shape (seed example), {opts.repeats} runs: min {min(times):.3f} s, "
          f"median {med:.3f} s, max {max(times):.3f} s; target <= {TARGET_S} s: "
          f"{'MET' if med <= TARGET_S else 'MISSED'}")
    print(f"bare python startup: median {statistics.median(bare):.3f} s "
          f"(overhead of convt itself: {med - statistics.median(bare):.3f} s)")


if __name__ == "__main__":
    main()
