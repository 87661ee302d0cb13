"""The notice board's own checks, run as part of the Python suite so one command runs
everything: the TypeScript type check, and the component tests (Jest + React Native Testing
Library, with the API scripted as `fetch`)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

FRONTEND = Path(__file__).resolve().parents[2] / "frontend"


def _installed() -> None:
    if not (FRONTEND / "node_modules" / "jest").is_dir() or shutil.which("node") is None:
        pytest.skip("frontend not installed (scripts/install.sh runs npm ci in frontend/)")


def test_frontend_type_checks() -> None:
    _installed()
    run = subprocess.run(["node", "node_modules/typescript/bin/tsc", "--noEmit"], cwd=FRONTEND,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, (run.stdout + run.stderr)[-6000:]


def test_frontend_component_tests_pass() -> None:
    _installed()
    run = subprocess.run(["node", "node_modules/jest/bin/jest.js", "--ci", "--silent"], cwd=FRONTEND,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, (run.stdout + run.stderr)[-6000:]
    assert "passed" in run.stderr.split("Tests:")[-1]
