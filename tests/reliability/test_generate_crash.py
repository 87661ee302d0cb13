"""``docmill generate`` under faults: kill -9 mid-generation then the same command again resumes
from the shards (every record once, none missing, finished batches not paid for twice), no
process of the run outlives it, and a run whose every LLM call failed exits non-zero."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.reliability.generate_driver import PER_SOURCE, SOURCES

REPO = Path(__file__).resolve().parents[2]
CHUNKS = SOURCES * PER_SOURCE
CALLS_PER_CHUNK = 3  # -q 1 --judge none: one question, its answer, its rejected answer


def _generate(tmp: Path, mode: str, calls_log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(REPO / p) for p in ("layers", "devtools", "."))}
    args = ["--collection", "handbook", "--dataset", "hb", "--home", str(tmp / "home"), "--out", str(tmp / "out"),
            "-q", "1", "-f", "sft", "--judge", "none", "--json", "--concurrency", "4"]
    return subprocess.Popen(
        [sys.executable, "-m", "tests.reliability.generate_driver", str(calls_log), mode, "--", *args],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
    )


def _reports(tmp: Path) -> dict[str, dict]:
    shards = tmp / "out" / "_work" / "shards"
    out = {}
    for p in shards.glob("*.report.json") if shards.is_dir() else []:
        with contextlib.suppress(ValueError, OSError):  # one being renamed into place right now
            out[p.name.removesuffix(".report.json")] = json.loads(p.read_text())
    return out


def _lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="process-group kill semantics")
def test_kill_9_mid_generation_then_rerun_resumes_without_losing_or_doubling_records(tmp_path):
    # Given a generate run (4 batches of the planner's 25 chunks) killed with SIGKILL once its
    # first batch is written and before its last one is
    first = _generate(tmp_path, "ok", tmp_path / "calls-1")
    deadline = time.monotonic() + 120
    while not _reports(tmp_path) and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    descendants = psutil.Process(first.pid).children(recursive=True)
    os.kill(first.pid, signal.SIGKILL)  # the main process only: its children must die with it
    first.wait(30)
    time.sleep(0.5)
    survivors = [p.pid for p in descendants if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    with contextlib.suppress(ProcessLookupError):
        os.killpg(first.pid, signal.SIGKILL)  # clean-up only; the assertion below is on the survivors
    assert first.returncode == -signal.SIGKILL
    assert survivors == []
    at_kill = {b: r for b, r in _reports(tmp_path).items() if r["complete"]}
    assert 1 <= len(at_kill) < 4, f"kill came too late or too early: {sorted(at_kill)}"
    assert not (tmp_path / "out" / "hb-sft" / "train.jsonl").exists()

    # When the same command runs again
    second = _generate(tmp_path, "ok", tmp_path / "calls-2")
    stdout, stderr = second.communicate(timeout=300)
    assert second.returncode == 0, stderr.decode()[-2000:]
    result = json.loads(stdout)

    # Then every planned record is there exactly once, in the outputs and the provenance
    out = tmp_path / "out"
    ids = [json.loads(line)["id"] for split in ("train", "val", "test")
           for line in (out / "hb-sft" / f"{split}.jsonl").read_text().splitlines()]
    provenance = [json.loads(line) for line in (out / "provenance.jsonl").read_text().splitlines()]
    assert len(ids) == len(set(ids)) == CHUNKS
    assert sorted(ids) == sorted(p["id"] for p in provenance)
    assert sorted(p["source"]["chunk_id"] for p in provenance) == sorted({p["source"]["chunk_id"] for p in provenance})
    assert result["records_generated"] == result["records_kept"] == CHUNKS
    # ... the run kept its run id and paid only for the batches the kill interrupted
    assert {p["run_id"] for p in provenance} == {result["run_id"]}
    plan = json.loads((out / "_work" / "plan.json").read_text())
    assert plan["run_id"] == result["run_id"]
    left = CHUNKS - sum(r["chunks"] for r in at_kill.values())
    assert _lines(tmp_path / "calls-2") == CALLS_PER_CHUNK * left
    # ... and the shards written before the kill were kept as they were
    after = _reports(tmp_path)
    for batch_id, report in at_kill.items():
        assert after[batch_id] == report


def test_a_run_whose_every_llm_call_failed_exits_non_zero_and_a_rerun_retries(tmp_path):
    # Given an endpoint that answers every call with an error
    failed = _generate(tmp_path, "fail", tmp_path / "calls-1")
    stdout, _ = failed.communicate(timeout=300)
    # Then generate says nothing was produced, with a non-zero status and no dataset
    assert failed.returncode == 1
    error = json.loads(stdout)
    assert error["error"] == "EmptyDataset" and "generated 0" in error["message"]
    assert not (tmp_path / "out" / "hb-sft" / "train.jsonl").exists()
    assert _lines(tmp_path / "calls-1") >= CHUNKS

    # When the endpoint is back and the command runs again, Then the failed batches are retried
    again = _generate(tmp_path, "ok", tmp_path / "calls-2")
    stdout, stderr = again.communicate(timeout=300)
    assert again.returncode == 0, stderr.decode()[-2000:]
    assert json.loads(stdout)["records_kept"] == CHUNKS
    assert _lines(tmp_path / "calls-2") == CALLS_PER_CHUNK * CHUNKS
