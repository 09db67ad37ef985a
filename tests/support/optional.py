"""The only reasons a test may skip: a missing optional runtime, or no oracle interpreter.

Presence is decided by ``importlib.util.find_spec`` (is the package installed at
all?), never by catching exceptions: an optional runtime that is installed but
fails to import, parse or run fails its tests instead of skipping them.

The oracle interpreter (real Keras/torch, never installed by CI) is found in
one way only: the environment variable ``CONVT_ORACLE_PYTHON`` (a path to a
Python that imports ``keras`` and ``torch``). Unset: the oracle tests skip;
set to something that is not a file: they fail. No path is guessed.
"""

from __future__ import annotations

import importlib.util
import os
from typing import Any

import pytest

# Optional packages a test may need (pip extras and the oracle environment).
OPTIONAL = ("openvino", "tract", "torch", "onnx2torch", "tensorflow", "tf2onnx", "keras",
            "ai_edge_litert")
ORACLE_ENV = "CONVT_ORACLE_PYTHON"


def installed(*modules: str) -> bool:
    """Every one of ``modules`` (optional packages only) is installed."""
    for name in modules:
        assert name in OPTIONAL, f"{name} is not an optional package: import it, do not skip"
    return all(_found(m) for m in modules)


def _found(module: str) -> bool:
    """``module`` is installed; a dotted name needs its parent package first (``find_spec``
    of ``iree.compiler`` raises rather than answers when ``iree`` is absent)."""
    parts = module.split(".")
    return all(importlib.util.find_spec(".".join(parts[:i + 1])) is not None
               for i in range(len(parts)))


def requires(*modules: str) -> Any:
    """A ``skipif`` marker for tests that need optional packages."""
    return pytest.mark.skipif(not installed(*modules),
                              reason=f"optional {', '.join(modules)} not installed")


def need(module: str) -> Any:
    """Import an optional package, skipping when it is not installed (import errors fail)."""
    if not installed(module):
        pytest.skip(f"optional {module} not installed")
    return importlib.import_module(module)


def runtime_installed(name: str) -> bool:
    """The engine behind runtime ``name`` (convt_tools.runtimes) is installed."""
    from convt_tools.runtimes import get_runtime

    return all(_found(p) for p in get_runtime(name).packages)


def runtime_or_skip(name: str) -> Any:
    """The runtime adapter, or a skip naming its pip extra when its engine is not installed.

    An installed engine that fails to import raises (the test fails).
    """
    from convt_tools.runtimes import get_runtime

    runtime = get_runtime(name)
    if not runtime_installed(name):
        how = (f"pip install -e '.[{runtime.extra}]'" if runtime.extra
               else runtime.install or "pip install -e .")
        pytest.skip(f"runtime {name} not installed ({how})")
    runtime.module()
    return runtime


def oracle_python() -> str:
    """``$CONVT_ORACLE_PYTHON`` (an interpreter with keras and torch), or a skip when unset."""
    exe = os.environ.get(ORACLE_ENV)
    if not exe:
        pytest.skip(f"oracle: set {ORACLE_ENV} to a Python with keras and torch")
    assert os.path.isfile(exe), f"{ORACLE_ENV}={exe!r} is not a file"
    return exe


# Runtimes of the base install (convt_tools.runtimes names and convt_tools.check's).
BASE_RUNTIMES = ("onnxruntime", "onnx-reference")


# Runtimes that compile each model in a child process (seconds apiece).
COMPILED_RUNTIMES = ("openvino", "tract")


def runtime_params(names: list[str] | tuple[str, ...], slow_compiled: bool = False) -> list[Any]:
    """``names`` as parameters; the optional runtimes carry the ``runtimes`` marker.

    .ci/run installs the optional runtimes after the fast tier, then runs the
    ``runtimes`` tests (skipped in the fast tier there) with the other tiers.
    ``slow_compiled``: OpenVINO/tract are also ``slow`` (not in the fast tier).
    """
    def marks(n: str) -> tuple[Any, ...]:
        if n in BASE_RUNTIMES:
            return ()
        if slow_compiled and n in COMPILED_RUNTIMES:
            return (pytest.mark.runtimes, pytest.mark.slow)
        return (pytest.mark.runtimes,)

    return [pytest.param(n, marks=marks(n)) for n in names]


# A headless browser (an OS package, never pip): the pictures' browser test (issue 22).
BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def browser_or_skip() -> str:
    """The path of an installed Chromium, or a skip saying no browser is installed."""
    import shutil

    for name in BROWSERS:
        found = shutil.which(name)
        if found is not None:
            return found
    pytest.skip(f"no browser installed ({', '.join(BROWSERS)}; e.g. apt-get install chromium)")
