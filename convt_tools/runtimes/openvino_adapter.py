"""OpenVINO (``pip install -e ".[openvino]"`` from the clone), CPU device.

The ONNX model is read by OpenVINO's ONNX frontend (``Core.read_model``)
and compiled for ``CPU`` with f32 inference precision (OpenVINO may otherwise
pick bf16/f16 on CPUs that have them, which is not what is being validated).
Symbolic input dims stay dynamic. ``threads`` sets ``INFERENCE_NUM_THREADS``
(``None``: OpenVINO's default). This is the only module that creates an
OpenVINO ``Core`` or compiles a model.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from .base import LoadedModel, ModelLike, Runtime, contiguous_feeds, temporary_model_file

__all__ = ["PRECISION_PIN", "OpenvinoRuntime", "feed_name"]

# Compile options every OpenVINO run gets: f32 inference precision (no bf16/f16 on CPUs
# that have them), so what is measured or validated is the float32 computation.
PRECISION_PIN = {"INFERENCE_PRECISION_HINT": "f32"}


def feed_name(port: Any) -> str:
    """The ONNX graph input a compiled model's input ``port`` is fed by.

    OpenVINO's ONNX frontend names each input's Parameter after the graph
    input. The port's tensor can carry more names: when the graph's first ops
    cancel out (a Transpose and its inverse), the tensor after them is the
    input tensor itself and keeps its name too, and ``get_any_name()`` returns
    the smallest name of the set (measured with OpenVINO 2026.4: an input
    ``input`` followed by cancelling Transposes into ``a_t2`` gave ``a_t2``).
    """
    names = port.get_names()
    own = port.get_node().get_friendly_name()
    return own if own in names else port.get_any_name()


class _Compiled(LoadedModel):
    runtime = "openvino"

    def __init__(self, compiled: Any) -> None:
        self.compiled = compiled
        self.names = [feed_name(p) for p in compiled.inputs]

    def _run(self, inputs: Mapping[str, np.ndarray]) -> Sequence[Any]:
        request = self.compiled.create_infer_request()
        result = request.infer(dict(zip(self.names, contiguous_feeds(self.names, inputs))))
        return [np.array(result[out]) for out in self.compiled.outputs]


class OpenvinoRuntime(Runtime):
    """``openvino``: OpenVINO's ONNX frontend on the CPU device."""

    name = "openvino"
    extra = "openvino"
    packages = ("openvino",)

    def _import(self) -> Any:
        import openvino

        return openvino

    def _version(self, module: Any) -> str:
        return str(module.get_version()).split("-")[0]

    _core: Any = None  # one Core per process: creating one loads the device plugins (slow)

    def _load(self, module: Any, model: ModelLike) -> LoadedModel:
        if OpenvinoRuntime._core is None:
            OpenvinoRuntime._core = module.Core()
        core = OpenvinoRuntime._core
        with temporary_model_file(model) as path:
            ov_model = core.read_model(path)
        config: dict[str, Any] = dict(PRECISION_PIN)
        if self.threads is not None:
            config["INFERENCE_NUM_THREADS"] = self.threads
        return _Compiled(core.compile_model(ov_model, "CPU", config))
