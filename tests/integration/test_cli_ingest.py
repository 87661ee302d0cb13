"""Given the docmill CLI, When a user ingests a mixed batch, Then --json prints the documented shape
and the exit code tells whether any file failed."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from docmill.cli import app

runner = CliRunner()


def _ingest(*args: str):
    return runner.invoke(app, ["ingest", *args, "--store", "none", "--workers", "1"], catch_exceptions=False)


def test_json_summary_has_the_documented_shape_and_nonzero_exit_on_failure(tmp_path, corpus_docs, corpus_bad):
    result = _ingest(str(corpus_docs / "fake-memo.pdf"), str(corpus_bad / "simple.zip"), "--collection", "cli", "--home", str(tmp_path), "--json")

    summary = json.loads(result.stdout)
    assert result.exit_code == 1
    by_name = {f["source"].rsplit("/", 1)[-1]: f for f in summary["files"]}
    assert set(by_name["fake-memo.pdf"]) >= {"source", "status", "reason", "pages", "chunks"}
    assert by_name["fake-memo.pdf"]["status"] == "ok" and by_name["fake-memo.pdf"]["reason"] is None
    assert by_name["fake-memo.pdf"]["pages"] == 1 and by_name["fake-memo.pdf"]["chunks"] >= 1
    assert by_name["simple.zip"]["status"] == "failed" and by_name["simple.zip"]["pages"] is None
    assert "archives are not ingested" in by_name["simple.zip"]["reason"]
    assert summary["totals"]["files"] == 2 and summary["totals"]["failed"] == 1


def test_exit_code_is_zero_when_every_file_is_ok_or_skipped(tmp_path, corpus_docs):
    args = (str(corpus_docs / "fake-text.txt"), "--collection", "cli", "--home", str(tmp_path), "--json")
    first = _ingest(*args)

    second = _ingest(*args)

    assert first.exit_code == 0 and second.exit_code == 0
    assert json.loads(second.stdout)["files"][0]["status"] == "skipped"


def test_summary_table_is_printed_without_json(tmp_path, corpus_docs):
    result = _ingest(str(corpus_docs / "fake-text.txt"), "--collection", "cli", "--home", str(tmp_path))

    assert result.exit_code == 0
    assert "1 files: 1 ok, 0 skipped, 0 failed" in result.stdout


def test_invalid_chunk_settings_are_a_usage_error(tmp_path, corpus_docs):
    result = _ingest(str(corpus_docs / "fake-text.txt"), "--home", str(tmp_path), "--max-characters", "100", "--overlap", "200")

    assert result.exit_code == 2
    assert "overlap must be smaller than max_characters" in result.stdout


def test_installed_command_reports_seconds_per_phase(tmp_path, corpus_docs):
    # Given the command as a user runs it, from another folder, on the default (ONNX) embedder
    import os
    import subprocess
    import sys
    from pathlib import Path

    layers = Path(__file__).resolve().parents[2] / "layers"
    env = dict(os.environ, PYTHONPATH=str(layers))
    args = [sys.executable, "-m", "docmill", "ingest", str(corpus_docs / "fake-memo.pdf"), str(corpus_docs / "fake-text.txt")]
    out = subprocess.run(
        [*args, "--home", str(tmp_path / "home"), "--store", "local", "--json"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )

    # Then the totals say where the time went, phase by phase
    assert out.returncode == 0, out.stderr[-2000:]
    summary = json.loads(out.stdout)
    phases = summary["totals"]["phases"]
    assert list(phases) == ["checks", "partition", "clean", "chunk", "embed", "write", "index"]
    assert all(v >= 0 for v in phases.values())
    assert phases["partition"] > 0 and phases["embed"] > 0 and phases["index"] > 0
    assert sum(phases.values()) <= sum(f["seconds"] for f in summary["files"]) + 0.1
    assert all(set(f["phases"]) >= {"partition", "embed", "write"} for f in summary["files"])
