"""Pytest fixtures shared by every test module (conftest.py wires them in)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from support.cli import invoke
from support.runners import run_onnx_model

# Out-of-process runtimes (child processes, slow to start; TVM and IREE compile per model)
# that ``runtimes_off`` hides.
CHILD_RUNTIMES = "openvino,tract,mnn,ncnn,opencv,tvm,iree"


@pytest.fixture(autouse=True)
def _isolated_keras_home(tmp_path_factory: pytest.TempPathFactory,
                         monkeypatch: pytest.MonkeyPatch) -> None:
    """``KERAS_HOME`` is an empty folder: ``data_format=None`` never reads ~/.keras."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path_factory.mktemp("keras_home")))


@pytest.fixture
def runtimes_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process runtimes only: hide OpenVINO/tract from convt_tools.check (CONVT_RUNTIMES_OFF).

    Use with ``pytestmark = pytest.mark.usefixtures("runtimes_off")``; a test that
    needs them calls ``monkeypatch.delenv("CONVT_RUNTIMES_OFF")``.
    """
    monkeypatch.setenv("CONVT_RUNTIMES_OFF", CHILD_RUNTIMES)


@pytest.fixture
def cli() -> Callable[..., Any]:
    return invoke


@pytest.fixture
def ort_run() -> Callable[..., list[np.ndarray]]:
    return run_onnx_model
