"""Pure pieces of the vector stores: quoting, hybrid ranking, score transforms, mappings."""

from __future__ import annotations

import pytest

from docmill.config import OpenSearchSettings
from docmill.errors import VectorStoreError
from docmill.vectorstores.base import SearchHit
from docmill.vectorstores.hybrid import combine, min_max
from docmill.vectorstores.lancedb_store import sql_quote, where_clause
from docmill.vectorstores.opensearch import OpenSearchStore, cosine_from_score, index_body
from tests.support.opensearch_double import _knn_score


def hit(cid: str, score: float) -> SearchHit:
    return SearchHit(chunk_id=cid, score=score, text="", source_uri="s", collection="c")


@pytest.mark.parametrize(
    "value,literal",
    [("plain", "'plain'"), ("o'brien", "'o''brien'"), ("' OR '1'='1", "''' OR ''1''=''1'"), ("", "''")],
)
def test_sql_quote_doubles_quotes_so_values_stay_literals(value, literal):
    assert sql_quote(value) == literal


def test_sql_quote_refuses_nul():
    with pytest.raises(VectorStoreError):
        sql_quote("a\x00b")


def test_where_clause_combines_filters():
    assert where_clause() is None
    assert where_clause(collection="c", tenant="t", source_uris=["a", "b'"]) == (
        "collection = 'c' AND tenant = 't' AND source_uri IN ('a', 'b''')"
    )
    assert where_clause(source_uris=[]) == "false"
    assert where_clause(collection="c", not_version=("v2",)) == (
        "collection = 'c' AND (source_version IS NULL OR source_version != 'v2')"
    )


def test_min_max_normalises_to_unit_range():
    assert min_max([2.0, 4.0, 3.0]) == [0.001, 1.0, 0.5]  # the worst hit still beats "absent"
    assert min_max([5.0]) == [1.0]
    assert min_max([]) == []


def test_combine_weights_both_lists_and_rewards_agreement():
    knn = [hit("a", 0.9), hit("b", 0.8), hit("c", 0.1)]
    bm25 = [hit("b", 12.0), hit("d", 3.0)]
    ranked = combine(knn, bm25, k=3, vector_weight=0.5)
    # b: 0.5 * (0.7/0.8) + 0.5 * 1 ; a: 0.5 * 1 ; d: 0.5 * 0.001 ; c: 0.5 * 0.001
    assert [h.chunk_id for h in ranked] == ["b", "a", "c"]
    assert ranked[0].score == pytest.approx(0.5 * 0.875 + 0.5)
    assert [h.chunk_id for h in combine(knn, bm25, k=4, vector_weight=0.0)][:2] == ["b", "d"]
    with pytest.raises(ValueError):
        combine(knn, bm25, 3, vector_weight=1.5)


@pytest.mark.parametrize("space", ["innerproduct", "cosinesimil", "l2"])
@pytest.mark.parametrize("cos", [-0.9, -0.2, 0.0, 0.3, 0.99])
def test_opensearch_scores_map_back_to_cosine_similarity(space, cos):
    # two unit vectors with the given cosine
    import math

    q = [1.0, 0.0]
    v = [cos, math.sqrt(1 - cos * cos)]
    assert cosine_from_score(_knn_score(q, v, space), space) == pytest.approx(cos, abs=1e-9)


def test_index_body_puts_ef_search_where_each_engine_reads_it():
    faiss = index_body(OpenSearchSettings(), 384)
    assert faiss["mappings"]["properties"]["embedding"]["method"]["parameters"]["ef_search"] == 256
    nmslib = index_body(OpenSearchSettings(engine="nmslib"), 384)
    assert nmslib["settings"]["index"]["knn.algo_param.ef_search"] == 256
    assert "ef_search" not in nmslib["mappings"]["properties"]["embedding"]["method"]["parameters"]
    lucene = index_body(OpenSearchSettings(engine="lucene", space_type="cosinesimil"), 8)
    assert lucene["mappings"]["properties"]["embedding"]["method"]["parameters"] == {"ef_construction": 256, "m": 16}


def test_bulk_batches_respect_the_byte_limit():
    store = OpenSearchStore(OpenSearchSettings(url="http://unused", bulk_max_bytes=100), client=object())
    items = [(str(i), "x" * 40 + "\n") for i in range(7)] + [("big", "y" * 300 + "\n")]
    batches = list(store._batches(items))
    assert [len(b) for b in batches] == [2, 2, 2, 1, 1]
    assert batches[-1][0][0] == "big"  # larger than the limit: sent alone, never dropped
