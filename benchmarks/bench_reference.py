"""Speed of the NumPy reference vs onnxruntime and onnx's ReferenceEvaluator (prints a table).

Single-threaded on both sides: BLAS threads are limited through the
environment *before* NumPy is imported and through threadpoolctl when it is
installed (the BLAS library, kernel and thread count are printed), and
onnxruntime runs with ``intra_op_num_threads=1``. Both evaluate the whole
Keras layer in its channels_last layout:

the reference as a prepared layer (``KerasConvTranspose(spec, kernel, bias)``,
its weights laid out for BLAS once, as an onnxruntime session packs its
weights at creation; the figure held to the target) and as the one-shot call
``keras_conv_transpose(spec, x, kernel, bias)`` (``1-shot``: the operands
prepared on every call; reported), onnxruntime via the model ``export_spec``
builds, by default its ``compact`` form
(Transpose -> one ConvTranspose with the Keras crop as explicit pads ->
Transpose; ``--form portable`` adds the Slice of odd crops). Cases a-f are
2-D, ``1d`` and ``3d`` the 1-D and 3-D layers of issue 10, ``g`` a large-kernel
2-D layer (k=16, s=8) and ``istft`` the ISTFT-style 1-D layer of vocoders and
source separators (channels_first, 2049 bins x 340 frames, kernel 4096,
stride 1024; issue 23).

Targets (issue 23): ratio <= 1.1 on every case above 0.05 GFLOP, <= 1.5 on
the tiny case f. ``algo`` is the reference's algorithm chosen for the case
(:func:`convt_tools.reference._algorithm`), ``f64 ms`` the reference on the
same layer in float64 (validate's path; a separate figure, not held to the
target).

Timing: the prepared reference and onnxruntime are called alternately,
one call each per round, the order swapped every round, so both see the
same machine load and each the caches the other leaves; ``ref ms`` and
``ort ms`` are the medians over the rounds, ``ratio`` is their quotient, ``ratio min`` the quotient of
the fastest calls (the least disturbed estimate on a busy machine) and
``cpu ratio`` the quotient of the median CPU times of the calling thread
(both sides compute on it). ``1-shot`` is the cpu ratio of the one-shot
call, measured the same way in a second alternation with onnxruntime. The load average is printed before and after. The ReferenceEvaluator runs once
per case (it is ~1000x slower) and is skipped where its estimated time
exceeds ``--max-evaluator-seconds``.

    PYTHONPATH=. python benchmarks/bench_reference.py [--rounds 41] [--max-evaluator-seconds 60]

``--write-configs DIR`` writes each case as a Keras layer config
(``DIR/<case>.json``, the input shape as its ``build_config``) and exits, for
``convt bench DIR`` (every runtime and export form on the same layers).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

try:  # optional: also pins BLAS already loaded elsewhere, and says which kernel runs
    from threadpoolctl import threadpool_info, threadpool_limits  # type: ignore[import-not-found]
    threadpool_limits(1)
except ImportError:
    threadpool_info = None

from convt_tools.exporter import export_spec  # noqa: E402
from convt_tools.reference import _keras_algorithm as keras_algorithm  # noqa: E402
from convt_tools.reference import KerasConvTranspose, keras_conv_transpose  # noqa: E402
from convt_tools.spec import make_spec  # noqa: E402

# (name, input in the layer's data format, filters, layer kwargs); rank = len(input) - 2
CASES = [
    ("a", (1, 32, 32, 64), 32, dict(kernel_size=4, strides=2, padding="same")),
    ("b", (8, 16, 16, 256), 128, dict(kernel_size=3, strides=2, padding="same")),
    ("c", (1, 64, 64, 128), 64, dict(kernel_size=4, strides=2, padding="valid")),
    ("d", (4, 8, 8, 512), 512, dict(kernel_size=2, strides=2, padding="valid")),
    ("e", (1, 128, 128, 32), 16, dict(kernel_size=3, strides=1, dilation_rate=2, padding="same")),
    ("f", (1, 4, 4, 3), 2, dict(kernel_size=3, strides=2, padding="valid")),
    ("1d", (1, 16000, 64), 32, dict(kernel_size=8, strides=4, padding="same")),
    ("3d", (1, 16, 32, 32, 32), 16, dict(kernel_size=3, strides=2, padding="same")),
    ("g", (1, 16, 16, 64), 32, dict(kernel_size=16, strides=8, padding="same")),
    ("istft", (1, 2049, 340), 1, dict(kernel_size=4096, strides=1024, padding="valid",
                                      data_format="channels_first")),
]
TARGET, TINY_TARGET, TINY_GFLOP = 1.1, 1.5, 0.05


def median_time(fn, repeats: int, budget_s: float = 5.0) -> float:
    fn()  # warm-up
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < repeats and (time.perf_counter() - start < budget_s or len(times) < 3):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def rotated_times(fns: list, rounds: int, budget_s: float = 20.0
                  ) -> tuple[list[list[float]], list[list[float]]]:
    """Call each of ``fns`` once per round, the order rotated every round.

    Returns the wall times and the calling thread's CPU times per call, one
    list per function (every side computes on this thread at one thread, so
    the CPU figure is the one time slices lost to other processes do not
    inflate).
    """
    for fn in fns:
        fn()
    wall: list[list[float]] = [[] for _ in fns]
    cpu: list[list[float]] = [[] for _ in fns]
    start = time.perf_counter()
    for i in range(rounds):
        for j in range(len(fns)):
            k = (i + j) % len(fns)
            c0 = time.thread_time()
            t0 = time.perf_counter()
            fns[k]()
            wall[k].append(time.perf_counter() - t0)
            cpu[k].append(time.thread_time() - c0)
        if i >= 8 and time.perf_counter() - start > budget_s:
            break
    return wall, cpu


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


def build_case(shape, filters, kwargs, form):
    """``(prepared reference, one-shot reference, float64 reference, model, x, kernel size,
    algorithm)`` for one Keras layer."""
    rank = len(shape) - 2
    spec = make_spec(filters=filters, rank=rank, **kwargs)
    cin = shape[1] if kwargs.get("data_format") == "channels_first" else shape[-1]
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(np.float32)
    kernel = (rng.standard_normal(spec.kernel_shape(cin)) * 0.05).astype(np.float32)
    bias = rng.standard_normal(filters).astype(np.float32)
    model = export_spec(spec, kernel, bias, input_shape=shape, form=form)
    x64, k64, b64 = x.astype(np.float64), kernel.astype(np.float64), bias.astype(np.float64)
    layer = KerasConvTranspose(spec, kernel, bias)
    return (lambda: layer(x), lambda: keras_conv_transpose(spec, x, kernel, bias),
            lambda: keras_conv_transpose(spec, x64, k64, b64), model, x, spec.kernel_size,
            keras_algorithm(spec, x.shape, kernel.shape))


def run_case(name, shape, filters, kwargs, rounds, max_eval_s, peak, form):
    ref, once, ref64, model, x, kernel_size, algo = build_case(shape, filters, kwargs, form)
    sess = ort_session(model)
    rt = lambda: sess.run(None, {"input": x})[0]  # noqa: E731
    got = ref()
    err = float(np.abs(got - rt()).max())
    err_once = float(np.abs(got - once()).max())
    (t_ref, t_ort), (c_ref, c_ort) = rotated_times([ref, rt], rounds)
    _, (c_once, c_ort_once) = rotated_times([once, rt], rounds)
    t_ref_m, t_ort_m = statistics.median(t_ref), statistics.median(t_ort)
    t_eval = None
    if t_ort_m * 2000 <= max_eval_s:
        from onnx.reference import ReferenceEvaluator

        ev = ReferenceEvaluator(model)
        t0 = time.perf_counter()
        ev.run(None, {"input": x})
        t_eval = time.perf_counter() - t0
    t_f64 = median_time(ref64, max(3, rounds // 4), budget_s=5.0)
    flops = 2 * int(np.prod(shape)) * filters * int(np.prod(kernel_size))
    gflops = flops / t_ref_m / 1e9
    target = TINY_TARGET if flops / 1e9 <= TINY_GFLOP else TARGET
    return dict(name=name, shape=shape, filters=filters, t_ref=t_ref_m, t_ort=t_ort_m,
                algo=algo, t_f64=t_f64, target=target,
                ratio_cpu=statistics.median(c_ref) / statistics.median(c_ort),
                ratio_once=statistics.median(c_once) / statistics.median(c_ort_once),
                t_ort_cpu=statistics.median(c_ort), err_once=err_once,
                ratio=t_ref_m / t_ort_m, ratio_min=min(t_ref) / min(t_ort), rounds=len(t_ref),
                t_eval=t_eval, speedup=None if t_eval is None else t_eval / t_ref_m,
                gflops=gflops, peak_frac=gflops / peak, err=err)


def write_configs(folder: str, wanted: list[str]) -> list[str]:
    """Each wanted case as ``folder/<case>.json``: ``{class_name, config, build_config}``."""
    import json

    os.makedirs(folder, exist_ok=True)
    paths = []
    for name, shape, filters, kwargs in CASES:
        if name not in wanted:
            continue
        spec = make_spec(filters=filters, rank=len(shape) - 2, **kwargs)
        config = dict(spec.to_config(), name=f"case_{name}")
        path = os.path.join(folder, f"{name}.json")
        with open(path, "w") as fh:
            json.dump({"class_name": spec.class_name, "config": config,
                       "build_config": {"input_shape": list(shape)}}, fh, indent=1)
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=41,
                        help="alternating calls per side and case (fewer when a case "
                             "exceeds its 20 s budget)")
    parser.add_argument("--max-evaluator-seconds", type=float, default=60.0)
    parser.add_argument("--cases", default=",".join(c[0] for c in CASES),
                        help="comma-separated case names")
    parser.add_argument("--form", default="compact", choices=["compact", "portable"],
                        help="the exported model onnxruntime runs (default compact: "
                             "Transpose -> one ConvTranspose -> Transpose)")
    parser.add_argument("--write-configs", metavar="DIR",
                        help="write the cases as Keras layer configs into DIR and exit "
                             "(for convt bench DIR)")
    args = parser.parse_args()
    wanted = args.cases.split(",")
    if args.write_configs:
        for path in write_configs(args.write_configs, wanted):
            print(path)
        return
    # Run as a script, sys.path[0] is benchmarks/, so convt_tools may come from an
    # installed copy rather than this checkout: say which one is measured.
    import convt_tools
    import onnxruntime

    print(f"convt_tools measured: {os.path.dirname(os.path.abspath(convt_tools.__file__))} "
          "(PYTHONPATH=. to measure this checkout)")
    print(f"onnxruntime model form: {args.form}")
    print(f"numpy {np.__version__}, onnxruntime {onnxruntime.__version__}, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} (1 min)")
    if threadpool_info is not None:
        for lib in threadpool_info():
            print(f"BLAS: {lib.get('internal_api')} {lib.get('version')} kernel "
                  f"{lib.get('architecture')} threads {lib.get('num_threads')}")
    else:
        print("BLAS: threadpoolctl not installed; threads limited through the environment only")
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        if var in os.environ:
            print(f"note: {var}={os.environ[var]} is set (it can select a slower BLAS kernel)")
    peak = matmul_peak(15)
    print(f"NumPy float32 matmul peak (1 thread): {peak:.1f} GFLOPS")
    head = (f"{'case':5} {'input -> filters':24} {'algo':7} {'ref ms':>9} {'ort ms':>9} "
            f"{'ratio':>6} {'ratio min':>9} {'cpu ratio':>9} {'1-shot':>6} {'ort cpu ms':>10} {'target':>6} {'rounds':>6} {'f64 ms':>9} "
            f"{'onnx-ref s':>10} {'speed-up':>9} {'GFLOPS':>7} {'of peak':>7} {'max|diff|':>9} {'1-shot diff':>11}")
    print(head)
    print("-" * len(head))
    for name, shape, filters, kwargs in CASES:
        if name not in wanted:
            continue
        r = run_case(name, shape, filters, kwargs, args.rounds, args.max_evaluator_seconds, peak,
                     args.form)
        ev = "skipped" if r["t_eval"] is None else f"{r['t_eval']:.2f}"
        sp = "-" if r["speedup"] is None else f"{r['speedup']:.0f}x"
        desc = "x".join(map(str, shape)) + f" -> {filters}"
        print(f"{name:5} {desc:24} {r['algo']:7} {r['t_ref'] * 1e3:9.3f} {r['t_ort'] * 1e3:9.3f} "
              f"{r['ratio']:6.2f} {r['ratio_min']:9.2f} {r['ratio_cpu']:9.2f} {r['ratio_once']:6.2f} "
              f"{r['t_ort_cpu'] * 1e3:10.3f} {r['target']:6.2f} {r['rounds']:6d} "
              f"{r['t_f64'] * 1e3:9.3f} {ev:>10} {sp:>9} "
              f"{r['gflops']:7.1f} {r['peak_frac']:7.0%} {r['err']:9.1e} {r['err_once']:11.1e}", flush=True)
    print(f"load average after: {os.getloadavg()[0]:.2f} (1 min)")
    print(f"ratio = reference / onnxruntime, medians of alternating calls (target <= {TARGET} "
          f"above {TINY_GFLOP} GFLOP, <= {TINY_TARGET} for smaller layers: f); ratio min = "
          "fastest / fastest; cpu ratio = medians of this thread's CPU time per call (not "
          "inflated by time slices lost to other processes on a loaded machine); 1-shot = the "
          "cpu ratio of the one-shot call keras_conv_transpose (operands prepared per call); "
          "ort cpu ms = "
          "onnxruntime's median CPU time per call (compare with convt bench's cpu ms); f64 ms = the reference in float64 (reported, no target); "
          "speed-up = ReferenceEvaluator / reference (target >= 500x); max|diff| = prepared "
          "reference vs onnxruntime; 1-shot diff = prepared vs one-shot reference")


if __name__ == "__main__":
    main()
