"""``docmill demo`` as a user runs it, end to end with the embedded models (slow): a subprocess
from another directory, the bundled samples ingested into a fresh home, the local SmolLM2
model writing questions and rejected answers. Then every dataset format holds records, the
quality report is printed and written, and ``docmill evaluate --json`` reads it back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import docmill
import pytest

pytestmark = pytest.mark.slow
LAYERS = str(Path(docmill.__file__).resolve().parents[1])


def _docmill(*args: str, cwd: Path, timeout: int) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": LAYERS, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    env.pop("DOCMILL_HOME", None)
    return subprocess.run([sys.executable, "-m", "docmill", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


def test_demo_writes_non_empty_datasets_in_every_format_and_a_quality_report(tmp_path):
    home = tmp_path / "home"
    # When the demo runs (on a busy shared CPU this can take far longer than on an idle one)
    proc = _docmill("demo", "--home", str(home), "--json", cwd=tmp_path, timeout=3000)
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    # Then every format has records, and the records are the ones the report measured
    assert data["records_kept"] >= 1 and data["preference_pairs"] >= 1
    assert set(data["counts"]) == {"sft", "completion", "text", "dpo", "rlhf", "preference"}
    for fmt, counts in data["counts"].items():
        assert sum(counts.values()) >= 1, fmt
    q = data["quality"]
    assert q["records"] == data["records_kept"] and q["pairs"] == data["preference_pairs"]
    assert q["support"]["mean"] > q["support_rejected"]["mean"] and q["degenerate"] == 0
    assert data["examples"]["sft"]["output"] and data["examples"]["dpo"]["chosen"]
    out = Path(data["out"])
    assert (out / "quality" / "support.png").is_file() and "## Quality" in (out / "README.md").read_text()
    # And evaluate reads the same figures back from the folder
    ev = _docmill("evaluate", str(out), "--json", cwd=tmp_path, timeout=300)
    assert ev.returncode == 0, ev.stderr
    figures = json.loads(ev.stdout)
    for key in ("records", "pairs", "hit_at_k", "mrr", "support", "degenerate", "pair_support_gap"):
        assert figures[key] == q[key], key
