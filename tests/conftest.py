"""Fixture wiring only; the helpers live in tests/support/ (see support/__init__.py).

``support`` is importable because pyproject.toml sets ``pythonpath = ["tests"]``.
Fixtures: ``cli`` (CliRunner invoke), ``ort_run`` (onnxruntime runner),
``runtimes_off`` (hide OpenVINO/tract from convt_tools.check), and an autouse
empty ``KERAS_HOME`` per test.
"""

from support.fixtures import _isolated_keras_home, cli, ort_run, runtimes_off

__all__ = ["_isolated_keras_home", "cli", "ort_run", "runtimes_off"]
