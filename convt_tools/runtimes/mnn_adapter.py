"""MNN (``pip install -e ".[mnn]"`` from the clone), Alibaba's mobile inference engine.

The ONNX model is converted to ``.mnn`` by MNN's own converter, the code behind
its ``mnnconvert`` command (``-f ONNX --modelFile m.onnx --MNNModel m.mnn``),
then loaded with ``MNN.nn.load_module_from_file`` (CPU backend, precision
mode ``High``: float32) and run through ``MNN.expr``; outputs in MNN's packed
``NC4HW4`` layout are converted to ``NCHW``. MNN computes a float16 model in
float32: inputs are given as float32 and outputs the graph declares float16
are cast back to it.

Nothing phones home or installs packages. The ``mnnconvert`` console script
(``MNN.tools.mnnconvert``) imports ``MNN.tools.utils.log``, which runs
``pip install -U aliyun-log-python-sdk`` when that SDK is missing and sends a
usage log to Alibaba Cloud after each conversion. This adapter never imports
that script: the conversion calls the converter core, the extension module
``_tools`` (``_tools.mnnconvert(argv)``), in a child process
(``python -m convt_tools.runtimes.mnn_adapter IN OUT``, killed after
:attr:`MnnRuntime.timeout_s`, by :func:`~._tool.run_tool`);
tests/test_mnn_ncnn.py proves with
an audit hook that a conversion opens no socket and starts no process.

The converter returns success even when it fails (MNN 3.6.1 prints
``[ERROR] ...`` and writes nothing), so a missing output file is the refusal;
its reason is the converter's own first error line. Symbolic input dims stay
symbolic (the ``.mnn`` model is re-shaped by MNN for each feed), as with the
converter's users. ``threads`` sets the module's thread count through a
runtime manager (``{"numThread": threads}``): MNN 3.6.1's ``thread_num``
argument of ``load_module_from_file`` does not hold it (measured: with
``thread_num=1`` a ``(256 x 512) @ (512 x 2048)`` layer ran on both cores,
3.8 ms wall for 7.3 ms CPU; with the runtime manager 6.4 ms for 6.4 ms).
``None``: MNN's default.
"""

from __future__ import annotations

import os
import sys
import tempfile
from typing import Any, Mapping, Sequence

import numpy as np

from ._tool import native_stdout_discarded, run_tool
from .base import (LoadedModel, ModelLike, Runtime, RuntimeRefused, feed_names, float16_outputs,
                   load_proto, temporary_model_file)

__all__ = ["MnnRuntime", "converter_argv"]

# Lines of the converter's output that carry its first error.
_ERROR_MARKERS = ("[error]", "check failed", "not support", "error:")


def converter_argv(onnx_path: str, mnn_path: str) -> list[str]:
    """The argument vector of MNN's converter core for one ONNX -> MNN conversion."""
    return ["mnnconvert", "-f", "ONNX", "--modelFile", onnx_path, "--MNNModel", mnn_path,
            "--bizCode", "convt"]


def _convert_child(argv: Sequence[str]) -> int:
    """The child's work: the converter core on ``argv = [in.onnx, out.mnn]``; exit status."""
    import _tools  # MNN's converter core (an extension module of the mnn wheel)

    _tools.mnnconvert(converter_argv(argv[0], argv[1]))
    return 0 if os.path.exists(argv[1]) else 1


class _Module(LoadedModel):
    runtime = "mnn"

    def __init__(self, mnn: Any, module: Any, names: list[str], folder: Any,
                 half: list[bool]) -> None:
        self.half = half   # outputs declared float16: MNN computes them in float32
        self.mnn = mnn
        self.module = module
        self.names = names
        self._folder = folder   # the converted file's folder lives as long as the model

    def _run(self, inputs: Mapping[str, np.ndarray]) -> Sequence[Any]:
        expr = self.mnn.expr
        feeds = []
        for name in self.names:
            x = np.asarray(inputs[name])
            if x.dtype.kind == "f":
                feeds.append(expr.const(np.ascontiguousarray(x, np.float32), list(x.shape),
                                        expr.NCHW, expr.float))
            elif x.dtype.kind in "iu":
                feeds.append(expr.const(np.ascontiguousarray(x, np.int32), list(x.shape),
                                        expr.NCHW, expr.int))
            else:
                raise RuntimeRefused("mnn", "run", f"input {name!r}: no MNN type for {x.dtype}")
        outs = self.module.forward(feeds)
        outs = outs if isinstance(outs, (list, tuple)) else [outs]
        result = []
        for k, y in enumerate(outs):
            if y.data_format == expr.NC4HW4:
                y = expr.convert(y, expr.NCHW)
            if 0 in list(y.shape):  # MNN cannot read it back ("call to readMap meet a error")
                raise RuntimeRefused("mnn", "run", f"output {k} has shape {list(y.shape)}; "
                                     f"MNN: call to readMap meet a error")
            out = np.array(y.read(), copy=True)
            result.append(out.astype(np.float16) if k < len(self.half) and self.half[k] else out)
        return result


class MnnRuntime(Runtime):
    """``mnn``: MNN's converter core, then ``MNN.nn`` on the CPU backend, float32."""

    name = "mnn"
    extra = "mnn"
    packages = ("MNN", "_tools")
    timeout_s: float = 120.0   # seconds one conversion may take

    def _import(self) -> Any:
        with native_stdout_discarded():   # the engine prints its CPU features on stdout
            import _tools  # noqa: F401  (the converter core must be there too)
            import MNN

        return MNN

    def _version(self, module: Any) -> str:
        return str(module.version())

    def _load(self, module: Any, model: ModelLike) -> LoadedModel:
        proto = load_proto(model)
        folder = tempfile.TemporaryDirectory(prefix="convt-mnn-")
        dst = os.path.join(folder.name, "model.mnn")
        try:
            with temporary_model_file(model) as src:
                run_tool("mnn", "conversion", [sys.executable, "-m",
                                               "convt_tools.runtimes.mnn_adapter",
                                               os.path.abspath(src), dst],
                         cwd=folder.name, timeout_s=self.timeout_s, tool="MNN's converter",
                         markers=_ERROR_MARKERS, first_line=False,
                         failure="the converter wrote no model")
        except RuntimeRefused:
            folder.cleanup()
            raise
        names = feed_names(proto)
        outputs = [o.name for o in proto.graph.output]
        kwargs: dict[str, Any] = {"precision_mode": module.expr.PrecisionMode.High}
        with native_stdout_discarded():   # both print to stdout ("MNN use high precision")
            if self.threads is not None:
                kwargs["thread_num"] = self.threads
                kwargs["runtime_manager"] = module.nn.create_runtime_manager(
                    ({"numThread": self.threads, "precision": "high"},))
            loaded = module.nn.load_module_from_file(dst, names, outputs, **kwargs)
        if loaded is None:
            folder.cleanup()
            raise RuntimeRefused("mnn", "load", "MNN.nn.load_module_from_file returned None")
        return _Module(module, loaded, names, folder, float16_outputs(proto))


if __name__ == "__main__":  # pragma: no cover - the conversion child (run by _load)
    sys.exit(_convert_child(sys.argv[1:]))
