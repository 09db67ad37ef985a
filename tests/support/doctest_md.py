"""The documentation's examples as tests (issue 24): extract, run and compare.

Markdown files (README.md, docs/*.md) hold two kinds of executed examples:

- a ```console block: lines ``$ COMMAND`` (a shell command; ``# exit N`` at its end says the
  exit status it must have, else 0) each followed by the output it must print
  (stdout and stderr together);
- a ```python block: run with this interpreter in the examples/ copy; when the next block is a ```text block
  right after it, that is the output it must print.

Expected output is compared line by line after stripping trailing blanks, with an explicit
ellipsis: a line ``...`` matches any number of lines, ``...`` inside a line any text.
A block preceded by a visible line ``_Not run in CI: REASON._`` is not run (REASON says why);
one preceded by ``_Needs the optional runtime(s) A, B (...)._`` runs where they are installed.
Other blocks (```bash set-up, ```yaml, ```text) are not examples.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

NOT_RUN = re.compile(r"^_Not run in CI: (.+)\._$")
NEEDS = re.compile(r"^_Needs the optional runtimes? ([\w<=., -]+?) \(.*\)\._$")
FENCE = re.compile(r"^```(\w*)\s*$")


@dataclass
class Block:
    path: str
    line: int  # 1-based line of the opening fence
    lang: str
    text: str
    not_run: str | None = None
    expected: str | None = None  # python blocks: the ```text block after them
    end: int = 0  # 0-based line after the closing fence
    needs: tuple[str, ...] = ()  # optional runtimes it runs with


@dataclass
class Command:
    cmd: str
    expected: list[str] = field(default_factory=list)
    status: int = 0


def blocks(path: Path, name: str | None = None) -> list[Block]:
    """Every fenced block of ``path``, with its not-run reason and a python block's output."""
    lines = path.read_text().splitlines()
    out: list[Block] = []
    i, last_text = 0, ""
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            if lines[i].strip():
                last_text = lines[i].strip()
            i += 1
            continue
        start, lang, body = i, m.group(1), []
        i += 1
        while i < len(lines) and lines[i].rstrip() != "```":
            body.append(lines[i])
            i += 1
        i += 1
        reason, needs = NOT_RUN.match(last_text), NEEDS.match(last_text)
        block = Block(name or str(path), start + 1, lang, "\n".join(body),
                      reason.group(1) if reason else None,
                      needs=tuple(n.strip() for n in needs.group(1).split(",")) if needs else ())
        if lang == "text" and out and out[-1].lang == "python" and out[-1].expected is None \
                and out[-1].end in (start, start - 1):
            out[-1].expected = block.text
        out.append(block)
        block.end = i
        last_text = ""
    return out


def commands(block: Block) -> list[Command]:
    cmds: list[Command] = []
    for ln in block.text.splitlines():
        if ln.startswith("$ "):
            cmd = ln[2:]
            m = re.search(r"\s+# exit (\d+)$", cmd)
            cmds.append(Command(cmd, status=int(m.group(1)) if m else 0))
        elif cmds:
            cmds[-1].expected.append(ln)
        elif ln.strip():
            raise ValueError(f"{block.path}:{block.line}: output before the first '$ ' line")
    return cmds


def matches(expected: list[str] | str, actual: str) -> bool:
    """``expected`` (lines, with ``...`` as above) matches ``actual`` in full."""
    if isinstance(expected, str):
        expected = expected.splitlines()
    exp = [ln.rstrip() for ln in expected]
    act = [ln.rstrip() for ln in actual.splitlines()]
    while exp and not exp[-1]:
        exp.pop()
    while act and not act[-1]:
        act.pop()
    parts = []
    for ln in exp:
        if ln == "...":
            parts.append(r"(?:[^\n]*\n)*?")
        else:
            parts.append(".*?".join(re.escape(p) for p in ln.split("...")) + r"\n")
    return re.fullmatch("".join(parts), "".join(a + "\n" for a in act), flags=re.S) is not None


def workdir(tmp: Path, root: Path) -> dict:
    """A copy of examples/ (and the bundled fixtures/examples/) under ``tmp``; blocks start in
    ``tmp``, so ``$ cd examples`` enters the copy (nothing is written into the repository)."""
    shutil.copytree(root / "examples", tmp / "examples",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(root / "fixtures" / "examples", tmp / "fixtures" / "examples")
    return {"cwd": tmp, "examples": tmp / "examples"}


def env() -> dict[str, str]:
    bindir = str(Path(sys.executable).parent)
    e = dict(os.environ, PATH=bindir + os.pathsep + os.environ.get("PATH", ""),
             COLUMNS="200", PYTHONHASHSEED="0")
    e.pop("CONVT_MAX_BYTES", None)
    return e


def run_console(block: Block, state: dict) -> list[str]:
    """Run each command of a console block in ``state["cwd"]`` (``$ cd DIR`` changes it for
    the rest of the file); the list of mismatches (empty: all match)."""
    problems = []
    for c in commands(block):
        cwd = state["cwd"]
        if c.cmd.startswith("cd "):
            state["cwd"] = (cwd / c.cmd[3:].strip()).resolve()
            continue
        r = subprocess.run(["bash", "-c", c.cmd], cwd=cwd, env=env(), text=True,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
        if r.returncode != c.status:
            problems.append(f"{block.path}:{block.line}: $ {c.cmd}\n  exit {r.returncode}, "
                            f"expected {c.status}\n{r.stdout}")
        elif not matches(c.expected, r.stdout):
            problems.append(f"{block.path}:{block.line}: $ {c.cmd}\n--- expected\n"
                            + "\n".join(c.expected) + f"\n--- got\n{r.stdout}")
    return problems


def run_python(block: Block, state: dict) -> list[str]:
    """Run a python block in the examples/ copy (``state["examples"]``)."""
    cwd = state.get("examples", state["cwd"])
    r = subprocess.run([sys.executable, "-c", block.text], cwd=cwd, env=env(), text=True,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
    if r.returncode != 0:
        return [f"{block.path}:{block.line}: python block exited {r.returncode}\n{r.stdout}"]
    if block.expected is not None and not matches(block.expected, r.stdout):
        return [f"{block.path}:{block.line}: python output\n--- expected\n{block.expected}"
                f"\n--- got\n{r.stdout}"]
    return []
