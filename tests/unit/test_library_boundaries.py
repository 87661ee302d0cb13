"""The library (layers/docmill) stands alone: it never imports the handlers (functions/), the stack
(infra/) or the dev tooling (docmill_devtools), except the `docmill dev` command for the latter."""

from __future__ import annotations

import ast
from pathlib import Path

LIBRARY = Path(__file__).resolve().parents[2] / "layers" / "docmill"
FORBIDDEN = {"functions", "infra", "tests", "docmill_devtools"}
ALLOWED = {("cli/dev.py", "docmill_devtools")}  # the command that starts the dev tooling


def _imported_top_levels(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names.add(node.args[0].value.split(".")[0])
    return names


def test_given_every_library_module_then_none_imports_functions_infra_or_devtools() -> None:
    modules = sorted(LIBRARY.rglob("*.py"))
    assert len(modules) > 50  # the scan really sees the library
    offenders = [
        f"{path.relative_to(LIBRARY)} imports {name}"
        for path in modules
        for name in sorted(_imported_top_levels(path) & FORBIDDEN)
        if (path.relative_to(LIBRARY).as_posix(), name) not in ALLOWED
    ]
    assert offenders == []


def test_given_a_module_importing_infra_then_the_scan_finds_it(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text("import json\nfrom infra.asl_export import generation_asl\n\ndef f():\n    import functions.route\n")
    assert _imported_top_levels(probe) & FORBIDDEN == {"infra", "functions"}
