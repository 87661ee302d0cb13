"""`docmill sync` end to end with a local folder source and a local folder destination."""

from __future__ import annotations

import json
import os
import sys
import types
from pathlib import Path

import pytest
from typer.testing import CliRunner

from docmill.connectors import metadata as md
from docmill.connectors.config import parse_sync_config
from docmill.connectors.sync import run_sync
from docmill.storage import LocalStore

import docmill

if not (Path(docmill.__file__).parent / "cli" / "ingest.py").exists():
    # This branch predates the lead's `ingest` command that cli/__init__ imports; an empty
    # placeholder lets the package import so the real `sync` command can be exercised.
    sys.modules["docmill.cli.ingest"] = types.ModuleType("docmill.cli.ingest")

from docmill.cli.app import app
import docmill.cli.sync

CORPUS = Path(__file__).resolve().parents[2] / ".." / "shared" / "corpus" / "docs"
CORPUS = CORPUS if CORPUS.is_dir() else Path("/work/shared/corpus/docs")


def _sync(config_path: Path, *extra: str) -> tuple[int, dict]:
    result = CliRunner().invoke(app, ["sync", str(config_path), "--json", *extra])
    assert result.output.strip(), result.exception
    return result.exit_code, json.loads(result.output.strip().splitlines()[-1])


@pytest.fixture()
def source_and_config(tmp_path: Path) -> tuple[Path, Path, Path]:
    src = tmp_path / "src"
    (src / "guides").mkdir(parents=True)
    (src / "intro.md").write_text("# Intro\n\nWelcome to the handbook.\n", encoding="utf-8")
    (src / "guides" / "setup.txt").write_text("Install the tools, then run the job.\n", encoding="utf-8")
    (src / "guides" / "Zürich notes.md").write_text("# Zürich\n\nOffice notes.\n", encoding="utf-8")
    (src / ".hidden").write_text("not a document", encoding="utf-8")
    dest = tmp_path / "dest"
    config = tmp_path / "sync.yaml"
    config.write_text(f"source: {{type: local, path: '{src}'}}\ndestination: {{path: '{dest}'}}\n", encoding="utf-8")
    return src, dest, config


def test_first_sync_lands_every_file_with_metadata_sidecars(source_and_config):
    # Given a folder with three documents and a hidden file
    src, dest, config = source_and_config
    # When it is synced with the smallest config
    code, summary = _sync(config)
    # Then the three documents are added, the hidden file is not, and each has its sidecar
    assert code == 0
    assert (summary["added"], summary["updated"], summary["deleted"], summary["unchanged"], summary["failed"]) == (3, 0, 0, 0, 0)
    assert sorted(d["key"] for d in summary["documents"]) == ["guides/Zürich notes.md", "guides/setup.txt", "intro.md"]
    assert (dest / "intro.md").read_text(encoding="utf-8") == (src / "intro.md").read_text(encoding="utf-8")
    assert not (dest / ".hidden").exists()
    info = LocalStore(dest).head("guides/Zürich notes.md")
    meta = md.read_source_metadata(info)
    assert meta["source_type"] == "local"
    assert meta["title"] == "Zürich notes.md"
    assert meta["source_id"] == "guides/Zürich notes.md"
    assert meta["modified"].endswith("Z") and meta["sha256"] and meta["source_url"].startswith("file://")
    # the state file is kept beside the documents, under the internal folder ingestion skips
    assert (dest / md.SYNC_STATE_DIR / "local.json").is_file()


def test_second_sync_moves_nothing_and_changes_move_only_themselves(source_and_config):
    # Given a folder that was synced once
    src, dest, config = source_and_config
    _sync(config)
    # When nothing changed
    code, summary = _sync(config)
    # Then everything is unchanged and nothing was rewritten
    assert code == 0 and summary["unchanged"] == 3 and summary["added"] == summary["updated"] == 0

    # When one file is modified, one deleted, one added and one only touched
    (src / "intro.md").write_text("# Intro\n\nWelcome, revised.\n", encoding="utf-8")
    (src / "guides" / "setup.txt").unlink()
    (src / "faq.md").write_text("# FAQ\n", encoding="utf-8")
    touched = src / "guides" / "Zürich notes.md"
    os.utime(touched, (touched.stat().st_atime + 10, touched.stat().st_mtime + 10))
    code, summary = _sync(config)
    # Then each is reported for what happened to it, and the destination follows the source
    by_key = {d["key"]: d["status"] for d in summary["documents"]}
    assert by_key == {"intro.md": "updated", "faq.md": "added", "guides/setup.txt": "deleted",
                      "guides/Zürich notes.md": "unchanged"}
    assert (dest / "intro.md").read_text(encoding="utf-8").endswith("revised.\n")
    assert not (dest / "guides" / "setup.txt").exists()
    assert not (dest / "guides" / "setup.txt.meta.json").exists()  # the sidecar goes with it
    state = json.loads((dest / md.SYNC_STATE_DIR / "local.json").read_text(encoding="utf-8"))
    assert sorted(state["documents"]) == ["faq.md", "guides/Zürich notes.md", "intro.md"]


def test_a_destination_object_removed_by_hand_is_restored(source_and_config):
    # Given a synced folder whose landed copy was deleted at the destination
    src, dest, config = source_and_config
    _sync(config)
    (dest / "intro.md").unlink()
    # When it is synced again
    _, summary = _sync(config)
    # Then the missing object is written again
    assert {d["key"]: d["status"] for d in summary["documents"]}["intro.md"] == "added"
    assert (dest / "intro.md").is_file()


def test_a_failed_listing_deletes_nothing(source_and_config, tmp_path):
    # Given a synced folder whose source then disappears (unmounted share, typo)
    src, dest, config = source_and_config
    _sync(config)
    src.rename(tmp_path / "moved")
    # When it is synced
    code, summary = _sync(config)
    # Then the run fails with a reason and every landed document is still there
    assert code == 1
    assert summary["deleted"] == 0 and "does not exist" in summary["errors"][0]["error"]
    assert (dest / "intro.md").is_file()


def test_home_option_keeps_state_in_the_workspace(source_and_config, tmp_path):
    # Given a home folder passed on the command line
    src, dest, config = source_and_config
    home = tmp_path / "home"
    # When syncing with --home
    _sync(config, "--home", str(home))
    # Then the state lives in the workspace, not under the destination
    assert (home / "sync" / "local.json").is_file()
    assert not (dest / md.SYNC_STATE_DIR).exists()


def test_config_errors_exit_2_with_a_reason(tmp_path):
    # Given a config with an unknown source type
    config = tmp_path / "bad.yaml"
    config.write_text("source: {type: ftp, path: /x}\ndestination: {path: /y}\n", encoding="utf-8")
    # When syncing
    result = CliRunner().invoke(app, ["sync", str(config), "--json"])
    # Then the exit code is 2 and the reason names the known types
    assert result.exit_code == 2
    assert "unknown source type 'ftp'" in json.loads(result.output)["error"]


@pytest.mark.skipif(not CORPUS.is_dir(), reason="shared corpus not present")
def test_real_corpus_lands_byte_identical(tmp_path):
    # Given the project's real test documents as a source
    dest = tmp_path / "dest"
    config = parse_sync_config(f"source: {{type: local, path: '{CORPUS}', name: corpus}}\ndestination: {{path: '{dest}'}}")
    # When synced through the library entry point
    report = run_sync(config, environ={})
    # Then every file arrived byte-identical
    files = [p for p in CORPUS.rglob("*") if p.is_file() and not any(part.startswith(".") for part in p.relative_to(CORPUS).parts)]
    assert report.sources[0].added == len(files) > 0
    for path in files:
        assert (dest / path.relative_to(CORPUS)).read_bytes() == path.read_bytes()
