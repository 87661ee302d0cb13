"""The connector metadata contract: encoding for S3 headers and reading it back."""

from __future__ import annotations

from docmill.connectors import metadata as md
from docmill.storage import ObjectInfo


def test_unicode_and_percent_values_survive_an_ascii_round_trip():
    # Given values S3 could not carry as-is in headers
    values = {md.TITLE: "Zürich — Überblick", md.SOURCE_URL: "https://x/a%20b", md.AUTHOR: "Ada", md.MODIFIED: None}
    # When encoded for write_bytes and read back through an ObjectInfo
    encoded = md.encode_metadata(values)
    info = ObjectInfo(key="k", uri="s3://b/k", size=1, metadata=encoded)
    back = md.read_source_metadata(info)
    # Then every stored value is ASCII, plain ones stay readable, Nones are dropped, and all decode
    assert all(v.isascii() for v in encoded.values())
    assert encoded[md.AUTHOR] == "Ada" and md.MODIFIED not in encoded
    assert back == {"title": "Zürich — Überblick", "source_url": "https://x/a%20b", "author": "Ada"}


def test_long_values_are_capped_to_keep_under_the_s3_limit():
    encoded = md.encode_metadata({md.TITLE: "x" * 5000, md.SOURCE_URL: "u" * 5000, md.SOURCE_ID: "i" * 5000})
    assert sum(len(k) + len(v.encode()) for k, v in encoded.items()) < 2048


def test_reads_head_object_responses_and_raw_headers_and_ignores_foreign_keys():
    head = {"ContentLength": 3, "Metadata": {"docmill-source-type": "github", "owner": "someone-else"}}
    headers = {"x-amz-meta-docmill-title": "Guide", "Content-Type": "text/plain"}
    assert md.read_source_metadata(head) == {"source_type": "github"}
    assert md.read_source_metadata(headers) == {"title": "Guide"}
    assert md.read_source_metadata(ObjectInfo(key="k", uri="u", size=0)) == {}
    assert md.read_source_metadata(None) == {}


def test_every_key_maps_to_a_field_name_and_state_paths_are_internal():
    assert [md.field_name(k) for k in md.ALL_KEYS] == [
        "source_type", "source_name", "source_id", "source_url", "title", "author", "modified", "source_version",
        "sha256", "synced_at"]
    assert md.is_sync_internal("tenant/.docmill-sync/kb.json")
    assert not md.is_sync_internal("tenant/docs/sync.md")
