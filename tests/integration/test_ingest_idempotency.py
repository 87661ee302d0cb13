"""Given an ingested collection, When the same files are ingested again or change, Then
unchanged files are skipped and a changed file's chunks replace its earlier ones."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from docmill.config import IngestOptions
from docmill.ingest import Ingestor
from docmill.ingest.sources import source_id_for
from docmill.storage import LocalStore


@pytest.fixture
def workspace(tmp_path, corpus_docs):
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(corpus_docs / "fake-text.txt", src / "notes.txt")
    shutil.copy(corpus_docs / "fake-memo.pdf", src / "memo.pdf")
    return src, tmp_path / "home"


def _ingestor(home: Path, embedder, **options) -> Ingestor:
    return Ingestor(output=LocalStore(home), collection="c", options=IngestOptions(workers=1, **options), embedder=embedder)


def _chunk_texts(home: Path, path: Path) -> list[str]:
    chunks = home / "collections/c/sources" / source_id_for(path.resolve().as_uri()) / "chunks.jsonl"
    return [json.loads(line)["text"] for line in chunks.read_text().splitlines()]


def test_reingesting_unchanged_files_is_a_no_op(workspace, embedder):
    src, home = workspace
    first = _ingestor(home, embedder).run([str(src)])
    chunk_file = home / "collections/c/sources" / source_id_for((src / "memo.pdf").resolve().as_uri()) / "chunks.jsonl"
    written_at = chunk_file.stat().st_mtime_ns

    second = _ingestor(home, embedder).run([str(src)])

    assert [f.status for f in first.files] == ["ok", "ok"]
    assert [f.status for f in second.files] == ["skipped", "skipped"]
    assert all(f.reason == "unchanged since the last ingest" for f in second.files)
    assert [f.chunks for f in second.files] == [f.chunks for f in first.files]
    assert chunk_file.stat().st_mtime_ns == written_at


def test_touched_but_identical_file_is_still_skipped(workspace, embedder):
    src, home = workspace
    _ingestor(home, embedder).run([str(src / "notes.txt")])
    os.utime(src / "notes.txt", (1_000_000_000, 1_000_000_000))

    again = _ingestor(home, embedder).run([str(src / "notes.txt")])

    assert again.files[0].status == "skipped"


def test_changed_file_replaces_its_earlier_chunks(workspace, embedder):
    src, home = workspace
    _ingestor(home, embedder).run([str(src / "notes.txt")])
    before = _chunk_texts(home, src / "notes.txt")
    (src / "notes.txt").write_text("Quarterly revenue grew by twelve percent.\n\nThe board approved the plan.\n")

    report = _ingestor(home, embedder).run([str(src / "notes.txt")])

    after = _chunk_texts(home, src / "notes.txt")
    assert report.files[0].status == "ok"
    assert after != before
    assert any("twelve percent" in text for text in after)
    assert not any(text in after for text in before)


def test_changed_chunking_settings_reprocess_the_file(workspace, embedder):
    src, home = workspace
    _ingestor(home, embedder).run([str(src / "notes.txt")])

    report = _ingestor(home, embedder, chunking={"strategy": "basic", "max_characters": 120}).run([str(src / "notes.txt")])

    assert report.files[0].status == "ok"
    assert all(len(t) <= 120 for t in _chunk_texts(home, src / "notes.txt"))


def test_file_that_becomes_corrupt_leaves_no_stale_chunks(workspace, embedder):
    src, home = workspace
    _ingestor(home, embedder).run([str(src / "notes.txt")])
    (src / "notes.txt").write_bytes(b"")

    report = _ingestor(home, embedder).run([str(src / "notes.txt")])

    assert report.files[0].status == "failed"
    assert report.files[0].reason.startswith("empty:")
    assert not (home / "collections/c/sources" / source_id_for((src / "notes.txt").resolve().as_uri())).exists()


def test_missing_input_is_a_failed_entry_not_a_crash(workspace, embedder):
    src, home = workspace

    report = _ingestor(home, embedder).run([str(src / "memo.pdf"), str(src / "nope.pdf")])

    statuses = {Path(f.source).name: (f.status, f.reason) for f in report.files}
    assert statuses["memo.pdf"][0] == "ok"
    assert statuses["nope.pdf"] == ("failed", "not found: no such file or folder")


def test_files_over_the_size_limit_are_refused_with_a_reason(workspace, embedder):
    src, home = workspace

    report = _ingestor(home, embedder, partition={"max_file_bytes": 1000}).run([str(src / "memo.pdf")])

    assert report.files[0].status == "failed"
    assert report.files[0].reason.startswith("too large:")


def test_pdfs_over_the_page_limit_are_refused_with_a_reason(corpus_docs, tmp_path, embedder):
    report = _ingestor(tmp_path, embedder, partition={"max_pages": 1}).run([str(corpus_docs / "layout-parser-paper-fast.pdf")])

    assert report.files[0].status == "failed"
    assert "2 pages is over the limit of 1" in report.files[0].reason
