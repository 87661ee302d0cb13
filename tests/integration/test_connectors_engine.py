"""The sync engine's guarantees, with an in-memory source standing in for a service."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from docmill.connectors.base import Connector, ConnectorOptions, SourceDocument
from docmill.connectors.state import load_state
from docmill.connectors.sync import sync_source
from docmill.errors import ConnectorAuthError, ConnectorError
from docmill.storage import LocalStore


class MemorySource(Connector):
    """Documents held in a dict; ``fail`` maps an id to the error its fetch raises."""

    type = "memory"
    options_model = ConnectorOptions

    def __init__(self, docs: dict[str, tuple[str, bytes]], fail: dict[str, Exception] | None = None) -> None:
        self.docs, self.fail = docs, fail or {}
        self.fetched: list[str] = []
        self._lock = threading.Lock()

    def list_documents(self) -> Iterator[SourceDocument]:
        for doc_id, (version, _) in sorted(self.docs.items()):
            yield SourceDocument(id=doc_id, key=f"{doc_id}.txt", version=version, title=doc_id)

    def fetch(self, doc: SourceDocument) -> bytes:
        with self._lock:
            self.fetched.append(doc.id)
        if doc.id in self.fail:
            raise self.fail[doc.id]
        return self.docs[doc.id][1]


def _run(src: MemorySource, dest: LocalStore, state: LocalStore, **kw):
    return sync_source(src, source_name="mem", destination=dest, state_store=state, workers=3, **kw)


@pytest.fixture()
def stores(tmp_path):
    return LocalStore(tmp_path / "dest"), LocalStore(tmp_path / "state")


def test_a_failing_document_does_not_stop_the_others_and_is_not_deleted(stores):
    dest, state = stores
    docs = {f"d{i}": ("v1", f"text {i}".encode()) for i in range(10)}
    _run(MemorySource(docs), dest, state)
    # Given d3 changed but its fetch now fails, and d5 changed normally
    docs["d3"] = ("v2", b"new 3")
    docs["d5"] = ("v2", b"new 5")
    report = _run(MemorySource(docs, fail={"d3": ConnectorError("blob too large")}), dest, state)
    # Then d3 is failed with its reason and keeps its landed copy and state; d5 is updated
    statuses = {d.id: (d.status, d.reason) for d in report.documents}
    assert statuses["d3"] == ("failed", "blob too large") and statuses["d5"] == ("updated", None)
    assert (report.unchanged, report.failed, report.updated) == (8, 1, 1)
    assert dest.read_bytes("d3.txt") == b"text 3"
    assert load_state(state, source_name="mem", source_type="memory", destination=dest.uri()).documents["d3"].version == "v1"


def test_an_auth_error_while_fetching_stops_the_source_and_deletes_nothing(stores):
    dest, state = stores
    docs = {f"d{i}": ("v1", b"x") for i in range(6)}
    _run(MemorySource(docs), dest, state)
    # Given d0 deleted at the source and the token revoked before d4 (changed) is fetched
    del docs["d0"]
    docs["d4"] = ("v2", b"y")
    report = _run(MemorySource(docs, fail={"d4": ConnectorAuthError("token revoked")}), dest, state)
    # Then the run reports the auth error and d0 is still at the destination
    assert report.error == "ConnectorAuthError: token revoked" and report.deleted == 0
    assert dest.exists("d0.txt")


def test_touched_documents_are_not_rewritten_and_state_is_checkpointed(stores, monkeypatch):
    dest, state = stores
    docs = {f"d{i}": ("v1", f"same {i}".encode()) for i in range(5)}
    saves: list[int] = []
    import docmill.connectors.sync as engine

    real_save = engine.save_state
    monkeypatch.setattr(engine, "save_state", lambda store, st: (saves.append(len(st.documents)), real_save(store, st)))
    first = sync_source(MemorySource(docs), source_name="mem", destination=dest, state_store=state, workers=1,
                        checkpoint_every=2)
    # Then the state was saved along the way with part of the documents, not only at the end
    assert first.added == 5 and saves[0] < 5 and saves[-1] == 5
    # When every version marker moves but the bytes stay the same
    before = {i.key: i.last_modified for i in dest.list()}
    touched = {k: ("v2", v[1]) for k, v in docs.items()}
    second = _run(MemorySource(touched), dest, state)
    # Then everything is unchanged and no object was rewritten
    assert second.unchanged == 5 and {i.key: i.last_modified for i in dest.list()} == before


def test_two_documents_wanting_one_key_get_distinct_keys(stores):
    dest, state = stores

    class Clashing(MemorySource):
        def list_documents(self):
            for doc_id in ("a", "b"):
                yield SourceDocument(id=doc_id, key="notes/readme.md", version="1")

    report = sync_source(Clashing({"a": ("1", b"A"), "b": ("1", b"B")}), source_name="mem", destination=dest,
                         state_store=state, workers=1)
    keys = sorted(d.key for d in report.documents)
    assert keys[0] == "notes/readme-" + keys[0].split("-")[1] and keys[1] == "notes/readme.md"
    assert sorted(dest.read_bytes(k) for k in keys) == [b"A", b"B"]
