"""The test sources themselves (issue 18): shared helpers live in tests/support/, and no
skip can hide an import, parse or runtime error.

* no test module (nor support/conftest) imports a test module or conftest;
* no ``pytest.importorskip`` at all (optional packages: ``support.optional``,
  which asks ``importlib.util.find_spec``; base dependencies are imported);
* no ``except Exception`` / ``except BaseException`` / bare ``except:`` in a test;
* the only hard-coded oracle interpreter is ``$CONVT_ORACLE_PYTHON``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
SOURCES = sorted(p for p in TESTS.rglob("*.py") if "data" not in p.relative_to(TESTS).parts)
TEST_MODULES = {p.stem for p in TESTS.glob("test_*.py")} | {"conftest"}


def _ids(paths: list[Path]) -> list[str]:
    return [str(p.relative_to(TESTS)) for p in paths]


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _imported(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_the_scan_sees_the_suite() -> None:
    assert len(SOURCES) >= 40
    assert TESTS / "support" / "cli.py" in SOURCES


@pytest.mark.parametrize("path", SOURCES, ids=_ids(SOURCES))
def test_no_module_imports_a_test_module(path: Path) -> None:
    roots = {name.split(".")[0] for name in _imported(_tree(path))}
    assert roots & TEST_MODULES == set(), "move the shared helper into tests/support/"


@pytest.mark.parametrize("path", SOURCES, ids=_ids(SOURCES))
def test_no_importorskip(path: Path) -> None:
    calls = [n.lineno for n in ast.walk(_tree(path))
             if isinstance(n, ast.Attribute) and n.attr == "importorskip"]
    assert calls == [], "import base dependencies; optional ones: support.optional"


@pytest.mark.parametrize("path", SOURCES, ids=_ids(SOURCES))
def test_no_broad_except(path: Path) -> None:
    broad = []
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.ExceptHandler):
            kinds = node.type.elts if isinstance(node.type, ast.Tuple) else [node.type]
            if any(k is None or (isinstance(k, ast.Name)
                                 and k.id in ("Exception", "BaseException")) for k in kinds):
                broad.append(node.lineno)
    assert broad == [], "catch the exception that is meant (a broad one can hide a regression)"


@pytest.mark.parametrize("path", SOURCES, ids=_ids(SOURCES))
def test_no_hard_coded_oracle_interpreter(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert "oracle" + "-venv" not in text, "find the oracle interpreter by support.optional.oracle_python"


def test_the_checks_catch_what_they_forbid() -> None:
    bad = ast.parse("import test_repair\nfrom conftest import invoke\n"
                    "pytest.importorskip('convt_tools.reference')\n"
                    "try:\n    pass\nexcept Exception:\n    pass\n")
    assert {n.split(".")[0] for n in _imported(bad)} & TEST_MODULES == {"test_repair", "conftest"}
    assert any(isinstance(n, ast.Attribute) and n.attr == "importorskip" for n in ast.walk(bad))
    assert any(isinstance(n, ast.ExceptHandler) for n in ast.walk(bad))


# ---------------------------------------------------------------- the support helpers

def test_assert_one_line_error_accepts_a_one_line_usage_error(cli, tmp_path: Path) -> None:
    from support.assertions import assert_nothing_written, assert_one_line_error

    result = cli("shape", "--filters", "0", "--kernel-size", "2", "--input-shape", "1,4,4,2")
    assert assert_one_line_error(result, "filters").startswith("Error: filters:")
    assert_nothing_written(tmp_path)


def test_assert_one_line_error_rejects_another_exit_code_or_field(cli) -> None:
    from support.assertions import assert_one_line_error

    ok = cli("shape", "--filters", "2", "--kernel-size", "2", "--input-shape", "1,4,4,2")
    with pytest.raises(AssertionError, match="exit code 0"):
        assert_one_line_error(ok)
    bad = cli("shape", "--filters", "0", "--kernel-size", "2", "--input-shape", "1,4,4,2")
    with pytest.raises(AssertionError, match="does not start with"):
        assert_one_line_error(bad, "kernel_size")


def test_assert_nothing_written_names_what_was_left(tmp_path: Path) -> None:
    from support.assertions import assert_nothing_written

    (tmp_path / "left.onnx").write_bytes(b"")
    with pytest.raises(AssertionError, match="left.onnx"):
        assert_nothing_written(tmp_path)
    assert_nothing_written(tmp_path, tmp_path / "left.onnx")


def test_optional_refuses_to_skip_on_a_base_dependency() -> None:
    from support.optional import installed

    with pytest.raises(AssertionError, match="not an optional package"):
        installed("onnxruntime")


def test_oracle_python_is_the_environment_variable_only(monkeypatch, tmp_path: Path) -> None:
    from support.optional import ORACLE_ENV, oracle_python

    monkeypatch.setenv(ORACLE_ENV, str(tmp_path / "missing-python"))
    with pytest.raises(AssertionError, match="is not a file"):
        oracle_python()
    monkeypatch.delenv(ORACLE_ENV)
    with pytest.raises(pytest.skip.Exception, match=ORACLE_ENV):
        oracle_python()


def test_run_convt_runs_the_installed_console_script() -> None:
    from support.cli import run_convt

    proc = run_convt("shape", "--filters", "0", "--kernel-size", "2", "--input-shape", "1,4,4,2")
    assert proc.returncode == 2
    assert proc.stderr.startswith("Error: filters:")
