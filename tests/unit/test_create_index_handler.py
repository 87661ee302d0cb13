"""The index custom resource handler (functions/create_index) against a recorded HTTP double.

OpenSearch cannot run on this machine; the double answers like the REST API does (HEAD 404 for a
missing index, the mapping JSON for GET _mapping) and records every request.
"""

from __future__ import annotations

from typing import Any

import pytest

from functions.create_index import handler as h

PROPS = {
    "Kind": "domain",
    "Endpoint": "vpc-x.es.amazonaws.com",
    "Index": "docmill-chunks",
    "Dimension": 384,
    "Engine": "faiss",
    "SpaceType": "innerproduct",
    "EfConstruction": 256,
    "M": 16,
    "Shards": 2,
    "Replicas": 1,
    "Region": "us-east-1",
    "MasterSecretArn": "arn:secret",
    "BackendRoles": ["arn:role/a"],
}


class RecordingClient(h.Client):
    def __init__(self, responses: dict[tuple[str, str], list[tuple[int, Any]]]) -> None:
        super().__init__("vpc-x.es.amazonaws.com", kind="domain", region="us-east-1", basic=("u", "p"))
        self.responses = responses
        self.calls: list[tuple[str, str, Any]] = []

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        self.calls.append((method, path, body))
        queue = self.responses[(method, path)]
        return queue.pop(0) if len(queue) > 1 else queue[0]


def test_mapping_matches_what_the_library_reads() -> None:
    body = h.index_body(PROPS)
    props = body["mappings"]["properties"]
    vector = props["embedding"]
    assert vector["type"] == "knn_vector" and vector["dimension"] == 384
    assert vector["method"]["name"] == "hnsw" and vector["method"]["engine"] == "faiss"
    for keyword in ("tenant", "collection", "source_uri", "source_version", "chunk_id"):
        assert props[keyword] == {"type": "keyword"}, keyword
    assert props["page_numbers"] == {"type": "integer"}
    assert props["text"] == {"type": "text"}
    assert body["settings"]["index"]["knn"] is True
    assert body["settings"]["index"]["number_of_shards"] == 2


@pytest.mark.parametrize(
    "overrides",
    [{}, {"Kind": "serverless"}, {"Engine": "nmslib", "SpaceType": "cosinesimil"}, {"Engine": "lucene"}],
)
def test_built_in_mapping_is_identical_to_the_librarys(overrides: dict) -> None:
    props = {**PROPS, **overrides}
    library = h.library_index_body(props)
    if library is None:
        pytest.skip("docmill.vectorstores.opensearch is not on this branch yet (vector index issue #3)")
    assert h.fallback_index_body(props) == library


def test_serverless_mapping_leaves_shards_to_the_service() -> None:
    body = h.index_body({**PROPS, "Kind": "serverless"})
    assert "number_of_shards" not in body["settings"]["index"]


def test_missing_index_is_created_with_the_mapping() -> None:
    client = RecordingClient(
        {("HEAD", "/docmill-chunks"): [(404, None)], ("PUT", "/docmill-chunks"): [(200, {})]}
    )
    assert h.ensure_index(client, PROPS) == "created"
    assert client.calls[-1] == ("PUT", "/docmill-chunks", h.index_body(PROPS))


def test_existing_index_with_the_same_dimension_is_kept() -> None:
    mapping = {"docmill-chunks": {"mappings": {"properties": {"embedding": {"dimension": 384}}}}}
    client = RecordingClient(
        {("HEAD", "/docmill-chunks"): [(200, None)], ("GET", "/docmill-chunks/_mapping"): [(200, mapping)]}
    )
    assert h.ensure_index(client, PROPS) == "exists"
    assert not [c for c in client.calls if c[0] == "PUT"]


def test_existing_index_with_another_dimension_is_refused() -> None:
    mapping = {"docmill-chunks": {"mappings": {"properties": {"embedding": {"dimension": 768}}}}}
    client = RecordingClient(
        {("HEAD", "/docmill-chunks"): [(200, None)], ("GET", "/docmill-chunks/_mapping"): [(200, mapping)]}
    )
    with pytest.raises(h.IndexMismatch, match="768"):
        h.ensure_index(client, PROPS)


def test_app_roles_are_mapped_to_an_index_scoped_role() -> None:
    client = RecordingClient(
        {
            ("PUT", f"/_plugins/_security/api/roles/{h.APP_ROLE}"): [(200, {})],
            ("PUT", f"/_plugins/_security/api/rolesmapping/{h.APP_ROLE}"): [(200, {})],
        }
    )
    h.map_app_roles(client, PROPS)
    role_body = client.calls[0][2]
    assert role_body["index_permissions"][0]["index_patterns"] == ["docmill-chunks"]
    assert client.calls[1][2] == {"backend_roles": ["arn:role/a"]}


def test_forbidden_while_security_settles_is_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(h.time, "sleep", lambda s: None)
    client = RecordingClient({("PUT", "/x"): [(403, "not yet"), (403, "not yet"), (200, {"ok": True})]})
    assert client.call("PUT", "/x", {}) == (200, {"ok": True})
    assert len(client.calls) == 3


def test_a_client_error_is_not_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(h.time, "sleep", lambda s: None)
    client = RecordingClient({("PUT", "/x"): [(400, {"error": "bad mapping"})]})
    with pytest.raises(RuntimeError, match="400"):
        client.call("PUT", "/x", {})
    assert len(client.calls) == 1


def test_delete_keeps_the_index_and_touches_nothing() -> None:
    event = {"RequestType": "Delete", "PhysicalResourceId": "ep/docmill-chunks", "ResourceProperties": PROPS}
    assert h.handler(event, None) == {"PhysicalResourceId": "ep/docmill-chunks"}
