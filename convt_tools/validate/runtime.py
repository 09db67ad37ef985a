"""onnxruntime: execution providers, an inference session, and the model's input contract.

Validation runs the model in onnxruntime with exactly the providers asked
for (default ``CPUExecutionProvider``): a provider that is listed but fails
to load is an error, not a silent fallback to CPU. The model must have one
input of type float, float16 or double; its output 0 is the layer's output.
onnxruntime is imported on first use only.
"""

from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np

from ..errors import ConvtError

# onnxruntime element type of the input -> NumPy dtype fed to it
_INPUT_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16,
                 "tensor(double)": np.float64}
# ONNX TensorProto element type (FLOAT, FLOAT16, DOUBLE) -> the same NumPy dtypes
_ELEM_DTYPES = {1: np.float32, 10: np.float16, 11: np.float64}


def resolve_providers(providers: Sequence[str] | str | None) -> list[str]:
    """Execution provider names; ``CPU``/``cuda`` short forms accepted.

    Default ``["CPUExecutionProvider"]``. A provider onnxruntime does not
    have is a :class:`ConvtError` listing the available ones.
    """
    import onnxruntime as ort

    if providers is None:
        return ["CPUExecutionProvider"]
    if isinstance(providers, str):
        providers = [p for p in providers.split(",") if p.strip()]
    available = ort.get_available_providers()
    by_lower = {p.lower(): p for p in available}
    result = []
    for raw in providers:
        key = raw.strip().lower()
        if not key.endswith("executionprovider"):
            key += "executionprovider"
        if key not in by_lower:
            raise ConvtError(f"providers: got {raw!r}; this onnxruntime has "
                             f"{', '.join(available)}.", field="providers")
        result.append(by_lower[key])
    if not result:
        raise ConvtError("providers: got an empty list; give at least one, e.g. CPU.",
                         field="providers")
    return result


def session(model: Any, providers: list[str]) -> Any:
    """An ``InferenceSession`` of ``model`` (ModelProto or path) on exactly ``providers``.

    A ModelProto whose weights are held outside it (an export above the
    external-data threshold) is loaded from a temporary ``.onnx`` + ``.data``.
    """
    import onnxruntime as ort

    from .batch import worker_threads

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    threads = worker_threads()
    if threads is not None:  # in a --jobs worker: one core each
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = threads
    from ..onnxbase import has_pending
    from ..runtimes.base import temporary_model_file

    if not isinstance(model, (str, os.PathLike)) and has_pending(model):
        # Weights held outside the proto (external_data.py): onnxruntime reads them
        # from a temporary <model>.onnx + .data pair.
        with temporary_model_file(model) as path:
            sess = ort.InferenceSession(path, opts, providers=providers)
    else:
        data = model if isinstance(model, (str, os.PathLike)) else model.SerializeToString()
        sess = ort.InferenceSession(data if isinstance(data, bytes) else str(data), opts,
                                    providers=providers)
    missing = [p for p in providers if p not in sess.get_providers()]
    if missing:
        raise ConvtError(f"providers: {', '.join(missing)} could not be initialised (it is "
                         f"listed but failed to load; onnxruntime fell back to "
                         f"{', '.join(sess.get_providers())}).", field="providers")
    return sess


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
