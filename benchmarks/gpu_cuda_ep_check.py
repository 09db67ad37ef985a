"""Does onnxruntime's CUDA provider run convt's ConvTranspose nodes on the GPU? (issue 11)

For a few representative layers (k=3 s=2 ``same``: the odd crop of most
decoders; an even crop; a rectangular kernel; output_padding; dilation;
channels_first; 1-D and 3-D), this exports the default (portable) form and,
for comparison, the compact form (asymmetric pads, which the CUDA provider
is known to hand to the CPU: microsoft/onnxruntime#11312), and for each:

1. creates a session on ``CUDAExecutionProvider, CPUExecutionProvider`` with
   ``log_severity_level = 0`` (verbose), captures onnxruntime's log (fd 2)
   and reads the node placement from it ("Node(s) placed on
   [CPUExecutionProvider]" blocks, the CUDA provider's "asymmetric padding"
   message);
2. creates a second session with ``session.disable_cpu_ep_fallback = 1``:
   it fails when any node cannot run on CUDA (an independent check);
3. runs the model on CUDA (TF32 off, i.e. true float32 convolutions; TF32 on
   is reported too) and on the CPU provider, and compares both with the NumPy
   reference under convt's float32 tolerance (``convt_tools.validate``).

Prints one line per layer and form, then a verdict: exit 0 when no portable
export has a ConvTranspose on the CPU and all are within tolerance; 1
otherwise; 0 with a message when the CUDA provider is not available (e.g.
onnxruntime without GPU support, or no GPU). ``--json`` prints the records.

    python3 benchmarks/gpu_cuda_ep_check.py [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

LAYERS: list[tuple[str, dict[str, Any], tuple[int, ...]]] = [
    # (id, make_spec kwargs, input shape in the layer's layout)
    ("k3s2-same-odd", dict(filters=64, kernel_size=3, strides=2, padding="same"), (2, 32, 32, 64)),
    ("k4s2-same-even", dict(filters=64, kernel_size=4, strides=2, padding="same"), (2, 32, 32, 64)),
    ("k5x3-s2x1-same", dict(filters=32, kernel_size=(5, 3), strides=(2, 1), padding="same"),
     (2, 24, 20, 32)),
    ("k3s2-same-op1", dict(filters=32, kernel_size=3, strides=2, padding="same",
                           output_padding=1), (2, 16, 16, 32)),
    ("k3-d2-same", dict(filters=32, kernel_size=3, dilation_rate=2, padding="same"),
     (2, 16, 16, 32)),
    ("k3s2-same-cf", dict(filters=32, kernel_size=3, strides=2, padding="same",
                          data_format="channels_first", activation="relu"), (2, 32, 16, 16)),
    ("1d-k3s2-same", dict(filters=32, kernel_size=3, strides=2, padding="same", rank=1),
     (2, 64, 32)),
    ("3d-k3s2-same", dict(filters=16, kernel_size=3, strides=2, padding="same", rank=3),
     (1, 8, 8, 8, 16)),
]

_PLACED = re.compile(r"(?:All nodes|Node\(s\)) placed on \[(\w+)\]")


class CapturedStderr:
    """Capture everything written to fd 2 (onnxruntime logs from C++) into ``text``."""

    def __enter__(self) -> "CapturedStderr":
        sys.stderr.flush()
        self._tmp = tempfile.TemporaryFile(mode="w+b")
        self._saved = os.dup(2)
        os.dup2(self._tmp.fileno(), 2)
        return self

    def __exit__(self, *exc: object) -> None:
        sys.stderr.flush()
        os.dup2(self._saved, 2)
        os.close(self._saved)
        self._tmp.seek(0)
        self.text = self._tmp.read().decode("utf-8", "replace")
        self._tmp.close()


def placements(log: str) -> dict[str, list[str]]:
    """provider -> ``"OpType (name)"`` of the nodes onnxruntime's verbose log places on it.

    onnxruntime (session_state.cc, VerifyEachNodeIsAssignedToAnEp) logs
    ``All nodes placed on [EP]. Number of nodes: n`` or, per provider,
    ``Node(s) placed on [EP]. Number of nodes: n`` followed by one
    ``  OpType (name)`` line per node.
    """
    found: dict[str, list[str]] = {}
    current = None
    for line in log.splitlines():
        if "VerifyEachNodeIsAssignedToAnEp]" not in line:
            current = None if "placed on" not in line else current
            continue
        text = line.split("VerifyEachNodeIsAssignedToAnEp]", 1)[1].strip()
        m = _PLACED.search(text)
        if m:
            current = m.group(1)
            found.setdefault(current, [])
            if text.startswith("All nodes"):
                found[current].append("<all nodes>")
        elif current and re.match(r"^\S+ \(.*\)$", text):
            found[current].append(text)
    return found


EP = "CUDAExecutionProvider"  # --ep: another provider exercises this script without a GPU


def session(ort: Any, model: Any, tf32: bool, log: bool, no_fallback: bool = False) -> Any:
    opts = ort.SessionOptions()
    opts.log_severity_level = 0 if log else 3
    opts.log_verbosity_level = 1 if log else 0
    if no_fallback:
        opts.add_session_config_entry("session.disable_cpu_ep_fallback", "1")
    ep: Any = (EP, {"use_tf32": "1" if tf32 else "0"}) if EP == "CUDAExecutionProvider" else EP
    providers = [ep] if EP == "CPUExecutionProvider" else [ep, "CPUExecutionProvider"]
    try:
        return ort.InferenceSession(model.SerializeToString(), opts, providers=providers)
    except Exception as exc:  # an onnxruntime without the use_tf32 option: its defaults
        if "tf32" not in str(exc).lower():
            raise
        providers[0] = EP
        return ort.InferenceSession(model.SerializeToString(), opts, providers=providers)


def _cuda_runtime(ort: Any) -> Any:
    """An onnxruntime adapter whose sessions are this script's (TF32 off) sessions."""
    from convt_tools.runtimes.base import LoadedModel, Runtime

    class Loaded(LoadedModel):
        runtime = "onnxruntime"

        def __init__(self, sess: Any) -> None:
            self.sess = sess
            self.providers = sess.get_providers()

        def _run(self, inputs: Any) -> Any:
            return self.sess.run(None, dict(inputs))

    class CudaRuntime(Runtime):
        name = "onnxruntime"
        extra = None
        packages = ("onnxruntime",)

        def _import(self) -> Any:
            return ort

        def _version(self, module: Any) -> str:
            return str(module.__version__)

        def _load(self, module: Any, model: Any) -> LoadedModel:
            return Loaded(session(ort, model, tf32=False, log=False))

    return CudaRuntime()


def check_layer(ort: Any, lid: str, kwargs: dict[str, Any], shape: tuple[int, ...],
                form: str) -> dict[str, Any]:
    from convt_tools.exporter import export_spec
    from convt_tools.spec import make_spec
    from convt_tools.validate import validate_spec

    spec = make_spec(**kwargs)
    sym = tuple(d if i == spec.channels_axis else None for i, d in enumerate(shape))
    rng = np.random.default_rng(0)
    channels = shape[spec.channels_axis]
    kernel = (rng.standard_normal(spec.kernel_shape(channels)) /
              np.sqrt(channels * np.prod(spec.kernel_size))).astype(np.float32)
    bias = rng.standard_normal(spec.filters).astype(np.float32)
    model = export_spec(spec, kernel, bias, input_shape=sym, form=form)
    rec: dict[str, Any] = {"layer": lid, "form": form, "input": list(shape)}
    with CapturedStderr() as cap:
        sess = session(ort, model, tf32=False, log=True)
    placed = placements(cap.text)
    rec["providers"] = sess.get_providers()
    rec["cpu_nodes"] = placed.get("CPUExecutionProvider", [])
    rec["placements"] = placed
    rec["conv_on_cpu"] = any("ConvTranspose" in n or n == "<all nodes>"
                             for n in rec["cpu_nodes"]) or "asymmetric padding" in cap.text
    rec["asymmetric_padding_message"] = "asymmetric padding" in cap.text
    try:
        with CapturedStderr():
            session(ort, model, tf32=False, log=False, no_fallback=True)
        rec["runs_without_cpu_fallback"] = True
    except Exception as exc:  # onnxruntime's own error types
        rec["runs_without_cpu_fallback"] = False
        rec["no_fallback_error"] = str(exc).splitlines()[0][:200]
    x = rng.standard_normal(shape).astype(np.float32)
    y_cuda = sess.run(None, {"input": x})[0]
    with CapturedStderr():
        y_tf32 = session(ort, model, tf32=True, log=False).run(None, {"input": x})[0]
    cpu = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    y_cpu = cpu.run(None, {"input": x})[0]
    rec["max_err_cuda_vs_cpu"] = float(np.abs(y_cuda - y_cpu).max())
    rec["max_err_cuda_tf32_vs_cpu"] = float(np.abs(y_tf32 - y_cpu).max())
    with CapturedStderr():  # the TF32-off CUDA session, through convt's runtime interface
        res = validate_spec(spec, kernel=kernel, bias=bias, x=x, model=model,
                            runtime=_cuda_runtime(ort))
    rec["vs_reference"] = {"passed": res.passed, "providers": res.providers, "max_abs": res.max_abs_error,
                           "max_rel": res.max_rel_error, "atol": res.tolerance.atol,
                           "rtol": res.tolerance.rtol, "message": res.message}
    return rec


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--ep", default=EP, help=argparse.SUPPRESS)  # self-test on CPU
    opts = parser.parse_args()
    globals()["EP"] = opts.ep
    try:
        import onnxruntime as ort
    except ImportError:
        print("onnxruntime is not installed: nothing to check.")
        return 0
    if EP not in ort.get_available_providers():
        print(f"{EP} is not available in onnxruntime {ort.__version__} "
              f"(providers: {', '.join(ort.get_available_providers())}); install "
              f"onnxruntime-gpu on a CUDA machine to run this check. Nothing checked.")
        return 0
    try:
        probe = check_layer(ort, *LAYERS[0], "portable")
    except Exception as exc:
        print(f"the CUDA provider is listed but could not run a model ({exc}); "
              f"nothing checked.")
        return 0
    records = [probe] + [check_layer(ort, lid, kw, shape, form)
                         for lid, kw, shape in LAYERS for form in ("portable", "compact")
                         if (lid, form) != (LAYERS[0][0], "portable")]
    if opts.json:
        print(json.dumps(records, indent=2))
    print(f"onnxruntime {ort.__version__}, providers {', '.join(ort.get_available_providers())}")
    for r in sorted(records, key=lambda r: (r["form"], r["layer"])):
        ref = r["vs_reference"]
        print(f"{r['form']:8s} {r['layer']:16s} ConvTranspose on CPU: "
              f"{'YES' if r['conv_on_cpu'] else 'no '}  CPU nodes: {len(r['cpu_nodes'])}  "
              f"no-fallback session: {'ok' if r['runs_without_cpu_fallback'] else 'FAILS'}  "
              f"|cuda-cpu| {r['max_err_cuda_vs_cpu']:.2e} (tf32 {r['max_err_cuda_tf32_vs_cpu']:.2e})"
              f"  vs reference {ref['max_abs']:.2e} <= atol {ref['atol']:.1e}: "
              f"{'PASS' if ref['passed'] else 'FAIL'}")
    bad = [r for r in records if r["form"] == "portable" and
           (r["conv_on_cpu"] or not r["vs_reference"]["passed"])]
    compact_cpu = sum(r["conv_on_cpu"] for r in records if r["form"] == "compact")
    print(f"portable form: {len(bad)} layer(s) with a ConvTranspose on the CPU or out of "
          f"tolerance; compact form: {compact_cpu} layer(s) with a ConvTranspose on the CPU")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
