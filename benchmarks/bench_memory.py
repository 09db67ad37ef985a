"""Peak memory and time of ``convt check`` / ``check --no-numeric`` / ``validate --model`` on big models.

Builds one ONNX model per size: a single ConvTranspose (strides 2, kernel 4,
no pads, channels_first, no bias) whose W holds about SIZE MB of float32,
stored inline below 1.9 GB and as external data (``<name>.data``) above
(``--external``: external data at every size), with
the matching Keras config (``padding="valid"`` gives the same lengths). Every
command runs in a fresh process; its peak RSS comes from ``wait4`` (the
kernel's ``ru_maxrss``; the models are built in a separate process, since a
child starts from its parent's peak). For comparison, the same run measures onnxruntime
merely opening the model (``InferenceSession``) and a bare interpreter that
imports convt's check and onnxruntime (the fixed cost).

Targets (issue 9): peak RSS of each command <= 1.5 x model size + a fixed
probe budget (``--probe-budget-mb``, default 400 MB: interpreter, onnx,
onnxruntime and the probe's own small tensors); ``check --no-numeric`` on a
2.1 GB model under 10 s.

    python3 benchmarks/bench_memory.py                   # 200 MB (moderate default)
    python3 benchmarks/bench_memory.py --sizes-mb 400,2100 --keep
    python3 benchmarks/bench_memory.py --sizes-mb 500 --external

``--saved``: a saved Keras model instead (issue 17 item 22). A ``.keras``
archive of about SIZE MB is written with h5py and zipfile directly (no Keras:
the layout of ``fixtures/models/seq_decoder.keras``, a Sequential of
Conv2DTranspose layers, each kernel ``(3, 3, C, C)``, ``model.weights.h5``
stored uncompressed as Keras writes it); then ``convt export MODEL -o dir/``
(every layer) and ``convt validate MODEL`` run in fresh processes. Target:
peak RSS <= 2 x model + one layer's working set (its kernel in float32 and
float64, the ONNX model and its serialised bytes: about 5 x one layer's
kernel) + the probe budget. ``--root DIR`` runs another checkout's
convt_tools (e.g. the code before a change) for a before/after comparison.

    python3 benchmarks/bench_memory.py --saved --sizes-mb 200
    python3 benchmarks/bench_memory.py --saved --sizes-mb 200 --root /work/main
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = Path(__file__).resolve().parents[1]
INLINE_LIMIT = 1900 << 20


def build(folder: Path, size_mb: float, force_external: bool = False
          ) -> tuple[Path, Path, int, str]:
    """The model, its Keras config, the bytes of its files and the --input-shape."""
    c_in, k = 256, 4
    c_out = max(1, int(size_mb * 1e6 / (c_in * k * k * 4)))
    w = np.random.default_rng(0).standard_normal((c_in, c_out, k, k), dtype=np.float32)
    node = helper.make_node("ConvTranspose", ["x", "W"], ["y"], name="up", strides=[2, 2],
                            kernel_shape=[k, k], pads=[0, 0, 0, 0])
    graph = helper.make_graph(
        [node], "big", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, c_in, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, c_out, 10, 10])],
        [numpy_helper.from_array(w, "W")])
    del w
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = folder / f"m{int(size_mb)}.onnx"
    external = force_external or model.ByteSize() > INLINE_LIMIT
    onnx.save(model, str(path), save_as_external_data=external, all_tensors_to_one_file=True,
              location=f"{path.name}.data", size_threshold=1024)
    del model
    config = folder / f"m{int(size_mb)}.json"
    config.write_text(json.dumps({"filters": c_out, "kernel_size": k, "strides": 2,
                                  "padding": "valid", "data_format": "channels_first",
                                  "use_bias": False}))
    size = path.stat().st_size + (Path(f"{path}.data").stat().st_size if external else 0)
    return path, config, size, f"1,{c_in},4,4"


SAVED_LAYERS = int(os.environ.get("CONVT_BENCH_SAVED_LAYERS", "4"))


def build_saved(folder: Path, size_mb: float) -> tuple[Path, int, int]:
    """A ``.keras`` of about ``size_mb`` MB: SAVED_LAYERS Conv2DTranspose layers (3x3, C -> C,
    'same', bias). Returns the path, its size in bytes and one layer's kernel bytes."""
    import zipfile

    import h5py

    c = max(1, int((size_mb * 1e6 / SAVED_LAYERS / (9 * 4)) ** 0.5))
    layers: list[dict] = [{"module": "keras.layers", "class_name": "InputLayer",
                           "config": {"batch_shape": [None, 2, 2, c], "dtype": "float32",
                                      "sparse": False, "ragged": False,
                                      "name": "input_layer", "optional": False},
                           "registered_name": None}]
    weights = folder / "model.weights.h5"
    rng = np.random.default_rng(0)
    with h5py.File(weights, "w") as h5:
        h5.create_group("layers")
        h5.create_group("vars").attrs["name"] = "big"
        for i in range(SAVED_LAYERS):
            name, group = f"up_{i}", "conv2d_transpose" + (f"_{i}" if i else "")
            layers.append({
                "module": "keras.layers", "class_name": "Conv2DTranspose",
                "config": {"name": name, "trainable": True, "dtype": "float32", "filters": c,
                           "kernel_size": [3, 3], "strides": [1, 1], "padding": "same",
                           "output_padding": None, "data_format": "channels_last",
                           "dilation_rate": [1, 1], "activation": "linear", "use_bias": True},
                "registered_name": None, "build_config": {"input_shape": [None, 2, 2, c]}})
            vars_group = h5.create_group(f"layers/{group}/vars")
            vars_group.attrs["name"] = name
            kernel = rng.standard_normal((3, 3, c, c), dtype=np.float32) * 0.01
            vars_group.create_dataset("0", data=kernel)
            vars_group.create_dataset("1", data=np.zeros(c, np.float32))
            del kernel
    config = {"module": "keras", "class_name": "Sequential",
              "config": {"name": "big", "trainable": True, "layers": layers},
              "registered_name": None, "build_config": {"input_shape": [None, 2, 2, c]}}
    path = folder / f"saved{int(size_mb)}.keras"
    with zipfile.ZipFile(path, "w") as z:   # stored, as Keras writes it
        z.writestr("metadata.json", json.dumps({"keras_version": "3.15.1"}))
        z.writestr("config.json", json.dumps(config))
        z.write(weights, "model.weights.h5")
    weights.unlink()
    return path, path.stat().st_size, 9 * c * c * 4


def run_saved(args: argparse.Namespace, folder: Path, py: str) -> None:
    """Peak RSS of ``export MODEL -o dir/`` and ``validate MODEL`` on a big ``.keras``."""
    for size_mb in (float(s) for s in args.sizes_mb.split(",")):
        out = subprocess.run([py, __file__, "--saved", "--build-only", str(size_mb), "--folder",
                              str(folder)], capture_output=True, text=True, check=True)
        built = json.loads(out.stdout.strip().splitlines()[-1])
        path, size, layer = Path(built[0]), int(built[1]), int(built[2])
        model_mb, layer_mb = size / 1e6, layer / 1e6
        target = 2 * model_mb + 5 * layer_mb + args.probe_budget_mb
        print(f"saved model {path.name}: {model_mb:.0f} MB, {SAVED_LAYERS} layers of "
              f"{layer_mb:.0f} MB; target 2 x model + 5 x layer + {args.probe_budget_mb:.0f} "
              f"= {target:.0f} MB")
        outdir = folder / "onnx_out"
        runs = {
            "export -o dir/": [py, "-m", "convt_tools", "export", str(path), "-o", f"{outdir}/"],
            "validate": [py, "-m", "convt_tools", "validate", str(path)],
        }
        for name, argv in runs.items():
            rc, wall, peak = measure(argv, args.root)
            verdict = "ok" if peak <= target else "OVER"
            print(f"{name:<24}{model_mb:>9.0f}{wall:>8.1f}{peak:>9.0f}{peak / model_mb:>8.2f}"
                  f"{target:>10.0f}  {verdict} (exit {rc})")
            shutil.rmtree(outdir, ignore_errors=True)
        if not args.keep:
            path.unlink()


def measure(argv: list[str], root: Path | str = ROOT) -> tuple[int, float, float]:
    """(exit status, wall seconds, peak RSS in MB) of one fresh process."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    start = time.perf_counter()
    # cwd=root: ``python -m convt_tools`` puts the working folder first on sys.path
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
                            cwd=str(root))
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace").strip() if proc.stderr else ""
    if proc.returncode not in (0, 1):
        print(f"    ({' '.join(argv[2:5])}... exited {proc.returncode}: {err[-300:]})")
    return proc.returncode, wall, usage.ru_maxrss / 1024  # Linux: KiB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes-mb", default="200", help="comma-separated W sizes in MB")
    parser.add_argument("--probe-budget-mb", type=float, default=400.0)
    parser.add_argument("--folder", help="where to build the models (default: a temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep the models afterwards")
    parser.add_argument("--external", action="store_true",
                        help="store W as external data at every size (default: above 1.9 GB)")
    parser.add_argument("--saved", action="store_true",
                        help="a saved .keras model: export -o dir/ and validate")
    parser.add_argument("--root", default=str(ROOT),
                        help="the checkout whose convt_tools runs (default: this one)")
    parser.add_argument("--build-only", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build_only and args.saved:
        print(json.dumps([str(v) for v in build_saved(Path(args.folder),
                                                      float(args.build_only))]))
        return
    if args.build_only:   # in a child: the parent stays small (a child inherits its peak RSS)
        print(json.dumps([str(v) for v in build(Path(args.folder), float(args.build_only),
                                                    args.external)]))
        return
    folder = Path(args.folder or tempfile.mkdtemp(prefix="convt-bench-mem-"))
    folder.mkdir(parents=True, exist_ok=True)
    py = sys.executable
    if args.saved:
        print(f"convt_tools from {args.root}")
        print(f"{'command':<24}{'model MB':>9}{'wall s':>8}{'peak MB':>9}{'x model':>8}"
              f"{'target MB':>10}  verdict")
        try:
            run_saved(args, folder, py)
        finally:
            if not args.keep and not args.folder:
                shutil.rmtree(folder, ignore_errors=True)
        return
    base = measure([py, "-c", "import convt_tools.check, onnxruntime"])[2]
    print(f"fixed cost: python + convt_tools.check + onnxruntime imported = {base:.0f} MB RSS")
    print(f"{'command':<24}{'model MB':>9}{'wall s':>8}{'peak MB':>9}{'x model':>8}"
          f"{'target MB':>10}  verdict")
    try:
        for size_mb in (float(s) for s in args.sizes_mb.split(",")):
            out = subprocess.run([py, __file__, "--build-only", str(size_mb), "--folder",
                                  str(folder), *(["--external"] if args.external else [])],
                                 capture_output=True, text=True, check=True)
            built = json.loads(out.stdout.strip().splitlines()[-1])
            path, config, size, shape = Path(built[0]), Path(built[1]), int(built[2]), built[3]
            model_mb = size / 1e6
            target = 1.5 * model_mb + args.probe_budget_mb
            runs = {
                "onnxruntime open": [py, "-c", "import onnxruntime as o, sys; "
                                     "o.InferenceSession(sys.argv[1], "
                                     "providers=['CPUExecutionProvider'])", str(path)],
                "check": [py, "-m", "convt_tools", "check", str(path)],
                "check --no-numeric": [py, "-m", "convt_tools", "check", "--no-numeric",
                                       str(path)],
                "validate --model": [py, "-m", "convt_tools", "validate", str(config),
                                     "--model", str(path), "--input-shape", shape],
            }
            ort_peak = None
            for name, argv in runs.items():
                rc, wall, peak = measure(argv)
                ort_peak = peak if ort_peak is None else ort_peak
                verdict = "reference" if name == "onnxruntime open" else (
                    "ok" if peak <= target else "OVER")
                if name == "check --no-numeric" and model_mb >= 2000:
                    verdict += f", time {'ok' if wall < 10 else 'OVER'} (target < 10 s)"
                ratio = f"  ({peak / ort_peak:.2f}x onnxruntime)" if name != "onnxruntime open" \
                    else ""
                print(f"{name:<24}{model_mb:>9.0f}{wall:>8.1f}{peak:>9.0f}"
                      f"{peak / model_mb:>8.2f}{target:>10.0f}  {verdict} (exit {rc}){ratio}")
            if not args.keep:
                for p in folder.glob(f"{path.stem}*"):
                    p.unlink()
    finally:
        if not args.keep and not args.folder:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
