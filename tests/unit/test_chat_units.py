"""The chat API's pure parts: keys, rate limits, citations, ids, claims, both state stores."""

from __future__ import annotations

from pathlib import Path

import pytest

from docmill.api.auth import CognitoClaimsAuth, TenantRateLimiter
from docmill.api.chat import NOT_COVERED, select_citations
from docmill.api.errors import RateLimited, Unauthenticated
from docmill.api.ids import is_id, new_id
from docmill.api.state import DynamoState, SqliteState, StateStore
from docmill.api.tenants import Principal, TenantRegistry
from docmill.vectorstores.base import SearchHit


def test_keys_are_stored_hashed_and_only_the_exact_key_authenticates(tmp_path: Path) -> None:
    registry = TenantRegistry(tmp_path / "tenants.json")
    _, key = registry.create("acme")
    assert key not in (tmp_path / "tenants.json").read_text()
    assert registry.authenticate(key) == Principal(tenant="acme", user=None, admin=True)
    assert registry.authenticate(key[:-1] + ("A" if key[-1] != "A" else "B")) is None
    assert registry.authenticate("dmk_" + "0" * 16 + "_" + "x" * 43) is None
    assert registry.authenticate("not a key") is None
    # Given a second process adds a key, when the first authenticates it, then it sees the change
    member = TenantRegistry(tmp_path / "tenants.json").issue_key("acme", user="alice")
    assert registry.authenticate(member) == Principal(tenant="acme", user="alice", admin=False)
    assert registry.has_user("acme", "alice") and registry.has_user("acme", "acme")
    assert not registry.has_user("acme", "bob")


def test_rate_limit_per_tenant_with_retry_after() -> None:
    now = [0.0]
    limiter = TenantRateLimiter(3, clock=lambda: now[0])
    acme, globex = Principal(tenant="acme"), Principal(tenant="globex")
    for _ in range(3):
        limiter.check(acme)
    with pytest.raises(RateLimited) as refused:
        limiter.check(acme)
    assert refused.value.retry_after == 20  # one request per 20 s at 3/min
    limiter.check(globex)  # another tenant has its own bucket
    now[0] = 20.0
    limiter.check(acme)
    limiter.check(Principal(tenant="vip", rate_limit_per_minute=0))  # 0: unlimited for that tenant


def _hit(n: int) -> SearchHit:
    return SearchHit(chunk_id=f"c{n}", score=0.5, text=f"text {n}", collection="c", tenant="t",
                     source_uri=f"file:///raw/t/c/doc_0000000000000000000{n:03d}/f{n}.md", page_numbers=[n])


def test_citations_name_only_retrieved_chunks() -> None:
    hits = [_hit(1), _hit(2), _hit(3)]
    cited = select_citations("A [2] and B [3][2] and C [7].", hits)
    assert [(c.ref, c.chunk_id) for c in cited] == [(2, "c2"), (3, "c3")]
    assert cited[0].document_id == "doc_0000000000000000000002" and cited[0].source == "f2.md"
    assert [c.chunk_id for c in select_citations("No markers at all.", hits)] == ["c1", "c2", "c3"]
    # a number outside the context counts as no marker: the answer rests on the context it was given
    assert [c.chunk_id for c in select_citations("Only [9].", hits)] == ["c1", "c2", "c3"]
    assert select_citations(NOT_COVERED, hits) == []
    assert select_citations("anything [1]", []) == []


def test_ids_sort_in_creation_order() -> None:
    ids = [new_id("msg") for _ in range(500)]
    assert ids == sorted(ids) and len(set(ids)) == 500
    assert is_id(ids[0], "msg") and not is_id(ids[0], "doc") and not is_id("msg_../../etc")


def test_cognito_claims_give_tenant_user_and_admin() -> None:
    auth = CognitoClaimsAuth()

    def scope(claims: dict) -> dict:
        return {"aws.event": {"requestContext": {"authorizer": {"jwt": {"claims": claims}}}}}

    who = auth.authenticate({}, scope({"custom:tenant": "acme", "cognito:username": "al", "cognito:groups": "[staff admin]"}))
    assert who == Principal(tenant="acme", user="al", admin=True)
    assert auth.authenticate({}, scope({"custom:tenant": "acme", "sub": "u1"})).admin is False
    assert auth.user_belongs(who, "al") and auth.user_belongs(who, "acme") and not auth.user_belongs(who, "bob")
    for claims in ({}, {"sub": "u1"}, {"custom:tenant": "../etc"}):
        with pytest.raises(Unauthenticated):
            auth.authenticate({"authorization": "Bearer forged"}, scope(claims))
    with pytest.raises(Unauthenticated):
        auth.authenticate({}, {})  # no authorizer context at all: never trusted


def _exercise(state: StateStore) -> None:
    state.put("acme", "document", "doc_1", {"id": "doc_1", "status": "queued"})
    state.put("acme", "document", "doc_2", {"id": "doc_2", "status": "queued"})
    state.put("globex", "document", "doc_3", {"id": "doc_3", "status": "queued"})
    assert state.get("globex", "document", "doc_1") is None
    assert [r["id"] for r in state.list("acme", "document")] == ["doc_1", "doc_2"]
    assert [r["id"] for r in state.list("acme", "document", newest_first=True, limit=1)] == ["doc_2"]
    assert state.list("acme", "notice") == []
    assert state.update("acme", "document", "doc_1", status="indexed")["status"] == "indexed"
    assert state.get("acme", "document", "doc_1") == {"id": "doc_1", "status": "indexed"}
    assert state.update("globex", "document", "doc_1", status="failed") is None
    assert state.get("globex", "document", "doc_1") is None  # an update never creates
    assert state.delete("globex", "document", "doc_1") is False
    assert state.delete("acme", "document", "doc_1") is True
    assert state.update("acme", "document", "doc_1", status="indexed") is None


def test_sqlite_state_is_per_tenant(tmp_path: Path) -> None:
    state = SqliteState(tmp_path / "state.db")
    _exercise(state)
    state.close()


def test_dynamo_state_is_per_tenant() -> None:
    import boto3
    from moto import mock_aws

    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(TableName="t", BillingMode="PAY_PER_REQUEST",
                            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                                  {"AttributeName": "sk", "AttributeType": "S"}],
                            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                                       {"AttributeName": "sk", "KeyType": "RANGE"}])
        _exercise(DynamoState("t", client=client))


def test_given_the_status_table_then_each_api_error_answers_with_its_status_code() -> None:
    from docmill.api.errors import CODES, ApiError, Conflict, NotImplementedYet, UnsupportedMedia, code_for

    # Given errors declared by status only, Then their body codes come from the one table
    assert (Conflict.code, UnsupportedMedia.code, NotImplementedYet.code) == ("conflict", "unsupported_file", "not_implemented")
    assert code_for(405) == "method_not_allowed" and code_for(418) == "error"
    # And a status the table does not know fails where the error is declared
    with pytest.raises(KeyError):
        type("Teapot", (ApiError,), {"status": 418})
    assert 418 not in CODES
