"""Retrieval sanity with the real MiniLM embedder, and the ``docmill search`` command."""

from __future__ import annotations

import importlib
import json
import sys
import types
from pathlib import Path

import pytest
from typer.testing import CliRunner

from docmill.models import ChunkRecord, chunk_id_for
from docmill.vectorstores.base import SearchFilter
from docmill.vectorstores.lancedb_store import LanceDBStore
from tests.support.opensearch_double import OpenSearchDouble

DOCS = ["fake-text.txt", "norwich-city.txt", "book-war-and-peace-1p.txt", "README.md", "codeblock.md"]
COLLECTION = "sanity"

# Questions written by hand for three corpus documents, with a phrase the right chunk contains.
QUESTIONS = [
    ("Which animals are the best?", "fake-text.txt", "Dogs are the best"),
    ("How many international caps did Iwan Roberts win for Wales?", "norwich-city.txt", "15 caps"),
    ("Who was maid of honor to the Empress Marya Fedorovna?", "book-war-and-peace-1p.txt", "Anna Pavlovna"),
]


def paragraph_chunks(text: str, limit: int = 800) -> list[str]:
    """Lines packed up to ``limit`` characters (the index is under test here, not chunking)."""
    chunks, current = [], ""
    for line in (ln.strip() for ln in text.splitlines()):
        if not line:
            continue
        if current and len(current) + len(line) + 1 > limit:
            chunks.append(current)
            current = ""
        current = f"{current}\n{line}" if current else line
    if current:
        chunks.append(current)
    return chunks


@pytest.fixture(scope="module")
def embedder():
    """The process-wide MiniLM on the default runtime (what ``docmill search`` embeds queries with)."""
    from docmill.config import Settings
    from docmill.embeddings import embedder_for

    embedder = embedder_for(Settings())
    embedder.set_threads(1)  # the CI box is shared; one thread is plenty for ~100 chunks
    return embedder


@pytest.fixture(scope="module")
def corpus_chunks(embedder) -> list[ChunkRecord]:
    root = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "docs"
    if not root.is_dir():
        root = Path("/work/shared/corpus/docs")
    if not root.is_dir():
        pytest.skip("corpus not found")
    records: list[ChunkRecord] = []
    for name in DOCS:
        uri = str(root / name)
        texts = paragraph_chunks((root / name).read_text(encoding="utf-8", errors="replace"))
        vectors = embedder.embed_documents(texts)
        for i, (text, vector) in enumerate(zip(texts, vectors, strict=True)):
            records.append(
                ChunkRecord(
                    chunk_id=chunk_id_for(uri, text, i), collection=COLLECTION, text=text, embedding=vector,
                    source_uri=uri, source_version="1", source_sha256="-", file_type="text/plain",
                    page_numbers=[1], chunk_index=i, char_count=len(text),
                    embedding_model=embedder.model_id, docmill_version="0.1.0",
                )
            )
    return records


@pytest.fixture(scope="module")
def home(tmp_path_factory, corpus_chunks) -> Path:
    home = tmp_path_factory.mktemp("home")
    with LanceDBStore(home / "vectors") as store:
        assert store.upsert(corpus_chunks).errors == []
    return home


@pytest.fixture(scope="module")
def cli():
    # docmill/cli/__init__.py imports every command module; while this branch is built apart
    # from ingestion, stand in an empty module for the one that is not here yet.
    import docmill

    if not (Path(docmill.__file__).parent / "cli" / "ingest.py").exists():
        sys.modules.setdefault("docmill.cli.ingest", types.ModuleType("docmill.cli.ingest"))
    importlib.import_module("docmill.cli.search")
    from docmill.cli.app import app

    return app


@pytest.mark.parametrize("question,source,phrase", QUESTIONS)
def test_hand_written_questions_retrieve_their_source_chunk_in_top_5(home, embedder, question, source, phrase):
    with LanceDBStore(home / "vectors") as store:
        hits = store.search(embedder.embed_query(question), 5, SearchFilter(collection=COLLECTION))
    assert any(h.source_uri.endswith(source) and phrase in h.text for h in hits), [h.text[:60] for h in hits]


def test_search_json_prints_exactly_the_documented_shape(cli, home, monkeypatch):
    monkeypatch.delenv("DOCMILL_STORE", raising=False)
    result = CliRunner().invoke(
        cli, ["search", QUESTIONS[1][0], "--collection", COLLECTION, "-k", "3", "--json", "--home", str(home)]
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert list(payload) == ["results"]
    assert len(payload["results"]) == 3
    for item in payload["results"]:
        assert list(item) == ["chunk_id", "score", "source", "pages", "text"]
        assert isinstance(item["score"], float) and item["pages"] == [1]
    assert payload["results"][0]["source"].endswith("norwich-city.txt")
    scores = [r["score"] for r in payload["results"]]
    assert scores == sorted(scores, reverse=True)


def test_search_prints_a_table_with_score_source_pages_and_snippet(cli, home):
    result = CliRunner().invoke(
        cli, ["search", QUESTIONS[2][0], "-c", COLLECTION, "--home", str(home), "--store", "local"]
    )
    assert result.exit_code == 0, result.output
    assert "5 nearest chunks in sanity" in result.stdout
    first_row = next(line for line in result.stdout.splitlines() if line.startswith("│"))
    assert "book-war-and-peace-1p.txt" in first_row and "CHAPTER I" in first_row
    assert "score" in result.stdout and "pages" in result.stdout and "snippet" in result.stdout


def test_search_hybrid_and_an_unknown_collection(cli, home):
    hybrid = CliRunner().invoke(
        cli, ["search", "Doylestown hamburgers", "-c", COLLECTION, "--home", str(home), "--hybrid", "--json"]
    )
    assert hybrid.exit_code == 0, hybrid.output
    top = json.loads(hybrid.stdout)["results"][0]
    assert top["source"].endswith("fake-text.txt") and 0.0 <= top["score"] <= 1.0
    empty = CliRunner().invoke(cli, ["search", "anything", "-c", "nope", "--home", str(home), "--json"])
    assert json.loads(empty.stdout) == {"results": []}
    table = CliRunner().invoke(cli, ["search", "anything", "-c", "nope", "--home", str(home)])
    assert "no chunks found" in table.stdout


def test_search_against_opensearch_from_environment_settings(cli, corpus_chunks, tmp_path, monkeypatch):
    from docmill.config import OpenSearchSettings
    from docmill.vectorstores.opensearch import OpenSearchStore

    with OpenSearchDouble() as double:
        OpenSearchStore(OpenSearchSettings(url=double.url, index="cli-test"), refresh_writes=True).upsert(corpus_chunks)
        monkeypatch.setenv("DOCMILL_OPENSEARCH__URL", double.url)
        monkeypatch.setenv("DOCMILL_OPENSEARCH__INDEX", "cli-test")
        result = CliRunner().invoke(
            cli, ["search", QUESTIONS[2][0], "-c", COLLECTION, "--store", "opensearch", "--home", str(tmp_path), "--json"]
        )
    assert result.exit_code == 0, result.output
    results = json.loads(result.stdout)["results"]
    assert any("Anna Pavlovna" in r["text"] for r in results)
    assert not (tmp_path / "vectors").exists()  # nothing local was touched


def test_search_with_store_none_explains_itself(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("DOCMILL_STORE", "none")
    result = CliRunner().invoke(cli, ["search", "x", "-c", "c", "--home", str(tmp_path)])
    assert result.exit_code == 2
    assert "no vector store is configured" in result.stderr


def test_search_without_a_collection_looks_where_ingest_puts_files_by_default(cli, corpus_chunks, tmp_path):
    # Given chunks in the collection `docmill ingest` uses when none is named
    with LanceDBStore(tmp_path / "vectors") as store:
        assert store.upsert([c.model_copy(update={"collection": "default"}) for c in corpus_chunks]).errors == []

    # When the user searches without naming one
    result = CliRunner().invoke(cli, ["search", QUESTIONS[0][0], "--home", str(tmp_path), "--json"])

    # Then the default collection is searched
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["results"][0]["source"].endswith("fake-text.txt")
