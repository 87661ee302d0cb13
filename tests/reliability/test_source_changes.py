"""Deletions and changes at the source: ``--prune`` forgets removed and renamed files, a
content change that keeps size and mtime (``cp -p``, ``rsync -t``) is detected, and an
unchanged file whose times moved is hashed once, not on every run."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import docmill.ingest.pipeline as pipeline
from docmill.config import IngestOptions
from docmill.ingest import Ingestor
from docmill.storage import LocalStore
from docmill.vectorstores.lancedb_store import LanceDBStore
from tests.support.generation_doubles import HashingEmbedder


def _ingestor(home: Path, store) -> Ingestor:
    return Ingestor(output=LocalStore(home), collection="c", options=IngestOptions(workers=1),
                    embedder=HashingEmbedder(), vector_store=store)


def _sources(store) -> set[str]:
    return {c.source_uri for c in store.iter_chunks("c")}


def test_prune_forgets_deleted_and_renamed_files_but_only_under_the_given_folders(tmp_path):
    src, elsewhere, home = tmp_path / "src", tmp_path / "elsewhere", tmp_path / "home"
    src.mkdir()
    elsewhere.mkdir()
    for name in ("keep.txt", "gone.txt", "old-name.txt"):
        (src / name).write_text(f"The {name} document talks about pumps and valves.\n")
    (elsewhere / "other.txt").write_text("Another folder's document about boilers.\n")
    store = LanceDBStore(tmp_path / "index")
    _ingestor(home, store).run([str(src), str(elsewhere)])
    uri = {p.name: p.resolve().as_uri() for p in [*src.iterdir(), *elsewhere.iterdir()]}
    assert _sources(store) == set(uri.values())

    # Given one file deleted and one renamed
    (src / "gone.txt").unlink()
    (src / "old-name.txt").rename(src / "new-name.txt")
    # When only src is re-ingested without --prune, Then nothing is forgotten
    _ingestor(home, store).run([str(src)])
    assert uri["gone.txt"] in _sources(store)
    # When it is re-ingested with --prune
    report = _ingestor(home, store).run([str(src)], prune=True)
    # Then the deleted and the old name are gone (index and outputs); the other folder is untouched
    assert report.pruned == sorted([uri["gone.txt"], uri["old-name.txt"]])
    assert _sources(store) == {uri["keep.txt"], (src / "new-name.txt").resolve().as_uri(), uri["other.txt"]}
    states = [json.loads(p.read_text())["source_uri"] for p in home.rglob("source.json")]
    assert sorted(states) == sorted(_sources(store))
    # And a folder that cannot be listed (typo, unmounted) prunes nothing
    report = _ingestor(home, store).run([str(tmp_path / "no-such-folder")], prune=True)
    assert report.pruned == [] and uri["other.txt"] in _sources(store)


def test_the_cli_prune_flag_reports_what_it_forgot(tmp_path):
    from typer.testing import CliRunner

    from docmill.cli.app import app

    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("Alpha text about valves.\n")
    (src / "b.txt").write_text("Beta text about pumps.\n")
    args = ["ingest", str(src), "--home", str(tmp_path / "home"), "--store", "none", "--json"]
    assert CliRunner().invoke(app, args).exit_code == 0
    (src / "b.txt").unlink()
    result = CliRunner().invoke(app, [*args, "--prune"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1])["pruned"] == [(src / "b.txt").resolve().as_uri()]


def test_a_change_that_keeps_size_and_mtime_is_detected_and_times_are_recorded(tmp_path, monkeypatch):
    src, home = tmp_path / "src", tmp_path / "home"
    src.mkdir()
    doc = src / "policy.txt"
    doc.write_text("Leave is 20 days a year for everyone.\n")
    store = LanceDBStore(tmp_path / "index")
    _ingestor(home, store).run([str(src)])
    st = doc.stat()

    # Given the content replaced by a same-size text, and the old mtime put back (cp -p / rsync -t)
    staged = tmp_path / "staged.txt"
    staged.write_text("Leave is 25 days a year for everyone.\n")
    assert staged.stat().st_size == st.st_size
    os.utime(staged, ns=(st.st_atime_ns, st.st_mtime_ns))
    shutil.copy2(staged, doc)
    assert doc.stat().st_mtime_ns == st.st_mtime_ns and doc.stat().st_size == st.st_size
    # When re-ingested, Then the change is seen and the new text served
    report = _ingestor(home, store).run([str(src)])
    assert [f.status for f in report.files] == ["ok"]
    assert "25 days" in " ".join(c.text for c in store.iter_chunks("c"))

    # Given an unchanged file whose times moved (touch), When ingested twice
    os.utime(doc, None)
    hashed: list[Path] = []
    real = pipeline.sha256_file
    monkeypatch.setattr(pipeline, "sha256_file", lambda p: hashed.append(p) or real(p))
    first = _ingestor(home, store).run([str(src)])
    second = _ingestor(home, store).run([str(src)])
    # Then it is skipped both times, hashed the first time only (the new times were recorded)
    assert [f.status for f in first.files + second.files] == ["skipped", "skipped"]
    assert len(hashed) == 1
