"""OpenSearch adapter behaviour that needs a controllable server: retries, byte-chunked bulk,
per-item errors, Serverless quirks and auth. Runs over real HTTP against the strict double."""

from __future__ import annotations

import json

import pytest

from docmill.config import OpenSearchSettings
from docmill.errors import ConfigurationError, TransientError
from docmill.vectorstores.base import SearchFilter
from docmill.vectorstores.opensearch import OpenSearchStore, build_client, document_id
from tests.support.opensearch_double import OpenSearchDouble
from tests.support.vector_fixtures import DIM, make_chunk, unit_vector


@pytest.fixture
def double():
    with OpenSearchDouble() as d:
        yield d


def make_store(url: str, sleeps: list[float] | None = None, **settings) -> OpenSearchStore:
    cfg = OpenSearchSettings(url=url, index="chunks", **settings)
    return OpenSearchStore(
        cfg, sleep=(sleeps.append if sleeps is not None else (lambda _s: None)), refresh_writes=True
    )


def bulk_requests(double: OpenSearchDouble) -> list[dict]:
    return [r for r in double.requests if r["path"].endswith("/_bulk")]


def test_index_mapping_has_knn_vector_and_keyword_lineage_fields(double):
    store = make_store(double.url)
    store.ensure_index(DIM)
    props = double.indices["chunks"].mapping["properties"]
    assert props["embedding"] == {
        "type": "knn_vector",
        "dimension": DIM,
        "method": {
            "name": "hnsw", "engine": "faiss", "space_type": "innerproduct",
            "parameters": {"ef_construction": 256, "m": 16, "ef_search": 256},
        },
    }
    for name in ("tenant", "collection", "source_uri", "source_version", "chunk_id", "section_title", "file_type"):
        assert props[name] == {"type": "keyword"}, name
    assert props["page_numbers"] == {"type": "integer"}
    assert props["text"] == {"type": "text"}
    assert double.indices["chunks"].settings["knn"] is True
    assert double.indices["chunks"].mapping["dynamic"] == "strict"


@pytest.mark.parametrize("engine,space", [("lucene", "cosinesimil"), ("nmslib", "l2"), ("faiss", "l2")])
def test_other_engines_and_spaces_search_with_cosine_scores(double, engine, space):
    # Given an index built with another engine / space type
    store = make_store(double.url, engine=engine, space_type=space)
    chunks = [make_chunk("a.txt", i) for i in range(8)] + [make_chunk("b.txt", i) for i in range(8)]
    store.upsert(chunks)
    # When searching with a filter
    target = chunks[10]
    hits = store.search(target.embedding, 3, SearchFilter(source_uris=["b.txt"]))
    # Then the exact match comes first with cosine similarity 1, whatever the engine's score scale
    assert hits[0].chunk_id == target.chunk_id
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert {h.source_uri for h in hits} == {"b.txt"}


def test_throttled_and_failing_requests_are_retried_with_growing_backoff(double):
    sleeps: list[float] = []
    store = make_store(double.url, sleeps)
    store.ensure_index(DIM)
    # Given the server throttles twice then fails once with 503
    double.fail_next(429, times=2, path_contains="_bulk")
    double.fail_next(503, times=1, path_contains="_bulk")
    # When upserting
    result = store.upsert([make_chunk("a.txt", i) for i in range(4)])
    # Then it succeeded after three waits that grow (exponential, jittered within [c/2, c])
    assert result.upserted == 4 and result.errors == []
    assert len(sleeps) == 3
    assert 0.25 <= sleeps[0] <= 0.5 and 0.5 <= sleeps[1] <= 1.0 and 1.0 <= sleeps[2] <= 2.0
    assert store.count() == 4


def test_retries_give_up_with_a_transient_error(double):
    store = make_store(double.url)
    store.ensure_index(DIM)
    store.max_retries = 2
    double.fail_next(503, times=10, path_contains="_search")
    with pytest.raises(TransientError, match="after 3 attempts"):
        store.search(unit_vector(1), 3)


def test_rejected_bulk_items_are_retried_alone(double):
    sleeps: list[float] = []
    store = make_store(double.url, sleeps)
    store.ensure_index(DIM)
    # Given the write queue rejects the first two items of the next bulk request
    double.reject_bulk_items(2)
    chunks = [make_chunk("a.txt", i) for i in range(5)]
    # When upserting five chunks
    result = store.upsert(chunks)
    # Then the two rejected items were re-sent in a second, smaller request
    assert result.upserted == 5 and result.errors == []
    bulks = bulk_requests(double)
    assert [r["body"].count(b'"index"') for r in bulks] == [5, 2]
    assert len(sleeps) == 1
    assert store.count() == 5


def test_per_item_mapping_errors_are_surfaced_not_raised(double):
    store = make_store(double.url)
    store.ensure_index(DIM)
    # Given one chunk whose metadata cannot be indexed... the adapter maps metadata as an
    # un-indexed object, so break the document another way: a page number that is not an integer
    good = make_chunk("a.txt", 0)
    bad = make_chunk("a.txt", 1).model_copy(update={"page_numbers": [2**40]})
    result = store.upsert([good, bad])
    assert result.upserted == 1
    assert len(result.errors) == 1
    err = result.errors[0]
    assert err["chunk_id"] == bad.chunk_id and err["status"] == 400
    assert err["error"]["type"] == "mapper_parsing_exception"


def test_bulk_requests_are_split_by_bytes(double):
    store = make_store(double.url, bulk_max_bytes=4000)
    store.ensure_index(DIM)
    chunks = [make_chunk("a.txt", i, text="x" * 900) for i in range(10)]
    result = store.upsert(chunks)
    assert result.upserted == 10
    bulks = bulk_requests(double)
    assert len(bulks) >= 3
    assert all(len(r["body"]) <= 4000 for r in bulks)
    # and each body is valid NDJSON: action line, source line, newline-terminated
    for r in bulks:
        lines = r["body"].decode().split("\n")
        assert lines[-1] == ""
        assert all("index" in json.loads(line) for line in lines[0:-1:2])


def test_upsert_uses_deterministic_ids(double):
    store = make_store(double.url)
    chunk = make_chunk("a.txt", 0)
    store.upsert([chunk])
    store.upsert([chunk])
    docs = double.documents("chunks")
    assert list(docs) == [document_id(chunk)]


def test_deletes_see_chunks_written_a_moment_ago(double):
    # Given a store that does not refresh after writes (the production default)
    store = make_store(double.url)
    store.refresh_writes = False
    store.upsert([make_chunk("a.txt", i) for i in range(3)])
    # When the source is deleted right away
    deleted = store.delete_source("docs", "a.txt")
    # Then delete-by-query saw them (the adapter refreshes first) and they are gone
    assert deleted == 3
    assert store.count() == 0


def test_serverless_upserts_without_ids_refresh_or_delete_by_query():
    with OpenSearchDouble(serverless=True) as double:
        store = make_store(double.url, service="aoss")
        v1 = [make_chunk("a.txt", i) for i in range(3)]
        # When upserting twice, then deleting stale chunks and a source
        store.upsert(v1)
        store.upsert(v1)
        assert store.count() == 3  # no duplicates although ids are generated by the server
        store.upsert([make_chunk("a.txt", 0, version="v2", text="changed")])
        assert store.delete_source("docs", "a.txt", keep_version="v2") == 3
        assert [c.source_version for c in store.iter_chunks("docs")] == ["v2"]
        assert store.delete_collection("docs") == 1
        assert store.count() == 0
        # Then it never sent a custom _id, _refresh or _delete_by_query (the double refuses them)
        paths = {r["path"].rsplit("/", 1)[-1] for r in double.requests}
        assert "_refresh" not in paths and "_delete_by_query" not in paths
        for r in bulk_requests(double):
            for line in r["body"].decode().splitlines()[::2]:
                action = json.loads(line)
                if "index" in action:
                    assert "_id" not in action["index"]


def test_basic_auth_is_sent():
    with OpenSearchDouble(basic_auth=("admin", "s3cret!")) as double:
        ok = make_store(double.url, auth="basic", username="admin", password="s3cret!")
        ok.upsert([make_chunk("a.txt", 0)])
        assert ok.count() == 1
        wrong = make_store(double.url, auth="basic", username="admin", password="nope")
        assert wrong.health()["ok"] is False


@pytest.mark.parametrize("service", ["es", "aoss"])
def test_sigv4_signs_for_the_configured_service(monkeypatch, service):
    # Credentials come from the default boto3 chain: here, the environment
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with OpenSearchDouble(sigv4_service=service, sigv4_region="eu-west-1", serverless=service == "aoss") as double:
        store = make_store(double.url, auth="sigv4", service=service, region="eu-west-1")
        store.upsert([make_chunk("a.txt", 0)])
        assert store.count() == 1
        auth = double.requests[-1]["headers"]["authorization"]
        assert auth.startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
        assert f"/eu-west-1/{service}/aws4_request" in auth
        # a client signing for the other service is refused
        other = "aoss" if service == "es" else "es"
        assert make_store(double.url, auth="sigv4", service=other, region="eu-west-1").health()["ok"] is False


def test_sigv4_without_credentials_is_a_configuration_error(monkeypatch, tmp_path):
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(ConfigurationError, match="credentials"):
        build_client(OpenSearchSettings(url="https://search.example.com", auth="sigv4", region="eu-west-1"))


def test_missing_url_is_a_configuration_error():
    with pytest.raises(ConfigurationError, match="DOCMILL_OPENSEARCH__URL"):
        build_client(OpenSearchSettings())


def test_refused_requests_become_typed_errors_and_creation_races_are_fine(double):
    from docmill.errors import VectorStoreRequestError

    # Given an index created by someone else a moment before ensure_index creates it
    store = make_store(double.url)
    other = make_store(double.url)
    other.ensure_index(DIM)
    original = store.index_dimension
    calls = iter([None])  # the first look sees no index: the race

    def first_none_then_real():
        try:
            return next(calls)
        except StopIteration:
            return original()

    store.index_dimension = first_none_then_real
    store.ensure_index(DIM)  # create answers resource_already_exists: accepted, dimension checked
    # When a request is refused for a reason retrying cannot fix
    with pytest.raises(VectorStoreRequestError) as info:
        store._call("search", store.client.search, index="chunks", body={"bogus": 1})
    # Then it is a typed error carrying the status and OpenSearch's error type
    assert info.value.status == 400 and info.value.error_type == "parsing_exception"
