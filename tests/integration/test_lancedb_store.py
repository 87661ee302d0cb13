"""Embedded store specifics: persistence across processes, cache freshness, compaction."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from docmill.vectorstores import lancedb_store
from docmill.vectorstores.base import SearchFilter
from docmill.vectorstores.lancedb_store import LanceDBStore
from tests.support.vector_fixtures import make_chunk, unit_vector

REPO = Path(__file__).resolve().parents[2]


def run_in_new_process(code: str) -> str:
    """Run ``code`` in a fresh interpreter (no shared memory, no shared caches)."""
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=REPO, capture_output=True, text=True, timeout=120,
        env={"PYTHONPATH": f"{REPO / 'layers'}:{REPO}", "PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip()


def test_data_persists_between_processes(tmp_path):
    # Given a process that writes chunks and exits
    run_in_new_process(f"""
        from docmill.vectorstores.lancedb_store import LanceDBStore
        from tests.support.vector_fixtures import make_chunk
        LanceDBStore({str(tmp_path)!r}).upsert([make_chunk("a.txt", i) for i in range(4)])
    """)
    # When this process opens the same folder
    store = LanceDBStore(tmp_path)
    # Then the chunks are there and searchable
    assert store.count() == 4
    target = make_chunk("a.txt", 2)
    assert store.search(target.embedding, 1)[0].chunk_id == target.chunk_id
    # and a write here is visible to yet another process
    store.delete_source("docs", "a.txt", keep_version="v2")
    assert run_in_new_process(f"""
        from docmill.vectorstores.lancedb_store import LanceDBStore
        print(LanceDBStore({str(tmp_path)!r}).count())
    """) == "0"


def test_an_open_store_sees_writes_from_another_process_at_once(tmp_path):
    # Given an open store whose search cache is warm
    store = LanceDBStore(tmp_path)
    store.upsert([make_chunk("a.txt", 0)])
    assert len(store.search(unit_vector(1), 10)) == 1
    # When another process adds a chunk
    run_in_new_process(f"""
        from docmill.vectorstores.lancedb_store import LanceDBStore
        from tests.support.vector_fixtures import make_chunk
        LanceDBStore({str(tmp_path)!r}).upsert([make_chunk("b.txt", 0)])
    """)
    # Then the next search already includes it
    assert {h.source_uri for h in store.search(unit_vector(1), 10)} == {"a.txt", "b.txt"}


def test_cached_search_agrees_with_lancedb_flat_search(tmp_path):
    chunks = [make_chunk(f"s{j}.txt", i, collection=f"c{j % 2}") for j in range(6) for i in range(15)]
    LanceDBStore(tmp_path).upsert(chunks)
    cached, flat = LanceDBStore(tmp_path), LanceDBStore(tmp_path, cache_vectors=False)
    for seed in range(5):
        q = unit_vector(seed + 100)
        for flt in (None, SearchFilter(collection="c1"), SearchFilter(source_uris=["s2.txt", "s3.txt"])):
            a, b = cached.search(q, 7, flt), flat.search(q, 7, flt)
            assert [h.chunk_id for h in a] == [h.chunk_id for h in b]
            assert [h.score for h in a] == pytest.approx([h.score for h in b], abs=1e-5)


def test_many_small_writes_are_compacted_and_stay_correct(tmp_path, monkeypatch):
    monkeypatch.setattr(lancedb_store, "COMPACT_AFTER_FRAGMENTS", 8)
    store = LanceDBStore(tmp_path)
    # Given 30 separate one-chunk upserts and a few deletes (each adds a fragment or a deletion file)
    for i in range(30):
        store.upsert([make_chunk(f"f{i}.txt", 0)])
    for i in range(0, 30, 3):
        store.delete_source("docs", f"f{i}.txt")
    # Then the table was compacted along the way and holds exactly the survivors
    assert store._table.stats()["fragment_stats"]["num_fragments"] < 8
    assert store.count() == 20
    assert {c.source_uri for c in store.iter_chunks("docs")} == {f"f{i}.txt" for i in range(30) if i % 3}


def test_query_vector_of_the_wrong_dimension_is_refused(tmp_path):
    from docmill.errors import VectorStoreError

    store = LanceDBStore(tmp_path)
    store.upsert([make_chunk("a.txt", 0)])
    with pytest.raises(VectorStoreError, match="dimensions"):
        store.search([0.1, 0.2], 3)


def test_two_stage_scan_returns_the_exact_float32_top_k_even_for_near_ties(tmp_path, monkeypatch):
    import numpy as np

    monkeypatch.setattr(lancedb_store, "HALF_SCAN_MIN_ROWS", 0)  # use the float16 stage at any size
    rng = np.random.default_rng(3)
    dim = 32
    q = rng.standard_normal(dim).astype(np.float32)
    q /= np.linalg.norm(q)
    # Given 400 vectors whose scores against q differ by ~1e-5 near the top: far below float16's
    # resolution, so stage 1 alone would mis-order them
    base = rng.standard_normal((400, dim)).astype(np.float32)
    base -= np.outer(base @ q, q)  # orthogonal to q
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    cos = 0.9 + rng.uniform(0, 1e-3, size=400).astype(np.float32)
    vectors = (cos[:, None] * q + np.sqrt(1 - cos**2)[:, None] * base).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    chunks = [make_chunk("near.txt", i, dim=dim).model_copy(update={"embedding": vectors[i].tolist()}) for i in range(400)]
    store = LanceDBStore(tmp_path)
    store.upsert(chunks)
    # When searching
    hits = store.search(q.tolist(), 10)
    # Then the order is exactly the float32 brute-force order
    exact = vectors @ q
    want = [chunks[i].chunk_id for i in np.argsort(-exact, kind="stable")[:10]]
    assert store._cache.half is not None  # the float16 stage was really used
    assert [h.chunk_id for h in hits] == want
    assert [h.score for h in hits] == pytest.approx(sorted(exact, reverse=True)[:10], abs=1e-6)
