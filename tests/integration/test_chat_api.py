"""The chat API over real HTTP: uvicorn on 127.0.0.1, the embedded store (LanceDB), the real
MiniLM embedder and ingestion, and a scripted LLM (the answers must be deterministic).

One server for the whole module (model loads and ingestion are the expensive part); each test
uses its own documents or questions so the order does not matter.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx
import pytest

from docmill.api.tenants import TenantRegistry
from docmill.api.wiring import build_local_services, registry_path
from docmill.config import load_settings
from docmill.llm.base import ChatMessage, GenerationParams
from docmill_devtools.scripted import ScriptedLLM
from tests.support.api_server import ApiServer, ChatModel, sse_events, wait_for_status

pytestmark = pytest.mark.slow

REFUNDS = (b"# Refund policy\n\nCustomers may ask for a refund within 30 days of purchase. "
           b"Refunds are paid back to the original card within five business days.\n")
ROCKETS = (b"# Launch checklist\n\nBefore every rocket launch the fuel valves are pressure tested "
           b"and the telemetry antenna is checked by two engineers.\n")
VOLCANO = (b"# Volcano field notes\n\nThe basalt lava flows on the northern ridge cooled into "
           b"hexagonal columns about four thousand years ago.\n")


class StreamingScripted(ScriptedLLM):
    """The scripted double, streaming its reply word by word as a streaming client would."""

    def stream_chat(self, messages: Sequence[ChatMessage], params: GenerationParams) -> Iterator[str]:
        text = self.chat(messages, params).text
        words = text.split(" ")
        for i, word in enumerate(words):
            yield word + (" " if i < len(words) - 1 else "")


@pytest.fixture(scope="module")
def model() -> ChatModel:
    return ChatModel()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, model: ChatModel, embedder) -> Iterator[ApiServer]:
    home = tmp_path_factory.mktemp("api-home")
    settings = load_settings(home=home)
    settings.api.max_upload_mb = 1
    services = build_local_services(settings, llm=StreamingScripted(model, model_id="scripted-chat"),
                                    embedder=lambda: embedder)
    with ApiServer(services) as srv:
        yield srv


@pytest.fixture(scope="module")
def keys(server: ApiServer) -> dict[str, str]:
    registry = TenantRegistry(registry_path(Path(server.services.documents.intake.raw_root).parent))
    out = {}
    for name in ("acme", "globex"):
        _, out[name] = registry.create(name)
    out["acme-member"] = registry.issue_key("acme", user="alice")
    _, out["tiny"] = registry.create("tiny", rate_limit_per_minute=3)
    return out


def client(server: ApiServer, key: str | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.Client(base_url=server.url, headers=headers, timeout=180)


@pytest.fixture(scope="module")
def acme(server: ApiServer, keys: dict[str, str]) -> Iterator[httpx.Client]:
    with client(server, keys["acme"]) as c:
        yield c


@pytest.fixture(scope="module")
def globex(server: ApiServer, keys: dict[str, str]) -> Iterator[httpx.Client]:
    with client(server, keys["globex"]) as c:
        yield c


@pytest.fixture(scope="module")
def documents(acme: httpx.Client, globex: httpx.Client) -> dict[str, str]:
    """Given acme uploads the refund policy and globex the launch checklist, both indexed."""
    ids = {}
    for c, name, data, key in ((acme, "refunds.md", REFUNDS, "acme"), (globex, "launch.md", ROCKETS, "globex")):
        r = c.post("/api/v1/documents", files={"file": (name, data)}, data={"collection": "handbook"})
        assert r.status_code == 202, r.text
        assert r.json()["status"] == "queued"
        ids[key] = r.json()["id"]
    for c, key in ((acme, "acme"), (globex, "globex")):
        status = wait_for_status(c, ids[key])
        assert status["status"] == "indexed", status
        assert status["chunks"] >= 1
    return ids


def test_health_needs_no_credential_and_everything_else_does(server: ApiServer, keys: dict[str, str]) -> None:
    with client(server, None) as anonymous:
        assert anonymous.get("/api/v1/health").json()["status"] == "ok"
        for method, path in (("GET", "/api/v1/documents"), ("POST", "/api/v1/chat"), ("GET", "/api/v1/notices"),
                             ("POST", "/api/chat"), ("GET", "/api/v1/datasets/ds_0123456789abcdef012345")):
            r = anonymous.request(method, path, json={})
            assert r.status_code == 401, (path, r.text)
            assert r.json()["error"]["code"] == "unauthenticated"
    with client(server, "dmk_0123456789abcdef_" + "x" * 43) as wrong:
        assert wrong.get("/api/v1/documents").status_code == 401
    with client(server, keys["acme"][:-2] + "zz") as tampered:
        assert tampered.get("/api/v1/documents").status_code == 401
    with httpx.Client(base_url=server.url, headers={"Authorization": "Basic abc"}) as basic:
        assert basic.get("/api/v1/documents").status_code == 401


def test_each_tenant_sees_only_its_own_documents(acme, globex, documents) -> None:
    assert [d["id"] for d in acme.get("/api/v1/documents").json()["documents"]] == [documents["acme"]]
    assert [d["id"] for d in globex.get("/api/v1/documents").json()["documents"]] == [documents["globex"]]
    # Given globex's document id, acme gets 404 for read and delete, as for an unknown id
    for method in ("GET", "DELETE"):
        r = acme.request(method, f"/api/v1/documents/{documents['globex']}")
        assert r.status_code == 404
        unknown = acme.request(method, "/api/v1/documents/doc_0000000000000000000000").json()
        assert r.json()["error"]["code"] == unknown["error"]["code"] == "not_found"
    assert wait_for_status(globex, documents["globex"])["status"] == "indexed"  # untouched


def test_chat_answers_from_the_tenants_chunks_with_citations(acme, globex, documents, model: ChatModel) -> None:
    r = acme.post("/api/v1/chat", json={"message": "How many days do customers have to ask for a refund?"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert "30 days" in body["answer"]
    # The answer's [99] names no retrieved chunk: it is never turned into a citation.
    assert [c["ref"] for c in body["citations"]] == [1]
    citation = body["citations"][0]
    assert citation["document_id"] == documents["acme"] and citation["source"] == "refunds.md"
    assert set(citation) >= {"document_id", "source", "pages", "chunk_id", "snippet", "score"}
    assert "globex" not in json.dumps(model.chat_prompts[-1][0].content).lower()
    assert "rocket" not in model.chat_prompts[-1][0].content.lower()

    # The same question from globex finds nothing of acme's: "not covered", no citations.
    calls = len(model.chat_prompts)
    other = globex.post("/api/v1/chat", json={"message": "How many days do customers have to ask for a refund?"}).json()
    assert "do not cover" in other["answer"] and other["citations"] == []
    assert len(model.chat_prompts) == calls  # nothing to ground an answer on: the model is not asked


def test_conversation_history_is_per_tenant_and_used_for_follow_ups(acme, globex, documents, model) -> None:
    first = acme.post("/api/v1/chat", json={"message": "When are refunds paid back to the card?"}).json()
    cid = first["conversation_id"]
    follow = acme.post("/api/v1/chat", json={"message": "And within how many days?", "conversation_id": cid})
    assert follow.status_code == 200 and follow.json()["conversation_id"] == cid
    prompt = model.chat_prompts[-1]
    assert [m.role for m in prompt] == ["system", "user", "assistant", "user"]
    assert prompt[1].content == "When are refunds paid back to the card?"
    history = acme.get(f"/api/v1/conversations/{cid}").json()
    assert [m["role"] for m in history["messages"]] == ["user", "assistant", "user", "assistant"]
    assert cid in [c["id"] for c in acme.get("/api/v1/conversations").json()["conversations"]]
    # globex can neither read nor continue acme's conversation
    assert globex.get(f"/api/v1/conversations/{cid}").status_code == 404
    assert globex.post("/api/v1/chat", json={"message": "hi", "conversation_id": cid}).status_code == 404
    assert cid not in [c["id"] for c in globex.get("/api/v1/conversations").json()["conversations"]]


def test_streaming_sends_tokens_then_citations(acme, documents) -> None:
    with acme.stream("POST", "/api/v1/chat", json={"message": "How long is the refund window?", "stream": True}) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        events = sse_events(list(r.iter_lines()))
    names = [name for name, _ in events]
    assert names[-2:] == ["citations", "done"] and set(names[:-2]) == {"token"} and len(names) > 4
    text = "".join(json.loads(data)["text"] for name, data in events if name == "token")
    done = json.loads(events[-1][1])
    assert text.strip() == done["answer"] and "30 days" in text
    assert [c["document_id"] for c in json.loads(events[-2][1])["citations"]] == [documents["acme"]]


def test_bad_and_oversized_files_get_errors_and_lose_nothing(acme, documents) -> None:
    r = acme.post("/api/v1/documents", files={"file": ("photos.zip", b"PK\x03\x04 zipped")})
    assert r.status_code == 415 and "archives" in r.json()["error"]["message"]
    r = acme.post("/api/v1/documents", files={"file": ("report.pdf", b"this is not a pdf at all")})
    assert r.status_code == 422 and r.json()["error"]["message"].startswith("corrupt")
    r = acme.post("/api/v1/documents", files={"file": ("empty.txt", b"")})
    assert r.status_code == 422 and r.json()["error"]["message"].startswith("empty")
    r = acme.post("/api/v1/documents", files={"file": ("big.txt", b"a" * (1024 * 1024 + 1))})
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"
    r = acme.post("/api/v1/documents", files={"file": ("huge.txt", b"a" * (3 * 1024 * 1024))})
    assert r.status_code == 413
    # A PDF that passes the quick checks but cannot be parsed ends "failed" with its reason.
    r = acme.post("/api/v1/documents", files={"file": ("broken.pdf", b"%PDF-1.7\n1 0 obj << /Type /Catalog >>\ngarbage")})
    assert r.status_code == 202
    failed = wait_for_status(acme, r.json()["id"])
    assert failed["status"] == "failed" and failed["reason"]
    assert wait_for_status(acme, documents["acme"])["status"] == "indexed"
    assert acme.post("/api/v1/chat", json={"message": "How long is the refund window?"}).json()["citations"]


def test_malformed_json_is_422_and_unknown_fields_are_explained(acme) -> None:
    r = acme.post("/api/v1/chat", content=b'{"message": ', headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and "malformed JSON" in r.json()["error"]["message"]
    r = acme.post("/api/v1/chat", json={"conversation_id": "x"})
    assert r.status_code == 422 and "message" in r.json()["error"]["message"]


def test_delete_removes_the_document_and_its_chunks_from_search(acme, server) -> None:
    doc = acme.post("/api/v1/documents", files={"file": ("volcano.md", VOLCANO)}).json()
    assert wait_for_status(acme, doc["id"])["status"] == "indexed"
    question = {"message": "When did the basalt lava flows cool into hexagonal columns?"}
    assert doc["id"] in [c["document_id"] for c in acme.post("/api/v1/chat", json=question).json()["citations"]]
    raw = server.services.documents.intake.raw_root
    assert any(raw.rglob("volcano.md"))
    assert acme.delete(f"/api/v1/documents/{doc['id']}").json() == {"id": doc["id"], "deleted": True}
    assert acme.get(f"/api/v1/documents/{doc['id']}").status_code == 404
    after = acme.post("/api/v1/chat", json=question).json()
    assert doc["id"] not in [c["document_id"] for c in after["citations"]]
    assert not any(raw.rglob("volcano.md"))
    assert not any((raw.parent / "tenants").rglob("volcano*"))  # the outputs too


def test_notices_are_posted_by_admins_and_read_within_the_tenant(acme, globex, server, keys, documents) -> None:
    with client(server, keys["acme-member"]) as member:
        r = member.post("/api/v1/notices", json={"title": "Hi", "body": "text"})
        assert r.status_code == 403
        plain = acme.post("/api/v1/notices", json={"title": "Lunch", "body": "Friday"}).json()
        pinned = acme.post("/api/v1/notices", json={"title": "Policy", "body": "Read the refund policy",
                                                    "document_ids": [documents["acme"]], "pinned": True}).json()
        assert [n["id"] for n in member.get("/api/v1/notices").json()["notices"]][:2] == [pinned["id"], plain["id"]]
    r = acme.post("/api/v1/notices", json={"title": "x", "body": "y", "document_ids": [documents["globex"]]})
    assert r.status_code == 422
    assert globex.get("/api/v1/notices").json()["notices"] == []
    # edit and remove: admins of the tenant only; another tenant's notice is 404
    edited = acme.put(f"/api/v1/notices/{plain['id']}", json={"title": "Lunch", "body": "Thursday"})
    assert edited.status_code == 200 and edited.json()["body"] == "Thursday"
    assert globex.put(f"/api/v1/notices/{plain['id']}", json={"title": "x", "body": "y"}).status_code == 404
    with client(server, keys["acme-member"]) as member:
        assert member.delete(f"/api/v1/notices/{plain['id']}").status_code == 403
    assert globex.delete(f"/api/v1/notices/{plain['id']}").status_code == 404
    assert acme.delete(f"/api/v1/notices/{plain['id']}").json()["deleted"] is True
    assert acme.get(f"/api/v1/notices/{plain['id']}").status_code == 404


def test_notices_are_edited_and_deleted_by_admins_only_within_the_tenant(acme, globex, server, keys) -> None:
    # Given a notice posted by acme's admin
    notice = acme.post("/api/v1/notices", json={"title": "Fire drill", "body": "Tuesday"}).json()
    url = f"/api/v1/notices/{notice['id']}"
    edit = {"title": "Fire drill moved", "body": "Wednesday 10:00", "pinned": True}
    with client(server, keys["acme-member"]) as member:
        # When a member edits or deletes it, then 403 and nothing changes
        assert member.put(url, json=edit).status_code == 403
        assert member.delete(url).status_code == 403
    # When another tenant's admin tries, then 404 (its existence is not revealed)
    assert globex.put(url, json=edit).status_code == 404
    assert globex.delete(url).status_code == 404
    # When acme's admin edits it, then the board shows the new text, pinned first
    edited = acme.put(url, json=edit).json()
    assert (edited["title"], edited["body"], edited["pinned"]) == ("Fire drill moved", "Wednesday 10:00", True)
    assert acme.get("/api/v1/notices").json()["notices"][0]["id"] == notice["id"]
    # When deleted, then it is gone for good
    assert acme.delete(url).json() == {"id": notice["id"], "deleted": True}
    assert notice["id"] not in [n["id"] for n in acme.get("/api/v1/notices").json()["notices"]]
    assert acme.delete(url).status_code == 404

def test_brief_paths(acme, globex, server, keys) -> None:
    r = acme.post("/api/upload", files={"file": ("faq.txt", b"Opening hours are nine to five on weekdays.")},
                  data={"metadata": json.dumps({"collection": "faq", "author": "ops"})})
    assert r.status_code == 202 and r.json()["collection"] == "faq"
    assert acme.get(f"/api/v1/documents/{r.json()['id']}").json()["metadata"] == {"author": "ops"}
    assert acme.post("/api/upload", files={"file": ("a.txt", b"x")}, data={"metadata": "[1"}).status_code == 422
    ok = acme.post("/api/chat", json={"user_id": "acme", "query": "How long is the refund window?"})
    assert ok.status_code == 200 and {"answer", "citations", "conversation_id"} <= set(ok.json())
    assert acme.post("/api/chat", json={"user_id": "alice", "query": "refunds?"}).status_code == 200
    for user in ("globex", "mallory"):
        r = acme.post("/api/chat", json={"user_id": user, "query": "refunds?"})
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    # Fine-tunes are wired (tests/integration/test_finetune_api.py): an unknown dataset is 404,
    # a request without one 422.
    assert acme.post("/api/fine-tune", json={"dataset": "x"}).status_code == 404
    assert acme.post("/api/v1/fine-tunes", json={}).json()["error"]["code"] == "invalid_request"


def test_datasets_run_in_the_background_per_tenant(acme, globex, documents) -> None:
    r = acme.post("/api/v1/datasets", json={"collection": "handbook", "questions_per_chunk": 1, "formats": ["sft"]})
    assert r.status_code == 202, r.text
    job = r.json()
    server_side = acme.get(f"/api/v1/datasets/{job['id']}").json()
    assert server_side["status"] in ("queued", "running", "succeeded")
    assert globex.get(f"/api/v1/datasets/{job['id']}").status_code == 404
    assert job["id"] not in [d["id"] for d in globex.get("/api/v1/datasets").json()["datasets"]]
    import time

    deadline = time.monotonic() + 120
    while server_side["status"] in ("queued", "running") and time.monotonic() < deadline:
        time.sleep(0.3)
        server_side = acme.get(f"/api/v1/datasets/{job['id']}").json()
    assert server_side["status"] == "succeeded", server_side
    assert server_side["result"]["counts"]["sft"]
    bad = acme.post("/api/v1/datasets", json={"collection": "handbook", "formats": ["nope"]})
    assert bad.status_code == 422


def test_rate_limit_answers_429_with_retry_after(server, keys) -> None:
    with client(server, keys["tiny"]) as tiny:
        codes = [tiny.get("/api/v1/notices").status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        r = tiny.get("/api/v1/notices")
        assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
        assert r.json()["error"]["code"] == "rate_limited"


def test_openapi_lists_the_api(server) -> None:
    spec = httpx.get(f"{server.url}/api/v1/openapi.json").json()
    for path in ("/api/v1/documents", "/api/v1/documents/{document_id}", "/api/v1/chat", "/api/v1/datasets",
                 "/api/v1/fine-tunes", "/api/v1/notices", "/api/upload", "/api/chat", "/api/fine-tune"):
        assert path in spec["paths"], path
