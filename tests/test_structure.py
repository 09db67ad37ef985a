"""The package's import structure, read from the source with ``ast`` (nothing is imported).

- No import cycle between modules, imports inside functions included (a function-level
  import hides a cycle from Python, not from the design).
- Between top-level units (``convt_tools.check``, ``convt_tools.io``...), no cycle other
  than the ones listed in :data:`KNOWN_UNIT_CYCLES` (to be removed, never added to).
- No module imports a ``_private`` name, or from a ``_private`` module, of another
  top-level unit: what crosses a package boundary is public.
- The ONNX foundation (``convt_tools.onnxbase``) uses nothing above it.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

PKG = "convt_tools"
ROOT = Path(__file__).resolve().parent.parent

# runtimes <-> validate: the onnxruntime adapter still asks validate.runtime for its
# session; the execution layer (everything that runs a model, in runtimes/) removes it.
KNOWN_UNIT_CYCLES = [["convt_tools.runtimes", "convt_tools.validate"]]

# What the ONNX foundation may import: the core, spec.parse_shape (the --input-shape
# dims parser) and _lazy (its writers load on first use).
ONNXBASE_MAY_USE = {"convt_tools.errors", "convt_tools.io", "convt_tools.spec",
                    "convt_tools._lazy"}


def _modules(root: Path, pkg: str) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file of the package."""
    out = {}
    for path in sorted((root / pkg).rglob("*.py")):
        name = ".".join(path.relative_to(root).with_suffix("").parts)
        out[name[: -len(".__init__")] if name.endswith(".__init__") else name] = path
    return out


def _base(mod: str, is_pkg: bool, node: ast.ImportFrom) -> str:
    """The absolute module an ImportFrom names (relative imports resolved)."""
    if node.level == 0:
        return node.module or ""
    parts = mod.split(".") if is_pkg else mod.split(".")[:-1]
    parts = parts[: len(parts) - (node.level - 1)]
    return ".".join(parts + ([node.module] if node.module else []))


def _imports(mods: dict[str, Path]) -> list[tuple[str, str, str | None]]:
    """Every internal import as ``(importer, imported module, imported name or None)``,
    imports inside functions included."""
    out: list[tuple[str, str, str | None]] = []
    for mod, path in mods.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                out += [(mod, a.name, None) for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _base(mod, path.name == "__init__.py", node)
                for a in node.names:
                    sub = f"{base}.{a.name}"
                    out.append((mod, sub, None) if sub in mods else (mod, base, a.name))
    return [(m, t, n) for m, t, n in out if t == PKG or t.startswith(PKG + ".")]


def _owner(target: str, mods: dict[str, Path]) -> str | None:
    """The package module that defines ``target`` (its longest known prefix)."""
    while target not in mods and "." in target:
        target = target.rsplit(".", 1)[0]
    return target if target in mods else None


def _graph(mods: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> modules it imports (a submodule importing its own package is no edge)."""
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for mod, target, _ in _imports(mods):
        t = _owner(target, mods)
        if t is not None and t != mod and not mod.startswith(t + "."):
            graph[mod].add(t)
    return graph


def _unit(mod: str) -> str:
    return ".".join(mod.split(".")[:2])


def _unit_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for m, ts in graph.items():
        out.setdefault(_unit(m), set())
        out[_unit(m)].update(_unit(t) for t in ts if _unit(t) not in (_unit(m), PKG))
    return out


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (iterative Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on.add(start)
        while work:
            v, children = work[-1]
            w = next(children, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return sorted(out)


@pytest.fixture(scope="module")
def mods() -> dict[str, Path]:
    return _modules(ROOT, PKG)


def test_the_cycle_finder_finds_cycles() -> None:
    """The algorithm itself: a 3-cycle, a 2-cycle and a self-free chain."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"e"}, "e": {"d"}, "f": {"a"}, "g": set()}
    assert _cycles(graph) == [["a", "b", "c"], ["d", "e"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_function_level_imports_count_as_edges(tmp_path: Path) -> None:
    """A cycle hidden in a function-level import is found; a relative import resolves."""
    pkg = tmp_path / PKG
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from . import x\n")
    (pkg / "sub" / "x.py").write_text("def f():\n    from ..y import g\n")
    (pkg / "y.py").write_text("from .sub.x import f\n")
    mods = _modules(tmp_path, PKG)
    assert _cycles(_graph(mods)) == [[f"{PKG}.sub.x", f"{PKG}.y"]]


def test_no_import_cycles_between_modules(mods: dict[str, Path]) -> None:
    assert _cycles(_graph(mods)) == []


def test_no_new_import_cycles_between_units(mods: dict[str, Path]) -> None:
    cycles = _cycles(_unit_graph(_graph(mods)))
    assert [c for c in cycles if c not in KNOWN_UNIT_CYCLES] == []


def test_no_private_name_crosses_a_unit(mods: dict[str, Path]) -> None:
    """``from other_unit import _name`` and ``from other_unit._module import ...`` are refused
    (dunders such as ``__version__`` are public)."""
    bad = []
    for mod, target, name in _imports(mods):
        if _unit(target) == _unit(mod):
            continue
        private_name = name is not None and name.startswith("_") and not name.startswith("__")
        private_module = any(p.startswith("_") and not p.startswith("__")
                             for p in target.split(".")[2:])
        if private_name or private_module:
            bad.append(f"{mod}: {target} {name or ''}".strip())
    assert bad == []


def test_the_onnx_foundation_uses_only_the_core(mods: dict[str, Path]) -> None:
    used = {_unit(t) for m, t, _ in _imports(mods)
            if _unit(m) == f"{PKG}.onnxbase" and _unit(t) != f"{PKG}.onnxbase"}
    assert used <= ONNXBASE_MAY_USE, used - ONNXBASE_MAY_USE


def test_check_validate_repair_reach_onnx_through_the_foundation(mods: dict[str, Path]) -> None:
    """The modules that moved into ``onnxbase`` are gone, and nothing imports them."""
    gone = {f"{PKG}.check.loading", f"{PKG}.check.shapes", f"{PKG}.onnx_graph",
            f"{PKG}.external_data"}
    assert gone.isdisjoint(mods)
    assert [(m, t) for m, t, _ in _imports(mods) if t in gone] == []


def test_importing_the_verbs_does_not_import_onnx() -> None:
    """onnxbase loads its onnx-importing writers on first use: importing the foundation,
    check, validate or repair imports no onnx (a worker or ``--help`` does not pay for it)."""
    code = ("import sys\nimport convt_tools.onnxbase, convt_tools.check, convt_tools.validate, "
            "convt_tools.repair\nprint(sorted(m for m in ('onnx', 'onnxruntime') "
            "if m in sys.modules))\n"
            "from convt_tools.onnxbase import save_model, GraphBuilder\n"
            "print('onnx' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["[]", "True"]
