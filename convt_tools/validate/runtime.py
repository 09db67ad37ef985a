"""The model's input contract (and, re-exported, onnxruntime's provider list and session).

Validation runs the model with exactly the providers asked for (default
``CPUExecutionProvider``): a provider that is listed but fails to load is an
error, not a silent fallback to CPU. The model must have one input of type
float, float16 or double; its output 0 is the layer's output. Sessions are
made by :mod:`convt_tools.runtimes` only (:func:`resolve_providers` and
:func:`session` are that package's, kept here for existing imports).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ConvtError
from ..runtimes.onnxruntime_adapter import resolve_providers, session
from ..tflite import TfliteModel

__all__ = ["model_input", "model_io", "resolve_providers", "session"]

# onnxruntime element type of the input -> NumPy dtype fed to it
_INPUT_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16,
                 "tensor(double)": np.float64}
# ONNX TensorProto element type (FLOAT, FLOAT16, DOUBLE) -> the same NumPy dtypes
_ELEM_DTYPES = {1: np.float32, 10: np.float16, 11: np.float64}


def model_io(sess: Any) -> tuple[str, np.dtype]:
    """(input name, input numpy dtype) of a one-input model."""
    inputs = sess.get_inputs()
    if len(inputs) != 1:
        raise ConvtError(f"model: has {len(inputs)} inputs "
                         f"({', '.join(i.name for i in inputs)}); expected one.", field="model")
    elem = inputs[0].type  # e.g. "tensor(float)"
    if elem not in _INPUT_DTYPES:
        raise ConvtError(f"model: input {inputs[0].name!r} has type {elem}; expected "
                         f"float, float16 or double.", field="model")
    return inputs[0].name, np.dtype(_INPUT_DTYPES[elem])


def model_input(model: Any) -> tuple[str, np.dtype]:
    """(input name, input numpy dtype) of a one-input ``ModelProto``, read from the graph.

    The same contract as :func:`model_io`, without a runtime session (so
    every runtime adapter is fed the same array). Graph inputs that are also
    initializers (older IR versions list them) are not inputs.
    """
    if isinstance(model, TfliteModel):   # the .tflite export: float32 tensors, judged in its dtype
        return model.input_name, np.dtype(model.dtype)
    consts = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in consts]
    if len(inputs) != 1:
        raise ConvtError(f"model: has {len(inputs)} inputs "
                         f"({', '.join(i.name for i in inputs)}); expected one.", field="model")
    elem = inputs[0].type.tensor_type.elem_type
    if elem not in _ELEM_DTYPES:
        raise ConvtError(f"model: input {inputs[0].name!r} has element type {elem}; expected "
                         f"float, float16 or double.", field="model")
    return inputs[0].name, np.dtype(_ELEM_DTYPES[elem])
