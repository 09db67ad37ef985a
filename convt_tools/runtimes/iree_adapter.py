"""IREE (``pip install -e ".[iree]"`` from the clone): iree-import-onnx, iree-compile
(llvm-cpu), then ``iree.runtime`` on the ``local-task`` driver.

Loading runs IREE's own tools as child processes with a timeout
(:func:`~._tool.run_tool`), as users do: ``python -m
iree.compiler.tools.import_onnx MODEL -o MODEL.mlir`` (the ``torch-mlir``
ONNX importer shipped in ``iree-base-compiler``), then ``iree-compile
--iree-hal-target-device=local --iree-hal-local-target-device-backends=llvm-cpu``
(generic x86-64 code, so a module compiled here runs on any x86-64 CPU).
The ``.vmfb`` is loaded into a ``SystemContext``; the entry function is the
module's one exported function (named after the ONNX graph). Symbolic input
dims stay dynamic (the importer keeps them, IREE compiles shape-generic
code). A refusal is the importer's exception line or iree-compile's first
``error:`` line.

The importer runs ``onnx.checker`` on the model, which rejects a graph
output that has a type but no shape; such outputs (nothing in ONNX requires
their shape) are given the shape ONNX shape inference finds (dims it cannot
find stay unnamed) before import. That changes no value the model computes.
``threads`` is accepted for the common interface (``local-task`` uses IREE's
own worker count).
"""

from __future__ import annotations

import os
import sys
import tempfile
from importlib.metadata import version
from typing import Any, Mapping, Sequence

import numpy as np
import onnx

from ._tool import run_tool
from .base import (LoadedModel, ModelLike, Runtime, feed_names, load_proto,
                   temporary_model_file)

__all__ = ["COMPILE_FLAGS", "IreeRuntime"]

COMPILE_FLAGS = ("--iree-hal-target-device=local",
                 "--iree-hal-local-target-device-backends=llvm-cpu")
DRIVER = "local-task"


class _Module(LoadedModel):
    runtime = "iree"

    def __init__(self, rt: Any, vmfb: bytes, inputs: list[str]) -> None:
        self.context = rt.SystemContext(config=rt.Config(DRIVER))
        module = rt.VmModule.copy_buffer(self.context.instance, vmfb)
        self.context.add_vm_module(module)
        entry = [f for f in module.function_names if not f.startswith("__") and "$" not in f]
        self.function = self.context.modules[module.name][entry[0]]
        self.inputs = inputs

    def _run(self, inputs: Mapping[str, np.ndarray]) -> Sequence[Any]:
        out = self.function(*[np.ascontiguousarray(inputs[n]) for n in self.inputs])
        items = out if isinstance(out, (list, tuple)) else [out]
        return [np.array(o.to_host()) if hasattr(o, "to_host") else np.array(o) for o in items]


def _with_output_shapes(proto: onnx.ModelProto) -> onnx.ModelProto | None:
    """A copy of ``proto`` whose shapeless graph outputs get their inferred shapes, or
    None when every output already has one (module doc)."""
    missing = [o.name for o in proto.graph.output
               if o.type.HasField("tensor_type") and not o.type.tensor_type.HasField("shape")]
    if not missing:
        return None
    inferred = onnx.shape_inference.infer_shapes(proto)
    shapes = {o.name: o for o in inferred.graph.output}
    fixed = onnx.ModelProto()
    fixed.CopyFrom(proto)
    for o in fixed.graph.output:
        if o.name in missing and shapes[o.name].type.tensor_type.HasField("shape"):
            o.type.tensor_type.shape.CopyFrom(shapes[o.name].type.tensor_type.shape)
        elif o.name in missing:
            o.type.tensor_type.shape.SetInParent()
            o.type.tensor_type.shape.dim.add()  # rank unknown to ONNX: one unnamed dim
    return fixed


class IreeRuntime(Runtime):
    """``iree``: IREE's ONNX importer and compiler (llvm-cpu), run by ``iree.runtime``."""

    name = "iree"
    extra = "iree"
    packages = ("iree.compiler", "iree.runtime")

    def _import(self) -> Any:
        import iree.compiler
        import iree.runtime

        return iree.runtime

    def _version(self, module: Any) -> str:
        return version("iree-base-runtime")

    def _load(self, module: Any, model: ModelLike) -> LoadedModel:
        from iree.compiler.tools.binaries import find_tool

        proto = load_proto(model)
        inputs = feed_names(proto)
        fixed = _with_output_shapes(proto)
        with temporary_model_file(model if fixed is None else fixed) as path, \
                tempfile.TemporaryDirectory(prefix="convt-iree-") as tmp:
            mlir, vmfb = os.path.join(tmp, "model.mlir"), os.path.join(tmp, "model.vmfb")
            run_tool(self.name, "import",
                     [sys.executable, "-m", "iree.compiler.tools.import_onnx", path, "-o", mlir])
            run_tool(self.name, "compile", [find_tool("iree-compile"), mlir, *COMPILE_FLAGS,
                                            "-o", vmfb])
            with open(vmfb, "rb") as fh:
                data = fh.read()
        return _Module(module, data, inputs)
