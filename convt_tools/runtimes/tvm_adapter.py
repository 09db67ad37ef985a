"""Apache TVM (``pip install -e ".[tvm]"`` from the clone): the Relax ONNX frontend, llvm, VM.

Loading converts and compiles the model in a child process, with a timeout
per model (``python -m convt_tools.runtimes.tvm_adapter --serve``: one
long-lived child per process, since importing TVM takes seconds; a crash or a
timeout kills it and the next model gets a fresh one; refusals follow
:mod:`._tool`'s convention: ``TVM timed out after N s``, ``TVM crashed (SIGSEGV)``):
``tvm.relax.frontend.onnx.from_onnx`` (the
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
import onnx

from ._tool import TOOL_TIMEOUT_S, ChildServer
from .base import (LoadedModel, ModelLike, Runtime, RuntimeRefused, contiguous_feeds, feed_names,
                   first_line, load_proto, temporary_model_file)

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
        args = [self.tvm.runtime.tensor(x, self.tvm.cpu())
                for x in contiguous_feeds(self.inputs, inputs)]
        out = self.vm["main"](*args)
        items = out if isinstance(out, (list, tuple)) or not hasattr(out, "numpy") else [out]
        return [np.array(o.numpy()) for o in items]


# The compile child (:class:`~._tool.ChildServer`): importing TVM takes seconds, so one
# child imports it once and builds one model per request line (``MODEL\tLIB``), answering
# ``convt-tvm: ok`` or ``convt-tvm: error: <TVM's first line>``. It inherits
# NO_TORCH_BUILD: TvmRuntime._import sets it (unless set) before any model is built.
_REPLY = "convt-tvm: "
COMPILER = ChildServer("tvm", "compile",
                       [sys.executable, "-m", "convt_tools.runtimes.tvm_adapter", "--serve"],
                       tool="TVM", reply=_REPLY)


def _build(model_path: str, lib_path: str, timeout_s: float) -> None:
    """Compile ``model_path`` into ``lib_path`` in the compile child; a refusal on failure."""
    answer = COMPILER.request(f"{model_path}\t{lib_path}", timeout_s)
    if answer != "ok":
        raise RuntimeRefused("tvm", "compile", answer.removeprefix("error: "))


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

    def _load(self, module: Any, model: ModelLike) -> LoadedModel:
        proto = load_proto(model)
        inputs = feed_names(proto)
        if self.threads is not None:
            module.get_global_func("runtime.config_threadpool")(0, self.threads)
        with temporary_model_file(model) as path, \
                tempfile.TemporaryDirectory(prefix="convt-tvm-") as tmp:
            lib_path = os.path.join(tmp, "model.so")
            _build(path, lib_path, self.timeout_s)
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
    """The compile child: one ``MODEL\tLIB`` request per stdin line (see :data:`COMPILER`)."""
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
