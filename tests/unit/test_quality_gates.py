"""The gates that scripts/test.sh (and so .ci/run) runs before the suite really reject code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def _library_file(tmp_path: Path, source: str) -> Path:
    # Ruff applies per-file rules by path: place the file where library code lives.
    target = tmp_path / "layers" / "docmill" / "gate_probe.py"
    target.parent.mkdir(parents=True)
    target.write_text(source)
    return target


@pytest.mark.parametrize(
    ("source", "rule"),
    [
        ("def f(x):\n    return x\n", "ANN001"),
        ("def f(x: int) -> int:\n    assert x\n    return x\n", "S101"),
        ("def f(x: list[int] = []) -> list[int]:\n    return x\n", "B006"),
        ("def f() -> None:\n    try:\n        pass\n    except Exception:\n        pass\n", "S110"),
        ("def f() -> None:\n    print('hi')\n", "T201"),
        ("x = 1  # noqa: E501\n", "RUF100"),
    ],
)
def test_given_library_code_breaking_a_rule_when_ruff_runs_then_it_fails(tmp_path: Path, source: str, rule: str) -> None:
    # Given a library module with one finding; When ruff checks it with the project's config
    target = _library_file(tmp_path, source)
    result = _run("ruff", "check", "--no-fix", "--no-cache", "--config", str(ROOT / "pyproject.toml"), str(target))
    # Then it fails and names the rule
    assert result.returncode == 1, result.stdout + result.stderr
    assert rule in result.stdout


def test_given_a_type_error_when_mypy_runs_then_it_fails(tmp_path: Path) -> None:
    # Given a module that passes a str where an int is declared
    target = tmp_path / "probe.py"
    target.write_text("def double(x: int) -> int:\n    return x * 2\n\n\nvalue: int = double('2')\n")
    # When mypy checks it with the project's config
    result = _run("mypy", "--config-file", str(ROOT / "pyproject.toml"), "--no-incremental", str(target), cwd=tmp_path)
    # Then it fails on that line
    assert result.returncode == 1, result.stdout + result.stderr
    assert "probe.py:5: error" in result.stdout and "arg-type" in result.stdout


def test_given_the_test_command_then_it_runs_the_gates_before_pytest() -> None:
    script = (ROOT / "scripts" / "test.sh").read_text()
    assert "./scripts/lint.sh" in script
    assert script.index("./scripts/lint.sh") < script.index("pytest")
    assert "exec ./scripts/test.sh" in (ROOT / ".ci" / "run").read_text()
