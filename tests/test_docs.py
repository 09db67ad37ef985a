"""Issue 24: every console and Python example of README.md and docs/*.md runs, in a copy of
examples/, and prints what the page shows (support/doctest_md.py: ``...`` is the explicit
ellipsis for what varies). The runner's own tests are fast; running the pages is `slow`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from support import doctest_md as dm

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def _name(p: Path) -> str:
    return str(p.relative_to(ROOT))


# -- the runner ---------------------------------------------------------------------------

def test_ellipsis_matching() -> None:
    assert dm.matches(["a", "...", "z"], "a\nb\nc\nz\n")
    assert dm.matches(["a", "...", "z"], "a\nz")
    assert dm.matches(["took ... s"], "took 0.3 s")
    assert not dm.matches(["a", "z"], "a\nb\nz")
    assert not dm.matches(["took ... s"], "took 0.3 ms\n")
    assert not dm.matches(["a"], "a\nextra")
    assert dm.matches([], "")
    assert not dm.matches(["x.y"], "xzy")  # no regex leaks


def test_blocks_commands_and_markers(tmp_path: Path) -> None:
    page = tmp_path / "p.md"
    page.write_text("text\n\n```console\n$ echo hi\nhi\n$ false  # exit 1\n```\n\n"
                    "_Not run in CI: needs a GPU._\n\n```console\n$ nvidia-smi\n```\n\n"
                    "```python\nprint(1 + 1)\n```\n\n```text\n2\n```\n\n```bash\nls\n```\n")
    page.write_text(page.read_text() + "\n_Needs the optional runtimes openvino, tract (x)._\n\n"
                    "```console\n$ true\n```\n")
    bs = dm.blocks(page)
    assert [b.lang for b in bs] == ["console", "console", "python", "text", "bash", "console"]
    assert bs[-1].needs == ("openvino", "tract") and bs[0].needs == ()
    assert bs[0].not_run is None and bs[1].not_run == "needs a GPU"
    assert bs[2].expected == "2"
    cmds = dm.commands(bs[0])
    assert [(c.cmd, c.expected, c.status) for c in cmds] == [
        ("echo hi", ["hi"], 0), ("false  # exit 1", [], 1)]
    state = {"cwd": tmp_path}
    assert dm.run_console(bs[0], state) == []
    assert dm.run_python(bs[2], state) == []
    bad = dm.Block("p.md", 1, "console", "$ echo hi\nho")
    assert "--- expected" in dm.run_console(bad, state)[0]
    assert "exit 0, expected 3" in dm.run_console(
        dm.Block("p.md", 1, "console", "$ true  # exit 3"), state)[0]


def test_not_run_blocks_are_few_and_say_why() -> None:
    skipped = [b for p in PAGES for b in dm.blocks(p, _name(p)) if b.not_run]
    assert all(len(b.not_run) > 10 for b in skipped)
    runnable = [b for p in PAGES for b in dm.blocks(p, _name(p))
                if b.lang in ("console", "python") and not b.not_run]
    assert len(runnable) >= 3 * len(skipped), [f"{b.path}:{b.line}" for b in skipped]


def test_readings_page_is_the_generated_one() -> None:
    """docs/readings.md is what the mkdocs hook generates from convt_tools.check.readings
    (committed so that it reads on GitHub too; the build rewrites it)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("readings_page",
                                                  ROOT / "docs" / "hooks" / "readings_page.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert (ROOT / "docs" / "readings.md").read_text() == mod.render(), (
        "docs/readings.md is stale: run python docs/hooks/readings_page.py --write")


def test_fixture_counts_in_the_docs_are_the_ones_on_disk() -> None:
    text = " ".join((ROOT / "docs" / "reference.md").read_text().split())
    for folder, pattern in [("cases", "`fixtures/cases/` holds {} cases"),
                            ("cases_1d", "`fixtures/cases_1d/` ({} cases)"),
                            ("cases_3d", "`fixtures/cases_3d/` ({})")]:
        n = len(list((ROOT / "fixtures" / folder).glob("*.json")))
        assert pattern.format(n) in text, (folder, n)


def test_readme_links_resolve() -> None:
    import re
    for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", (ROOT / "README.md").read_text()):
        assert (ROOT / target).exists(), target


def test_readme_tour_uses_only_shipped_files() -> None:
    """The tour's inputs exist in examples/ (a new user never invents a file)."""
    for name in ["layer.json", "weights.npz", "input.npy", "model.keras", "converted.onnx",
                 "torch.json", "torch_state.npz", "torch_input.npy", "model_input.npy", "make_examples.py"]:
        assert (ROOT / "examples" / name).is_file(), name


# -- the pages ----------------------------------------------------------------------------

def _installed(name: str) -> bool:
    from convt_tools.runtimes import installed_runtimes
    status = installed_runtimes().get(name)
    return status is not None and "not available" not in status


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES, ids=_name)
def test_page_examples_run_and_print_what_is_shown(page: Path, tmp_path: Path) -> None:
    state = dm.workdir(tmp_path, ROOT)
    problems: list[str] = []
    for b in dm.blocks(page, _name(page)):
        if b.not_run:
            continue
        missing = [n for n in b.needs if not _installed(n)]
        if missing:
            print(f"{b.path}:{b.line}: not run: {', '.join(missing)} not installed")
            continue
        if b.lang == "console":
            problems += dm.run_console(b, state)
        elif b.lang == "python":
            problems += dm.run_python(b, state)
    assert not problems, "\n\n".join(problems)


@pytest.mark.slow
def test_examples_are_reproducible(tmp_path: Path) -> None:
    """examples/make_examples.py rewrites the committed arrays byte for byte."""
    shutil.copytree(ROOT / "examples", tmp_path / "ex")
    subprocess.run([sys.executable, str(tmp_path / "ex" / "make_examples.py")], check=True)
    for name in ["weights.npz", "input.npy", "torch_state.npz", "torch_input.npy", "model_input.npy"]:
        import numpy as np
        a, b = np.load(ROOT / "examples" / name), np.load(tmp_path / "ex" / name)
        if name.endswith(".npz"):
            assert a.files == b.files and all((a[k] == b[k]).all() for k in a.files)
        else:
            assert (a == b).all()


def _system_python() -> str | None:
    exe = "/usr/bin/python3"
    if not os.path.exists(exe):
        return None
    ok = subprocess.run([exe, "-c", "import ensurepip, venv"], capture_output=True)
    return exe if ok.returncode == 0 else None


@pytest.mark.slow
def test_readme_main_job_replays_with_the_system_python(tmp_path: Path) -> None:
    """A fresh clone followed by README's first command, with the OS's own Python."""
    exe = _system_python()
    if exe is None:
        pytest.skip("/usr/bin/python3 absent or without venv/ensurepip (Debian: python3-venv)")
    # What a fresh clone has of the files the command uses (copied, so that no git is
    # needed: CI may run on an exported tree), without this checkout's build leftovers.
    clone = tmp_path / "clone"
    for rel in ["README.md", "examples", "fixtures/examples", "pyproject.toml", "convt_tools"]:
        src, dst = ROOT / rel, clone / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy(src, dst)
    first = dm.blocks(clone / "README.md")
    command = next(b for b in first if b.lang == "bash").text.strip()
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["PATH"] = "/usr/bin:/bin"
    r = subprocess.run(["bash", "-c", command.replace("python3 -m venv", f"{exe} -m venv", 1)],
                       cwd=clone, env=env, text=True, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=1200)
    assert r.returncode == 0, r.stdout[-3000:]
    assert "passed, 0 failed" in r.stdout
