"""Secrets never written: with sentinel credentials in the environment (AWS keys, OpenSearch
password, connector tokens), every file an ingest run writes (outputs, state, manifest, failure
reasons) and its console output are scanned for them."""

from __future__ import annotations


import pytest
from typer.testing import CliRunner

from docmill.cli.app import app

SENTINELS = {
    "AWS_ACCESS_KEY_ID": "AKIASENTINEL00000001",
    "AWS_SECRET_ACCESS_KEY": "sentinel-aws-secret-7f3a9c",
    "AWS_SESSION_TOKEN": "sentinel-aws-session-b81d",
    "DOCMILL_OPENSEARCH__PASSWORD": "sentinel-opensearch-pass-44e2",
    "DOCMILL_OPENSEARCH__USERNAME": "sentinel-opensearch-user-19c0",
    "GITHUB_TOKEN": "ghp_sentinel000000000000000000000000000",
    "SLACK_BOT_TOKEN": "xoxb-sentinel-0000-slack",
}


def test_no_credential_appears_in_anything_an_ingest_writes(tmp_path, monkeypatch: pytest.MonkeyPatch):
    for name, value in SENTINELS.items():
        monkeypatch.setenv(name, value)
    src, home = tmp_path / "src", tmp_path / "home"
    src.mkdir()
    (src / "good.md").write_text("# Pumps\n\nThe pump is serviced weekly.\n")
    (src / "broken.pdf").write_bytes(b"%PDF-1.7 not really a pdf")  # a failure reason is written too
    (src / "dangling.txt").symlink_to(tmp_path / "missing.txt")
    result = CliRunner().invoke(app, ["ingest", str(src), "--home", str(home), "--store", "none", "--json"])
    assert result.exit_code == 1, result.output  # two files failed, with reasons
    written = [p for p in home.rglob("*") if p.is_file()]
    assert len(written) >= 5  # elements, chunks, source.json, manifest, lock
    for path in [*written]:
        data = path.read_bytes()
        for name, value in SENTINELS.items():
            assert value.encode() not in data, f"{name} leaked into {path}"
    for value in SENTINELS.values():
        assert value not in result.output
