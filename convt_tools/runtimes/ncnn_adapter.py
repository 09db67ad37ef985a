"""ncnn (Tencent's mobile inference engine) through pnnx, its ONNX converter.

Install in two steps (pnnx's wheel declares torch, whose plain PyPI build
pulls GBs of CUDA wheels, and a pip extra cannot say ``--no-deps``; the
``pnnx`` binary inside the wheel runs without torch)::

    pip install -e ".[ncnn]"
    pip install --no-deps pnnx==20261020

The ONNX model is converted by the ``pnnx`` binary of the pnnx wheel (found
beside its package, never by importing it: ``import pnnx`` imports torch) in
a child process killed after :data:`~._convert.CONVERT_TIMEOUT_S`, with
``fp16=0`` (pnnx stores fp16 weights by default) and ``inputshape`` the
feed's concrete shapes at batch 1 with their float type (``f32``, ``f16``):
pnnx needs static shapes, so a model with symbolic dims is converted once per
concrete input shape (cached). The
``.ncnn.param``/``.ncnn.bin`` pair is loaded with the ncnn Python bindings,
fp16/bf16 storage and arithmetic off (float32 throughout; float16 feeds are
given to ncnn as float32, as its Mat holds them), and run on the CPU.

ncnn has no batch axis (a blob is ``c, d, h, w``): each sample of the batch
is run on its own (``x[i]``, the model converted at batch 1) and the outputs
are stacked on a new leading axis. That is what ncnn's users do; it is exact
whenever the model treats samples independently, as inference graphs do. A
model whose graph input fixes a batch other than 1 is refused (pnnx converts
its inputs as declared, and the ncnn model cannot hold the batch axis).

pnnx leaves operators it cannot convert as they are (``todo ConvTranspose``
in its output) and exits 0; ncnn then cannot load the layer. That refusal's
reason is pnnx's own ``todo`` line. ``threads`` sets ncnn's ``num_threads``
(``None``: ncnn's default).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import re
import tempfile
from typing import Any, Mapping, Sequence

import numpy as np

from ._convert import CONVERT_TIMEOUT_S, feed_shapes, graph_inputs, run_converter, tool_error_line
from .base import (LoadedModel, ModelLike, Runtime, RuntimeRefused, load_proto,
                   temporary_model_file)

__all__ = ["INSTALL", "NcnnRuntime", "pnnx_binary"]

INSTALL = ('pip install -e ".[ncnn]" (from the clone), then '
           'pip install --no-deps pnnx==20261020')
# pnnx's input type suffixes (inputshape=[1,3,8,8]f16); ncnn itself computes in float32.
_PNNX_TYPES = {"f4": "f32", "f2": "f16", "f8": "f64"}
_OUT = re.compile(r"^out(\d+)$")
_IN = re.compile(r"^in(\d+)$")


def pnnx_binary() -> str | None:
    """The ``pnnx`` executable of the installed pnnx wheel (found without importing it)."""
    spec = importlib.util.find_spec("pnnx")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        exe = os.path.join(folder, "pnnx")
        if os.path.isfile(exe) and os.access(exe, os.X_OK):
            return exe
    return None


def _ordered(names: Sequence[str], pattern: re.Pattern[str]) -> list[str]:
    """pnnx's blob names (``in0``, ``in1``, ... / ``out0``, ...) in graph order."""
    keyed = [(int(m.group(1)), n) for n in names if (m := pattern.match(n))]
    return [n for _, n in sorted(keyed)]


class _Converted:
    """One ncnn net converted at one concrete input shape (batch 1)."""

    def __init__(self, ncnn: Any, folder: str, threads: int | None) -> None:
        net = ncnn.Net()
        opt = net.opt
        for flag in ("use_fp16_storage", "use_fp16_packed", "use_fp16_arithmetic",
                     "use_bf16_storage", "use_bf16_packed"):
            if hasattr(opt, flag):
                setattr(opt, flag, False)
        opt.use_vulkan_compute = False
        if threads is not None:
            opt.num_threads = threads
        self.param_status = net.load_param(os.path.join(folder, "model.ncnn.param"))
        self.model_status = (net.load_model(os.path.join(folder, "model.ncnn.bin"))
                             if self.param_status == 0 else -1)
        self.net = net
        self.inputs = _ordered(list(net.input_names()), _IN)
        self.outputs = _ordered(list(net.output_names()), _OUT)

    def run_sample(self, ncnn: Any, sample: Sequence[np.ndarray]) -> list[np.ndarray]:
        with self.net.create_extractor() as ex:
            for name, x in zip(self.inputs, sample):
                ex.input(name, ncnn.Mat(np.ascontiguousarray(x, np.float32)).clone())
            outs = []
            for name in self.outputs:
                status, mat = ex.extract(name)
                if status != 0:
                    raise RuntimeRefused("ncnn", "run", f"extract({name!r}) returned {status}")
                outs.append(np.array(mat, copy=True))
        return outs


class _Net(LoadedModel):
    runtime = "ncnn"

    def __init__(self, ncnn: Any, exe: str, source: ModelLike,
                 inputs: list[tuple[str, list[int | str | None]]], threads: int | None) -> None:
        self.ncnn = ncnn
        self.exe = exe
        self.source = source
        self.inputs = inputs
        self.threads = threads
        self.by_shape: dict[tuple[tuple[tuple[int, ...], ...], tuple[str, ...]], _Converted] = {}
        self._folders: list[tempfile.TemporaryDirectory[str]] = []

    def _convert(self, shapes: tuple[tuple[int, ...], ...], types: tuple[str, ...]) -> _Converted:
        if (shapes, types) in self.by_shape:
            return self.by_shape[(shapes, types)]
        folder = tempfile.TemporaryDirectory(prefix="convt-ncnn-")
        self._folders.append(folder)
        shape_arg = ",".join("[" + ",".join(str(d) for d in (1, *s[1:])) + "]" + t
                             for s, t in zip(shapes, types))
        with temporary_model_file(self.source) as src:
            done = run_converter(
                [self.exe, os.path.abspath(src), f"inputshape={shape_arg}", "fp16=0",
                 *(f"{k}={os.path.join(folder.name, v)}" for k, v in (
                     ("pnnxparam", "model.pnnx.param"), ("pnnxbin", "model.pnnx.bin"),
                     ("pnnxpy", "model_pnnx.py"), ("pnnxonnx", "model.pnnx.onnx"),
                     ("ncnnparam", "model.ncnn.param"), ("ncnnbin", "model.ncnn.bin"),
                     ("ncnnpy", "model_ncnn.py")))],
                cwd=folder.name, timeout_s=CONVERT_TIMEOUT_S)
        todo = tool_error_line(done.output, ("todo ",), "")
        if not done.ok or not os.path.exists(os.path.join(folder.name, "model.ncnn.param")):
            raise RuntimeRefused("ncnn", "conversion", tool_error_line(
                done.output, ("error", "expect", "todo ", "failed", "timed out"),
                f"pnnx wrote no ncnn model (exit {done.returncode})"))
        net = _Converted(self.ncnn, folder.name, self.threads)
        if net.param_status != 0 or net.model_status != 0:
            raise RuntimeRefused("ncnn", "load", f"pnnx: {todo}" if todo else
                                 f"load_param/load_model returned {net.param_status}/"
                                 f"{net.model_status}")
        self.by_shape[(shapes, types)] = net
        return net

    def _run(self, inputs: Mapping[str, np.ndarray]) -> Sequence[Any]:
        names = [n for n, _ in self.inputs]
        arrays = [np.asarray(inputs[n]) for n in names]
        for n, x in zip(names, arrays):
            if x.dtype.kind != "f":
                raise RuntimeRefused("ncnn", "run", f"input {n!r}: ncnn runs float inputs only, "
                                     f"got {x.dtype}")
            if x.ndim < 2:
                raise RuntimeRefused("ncnn", "run", f"input {n!r}: shape {list(x.shape)} has no "
                                     f"batch axis to run per sample")
        batches = {int(x.shape[0]) for x in arrays}
        if len(batches) != 1:
            raise RuntimeRefused("ncnn", "run", f"inputs have different batch sizes "
                                 f"{sorted(batches)}; ncnn runs one sample at a time")
        net = self._convert(feed_shapes(names, inputs),
                            tuple(_PNNX_TYPES.get(x.dtype.str[1:], "f32") for x in arrays))
        per_sample = [net.run_sample(self.ncnn, [x[i] for x in arrays])
                      for i in range(batches.pop())]
        return [np.stack([s[k] for s in per_sample]) for k in range(len(net.outputs))]


class NcnnRuntime(Runtime):
    """``ncnn``: pnnx's ONNX -> ncnn conversion, then the ncnn bindings, float32, per sample."""

    name = "ncnn"
    extra = "ncnn"
    packages = ("ncnn", "pnnx")
    install = INSTALL

    def _import(self) -> Any:
        import ncnn

        if pnnx_binary() is None:
            raise ImportError("the pnnx converter binary is missing (pnnx wheel not installed)")
        return ncnn

    def _version(self, module: Any) -> str:
        return f"{module.__version__} (pnnx {importlib.metadata.version('pnnx')})"

    def _load(self, module: Any, model: ModelLike) -> LoadedModel:
        proto = load_proto(model)
        inputs = graph_inputs(proto)
        for name, dims in inputs:
            if dims and isinstance(dims[0], int) and dims[0] not in (0, 1):
                raise RuntimeRefused("ncnn", "load", f"input {name!r} fixes batch {dims[0]}; "
                                     f"ncnn has no batch axis (a model of batch 1 or a "
                                     f"symbolic batch runs per sample)")
        exe = pnnx_binary()
        assert exe is not None  # _import checked it
        return _Net(module, exe, model, inputs, self.threads)
