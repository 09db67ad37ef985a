"""Apache TVM (``pip install -e ".[tvm]"`` from the clone): the Relax ONNX frontend, llvm, VM.

Loading converts and compiles the model in a child process
(``python -m convt_tools.runtimes.tvm_adapter MODEL LIB``, with a timeout,
:func:`~._tool.run_tool`): ``tvm.relax.frontend.onnx.from_onnx`` (the
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

import os
import sys
import tempfile
from typing import Any, Mapping, Sequence

import numpy as np

from ._tool import run_tool
from .base import LoadedModel, ModelLike, Runtime, first_line, load_proto, temporary_model_file

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


class TvmRuntime(Runtime):
    """``tvm``: Apache TVM's Relax ONNX frontend, compiled for ``llvm`` and run on the VM."""

    name = "tvm"
    extra = "tvm"
    packages = ("tvm",)

    def _import(self) -> Any:
        os.environ.setdefault(*NO_TORCH_BUILD)
        import tvm
        import tvm.relax

        return tvm

    def _version(self, module: Any) -> str:
        return str(module.__version__)

    def _load(self, module: Any, model: ModelLike) -> LoadedModel:
        proto = load_proto(model)
        weights = {t.name for t in proto.graph.initializer}
        inputs = [i.name for i in proto.graph.input if i.name not in weights]
        if self.threads is not None:
            module.get_global_func("runtime.config_threadpool")(0, self.threads)
        with temporary_model_file(model) as path, \
                tempfile.TemporaryDirectory(prefix="convt-tvm-") as tmp:
            lib_path = os.path.join(tmp, "model.so")
            run_tool(self.name, "compile",
                     [sys.executable, "-m", "convt_tools.runtimes.tvm_adapter", path, lib_path])
            lib = module.runtime.load_module(lib_path)
        return _Vm(module, lib, inputs)


def build(model_path: str, lib_path: str) -> None:
    """Convert ``model_path`` with the Relax ONNX frontend, compile for llvm, export to
    ``lib_path`` (the child process's work; module doc)."""
    import onnx

    os.environ.setdefault(*NO_TORCH_BUILD)
    import tvm
    from tvm import relax
    from tvm.relax.frontend.onnx import from_onnx

    mod = from_onnx(onnx.load(model_path), keep_params_in_input=False)
    executable = tvm.compile(relax.transform.DecomposeOpsForInference()(mod), target=TARGET)
    executable.export_library(lib_path)


def _main(argv: Sequence[str]) -> int:
    try:
        build(argv[0], argv[1])
    except Exception as exc:  # noqa: BLE001 - the child reports TVM's first line, never a traceback
        print(f"error: {first_line(exc)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover - exercised through TvmRuntime.load
    raise SystemExit(_main(sys.argv[1:]))
