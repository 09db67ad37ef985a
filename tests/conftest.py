"""Shared test layer: the CLI runner, an isolated KERAS_HOME, an onnxruntime runner.

* Every test runs with ``KERAS_HOME`` pointing at an empty temporary folder, so
  ``data_format=None`` never depends on the machine's ``~/.keras/keras.json``
  (a test that needs a keras.json writes one and sets ``KERAS_HOME`` itself).
* ``cli(*args)`` invokes ``convt`` through click's CliRunner (arguments are
  turned into strings; stdout and stderr are kept apart).
* ``ort_run(model, feeds)`` runs an ONNX model (ModelProto, bytes or path) on
  onnxruntime's CPU provider; ``feeds`` is one array (for the single input) or
  a name -> array dict; it returns the list of outputs. Skips when
  onnxruntime is absent.
"""

from __future__ import annotations

import os
from typing import Any, Callable

import numpy as np
import pytest


@pytest.fixture(autouse=True)
def _isolated_keras_home(tmp_path_factory: pytest.TempPathFactory,
                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KERAS_HOME", str(tmp_path_factory.mktemp("keras_home")))


def invoke(*args: Any, input: str | bytes | None = None) -> Any:
    """``convt *args`` through click's CliRunner (the fixture ``cli`` is this function)."""
    from click.testing import CliRunner

    from convt_tools.cli import main

    return CliRunner().invoke(main, [str(a) for a in args], input=input)


@pytest.fixture
def cli() -> Callable[..., Any]:
    return invoke


def run_onnx_model(model: Any, feeds: Any) -> list[np.ndarray]:
    """Run ``model`` (ModelProto, serialized bytes or a path) on onnxruntime's CPU provider."""
    ort = pytest.importorskip("onnxruntime")
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


@pytest.fixture
def ort_run() -> Callable[..., list[np.ndarray]]:
    return run_onnx_model
