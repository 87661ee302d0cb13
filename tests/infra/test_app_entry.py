"""`python app.py` (IDEs, plain Python) and `cdk synth` (which passes cdk.json's context in
CDK_CONTEXT_JSON) synthesise the same template, and both pass cdk-nag (errors fail synthesis)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


from infra.app import cdk_json_context

REPO = Path(__file__).resolve().parents[2]
NO_BUNDLING = {"aws:cdk:bundling-stacks": []}  # both runs skip asset bundling (pip, Docker): synthesis only


def _synth(outdir: Path, context: dict[str, object]) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CDK_")}
    env.update(CDK_OUTDIR=str(outdir), CDK_CONTEXT_JSON=json.dumps(context))
    env.pop("PYTHONPATH", None)
    return subprocess.Popen([sys.executable, "app.py"], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def _template(outdir: Path) -> dict[str, object]:
    (path,) = outdir.glob("*.template.json")
    return json.loads(path.read_text())


def test_given_python_app_py_and_cdk_synth_then_the_templates_are_the_same(tmp_path: Path) -> None:
    plain, cli = tmp_path / "plain", tmp_path / "cli"
    # Given `python app.py` alone, and the app as the CDK CLI runs it (cdk.json context passed in)
    runs = [_synth(plain, NO_BUNDLING), _synth(cli, {**cdk_json_context(), **NO_BUNDLING})]
    for run in runs:
        _, err = run.communicate(timeout=600)
        # Then both synthesise (cdk-nag findings would fail them)
        assert run.returncode == 0, err.decode()[-3000:]
    # And the templates are the same
    assert _template(plain) == _template(cli)
