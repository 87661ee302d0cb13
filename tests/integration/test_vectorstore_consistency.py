"""After any sequence of ingest / re-ingest / change / delete, the index holds exactly the
chunks of the current versions, on both back ends."""

from __future__ import annotations

import random

import pytest

from docmill.models import chunk_id_for
from docmill.vectorstores.base import SearchFilter
from tests.support.vector_fixtures import make_chunk, opensearch_server, store  # noqa: F401

COLLECTIONS = ["handbook", "policies"]
SOURCES = ["s3://raw/a.pdf", "s3://raw/b.docx", "s3://raw/it's.md", "/local/d.txt"]


def version_chunks(collection: str, source: str, version: str, texts: list[str]):
    """Chunks as ingestion makes them: ids from (source URI, text, index), so an unchanged
    chunk keeps its id across versions and a changed one gets a new id."""
    chunks = []
    for i, text in enumerate(texts):
        c = make_chunk(source, i, version=version, collection=collection, text=text)
        chunks.append(c.model_copy(update={"chunk_id": chunk_id_for(source, text, i)}))
    return chunks


def ingest(store, model, collection, source, version, texts, via_replace=False):
    """What ingestion does for one source version: upsert, then drop other versions (either
    by version, or with ``replace_source``, by chunk id)."""
    chunks = version_chunks(collection, source, version, texts)
    if via_replace:
        assert store.replace_source(collection, source, chunks).errors == []
    else:
        if chunks:
            result = store.upsert(chunks)
            assert result.errors == []
        store.delete_source(collection, source, keep_version=version)
    model[(collection, source)] = {c.chunk_id: version for c in chunks}


def assert_matches(store, model):
    for collection in COLLECTIONS:
        expected = {
            (source, cid, version)
            for (coll, source), chunks in model.items()
            if coll == collection
            for cid, version in chunks.items()
        }
        actual = [(c.source_uri, c.chunk_id, c.source_version) for c in store.iter_chunks(collection)]
        assert len(actual) == len(set(actual)), "duplicate chunks in the index"
        assert set(actual) == expected
        assert store.count(collection) == len(expected)
    assert store.count() == sum(len(v) for v in model.values())


def test_scripted_lifecycle(store):
    model: dict = {}
    # Given v1 of two sources
    ingest(store, model, "handbook", SOURCES[0], "v1", ["intro", "body", "end"])
    ingest(store, model, "handbook", SOURCES[1], "v1", ["one", "two"])
    assert_matches(store, model)
    # When the same version is ingested again (re-run): nothing changes
    ingest(store, model, "handbook", SOURCES[0], "v1", ["intro", "body", "end"])
    assert_matches(store, model)
    # When a changed version keeps one chunk, changes one and drops one
    ingest(store, model, "handbook", SOURCES[0], "v2", ["intro", "body changed"])
    assert_matches(store, model)
    hits = store.search(version_chunks("handbook", SOURCES[0], "v2", ["intro"])[0].embedding, 10,
                        SearchFilter(collection="handbook", source_uris=[SOURCES[0]]))
    assert {h.source_version for h in hits} == {"v2"}
    # When a source is deleted, then the collection
    assert store.delete_source("handbook", SOURCES[1]) == 2
    model.pop(("handbook", SOURCES[1]))
    assert_matches(store, model)
    ingest(store, model, "policies", SOURCES[0], "v1", ["intro"])
    store.delete_collection("handbook")
    model = {k: v for k, v in model.items() if k[0] != "handbook"}
    # Then only the other collection's current chunks are left
    assert_matches(store, model)


@pytest.mark.parametrize("seed", [1, 2])
def test_random_operation_sequences(store, seed):
    rng = random.Random(seed)
    words = ["alpha", "beta", "gamma", "delta", "eps"]
    model: dict = {}
    versions: dict = {}
    for _step in range(18):
        op = rng.choices(["ingest", "reingest", "delete_source", "delete_collection"], [6, 2, 2, 1])[0]
        collection = rng.choice(COLLECTIONS)
        source = rng.choice(SOURCES)
        if op == "ingest":
            n = versions.get((collection, source), 0) + 1
            versions[(collection, source)] = n
            # texts overlap between versions on purpose: unchanged chunks keep their ids
            texts = [rng.choice(words) for _ in range(rng.randint(0, 4))]
            ingest(store, model, collection, source, f"v{n}", texts, via_replace=rng.random() < 0.5)
        elif op == "reingest" and (collection, source) in model:
            current = model[(collection, source)]
            version = next(iter(current.values()), f"v{versions[(collection, source)]}")
            chunks = [c for c in store.iter_chunks(collection) if c.source_uri == source]
            texts = [c.text for c in sorted(chunks, key=lambda c: c.chunk_index)]
            ingest(store, model, collection, source, version, texts)
        elif op == "delete_source":
            store.delete_source(collection, source)
            model.pop((collection, source), None)
        elif op == "delete_collection":
            store.delete_collection(collection)
            model = {k: v for k, v in model.items() if k[0] != collection}
        assert_matches(store, model)
