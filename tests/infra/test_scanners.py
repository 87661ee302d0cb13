"""cfn-lint and checkov on the synthesised templates (the session's one synthesis): zero
unacknowledged findings, every acknowledgement with its reason (infra/nag.py, infra/cfn-lint.yaml)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.infra.conftest import Synth

REPO = Path(__file__).resolve().parents[2]


def _templates(synth: Synth) -> list[Path]:
    found = sorted(synth.outdir.glob("*.template.json"))
    assert len(found) == 3  # the dev stack and the two variants
    return found


def _checkov() -> str | None:
    # checkov pins boto3/networkx/packaging below docmill's, so it lives in its own venv
    # (scripts/install.sh: <venv>-checkov, linked as <venv>/bin/checkov).
    candidates = [os.environ.get("DOCMILL_CHECKOV"), str(Path(sys.executable).parent / "checkov"), shutil.which("checkov")]
    return next((c for c in candidates if c and Path(c).is_file()), None)


def test_cfn_lint_finds_nothing_unacknowledged(synth: Synth) -> None:
    if shutil.which("cfn-lint", path=str(Path(sys.executable).parent)) is None:
        pytest.skip("cfn-lint is not installed (requirements/lock.d/scanners.txt)")
    cfn_lint = str(Path(sys.executable).parent / "cfn-lint")
    result = subprocess.run(
        [cfn_lint, "--config-file", str(REPO / "infra" / "cfn-lint.yaml"), "--format", "parseable",
         *map(str, _templates(synth))],
        capture_output=True, text=True, timeout=120,
    )
    assert result.stdout.strip() == "", result.stdout[-4000:]
    assert result.returncode == 0, result.stderr[-2000:]


def test_checkov_finds_nothing_unacknowledged_and_every_skip_has_a_reason(synth: Synth, tmp_path) -> None:
    checkov = _checkov()
    if checkov is None:
        pytest.skip("checkov is not installed (requirements/isolated/checkov.txt, own venv; or set DOCMILL_CHECKOV)")
    files = [a for t in _templates(synth) for a in ("-f", str(t))]
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"}
    result = subprocess.run(
        [checkov, *files, "--framework", "cloudformation", "--compact", "--output", "json",
         "--skip-download"],
        capture_output=True, text=True, timeout=180, env=env, cwd=tmp_path,
    )
    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    failed = [f"{f['check_id']} {f['resource']} ({Path(f['file_path']).name})"
              for r in reports for f in r["results"]["failed_checks"]]
    skipped = [f for r in reports for f in r["results"]["skipped_checks"]]
    passed = sum(r["summary"]["passed"] for r in reports)
    assert failed == []
    assert passed > 300  # the checks did run on every template
    for finding in skipped:
        reason = (finding.get("check_result") or {}).get("suppress_comment") or ""
        assert len(reason) >= 40, finding["check_id"]
