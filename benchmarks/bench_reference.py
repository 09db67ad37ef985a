"""Speed of the NumPy reference vs onnxruntime and onnx's ReferenceEvaluator (prints a table).

Single-threaded on both sides: BLAS threads are limited through the
environment *before* NumPy is imported (threadpoolctl when installed), and
onnxruntime runs with ``intra_op_num_threads=1``. Both evaluate the whole
Keras layer in its layout (NHWC in, NHWC out): the reference via
``keras_conv2d_transpose``, onnxruntime via the model ``export_spec`` builds
(Transpose -> ConvTranspose -> Transpose). Times are medians of repeats;
the ReferenceEvaluator runs once per case (it is ~1000x slower) and is
skipped where its estimated time exceeds ``--max-evaluator-seconds``.

    python benchmarks/bench_reference.py [--repeats 15] [--max-evaluator-seconds 60]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

try:  # optional: also pins BLAS already loaded elsewhere
    from threadpoolctl import threadpool_limits  # type: ignore[import-not-found]
    threadpool_limits(1)
except ImportError:
    pass

from convt_tools.exporter import export_spec  # noqa: E402
from convt_tools.reference import keras_conv2d_transpose  # noqa: E402
from convt_tools.spec import make_spec  # noqa: E402

# (name, NHWC input, filters, layer kwargs)
CASES = [
    ("a", (1, 32, 32, 64), 32, dict(kernel_size=4, strides=2, padding="same")),
    ("b", (8, 16, 16, 256), 128, dict(kernel_size=3, strides=2, padding="same")),
    ("c", (1, 64, 64, 128), 64, dict(kernel_size=4, strides=2, padding="valid")),
    ("d", (4, 8, 8, 512), 512, dict(kernel_size=2, strides=2, padding="valid")),
    ("e", (1, 128, 128, 32), 16, dict(kernel_size=3, strides=1, dilation_rate=2, padding="same")),
    ("f", (1, 4, 4, 3), 2, dict(kernel_size=3, strides=2, padding="valid")),
]


def median_time(fn, repeats: int, budget_s: float = 5.0) -> float:
    fn()  # warm-up
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < repeats and (time.perf_counter() - start < budget_s or len(times) < 3):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def matmul_peak(repeats: int) -> float:
    """NumPy's float32 matmul GFLOPS on a 1536^3 product (the BLAS ceiling for this run)."""
    a = np.random.default_rng(0).standard_normal((1536, 1536)).astype(np.float32)
    t = median_time(lambda: a @ a, max(3, repeats // 3))
    return 2 * 1536 ** 3 / t / 1e9


def ort_session(model):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def run_case(name, shape, filters, kwargs, repeats, max_eval_s, peak):
    spec = make_spec(filters=filters, **kwargs)
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(np.float32)
    kernel = (rng.standard_normal(spec.kernel_shape(shape[3])) * 0.05).astype(np.float32)
    bias = rng.standard_normal(filters).astype(np.float32)
    model = export_spec(spec, kernel, bias, input_shape=shape)
    sess = ort_session(model)
    ref = lambda: keras_conv2d_transpose(spec, x, kernel, bias)  # noqa: E731
    rt = lambda: sess.run(None, {"input": x})[0]  # noqa: E731
    err = float(np.abs(ref() - rt()).max())
    # interleave to share the machine's noise between both sides
    t_ref, t_ort = [], []
    for _ in range(3):
        t_ref.append(median_time(ref, repeats))
        t_ort.append(median_time(rt, repeats))
    t_ref_m, t_ort_m = statistics.median(t_ref), statistics.median(t_ort)
    t_eval = None
    if t_ort_m * 2000 <= max_eval_s:
        from onnx.reference import ReferenceEvaluator

        ev = ReferenceEvaluator(model)
        t0 = time.perf_counter()
        ev.run(None, {"input": x})
        t_eval = time.perf_counter() - t0
    kh, kw = spec.kernel_size
    flops = 2 * shape[0] * shape[1] * shape[2] * shape[3] * filters * kh * kw
    gflops = flops / t_ref_m / 1e9
    return dict(name=name, shape=shape, filters=filters, t_ref=t_ref_m, t_ort=t_ort_m,
                ratio=t_ref_m / t_ort_m, t_eval=t_eval,
                speedup=None if t_eval is None else t_eval / t_ref_m,
                gflops=gflops, peak_frac=gflops / peak, err=err)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--max-evaluator-seconds", type=float, default=60.0)
    args = parser.parse_args()
    peak = matmul_peak(args.repeats)
    print(f"NumPy float32 matmul peak (1 thread): {peak:.1f} GFLOPS")
    # Run as a script, sys.path[0] is benchmarks/, so convt_tools may come from an
    # installed copy rather than this checkout: say which one is measured.
    import convt_tools
    print(f"convt_tools measured: {os.path.dirname(os.path.abspath(convt_tools.__file__))} "
          "(PYTHONPATH=. to measure this checkout)")
    head = (f"{'case':4} {'input -> filters':24} {'ref ms':>9} {'ort ms':>9} {'ratio':>6} "
            f"{'onnx-ref s':>10} {'speed-up':>9} {'GFLOPS':>7} {'of peak':>7} {'max|diff|':>9}")
    print(head)
    print("-" * len(head))
    for name, shape, filters, kwargs in CASES:
        r = run_case(name, shape, filters, kwargs, args.repeats, args.max_evaluator_seconds, peak)
        ev = "skipped" if r["t_eval"] is None else f"{r['t_eval']:.2f}"
        sp = "-" if r["speedup"] is None else f"{r['speedup']:.0f}x"
        desc = "x".join(map(str, shape)) + f" -> {filters}"
        print(f"{name:4} {desc:24} {r['t_ref'] * 1e3:9.3f} {r['t_ort'] * 1e3:9.3f} "
              f"{r['ratio']:6.2f} {ev:>10} {sp:>9} {r['gflops']:7.1f} {r['peak_frac']:7.0%} "
              f"{r['err']:9.1e}", flush=True)
    print("ratio = reference / onnxruntime (target <= 1.25); speed-up = ReferenceEvaluator / "
          "reference (target >= 500x)")


if __name__ == "__main__":
    main()
