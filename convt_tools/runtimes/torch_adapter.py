"""PyTorch through onnx2torch, CPU: no pip extra (it would pull CUDA); a CPU torch, then
``pip install --no-deps onnx2torch``.

``onnx2torch.convert(model)`` turns the ONNX graph into a ``torch.fx``
module, run under ``torch.inference_mode()``. onnx2torch 1.5 refuses
``ConvTranspose`` nodes with asymmetric pads, which convt's portable export
form avoids (symmetric pads plus a constant ``Slice``).

onnx2torch imports ``torchvision`` at import time, but only uses it for the
``NonMaxSuppression`` and ``RoiAlign`` converters. When torchvision is not
installed (or does not import: a build for another torch), a stand-in module
is registered whose ``ops`` functions raise a clear error, so every other
operator converts; models with those two operators are refused with that
reason. ``threads`` caps ``torch.set_num_threads`` for the run (``None``:
torch's default).
"""

from __future__ import annotations

import sys
import types
import warnings
from typing import Any, Mapping, Sequence

import numpy as np

from .base import LoadedModel, ModelLike, Runtime, contiguous_feeds, load_proto

__all__ = ["TorchRuntime"]

_NO_TORCHVISION = ("torchvision is not installed (onnx2torch needs it only for "
                   "NonMaxSuppression and RoiAlign)")


def _torchvision_stand_in() -> None:
    """Register a ``torchvision`` stand-in unless the real one imports."""
    present = sys.modules.get("torchvision")
    if present is not None:
        return  # the real one, or the stand-in already
    try:
        import torchvision  # noqa: F401
        return
    except Exception:  # ImportError, or RuntimeError from a torchvision built for another torch
        for name in [n for n in sys.modules if n == "torchvision" or
                     n.startswith("torchvision.")]:
            del sys.modules[name]

    def missing(*args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(_NO_TORCHVISION)

    root = types.ModuleType("torchvision")
    ops = types.ModuleType("torchvision.ops")
    for fn in ("nms", "batched_nms", "box_convert", "roi_align"):
        setattr(ops, fn, missing)
    root.ops = ops  # type: ignore[attr-defined]
    root._convt_stand_in = True  # type: ignore[attr-defined]
    sys.modules["torchvision"] = root
    sys.modules["torchvision.ops"] = ops


class _Module(LoadedModel):
    runtime = "torch"

    def __init__(self, torch: Any, module: Any, names: list[str], threads: int | None) -> None:
        self.torch = torch
        self.module = module
        self.names = names
        self.threads = threads

    def _run(self, inputs: Mapping[str, np.ndarray]) -> Sequence[Any]:
        torch = self.torch
        args = [torch.from_numpy(x) for x in contiguous_feeds(self.names, inputs)]
        before = torch.get_num_threads()
        if self.threads is not None:
            torch.set_num_threads(self.threads)
        try:
            with torch.inference_mode(), warnings.catch_warnings():
                # onnx2torch 1.5's Slice indexes with a list (a deprecation warning per call).
                warnings.filterwarnings("ignore", message="Using a non-tuple sequence",
                                        category=UserWarning)
                out = self.module(*args)
        finally:
            if self.threads is not None:
                torch.set_num_threads(before)
        outs = out if isinstance(out, (tuple, list)) else [out]
        return [o.detach().cpu().numpy() for o in outs]


class TorchRuntime(Runtime):
    """``torch``: onnx2torch's conversion, run by PyTorch on the CPU."""

    name = "torch"
    extra = None
    install = ("a CPU torch, then onnx2torch without its dependencies: 'pip install torch "
               "--index-url https://download.pytorch.org/whl/cpu' and 'pip install --no-deps "
               "onnx2torch'")
    packages = ("torch", "onnx2torch")

    def _import(self) -> Any:
        import torch

        _torchvision_stand_in()
        import onnx2torch

        return types.SimpleNamespace(torch=torch, onnx2torch=onnx2torch)

    def _version(self, module: Any) -> str:
        from importlib.metadata import version

        return f"{module.torch.__version__} (onnx2torch {version('onnx2torch')})"

    def _load(self, module: Any, model: ModelLike) -> LoadedModel:
        model = load_proto(model)
        names = [i.name for i in model.graph.input
                 if i.name not in {t.name for t in model.graph.initializer}]
        converted = module.onnx2torch.convert(model)
        converted.eval()
        return _Module(module.torch, converted, names, self.threads)
