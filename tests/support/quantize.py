"""Fresh QDQ models from the real onnxruntime.quantization.quantize_static (tests only):
models that are not in the repository, to check that ``check``'s findings and per-runtime
predictions and ``validate --model`` hold beyond the fixtures they were derived from."""

from __future__ import annotations

import contextlib
import io
import logging
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import onnx
from onnx import helper, numpy_helper


def float_layer(path: Path, *, cin: int, cout: int, group: int, kernel: Sequence[int],
                strides: Sequence[int], dilations: Sequence[int], pads: Sequence[int],
                spatial: Sequence[int], seed: int) -> np.ndarray:
    """Write a one-node float ConvTranspose (opset 13) with seeded weights whose input channels
    differ in magnitude; return a calibration batch (8 samples)."""
    rng = np.random.default_rng(seed)
    r = len(kernel)
    w = (rng.standard_normal((cin, cout // group, *kernel))
         * rng.uniform(0.1, 1.0, (cin, 1) + (1,) * r)).astype(np.float32)
    b = (rng.standard_normal(cout) * 0.1).astype(np.float32)
    node = helper.make_node("ConvTranspose", ["x", "W", "B"], ["y"], name="convt",
                            strides=list(strides), dilations=list(dilations), pads=list(pads),
                            group=group, kernel_shape=list(kernel))
    graph = helper.make_graph([node], "fresh",
                              [helper.make_tensor_value_info("x", 1, [1, cin, *spatial])],
                              [helper.make_tensor_value_info("y", 1, None)],
                              [numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "B")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return rng.standard_normal((8, cin, *spatial)).astype(np.float32)


def quantize(src: Path, dst: Path, calib: np.ndarray, *, per_channel: bool, uint8: bool,
             extra: dict[str, Any]) -> str | None:
    """quantize_static (QDQ, MinMax, int8 weights); None, or the crash's first line."""
    from onnxruntime.quantization import CalibrationDataReader, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.it = iter([{"x": calib[i:i + 1]} for i in range(calib.shape[0])])

        def get_next(self) -> Any:
            return next(self.it, None)

    logging.getLogger().setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            quantize_static(str(src), str(dst), Reader(), per_channel=per_channel,
                            activation_type=QuantType.QUInt8 if uint8 else QuantType.QInt8,
                            weight_type=QuantType.QInt8, extra_options=dict(extra))
    except ValueError as exc:
        return str(exc).splitlines()[0]
    return None
