"""Export a 1024 -> 1024 filters, k=4, stride-2 layer (16.8M parameters) and time it.

Target: ``export_spec`` with given weights in <= 1 s. Prints export time (given
weights, and with weights drawn from glorot_uniform), save time and model size.
Not a test; run ``python3 benchmarks/bench_export.py [--repeat N]``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np

from convt_tools.exporter import export_spec
from convt_tools.onnxbase import save_model
from convt_tools.spec import make_spec


def _best(fn, repeat: int) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (best is shown)")
    args = parser.parse_args()
    spec = make_spec(1024, 4, strides=2, padding="same", data_format="channels_last")
    rng = np.random.default_rng(0)
    kernel = rng.standard_normal(spec.kernel_shape(1024), dtype=np.float32) * 0.01
    bias = rng.standard_normal(1024, dtype=np.float32) * 0.01
    print(f"layer: filters 1024, in_channels 1024, kernel 4x4, stride 2, same "
          f"({kernel.size + bias.size:,} parameters)")

    t_export, model = _best(lambda: export_spec(spec, kernel, bias), args.repeat)
    print(f"export_spec (given weights):     {t_export * 1000:8.1f} ms  "
          f"{'OK' if t_export <= 1.0 else 'SLOWER THAN'} target 1000 ms")
    t_init, _ = _best(lambda: export_spec(spec, in_channels=1024, seed=0), args.repeat)
    print(f"export_spec (glorot_uniform):    {t_init * 1000:8.1f} ms")
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "big.onnx")
        t_save, _ = _best(lambda: save_model(model, path), args.repeat)
        size = os.path.getsize(path)
    print(f"save_model:                      {t_save * 1000:8.1f} ms")
    print(f"model size:                      {size / 2**20:8.1f} MiB ({size:,} bytes)")


if __name__ == "__main__":
    main()
