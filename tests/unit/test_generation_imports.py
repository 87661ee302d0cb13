"""Generation and quality are parts with one-way dependencies: every module imports on its own
(in a fresh interpreter), no module imports another's private names, and the module import
graph has no cycle (assembly reads what the pipeline writes, never the other way round)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import docmill

ROOT = Path(docmill.__file__).parent
PACKAGES = ("generation", "quality")


def modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            rel = path.relative_to(ROOT.parent).with_suffix("")
            name = ".".join(rel.parts).removesuffix(".__init__")
            out[name] = path
    return out


def top_level_imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module, names) of the module-level ``from docmill... import`` statements."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("docmill"):
            found.append((node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            found.extend((a.name, []) for a in node.names if a.name.startswith("docmill"))
    return found


def test_no_module_imports_private_names_of_another():
    offenders = [
        f"{name}: from {mod} import {n}"
        for name, path in modules().items()
        for mod, names in top_level_imports(path)
        for n in names
        if n.startswith("_") and not n.startswith("__") and mod != name
    ]
    assert offenders == []


def test_the_module_import_graph_has_no_cycle():
    mods = modules()
    graph = {
        name: {m for m, _ in top_level_imports(path) if m in mods and m != name and not name.startswith(m + ".")}
        for name, path in mods.items()
    }
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*trail, node, nxt]))
            if nxt not in state:
                visit(nxt, [*trail, node])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [])


def test_every_module_imports_alone_in_a_fresh_interpreter():
    script = (
        "import importlib, sys\n"
        "failed = []\n"
        f"for name in {sorted(modules())!r}:\n"
        "    for m in [m for m in sys.modules if m.startswith('docmill')]:\n"
        "        del sys.modules[m]\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except Exception as exc:\n"
        "        failed.append(f'{name}: {type(exc).__name__}: {exc}')\n"
        "print('\\n'.join(failed))\n"
        "sys.exit(1 if failed else 0)\n"
    )
    env_path = str(ROOT.parent)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False,
                          env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
