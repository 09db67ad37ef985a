"""ncnn (Tencent's mobile inference engine) through pnnx, its ONNX converter.

Install in two steps (pnnx's wheel declares torch, whose plain PyPI build
pulls GBs of CUDA wheels, and a pip extra cannot say ``--no-deps``; the
``pnnx`` binary inside the wheel runs without torch)::

    pip install -e ".[ncnn]"
    pip install --no-deps pnnx==20261020

The ONNX model is converted by the ``pnnx`` binary of the pnnx wheel (found
beside its package, never by importing it: ``import pnnx`` imports torch) in
a child process killed after :data:`TIMEOUT_S` (:func:`~._tool.run_tool`), with
``fp16=0`` (pnnx stores fp16 weights by default) and ``inputshape`` the
feed's concrete shapes at batch 1 with their float type (``f32``, ``f16``):
pnnx needs static shapes, so a model with symbolic dims is converted once per
concrete input shape (cached). The
``.ncnn.param``/``.ncnn.bin`` pair is loaded with the ncnn Python bindings in
a child process too (``python -m convt_tools.runtimes.ncnn_adapter --serve
FOLDER``, one long-lived child per converted model, a
:class:`~._tool.ChildServer`: inputs and outputs go through ``.npy`` files in
a work folder, ~0.5-1 ms a run; pnnx 20261020 turns an ONNX ``Split`` without
sizes into an ncnn ``Slice`` that segfaults, which must not take convt down:
it is a refusal naming the signal, and the next run starts a fresh child),
fp16/bf16 storage and arithmetic off (float32 throughout; float16 feeds are
given to ncnn as float32, as its Mat holds them; outputs the graph declares
float16 are cast back to it), and run on the CPU.

ncnn has no batch axis (a blob is ``c, d, h, w``): each sample of the batch
is run on its own (``x[i]``, the model converted at batch 1) and the outputs
are stacked on a new leading axis. That is what ncnn's users do; it is exact
whenever the model treats samples independently, as inference graphs do. A
graph input that fixes a batch N > 1 is re-declared with batch 1 for pnnx
(which otherwise refuses ``inputshape`` at batch 1); a graph whose other
shapes depend on that batch then fails to convert or gives wrong values,
which validation reports. An empty batch is refused.

pnnx leaves operators it cannot convert as they are (``todo ConvTranspose``
in its output) and exits 0; ncnn then cannot load the layer. That refusal's
reason is pnnx's own ``todo`` line. ``threads`` sets ncnn's ``num_threads``
(``None``: ncnn's default).
"""

from __future__ import annotations

import copy
import importlib.metadata
import importlib.util
import os
import re
import sys
import tempfile
import weakref
from typing import Any, Mapping, Sequence

import numpy as np

from ._tool import ChildServer, error_line, run_tool
from .base import (LoadedModel, ModelLike, Runtime, RuntimeRefused, first_line, float16_outputs,
                   graph_inputs, load_proto, temporary_model_file)

__all__ = ["INSTALL", "NcnnRuntime", "pnnx_binary"]

INSTALL = ('pip install -e ".[ncnn]" (from the clone), then '
           'pip install --no-deps pnnx==20261020')
# pnnx's input type suffixes (inputshape=[1,3,8,8]f16); ncnn itself computes in float32.
_PNNX_TYPES = {"f4": "f32", "f2": "f16", "f8": "f64"}
_OUT = re.compile(r"^out(\d+)$")
_IN = re.compile(r"^in(\d+)$")
# Seconds one pnnx conversion, or one run of the ncnn child, may take.
TIMEOUT_S = 120.0
# The run child's answer lines start with this (:class:`~._tool.ChildServer`).
_REPLY = "convt-ncnn: "
# Lines of pnnx's output that carry its first error.
_PNNX_MARKERS = ("error", "expect", "todo ", "failed")


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


def _open_net(ncnn: Any, folder: str, threads: int | None) -> tuple[Any, str]:
    """The converted net loaded float32 on the CPU, or None and why it did not load."""
    net = ncnn.Net()
    opt = net.opt
    for flag in ("use_fp16_storage", "use_fp16_packed", "use_fp16_arithmetic",
                 "use_bf16_storage", "use_bf16_packed", "use_vulkan_compute"):
        if hasattr(opt, flag):
            setattr(opt, flag, False)
    if threads is not None:
        opt.num_threads = threads
    param = net.load_param(os.path.join(folder, "model.ncnn.param"))
    model = net.load_model(os.path.join(folder, "model.ncnn.bin")) if param == 0 else -1
    if param != 0 or model != 0:
        unknown = _unknown_layers(ncnn, os.path.join(folder, "model.ncnn.param"))
        why = f"load_param/load_model returned {param}/{model}"
        return None, (f"{why}: ncnn has no layer {', '.join(unknown)} (pnnx's names for "
                      f"operators ncnn cannot run)" if unknown else why)
    return net, ""


def _unknown_layers(ncnn: Any, param: str) -> list[str]:
    """The layer types of an ncnn ``.param`` file that ncnn does not know (pnnx writes an
    operator it cannot map under its own name, e.g. ``pnnx.Expression``, ``torch.where``)."""
    with open(param, encoding="utf-8") as fh:
        lines = fh.read().splitlines()[2:]   # magic, then the layer and blob counts
    kinds = dict.fromkeys(line.split()[0] for line in lines if line.split())
    return [k for k in kinds if ncnn.layer_to_index(k) < 0]


def _run_samples(ncnn: Any, net: Any, work: str, count: int, samples: int) -> str:
    """Run each sample of ``work/in<k>.npy`` (the whole batch) through ``net``; write
    ``work/out<k>.npy`` (stacked). The answer: ``ok <outputs>`` or ``error: <why>``."""
    arrays = [np.load(os.path.join(work, f"in{k}.npy"), allow_pickle=False)
              for k in range(count)]
    names_in = _ordered(list(net.input_names()), _IN)
    names_out = _ordered(list(net.output_names()), _OUT)
    per_sample = []
    for i in range(samples):
        with net.create_extractor() as ex:
            for name, x in zip(names_in, arrays):
                ex.input(name, ncnn.Mat(np.ascontiguousarray(x[i], np.float32)).clone())
            outs = []
            for name in names_out:
                status, mat = ex.extract(name)
                if status != 0:
                    return f"error: extract({name!r}) returned {status}"
                outs.append(np.array(mat, copy=True))
        per_sample.append(outs)
    for k in range(len(names_out)):
        np.save(os.path.join(work, f"out{k}.npy"), np.stack([s[k] for s in per_sample]))
    return f"ok {len(names_out)}"


def _serve(argv: Sequence[str]) -> None:
    """The run child of one converted model: ``--serve FOLDER [THREADS]``; then one
    ``WORK\tINPUTS\tSAMPLES`` request per stdin line, answered ``convt-ncnn: ok <outputs>``
    or ``convt-ncnn: error: <why>`` (a net that does not load: every answer says why)."""
    import ncnn

    folder = argv[0]
    threads = int(argv[1]) if len(argv) > 1 and argv[1] else None
    net, why = _open_net(ncnn, folder, threads)
    for request in sys.stdin:
        work, count, samples = request.rstrip("\n").split("\t")
        try:
            answer = (f"error: {why}" if net is None
                      else _run_samples(ncnn, net, work, int(count), int(samples)))
        except Exception as exc:  # noqa: BLE001 - the child reports ncnn's first line
            answer = f"error: {first_line(exc)}"
        print(_REPLY + answer, flush=True)


class _Net(LoadedModel):
    runtime = "ncnn"

    def __init__(self, exe: str, source: ModelLike,
                 inputs: list[tuple[str, list[int | str | None]]], threads: int | None) -> None:
        self.exe = exe
        self.source = source
        self.inputs = inputs
        self.threads = threads
        self.by_shape: dict[tuple[tuple[tuple[int, ...], ...], tuple[str, ...]], str] = {}
        self.half = float16_outputs(load_proto(source))   # ncnn computes in float32
        self.batch_fixed = any(d and isinstance(d[0], int) and d[0] > 1 for _, d in inputs)
        self._folders: list[tempfile.TemporaryDirectory[str]] = []
        self._servers: dict[str, ChildServer] = {}   # converted folder -> its run child
        weakref.finalize(self, _stop_servers, self._servers)

    def _convert(self, shapes: tuple[tuple[int, ...], ...], types: tuple[str, ...]) -> str:
        """The folder of the ncnn model converted for these input shapes (cached)."""
        if (shapes, types) in self.by_shape:
            return self.by_shape[(shapes, types)]
        folder = tempfile.TemporaryDirectory(prefix="convt-ncnn-")
        self._folders.append(folder)
        shape_arg = ",".join("[" + ",".join(str(d) for d in (1, *s[1:])) + "]" + t
                             for s, t in zip(shapes, types))
        src = os.path.join(folder.name, "source.onnx")   # pnnx writes beside its input
        if isinstance(self.source, (str, os.PathLike)) or self.batch_fixed:
            proto = load_proto(self.source)
            if self.batch_fixed:   # converted at batch 1: ncnn holds no batch axis
                proto = copy.deepcopy(proto)
                for vi in proto.graph.input:
                    dims = vi.type.tensor_type.shape.dim
                    if len(dims) and dims[0].HasField("dim_value") and dims[0].dim_value > 1:
                        dims[0].dim_value = 1
            with open(src, "wb") as fh:
                fh.write(proto.SerializeToString())
            output = self._pnnx(src, shape_arg, folder.name)
        else:
            with temporary_model_file(self.source) as given:
                output = self._pnnx(given, shape_arg, folder.name)
        if not os.path.exists(os.path.join(folder.name, "model.ncnn.param")):
            raise RuntimeRefused("ncnn", "conversion", error_line(
                output, _PNNX_MARKERS, first_line=False) or "pnnx wrote no ncnn model (exit 0)")
        todo = error_line(output, ("todo ",), first_line=False)
        with open(os.path.join(folder.name, "model.ncnn.param"), encoding="utf-8") as fh:
            if todo and any(len(line.split()) > 1 and line.split()[0] in todo.split()
                            for line in fh):
                raise RuntimeRefused("ncnn", "load", f"pnnx: {todo}" + (
                    " (a float16 model: pnnx 20261020 converts ConvTranspose with float32 "
                    "weights only, measured; export it float32)" if any(self.half) and
                    "ConvTranspose" in todo else ""))
        self.by_shape[(shapes, types)] = folder.name
        return folder.name

    @staticmethod
    def _pnnx(exe_src: str, shape_arg: str, folder: str) -> str:
        """pnnx's output text (:func:`~._tool.run_tool`: a failure is a refusal)."""
        exe = pnnx_binary()
        assert exe is not None   # NcnnRuntime._import checked it
        return run_tool(
            "ncnn", "conversion", [exe, os.path.abspath(exe_src), f"inputshape={shape_arg}", "fp16=0",
             *(f"{k}={os.path.join(folder, v)}" for k, v in (
                 ("pnnxparam", "model.pnnx.param"), ("pnnxbin", "model.pnnx.bin"),
                 ("pnnxpy", "model_pnnx.py"), ("pnnxonnx", "model.pnnx.onnx"),
                 ("ncnnparam", "model.ncnn.param"), ("ncnnbin", "model.ncnn.bin"),
                 ("ncnnpy", "model_ncnn.py")))],
            cwd=folder, timeout_s=TIMEOUT_S, markers=_PNNX_MARKERS, first_line=False,
            failure="pnnx wrote no ncnn model")

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
        if 0 in batches:
            raise RuntimeRefused("ncnn", "run", "an empty batch: ncnn runs one sample at a "
                                 "time (no batch axis), so there is no output shape to give")
        folder = self._convert(tuple(tuple(int(d) for d in x.shape) for x in arrays),
                               tuple(_PNNX_TYPES.get(x.dtype.str[1:], "f32") for x in arrays))
        server = self._servers.get(folder)
        if server is None:
            server = self._servers[folder] = ChildServer(
                "ncnn", "run", [sys.executable, "-m", "convt_tools.runtimes.ncnn_adapter",
                                "--serve", folder,
                                "" if self.threads is None else str(self.threads)],
                tool="ncnn", reply=_REPLY)
        with tempfile.TemporaryDirectory(prefix="convt-ncnn-run-", dir=folder) as work:
            for k, x in enumerate(arrays):
                np.save(os.path.join(work, f"in{k}.npy"), np.ascontiguousarray(x, np.float32))
            answer = server.request(f"{work}\t{len(arrays)}\t{batches.pop()}", TIMEOUT_S)
            if not answer.startswith("ok "):
                raise RuntimeRefused("ncnn", "run", answer.removeprefix("error: "))
            outs = [np.load(os.path.join(work, f"out{k}.npy"), allow_pickle=False)
                    for k in range(int(answer[3:]))]
            return [o.astype(np.float16) if k < len(self.half) and self.half[k] else o
                    for k, o in enumerate(outs)]


class NcnnRuntime(Runtime):
    """``ncnn``: pnnx's ONNX -> ncnn conversion, then the ncnn bindings, float32, per sample."""

    name = "ncnn"
    extra = "ncnn"
    packages = ("ncnn", "pnnx")
    install = INSTALL
    run_overhead = ("each run goes to a long-lived child process (pnnx's converted Slice of "
                    "a sizeless Split crashes the process that runs it), inputs and outputs "
                    "through .npy files: its time includes that exchange (about 0.5-1 ms "
                    "here), and its cpu ms counts this process only, not the child's compute")

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
        exe = pnnx_binary()
        assert exe is not None  # _import checked it
        return _Net(exe, model, inputs, self.threads)


def _stop_servers(servers: dict[str, ChildServer]) -> None:
    for server in servers.values():
        server.stop()


if __name__ == "__main__" and sys.argv[1:2] == ["--serve"]:  # pragma: no cover - a child
    _serve(sys.argv[2:])
