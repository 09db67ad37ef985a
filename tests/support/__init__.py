"""Shared test support (tests only, never the package).

Importable as ``support`` because ``pyproject.toml`` sets pytest's
``pythonpath = ["tests"]`` (works from a fresh clone with plain
``python -m pytest``; conftest.py adds nothing to ``sys.path``).
Test modules import helpers from here, never from another test module
(tests/test_test_hygiene.py checks it).

* :mod:`support.cli` -- ``invoke`` (click's CliRunner) and ``convt_command``
  / ``run_convt`` (a real subprocess of the installed console script).
* :mod:`support.runners` -- ``run_onnx_model`` (onnxruntime, CPU provider).
* :mod:`support.assertions` -- ``assert_one_line_error``, ``assert_nothing_written``.
* :mod:`support.optional` -- the one reason to skip: a missing optional runtime
  (``requires``, ``runtime_or_skip``, ``runtime_installed``) and the oracle
  interpreter (``CONVT_ORACLE_PYTHON`` only).
* :mod:`support.fixtures` -- pytest fixtures (``cli``, ``ort_run``,
  ``runtimes_off``, the isolated ``KERAS_HOME``), wired in by conftest.py.
* :mod:`support.tolerance` -- the conformance tolerance (``assert_close``).
* :mod:`support.oracles`, :mod:`support.models`, :mod:`support.export_oracle`
  -- loop oracles, small risky ONNX models, exporter checks.
* :mod:`support.repair_cases` -- the hand-derived repair windows.
"""
