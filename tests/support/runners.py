"""Runners shared by the tests: onnxruntime on its CPU provider."""

from __future__ import annotations

import os
from typing import Any

import numpy as np


def run_onnx_model(model: Any, feeds: Any) -> list[np.ndarray]:
    """Run ``model`` (ModelProto, serialized bytes or a path) on onnxruntime's CPU provider.

    ``feeds`` is one array (for the single input) or a name -> array dict;
    returns the list of outputs. onnxruntime is a base dependency: no skip.
    """
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    if isinstance(model, (str, os.PathLike)):
        source: Any = os.fspath(model)
    elif isinstance(model, bytes):
        source = model
    else:
        source = model.SerializeToString()
    session = ort.InferenceSession(source, opts, providers=["CPUExecutionProvider"])
    if not isinstance(feeds, dict):
        names = [i.name for i in session.get_inputs()]
        assert len(names) == 1, names
        feeds = {names[0]: feeds}
    return session.run(None, feeds)
