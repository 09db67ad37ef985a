"""Apache TVM (``pip install -e ".[tvm]"`` from the clone): the Relax ONNX frontend, llvm, VM.

Loading converts and compiles the model in a child process, with a timeout
per model (``python -m convt_tools.runtimes.tvm_adapter --serve``: one
long-lived child per process, since importing TVM takes seconds; a crash or a
timeout kills it and the next model gets a fresh one): ``tvm.relax.frontend.onnx.from_onnx`` (the
model's own input shapes, symbolic dims kept symbolic: Relax compiles one
shape-generic function), ``tvm.compile(target="llvm")`` and
``export_library`` (a shared library; TVM links it with the system C
compiler, ``cc``). The parent loads the library and runs it on a
``relax.VirtualMachine`` on ``tvm.cpu()``. A refusal is the first line of
TVM's own error (frontend or compiler). ``threads`` configures TVM's thread
pool (process-wide). ``TVM_FFI_DISABLE_TORCH_C_DLPACK=1`` is set (unless
already set) before TVM is imported (:data:`NO_TORCH_BUILD`).
"""

from __future__ import annotations

import atexit
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from typing import Any, Mapping, Sequence

import numpy as np
import onnx

from ._tool import TOOL_TIMEOUT_S
from .base import (LoadedModel, ModelLike, Runtime, RuntimeRefused, feed_names, first_line,
                   load_proto, temporary_model_file)

__all__ = ["TvmRuntime", "build"]

TARGET = "llvm"
# apache-tvm-ffi imports torch when present and, for a torch without DLPack's C exchange API,
# JIT-compiles a torch extension into ~/.cache/tvm-ffi at import time; this turns that off
# (nothing is built or written at run time).
NO_TORCH_BUILD = ("TVM_FFI_DISABLE_TORCH_C_DLPACK", "1")


class _Vm(LoadedModel):
    runtime = "tvm"

    def __init__(self, tvm: Any, lib: Any, inputs: list[str]) -> None:
        self.tvm = tvm
        self.lib = lib   # kept alive with the VM
        self.vm = tvm.relax.VirtualMachine(lib, tvm.cpu())
        self.inputs = inputs

    def _run(self, inputs: Mapping[str, np.ndarray]) -> Sequence[Any]:
        args = [self.tvm.runtime.tensor(np.ascontiguousarray(inputs[n]), self.tvm.cpu())
                for n in self.inputs]
        out = self.vm["main"](*args)
        items = out if isinstance(out, (list, tuple)) or not hasattr(out, "numpy") else [out]
        return [np.array(o.numpy()) for o in items]


class _Compiler:
    """One long-lived child process that converts and compiles models (module doc).

    Importing TVM takes seconds, so the child imports it once and then builds
    one model per request line (``MODEL\tLIB``), answering ``convt-tvm: ok`` or
    ``convt-tvm: error: <first line>``. A child that dies (a crash) or runs past
    the timeout is killed; the next request starts a fresh one.
    """

    _proc: subprocess.Popen[str] | None = None

    @classmethod
    def build(cls, model_path: str, lib_path: str, timeout_s: float) -> None:
        proc = cls._proc
        if proc is None or proc.poll() is not None:
            env = {**os.environ, NO_TORCH_BUILD[0]: os.environ.get(*NO_TORCH_BUILD)}
            proc = cls._proc = subprocess.Popen(
                [sys.executable, "-m", "convt_tools.runtimes.tvm_adapter", "--serve"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                text=True, env=env)
        assert proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write(f"{model_path}\t{lib_path}\n")
            proc.stdin.flush()
        except BrokenPipeError:
            pass
        deadline = time.monotonic() + timeout_s
        while True:
            ready, _, _ = select.select([proc.stdout], [], [], max(deadline - time.monotonic(), 0))
            if not ready:
                cls.stop()
                raise RuntimeRefused("tvm", "compile", f"TVM timed out after {timeout_s:g} s")
            line = proc.stdout.readline()
            if not line:  # the child died
                code = proc.wait()
                cls._proc = None
                raise RuntimeRefused("tvm", "compile", f"TVM crashed ({_signal_name(code)})")
            if line.startswith(_REPLY):
                answer = line[len(_REPLY):].strip()
                if answer == "ok":
                    return
                raise RuntimeRefused("tvm", "compile", answer.removeprefix("error: "))

    @classmethod
    def stop(cls) -> None:
        """Kill the child (if any)."""
        if cls._proc is not None and cls._proc.poll() is None:
            cls._proc.kill()
            cls._proc.wait()
        cls._proc = None


atexit.register(_Compiler.stop)
_REPLY = "convt-tvm: "


def _signal_name(code: int) -> str:
    if code < 0:
        try:
            return signal.Signals(-code).name
        except ValueError:
            pass
    return f"exit status {code}"


class TvmRuntime(Runtime):
    """``tvm``: Apache TVM's Relax ONNX frontend, compiled for ``llvm`` and run on the VM."""

    name = "tvm"
    extra = "tvm"
    packages = ("tvm",)
    timeout_s: float = TOOL_TIMEOUT_S   # seconds one model's conversion and compilation may take

    def _import(self) -> Any:
        os.environ.setdefault(*NO_TORCH_BUILD)
        import tvm
        import tvm.relax

        return tvm

    def _version(self, module: Any) -> str:
        return str(module.__version__)

    def _load(self, module: Any, model: ModelLike) -> LoadedModel:
        proto = load_proto(model)
        inputs = feed_names(proto)
        if self.threads is not None:
            module.get_global_func("runtime.config_threadpool")(0, self.threads)
        with temporary_model_file(model) as path, \
                tempfile.TemporaryDirectory(prefix="convt-tvm-") as tmp:
            lib_path = os.path.join(tmp, "model.so")
            _Compiler.build(path, lib_path, self.timeout_s)
            lib = module.runtime.load_module(lib_path)
        return _Vm(module, lib, inputs)


def build(model_path: str, lib_path: str) -> None:
    """Convert ``model_path`` with the Relax ONNX frontend, compile for llvm, export to
    ``lib_path`` (the child process's work; module doc)."""
    os.environ.setdefault(*NO_TORCH_BUILD)
    import tvm
    from tvm import relax
    from tvm.relax.frontend.onnx import from_onnx

    mod = from_onnx(onnx.load(model_path), keep_params_in_input=False)
    executable = tvm.compile(relax.transform.DecomposeOpsForInference()(mod), target=TARGET)
    executable.export_library(lib_path)


def _serve() -> None:
    """The compile child: one ``MODEL\tLIB`` request per stdin line (see :class:`_Compiler`)."""
    for request in sys.stdin:
        model_path, lib_path = request.rstrip("\n").split("\t")
        try:
            build(model_path, lib_path)
            answer = "ok"
        except Exception as exc:  # noqa: BLE001 - the child reports TVM's first line
            answer = f"error: {first_line(exc)}"
        print(_REPLY + answer, flush=True)


if __name__ == "__main__" and sys.argv[1:] == ["--serve"]:  # pragma: no cover - a child
    _serve()
