"""The VectorStore contract, run unchanged on the embedded store and on OpenSearch."""

from __future__ import annotations

import numpy as np
import pytest

from docmill.errors import VectorStoreError
from docmill.vectorstores.base import SearchFilter
from tests.support.vector_fixtures import DIM, make_chunk, opensearch_server, store, unit_vector  # noqa: F401


def exact_top(chunks, query, k):
    """Brute-force reference: ids of the k most cosine-similar chunks."""
    m = np.asarray([c.embedding for c in chunks], dtype=np.float64)
    scores = m @ np.asarray(query, dtype=np.float64)
    order = np.argsort(-scores, kind="stable")[:k]
    return [chunks[i].chunk_id for i in order], scores[order]


def test_empty_store_answers_without_an_index(store):
    # Given a store that has never been written to
    # When it is queried
    # Then it answers "nothing" instead of failing on a missing table/index
    assert store.count() == 0
    assert store.search(unit_vector(1), k=3) == []
    assert list(store.iter_chunks("docs")) == []
    assert store.delete_source("docs", "a.txt") == 0
    assert store.health()["ok"] is True


def test_upsert_twice_never_duplicates(store):
    # Given three chunks of one source
    chunks = [make_chunk("docs/a.txt", i) for i in range(3)]
    # When they are upserted twice (a re-run of the same ingest)
    first = store.upsert(chunks)
    second = store.upsert(chunks)
    # Then the index holds each chunk once
    assert (first.upserted, first.errors) == (3, [])
    assert (second.upserted, second.errors) == (3, [])
    assert store.count() == 3
    assert store.count("docs", "docs/a.txt") == 3


def test_search_returns_exact_neighbours_with_cosine_scores(store):
    # Given 60 chunks over three sources
    chunks = [make_chunk(f"docs/{s}.txt", i) for s in "abc" for i in range(20)]
    store.upsert(chunks)
    query = unit_vector(424242)
    # When searching for the 5 nearest
    hits = store.search(query, k=5, filters=SearchFilter(collection="docs"))
    # Then they are exactly the brute-force top 5, scored with cosine similarity
    want_ids, want_scores = exact_top(chunks, query, 5)
    assert [h.chunk_id for h in hits] == want_ids
    assert [h.score for h in hits] == pytest.approx(list(want_scores), abs=1e-4)
    # and every hit carries its lineage
    by_id = {c.chunk_id: c for c in chunks}
    for hit in hits:
        chunk = by_id[hit.chunk_id]
        assert (hit.text, hit.source_uri, hit.page_numbers, hit.section_title, hit.chunk_index) == (
            chunk.text, chunk.source_uri, chunk.page_numbers, chunk.section_title, chunk.chunk_index,
        )
        assert hit.metadata == chunk.metadata


def test_filters_restrict_collection_tenant_and_sources(store):
    # Given chunks in two collections, two tenants and several sources
    chunks = (
        [make_chunk("a.txt", i, collection="one") for i in range(5)]
        + [make_chunk("b.txt", i, collection="one", tenant="acme") for i in range(5)]
        + [make_chunk("c.txt", i, collection="two") for i in range(5)]
    )
    store.upsert(chunks)
    query = unit_vector(7)
    # When filtering on each dimension
    one = store.search(query, 50, SearchFilter(collection="one"))
    acme = store.search(query, 50, SearchFilter(collection="one", tenant="acme"))
    only_c = store.search(query, 50, SearchFilter(source_uris=["c.txt"]))
    a_or_c = store.search(query, 50, SearchFilter(source_uris=["a.txt", "c.txt"]))
    nothing = store.search(query, 50, SearchFilter(collection="missing"))
    # Then only matching chunks come back, still best-first
    assert {h.source_uri for h in one} == {"a.txt", "b.txt"} and len(one) == 10
    assert {h.source_uri for h in acme} == {"b.txt"} and {h.tenant for h in acme} == {"acme"}
    assert {h.source_uri for h in only_c} == {"c.txt"} and len(only_c) == 5
    assert {h.source_uri for h in a_or_c} == {"a.txt", "c.txt"} and len(a_or_c) == 10
    assert nothing == []
    assert [h.score for h in one] == sorted((h.score for h in one), reverse=True)
    # and the filtered top-k is the exact top-k among the allowed chunks
    allowed = [c for c in chunks if c.collection == "one"]
    assert [h.chunk_id for h in store.search(query, 3, SearchFilter(collection="one"))] == exact_top(allowed, query, 3)[0]


def test_quotes_and_sql_in_values_are_data_not_syntax(store):
    # Given sources whose names contain quotes and SQL / JSON syntax
    nasty = ["o'brien.txt", "x' OR '1'='1", 'say "hi".md', "a\\b'); DROP TABLE chunks; --"]
    for name in nasty:
        store.upsert([make_chunk(name, 0), make_chunk(name, 1)])
    store.upsert([make_chunk("plain.txt", 0)])
    # When filtering, counting and deleting by those names
    hits = store.search(unit_vector(1), 20, SearchFilter(source_uris=["x' OR '1'='1"]))
    # Then each acts on exactly its own chunks
    assert {h.source_uri for h in hits} == {"x' OR '1'='1"}
    assert store.count("docs", "o'brien.txt") == 2
    assert store.delete_source("docs", "x' OR '1'='1") == 2
    assert store.delete_source("docs", "a\\b'); DROP TABLE chunks; --") == 2
    assert store.count() == 5
    assert store.count("docs", "plain.txt") == 1


def test_delete_source_with_keep_version_removes_only_stale_chunks(store):
    # Given version v1 (3 chunks) then v2 (2 chunks) of one source, and another source
    store.upsert([make_chunk("doc.pdf", i, version="v1") for i in range(3)])
    store.upsert([make_chunk("other.pdf", i, version="v1") for i in range(2)])
    v2 = [make_chunk("doc.pdf", i, version="v2", text=f"new text {i}") for i in range(2)]
    store.upsert(v2)
    # When the stale versions are deleted
    deleted = store.delete_source("docs", "doc.pdf", keep_version="v2")
    # Then only v1 of that source went
    assert deleted == 3
    assert {c.chunk_id for c in store.iter_chunks("docs") if c.source_uri == "doc.pdf"} == {c.chunk_id for c in v2}
    assert store.count("docs", "other.pdf") == 2


def test_delete_collection_leaves_other_collections(store):
    store.upsert([make_chunk("a.txt", i, collection="keep") for i in range(2)])
    store.upsert([make_chunk("a.txt", i, collection="drop") for i in range(3)])
    assert store.delete_collection("drop") == 3
    assert store.count("drop") == 0
    assert store.count("keep") == 2
    assert store.delete_collection("drop") == 0


def test_iter_chunks_round_trips_records_in_stable_order(store):
    # Given chunks of two sources, written out of order, in batches smaller than the total
    chunks = [make_chunk(f"s{j}.txt", i) for j in (2, 1) for i in (3, 0, 2, 1)]
    chunks.append(make_chunk("s1.txt", 0, tenant="other", collection="docs", text="tenant two"))
    store.upsert(chunks)
    # When reading the collection back in batches of 3
    got = list(store.iter_chunks("docs", tenant="default", batch_size=3))
    with_vectors = list(store.iter_chunks("docs", batch_size=2, with_embeddings=True))
    # Then every record comes back whole, ordered by source then chunk index
    assert [(c.source_uri, c.chunk_index) for c in got] == [(f"s{j}.txt", i) for j in (1, 2) for i in range(4)]
    by_id = {c.chunk_id: c for c in chunks}
    for c in got:
        assert c.model_dump(exclude={"embedding"}) == by_id[c.chunk_id].model_dump(exclude={"embedding"})
        assert c.embedding is None
    assert len(with_vectors) == 9
    for c in with_vectors:
        assert c.embedding == pytest.approx(by_id[c.chunk_id].embedding, abs=1e-6)


def test_chunks_without_or_with_wrong_size_vectors_are_reported_not_indexed(store):
    good = make_chunk("a.txt", 0)
    missing = make_chunk("a.txt", 1).model_copy(update={"embedding": None})
    wrong = make_chunk("a.txt", 2, dim=DIM + 1)
    result = store.upsert([good, missing, wrong])
    assert result.upserted == 1
    assert sorted(e["chunk_id"] for e in result.errors) == sorted([missing.chunk_id, wrong.chunk_id])
    assert store.count() == 1


def test_dimension_is_fixed_once_the_index_exists(store):
    store.ensure_index(DIM)
    store.ensure_index(DIM)  # idempotent
    with pytest.raises(VectorStoreError, match="-d"):
        store.ensure_index(DIM * 2)


def test_hybrid_search_lifts_keyword_matches(store):
    # Given chunks with random vectors, one of which mentions a rare word
    chunks = [make_chunk("a.txt", i, text=f"ordinary filler text number {i}") for i in range(12)]
    special = make_chunk("b.txt", 0, text="the zygomorphic flower is bilaterally symmetric")
    store.upsert([*chunks, special])
    query = unit_vector(99)  # unrelated to every chunk
    # When searching hybrid for the rare word
    plain = store.search(query, 3, SearchFilter(collection="docs"))
    hybrid = store.search_hybrid("zygomorphic flower", query, 3, SearchFilter(collection="docs"))
    # Then BM25 brings the keyword chunk to the top, with normalised scores in [0, 1]
    assert special.chunk_id not in [h.chunk_id for h in plain] or plain[0].chunk_id != special.chunk_id
    assert hybrid[0].chunk_id == special.chunk_id
    assert all(0.0 <= h.score <= 1.0 for h in hybrid)
    # and a pure-vector weighting reproduces the k-NN order
    assert [h.chunk_id for h in store.search_hybrid("zygomorphic", query, 3, vector_weight=1.0)] == [
        h.chunk_id for h in plain
    ]


def test_same_chunk_ids_in_two_collections_are_separate_documents(store):
    # Given the same file ingested into two collections (chunk ids depend on URI+text+index only)
    a = make_chunk("shared.pdf", 0, collection="alpha")
    b = a.model_copy(update={"collection": "beta"})
    assert a.chunk_id == b.chunk_id
    # When both are upserted and one collection is deleted
    store.upsert([a])
    store.upsert([b])
    assert store.count("alpha") == 1 and store.count("beta") == 1
    store.delete_collection("alpha")
    # Then the other collection still has its copy
    assert [c.collection for c in store.iter_chunks("beta")] == ["beta"]
    assert store.search(a.embedding, 5, SearchFilter(collection="beta"))[0].chunk_id == a.chunk_id


@pytest.mark.parametrize("version", ["v2", None])
def test_replace_source_keeps_exactly_the_new_chunks(store, version):
    # Given v1 of a source (three chunks) and another source
    old = [make_chunk("doc.md", i, version="v1") for i in range(3)]
    store.upsert(old)
    store.upsert([make_chunk("other.md", 0)])
    # When v2 keeps chunk 0 unchanged (same id), and replaces the rest with one new chunk
    new = [old[0].model_copy(update={"source_version": version}), make_chunk("doc.md", 1, version=version, text="new")]
    result = store.replace_source("docs", "doc.md", new)
    # Then the source holds exactly the v2 chunks, and the other source is untouched
    assert result.errors == []
    got = {(c.chunk_id, c.source_version) for c in store.iter_chunks("docs") if c.source_uri == "doc.md"}
    assert got == {(c.chunk_id, version) for c in new}
    assert store.count("docs", "other.md") == 1
    # and replacing with no chunks (the file became empty) removes the source
    store.replace_source("docs", "doc.md", [])
    assert store.count("docs", "doc.md") == 0


def test_replace_source_keeps_old_chunks_when_indexing_fails(store):
    old = [make_chunk("doc.md", i) for i in range(2)]
    store.upsert(old)
    broken = make_chunk("doc.md", 5, version="v2").model_copy(update={"embedding": None})
    result = store.replace_source("docs", "doc.md", [make_chunk("doc.md", 0, version="v2", text="x"), broken])
    assert [e["chunk_id"] for e in result.errors] == [broken.chunk_id]
    assert {c.chunk_id for c in old} <= {c.chunk_id for c in store.iter_chunks("docs")}
    with pytest.raises(VectorStoreError):
        store.replace_source("docs", "doc.md", [make_chunk("elsewhere.md", 0)])
