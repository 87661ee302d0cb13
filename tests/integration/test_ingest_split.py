"""Given a multi-page PDF, When docmill partitions it as page ranges in parallel workers, Then
elements, chunks and report are exactly what partitioning it whole gives: page numbers, element
ids, parent ids, section titles, chunk ids and texts, including chunks that span a range boundary."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from docmill.config import IngestOptions
from docmill.ingest import Ingestor
from docmill.ingest.sources import source_id_for
from docmill.storage import LocalStore

PDF = "multi-column.pdf"  # 13 pages of running text: sections and chunks cross page boundaries


def _ingest(home: Path, pdf: Path, split_pages: int):
    ingestor = Ingestor(
        output=LocalStore(home), collection="c", options=IngestOptions(workers=2, split_pages=split_pages, force=True)
    )
    report = ingestor.run([str(pdf)])
    folder = home / "collections/c/sources" / source_id_for(report.files[0].source)
    elements = json.loads((folder / "elements.json").read_text())
    chunks = [json.loads(line) for line in (folder / "chunks.jsonl").read_text().splitlines()]
    return report, elements, chunks


@pytest.fixture(scope="module")
def whole_and_split(tmp_path_factory, corpus_docs):
    pdf = corpus_docs / PDF
    whole = _ingest(tmp_path_factory.mktemp("whole"), pdf, split_pages=0)
    # Two-page ranges: seven ranges over two workers, arriving out of order.
    split = _ingest(tmp_path_factory.mktemp("split"), pdf, split_pages=2)
    return whole, split


def test_split_pdf_gives_the_same_elements_as_the_whole_file(whole_and_split):
    (_, whole_elements, _), (split_report, split_elements, _) = whole_and_split

    assert split_report.files[0].status == "ok", split_report.files[0].reason
    assert [e["metadata"]["page_number"] for e in split_elements] == [
        e["metadata"]["page_number"] for e in whole_elements
    ]
    assert max(e["metadata"]["page_number"] for e in split_elements) == 13
    # ids, parent ids (across range boundaries too), text and every metadata field
    assert split_elements == whole_elements


def test_split_pdf_gives_the_same_chunks_as_the_whole_file(whole_and_split):
    (whole_report, _, whole_chunks), (split_report, _, split_chunks) = whole_and_split

    assert len(split_chunks) == len(whole_chunks) > 10
    for ours, theirs in zip(split_chunks, whole_chunks, strict=True):
        assert ours == theirs
    # Some chunk really spans two ranges (pages 2k and 2k+1), so the boundary logic is exercised.
    assert any(len(c["page_numbers"]) > 1 and c["page_numbers"][0] % 2 == 0 for c in split_chunks)
    assert split_report.files[0].pages == whole_report.files[0].pages == 13


def test_split_run_reports_time_per_phase(whole_and_split):
    (_, _, _), (split_report, _, _) = whole_and_split

    phases = split_report.totals.phases
    assert list(phases)[:7] == ["checks", "partition", "clean", "chunk", "embed", "write", "index"]
    assert phases["partition"] > 0 and phases["checks"] > 0 and phases["chunk"] > 0


def test_given_a_worker_on_every_core_when_files_are_ingested_then_the_workers_embed_them(
    tmp_path, corpus_docs, embedder, monkeypatch
):
    # Given two workers on two cores, and an embedder (the default runtime) whose encoders open
    # only if this process embeds (a fresh instance, not the session-wide one other tests use)
    import numpy as np

    from docmill.embeddings.ct2 import CTranslate2Embedder
    from docmill.ingest import pipeline

    here = CTranslate2Embedder(embedder.model_path, embedder.float_model_path, embedder.model_dir)
    monkeypatch.setattr(pipeline.os, "sched_getaffinity", lambda _pid: {0, 1})
    monkeypatch.setattr(pipeline, "EMBED_TASK_CHUNKS", 5)  # several tasks per file, out of order
    ingestor = Ingestor(
        output=LocalStore(tmp_path), collection="c", embedder=here,
        options=IngestOptions(workers=2, split_pages=2, force=True),
    )
    # When a split PDF and a whole DOCX are ingested
    report = ingestor.run([str(corpus_docs / PDF), str(corpus_docs / "fake.docx")])
    # Then both are ok, every chunk carries the vector this process would have given its text,
    # the time is reported, and this process never ran the model
    assert [f.status for f in report.files] == ["ok", "ok"], [f.reason for f in report.files]
    chunks = []
    for result in report.files:
        folder = tmp_path / "collections/c/sources" / source_id_for(result.source)
        chunks += [json.loads(line) for line in (folder / "chunks.jsonl").read_text().splitlines()]
        assert result.phases["embed"] > 0
    assert len(chunks) > 10
    theirs = np.array([c["embedding"] for c in chunks])
    ours = np.array(embedder.embed_documents([c["text"] for c in chunks]))
    assert (theirs * ours).sum(axis=1).min() > 0.9999
    assert {c["embedding_model"] for c in chunks} == {embedder.model_id}
    assert here._encoders == {}
