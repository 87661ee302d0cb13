"""Given the real test corpus, When docmill ingests it, Then every good document yields chunks
with lineage and every bad file is a failed entry with its reason, in the same batch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from docmill.config import IngestOptions
from docmill.ingest import Ingestor
from docmill.ingest.sources import source_id_for
from docmill.storage import LocalStore

PAGED = {"pdf", "docx", "pptx", "xlsx", "odt"}
# Damage these files carry that no parser here repairs: each must fail with this reason kind.
BAD_REASONS = {
    "copy-protected.pdf": "encrypted",
    "password.pdf": "encrypted",
    "password_protected.xlsx": "encrypted",
    "fake-encrypted.msg": "encrypted",
    "empty.txt": "empty",
    "fake-text-all-whitespace.txt": "empty",
    "fake-incomplete-json.txt": "corrupt",
    "pdf-bad-color-space.pdf": "corrupt",
    "fake-text-utf-16-be.txt": "encoding",
    "umlauts-non-utf8.md": "encoding",
    "file_we_dont_want_imported": "unsupported",
    "simple.zip": "unsupported",
}


@pytest.fixture(scope="module")
def corpus_run(tmp_path_factory, corpus_docs, corpus_bad, embedder):
    home = tmp_path_factory.mktemp("home")
    ingestor = Ingestor(
        output=LocalStore(home),
        collection="corpus",
        options=IngestOptions(workers=2),
        embedder=embedder,
    )
    report = ingestor.run([str(corpus_docs), str(corpus_bad)])
    return home, report


def _by_name(report):
    return {Path(f.source).name: f for f in report.files}


def _chunks(home: Path, source_uri: str) -> list[dict]:
    path = home / "collections/corpus/sources" / source_id_for(source_uri) / "chunks.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_every_document_in_docs_ingests_to_non_empty_chunks(corpus_run, corpus_docs):
    home, report = corpus_run
    results = _by_name(report)

    not_ok = {name: results[name].reason for name in (p.name for p in corpus_docs.iterdir()) if results[name].status != "ok"}

    assert not_ok == {}
    for path in corpus_docs.iterdir():
        assert results[path.name].chunks > 0, path.name
        assert len(_chunks(home, path.resolve().as_uri())) == results[path.name].chunks


def test_chunk_records_carry_full_lineage(corpus_run, corpus_docs, embedder):
    home, _ = corpus_run
    source = (corpus_docs / "layout-parser-paper-fast.pdf").resolve()

    chunks = _chunks(home, source.as_uri())

    first = chunks[0]
    assert first["source_uri"] == source.as_uri()
    assert len(first["source_sha256"]) == 64
    assert first["source_version"].startswith("sha256:")
    assert first["file_type"] == "pdf"
    assert first["embedding_model"] == embedder.model_id
    assert len(first["embedding"]) == 384
    assert first["element_ids"] and first["docmill_version"]
    assert [c["chunk_index"] for c in chunks] == list(range(len(chunks)))
    assert all(c["char_count"] == len(c["text"]) for c in chunks)
    assert len({c["chunk_id"] for c in chunks}) == len(chunks)
    assert {p for c in chunks for p in c["page_numbers"]} == {1, 2}


@pytest.mark.slow
def test_every_corpus_chunk_embeds_as_the_pytorch_model_does(corpus_run, embedder, torch_embedder):
    # Given every chunk of the corpus, embedded during ingest by the default runtime (CTranslate2 int8)
    home, _ = corpus_run
    chunks = [
        json.loads(line)
        for path in sorted((home / "collections/corpus/sources").glob("*/chunks.jsonl"))
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    assert len(chunks) > 100 and type(embedder).__name__ == "CTranslate2Embedder"

    # When the PyTorch model embeds the same texts
    reference = torch_embedder.embed_documents([c["text"] for c in chunks])

    # Then each vector is within cosine 0.99 of PyTorch's
    worst = min(
        (sum(a * b for a, b in zip(c["embedding"], r, strict=True)), c["chunk_id"]) for c, r in zip(chunks, reference, strict=True)
    )
    assert worst[0] >= 0.99, worst


def test_paged_formats_have_page_numbers_on_every_chunk(corpus_run, corpus_docs):
    home, report = corpus_run

    missing = [
        f"{Path(f.source).name}#{c['chunk_index']}"
        for f in report.files
        if f.status == "ok" and f.file_type in PAGED
        for c in _chunks(home, f.source)
        if not c["page_numbers"]
    ]

    assert missing == []


def test_each_bad_file_fails_with_its_reason_and_leaves_no_output(corpus_run, corpus_bad):
    home, report = corpus_run
    results = _by_name(report)

    for name, kind in BAD_REASONS.items():
        result = results[name]
        assert result.status == "failed", name
        assert result.reason.startswith(kind + ":"), (name, result.reason)
        source_dir = home / "collections/corpus/sources" / source_id_for((corpus_bad / name).resolve().as_uri())
        assert not source_dir.exists(), name


def test_manifest_lists_every_file_with_status_and_totals(corpus_run, corpus_docs, corpus_bad):
    home, report = corpus_run

    manifest = json.loads((home / f"collections/corpus/runs/{report.run_id}.json").read_text())

    assert len(manifest["files"]) == len(list(corpus_docs.iterdir())) + len(list(corpus_bad.iterdir()))
    assert manifest["totals"]["failed"] >= len(BAD_REASONS)
    assert manifest["totals"]["chunks"] == sum(f["chunks"] for f in manifest["files"])
    assert not report.all_ok


def test_readable_files_in_bad_are_ingested_not_refused(corpus_run):
    # Both are in the "bad" corpus for historical parser bugs, but every reader here gets their
    # full text; refusing them would lose content.
    _, report = corpus_run
    results = _by_name(report)

    for name in ("invalid-pdf-structure-pdfminer-one-page.pdf", "fake-power-point-malformed.pptx"):
        assert results[name].status == "ok", (name, results[name].reason)
        assert results[name].chunks > 0


def test_lenient_pdf_ingests_what_a_damaged_pdf_still_holds(tmp_path, corpus_bad, embedder):
    ingestor = Ingestor(output=LocalStore(tmp_path), collection="c", options=IngestOptions(workers=1), embedder=embedder, lenient_pdf=True)

    report = ingestor.run([str(corpus_bad / "pdf-bad-color-space.pdf")])

    assert report.files[0].status == "ok"
    assert report.files[0].chunks > 0
