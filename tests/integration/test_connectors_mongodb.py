"""MongoDB connector through pymongo's API, against mongomock (no mongod can run on this machine).

mongomock is a test double for the MongoDB server only: the connector's own code (client
construction from the credential URI, find with filter/projection/sort/batch size, BSON to
JSON, rendering) runs unchanged.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import mongomock
import pytest
from bson import ObjectId
from pymongo.errors import OperationFailure

from docmill.connectors import metadata as md
from docmill.connectors.config import parse_sync_config
from docmill.connectors.sync import run_sync
from docmill.storage import LocalStore

URI = "mongodb://reader:secret@mongo.example.com:27017/kb"


@pytest.fixture()
def mongo():
    with mongomock.patch(servers=(("mongo.example.com", 27017),)):
        import pymongo

        client = pymongo.MongoClient(URI)
        yield client["kb"]["articles"]


def _cfg(tmp_path: Path) -> tuple:
    dest = tmp_path / "dest"
    cfg = parse_sync_config(
        "source:\n  type: mongodb\n  name: articles\n  database: kb\n  collection: articles\n"
        "  filter: {published: true}\n  projection: {internal_notes: 0}\n  text_fields: [body]\n"
        "  title_field: title\n  author_field: author.name\n  modified_field: updated_at\n"
        "  credentials: {env: {uri: MONGO_URI}}\n"
        f"destination: {{path: '{dest}'}}\n")
    return cfg, dest


def test_documents_land_as_markdown_and_resync_follows_updated_at(tmp_path, mongo):
    # Given three published articles and one draft
    ids = [ObjectId() for _ in range(4)]
    t0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    mongo.insert_many([
        {"_id": ids[0], "title": "Onboarding", "body": "Day one: laptop and accounts.", "published": True,
         "author": {"name": "Ada"}, "updated_at": t0, "internal_notes": "do not leak"},
        {"_id": ids[1], "title": "Expenses", "body": "Submit within 30 days.", "published": True,
         "author": {"name": "Grace"}, "updated_at": t0},
        {"_id": ids[2], "title": "Travel", "body": "Book through the portal.", "published": True,
         "author": {"name": "Linus"}, "updated_at": t0},
        {"_id": ids[3], "title": "Draft", "body": "WIP", "published": False, "updated_at": t0},
    ])
    cfg, dest = _cfg(tmp_path)
    env = {"MONGO_URI": URI}
    # When synced
    report = run_sync(cfg, environ=env)
    # Then the published ones landed as Markdown without the projected-out field
    assert report.sources[0].error is None and report.sources[0].added == 3
    text = (dest / "kb" / "articles" / f"{ids[0]}.md").read_text(encoding="utf-8")
    assert text.startswith("# Onboarding\n\n## body\n\nDay one: laptop and accounts.\n")
    assert "do not leak" not in text
    assert f"- **_id**: {ids[0]}\n" in text and "- **updated_at**: 2024-05-01T12:00:00Z\n" in text
    meta = md.read_source_metadata(LocalStore(dest).head(f"kb/articles/{ids[0]}.md"))
    assert (meta["title"], meta["author"], meta["modified"]) == ("Onboarding", "Ada", "2024-05-01T12:00:00Z")
    assert meta["source_id"] == f"kb.articles/{ids[0]}"

    # When one is edited, one deleted, and the sync runs twice
    mongo.update_one({"_id": ids[1]}, {"$set": {"body": "Submit within 14 days.",
                                                "updated_at": datetime(2024, 6, 1, tzinfo=UTC)}})
    mongo.delete_one({"_id": ids[2]})
    second = run_sync(cfg, environ=env).sources[0]
    third = run_sync(cfg, environ=env).sources[0]
    # Then the second run moves exactly those two and the third moves nothing
    assert {d.key: d.status for d in second.documents} == {
        f"kb/articles/{ids[0]}.md": "unchanged", f"kb/articles/{ids[1]}.md": "updated", f"kb/articles/{ids[2]}.md": "deleted"}
    assert "14 days" in (dest / "kb" / "articles" / f"{ids[1]}.md").read_text(encoding="utf-8")
    assert (third.unchanged, third.added, third.updated, third.deleted) == (2, 0, 0, 0)


def test_authentication_failure_is_an_auth_error(tmp_path, mongo, monkeypatch):
    # Given a server that refuses the credentials (code 18, AuthenticationFailed)
    def refuse(*args, **kwargs):
        raise OperationFailure("Authentication failed.", code=18)

    monkeypatch.setattr(mongomock.collection.Collection, "find", refuse)
    cfg, _ = _cfg(tmp_path)
    report = run_sync(cfg, environ={"MONGO_URI": URI})
    assert report.sources[0].error.startswith("ConnectorAuthError: mongodb: Authentication failed.")
