"""The OpenSearch double refuses what a real node refuses, with the real error shapes.

These pin the double's strictness: a double that accepts anything would let adapter bugs pass.
"""

from __future__ import annotations

import json

import pytest
import requests

from tests.support.opensearch_double import OpenSearchDouble

MAPPING = {
    "settings": {"index": {"knn": True}},
    "mappings": {
        "dynamic": "strict",
        "properties": {
            "embedding": {"type": "knn_vector", "dimension": 3,
                          "method": {"name": "hnsw", "engine": "faiss", "space_type": "innerproduct"}},
            "tag": {"type": "keyword"},
            "text": {"type": "text"},
        },
    },
}


@pytest.fixture(scope="module")
def server():
    with OpenSearchDouble() as double:
        yield double


@pytest.fixture
def index(server):
    name = f"idx-{len(server.indices)}-{id(object())}"
    r = requests.put(f"{server.url}/{name}", json=MAPPING, timeout=5)
    assert r.status_code == 200, r.text
    return f"{server.url}/{name}"


def bulk(url: str, lines: list, refresh: bool = True) -> requests.Response:
    body = "".join(json.dumps(x) + "\n" for x in lines)
    return requests.post(f"{url}/_bulk", params={"refresh": "true"} if refresh else None, data=body,
                         headers={"Content-Type": "application/x-ndjson"}, timeout=5)


def test_missing_index_is_a_404_with_the_real_error_body(server):
    r = requests.post(f"{server.url}/nope/_search", json={"query": {"match_all": {}}}, timeout=5)
    assert r.status_code == 404
    assert r.json() == {
        "error": {
            "root_cause": [{"type": "index_not_found_exception", "reason": "no such index [nope]", "index": "nope",
                            "resource.id": "nope", "resource.type": "index_or_alias", "index_uuid": "_na_"}],
            "type": "index_not_found_exception", "reason": "no such index [nope]", "index": "nope",
            "resource.id": "nope", "resource.type": "index_or_alias", "index_uuid": "_na_",
        },
        "status": 404,
    }
    assert requests.head(f"{server.url}/nope", timeout=5).status_code == 404


def test_unknown_top_level_search_key_is_rejected(index):
    r = requests.post(f"{index}/_search", json={"query": {"match_all": {}}, "knn": {"x": 1}}, timeout=5)
    assert r.status_code == 400
    assert r.json()["error"]["type"] == "parsing_exception"
    assert "Unknown key for a START_OBJECT in [knn]" in r.json()["error"]["reason"]


def test_knn_on_a_field_that_is_not_knn_vector_fails_on_the_shard(index):
    r = requests.post(f"{index}/_search", json={"query": {"knn": {"tag": {"vector": [1, 0, 0], "k": 1}}}}, timeout=5)
    assert r.status_code == 400
    body = r.json()["error"]
    assert body["type"] == "search_phase_execution_exception"
    assert body["root_cause"][0] == {"type": "illegal_argument_exception", "reason": "Field 'tag' is not knn_vector type."}


def test_query_vector_of_the_wrong_dimension_is_rejected(index):
    r = requests.post(f"{index}/_search", json={"query": {"knn": {"embedding": {"vector": [1, 0], "k": 1}}}}, timeout=5)
    assert r.status_code == 400
    assert "invalid dimension: 2" in r.json()["error"]["root_cause"][0]["reason"]


def test_document_vector_of_the_wrong_dimension_is_an_item_error(index):
    r = bulk(index, [{"index": {"_id": "1"}}, {"embedding": [1, 0], "tag": "a"},
                     {"index": {"_id": "2"}}, {"embedding": [1, 0, 0], "tag": "a"}])
    assert r.status_code == 200
    items = r.json()["items"]
    assert r.json()["errors"] is True
    assert items[0]["index"]["status"] == 400
    assert items[0]["index"]["error"] == {"type": "mapper_parsing_exception",
                                          "reason": "Vector dimension mismatch. Expected: 3, Given: 2"}
    assert items[1]["index"]["status"] == 201


def test_unknown_field_under_strict_mapping_is_an_item_error(index):
    r = bulk(index, [{"index": {"_id": "1"}}, {"embedding": [1, 0, 0], "surprise": 1}])
    assert r.json()["items"][0]["index"]["error"]["type"] == "strict_dynamic_mapping_exception"


@pytest.mark.parametrize(
    "body,reason",
    [
        ('{"index":{"_id":"1"}}\n{"tag":"a"}', "must be terminated by a newline"),
        ('{"upsert":{"_id":"1"}}\n{"tag":"a"}\n', "expected field [create], [delete], [index] or [update]"),
        ('{"index":{"_id":"1","colour":"red"}}\n{"tag":"a"}\n', "unknown parameter [colour]"),
        ('{"index":{"_id":"1"}\n{"tag":"a"}\n', "Unrecognized token"),
    ],
)
def test_malformed_ndjson_is_rejected_whole(index, body, reason):
    r = requests.post(f"{index}/_bulk", data=body, headers={"Content-Type": "application/x-ndjson"}, timeout=5)
    assert r.status_code == 400
    assert reason in r.json()["error"]["reason"]


def test_bulk_without_index_anywhere_fails_validation(server):
    r = requests.post(f"{server.url}/_bulk", data='{"index":{"_id":"1"}}\n{"a":1}\n', timeout=5)
    assert r.status_code == 400
    assert r.json()["error"]["type"] == "action_request_validation_exception"


def test_writes_are_invisible_until_refresh(index):
    bulk(index, [{"index": {"_id": "1"}}, {"embedding": [1, 0, 0], "tag": "a"}], refresh=False)
    assert requests.post(f"{index}/_count", json={}, timeout=5).json()["count"] == 0
    # delete-by-query works on the refreshed view too: it cannot delete what it cannot see
    r = requests.post(f"{index}/_delete_by_query", json={"query": {"term": {"tag": "a"}}}, timeout=5)
    assert r.json()["deleted"] == 0
    requests.post(f"{index}/_refresh", timeout=5)
    assert requests.post(f"{index}/_count", json={}, timeout=5).json()["count"] == 1


def test_knn_filter_and_scores_follow_the_space_type(index):
    bulk(index, [{"index": {"_id": "a"}}, {"embedding": [1, 0, 0], "tag": "x"},
                 {"index": {"_id": "b"}}, {"embedding": [0, 1, 0], "tag": "y"},
                 {"index": {"_id": "c"}}, {"embedding": [-1, 0, 0], "tag": "y"}])
    q = {"size": 3, "query": {"knn": {"embedding": {"vector": [1, 0, 0], "k": 3,
                                                    "filter": {"bool": {"filter": [{"term": {"tag": "y"}}]}}}}}}
    hits = requests.post(f"{index}/_search", json=q, timeout=5).json()["hits"]["hits"]
    # innerproduct: 1 + dot for dot >= 0, 1 / (1 - dot) otherwise
    assert [(h["_id"], h["_score"]) for h in hits] == [("b", 1.0), ("c", 0.5)]


def test_nmslib_refuses_knn_filters(server):
    body = json.loads(json.dumps(MAPPING))
    body["mappings"]["properties"]["embedding"]["method"]["engine"] = "nmslib"
    requests.put(f"{server.url}/nm", json=body, timeout=5)
    q = {"query": {"knn": {"embedding": {"vector": [1, 0, 0], "k": 1, "filter": {"term": {"tag": "y"}}}}}}
    r = requests.post(f"{server.url}/nm/_search", json=q, timeout=5)
    assert r.status_code == 400 and "does not support filters" in r.json()["error"]["reason"]


@pytest.mark.parametrize(
    "body,etype",
    [
        ({"settings": {"index": {"knn": True, "shiny": 1}}}, "illegal_argument_exception"),
        ({"mapping": {}}, "parse_exception"),
        ({"mappings": {"properties": {"v": {"type": "knn_vector", "dimension": 3,
          "method": {"name": "hnsw", "engine": "faiss"}}}}}, "mapper_parsing_exception"),  # index.knn missing
        ({"settings": {"index": {"knn": True}}, "mappings": {"properties": {"v": {"type": "knn_vector", "dimension": 3,
          "method": {"name": "hnsw", "engine": "lucene", "parameters": {"ef_search": 10}}}}}},
         "mapper_parsing_exception"),
        ({"mappings": {"properties": {"v": {"type": "vector"}}}}, "mapper_parsing_exception"),
    ],
)
def test_invalid_index_definitions_are_rejected(server, body, etype):
    r = requests.put(f"{server.url}/bad-{etype[:5]}-{abs(hash(json.dumps(body)))}", json=body, timeout=5)
    assert r.status_code == 400
    assert r.json()["error"]["type"] == etype


def test_unrecognized_url_parameters_and_routes_are_rejected(index, server):
    r = requests.post(f"{index}/_search", params={"frobnicate": "1"}, json={}, timeout=5)
    assert r.status_code == 400 and "unrecognized parameter: [frobnicate]" in r.json()["error"]["reason"]
    r = requests.post(f"{server.url}/_cluster/reroute", json={}, timeout=5)
    assert r.status_code == 400 and "no handler found" in r.json()["error"]


def test_bulk_into_a_missing_index_auto_creates_a_dynamic_mapping(server):
    # What happens when a client writes before creating the index: the vector becomes a float
    # array, and k-NN queries on it fail. The adapter always ensures the index first.
    bulk(f"{server.url}/auto", [{"index": {"_id": "1"}}, {"embedding": [0.1, 0.2, 0.3]}])
    r = requests.post(f"{server.url}/auto/_search", json={"query": {"knn": {"embedding": {"vector": [1, 0, 0], "k": 1}}}}, timeout=5)
    assert r.status_code == 400
    assert "not knn_vector type" in r.json()["error"]["root_cause"][0]["reason"]


def test_sort_on_text_fields_and_bad_search_after_are_rejected(index):
    r = requests.post(f"{index}/_search", json={"sort": [{"text": "asc"}]}, timeout=5)
    assert r.status_code == 400 and "Text fields are not optimised" in r.json()["error"]["root_cause"][0]["reason"]
    r = requests.post(f"{index}/_search", json={"sort": [{"tag": "asc"}], "search_after": ["a", "b"]}, timeout=5)
    assert r.status_code == 400
