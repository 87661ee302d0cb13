"""Elasticsearch / OpenSearch connector over HTTP with recorded scroll API responses (real shapes)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import responses
from responses import matchers

from docmill.connectors import metadata as md
from docmill.connectors.config import parse_sync_config
from docmill.connectors.registry import ConnectorRuntime
from docmill.connectors.sync import run_sync
from docmill.storage import LocalStore

ES = "https://search.example.com:9200"
SCROLL_ID = "FGluY2x1ZGVfY29udGV4dF91dWlkDXF1ZXJ5QW5kRmV0Y2gBFkhOeEJ4Z1pGUjZtcGFqNW1uM1RQZ0EAAAAAAAAAChZ"
SHARDS = {"total": 1, "successful": 1, "skipped": 0, "failed": 0}


def _hit(doc_id: str, version: int, title: str, body: str, author: str = "ops") -> dict:
    return {"_index": "kb-2024", "_id": doc_id, "_version": version, "_score": None, "sort": [int(doc_id)],
            "_source": {"title": title, "body": body, "author": author, "updated": "2024-04-01T10:00:00Z",
                        "tags": ["howto"]}}


def _page(hits: list[dict], total: int) -> dict:
    return {"_scroll_id": SCROLL_ID, "took": 3, "timed_out": False, "_shards": SHARDS,
            "hits": {"total": {"value": total, "relation": "eq"}, "max_score": None, "hits": hits}}


def _cfg(tmp_path: Path) -> tuple:
    dest = tmp_path / "dest"
    cfg = parse_sync_config(
        "source:\n  type: opensearch\n  name: kb\n"
        f"  options: {{url: '{ES}', index: kb-2024, page_size: 2, auth: basic, text_fields: [body],\n"
        "             title_field: title, author_field: author, modified_field: updated,\n"
        "             url_template: 'https://kb.example.com/a/{id}'}\n"
        "  credentials: {env: {username: ES_USER, password: ES_PASS}}\n"
        f"destination: {{path: '{dest}'}}\n")
    return cfg, dest


def _scroll(rsps, pages: list[dict]) -> None:
    for page in pages:
        rsps.post(f"{ES}/_search/scroll", json=page,
                  match=[matchers.json_params_matcher({"scroll": "2m", "scroll_id": SCROLL_ID})])
    rsps.delete(f"{ES}/_search/scroll", json={"succeeded": True, "num_freed": 1})


def test_scroll_pages_become_markdown_documents_and_resync_follows_versions(tmp_path):
    cfg, dest = _cfg(tmp_path)
    sleeps: list[float] = []
    runtime = ConnectorRuntime(sleep=sleeps.append)
    auth = "Basic " + base64.b64encode(b"reader:s3cret").decode()
    with responses.RequestsMock() as rsps:
        # Given an index read over two scroll pages, the first search rejected once (429)
        rsps.post(f"{ES}/kb-2024/_search", status=429, json={"error": {"root_cause": [{
            "type": "es_rejected_execution_exception", "reason": "rejected execution of coordinating operation"}],
            "type": "es_rejected_execution_exception", "reason": "rejected execution of coordinating operation"}, "status": 429})
        rsps.post(f"{ES}/kb-2024/_search", match=[
            matchers.query_param_matcher({"scroll": "2m"}), matchers.header_matcher({"Authorization": auth}),
            matchers.json_params_matcher({"size": 2, "query": {"match_all": {}}, "sort": ["_doc"], "version": True})],
            json=_page([_hit("1", 1, "Reset a password", "Open settings, then security."),
                        _hit("2", 1, "Rotate keys", "Use the console.")], 3))
        _scroll(rsps, [_page([_hit("3", 4, "Backups", "Nightly at 02:00.")], 3), _page([], 3)])
        # When synced
        report = run_sync(cfg, environ={"ES_USER": "reader", "ES_PASS": "s3cret"}, runtime=runtime)
        cleared = json.loads(rsps.calls[-1].request.body)
    # Then each hit is a Markdown document with its fields, and the scroll context was freed
    src = report.sources[0]
    assert src.error is None and src.added == 3 and len(sleeps) == 1 and 0.5 <= sleeps[0] <= 1.0
    assert cleared == {"scroll_id": [SCROLL_ID]}
    text = (dest / "kb-2024" / "1.md").read_text(encoding="utf-8")
    assert text.startswith("# Reset a password\n\n## body\n\nOpen settings, then security.\n")
    assert "- **tags**: [\"howto\"]" in text
    meta = md.read_source_metadata(LocalStore(dest).head("kb-2024/3.md"))
    assert meta["source_version"] == "v4" and meta["author"] == "ops" and meta["source_url"] == "https://kb.example.com/a/3"
    assert meta["modified"] == "2024-04-01T10:00:00Z" and meta["source_type"] == "elasticsearch"

    with responses.RequestsMock() as rsps:
        # Given document 2 re-indexed (_version 2) and document 3 deleted
        rsps.post(f"{ES}/kb-2024/_search", json=_page([_hit("1", 1, "Reset a password", "Open settings, then security."),
                                                       _hit("2", 2, "Rotate keys", "Use the CLI now.")], 2))
        _scroll(rsps, [_page([], 2)])
        report = run_sync(cfg, environ={"ES_USER": "reader", "ES_PASS": "s3cret"}, runtime=runtime)
    # Then exactly those two changes reach the destination
    assert {d.key: d.status for d in report.sources[0].documents} == {
        "kb-2024/1.md": "unchanged", "kb-2024/2.md": "updated", "kb-2024/3.md": "deleted"}


def test_security_exception_is_an_auth_error(tmp_path):
    cfg, _ = _cfg(tmp_path)
    with responses.RequestsMock() as rsps:
        rsps.post(f"{ES}/kb-2024/_search", status=401, json={"error": {"root_cause": [{
            "type": "security_exception", "reason": "unable to authenticate user [reader] for REST request [/kb-2024/_search]",
            "header": {"WWW-Authenticate": "Basic realm=\"security\" charset=\"UTF-8\""}}], "type": "security_exception",
            "reason": "unable to authenticate user [reader] for REST request [/kb-2024/_search]"}, "status": 401})
        report = run_sync(cfg, environ={"ES_USER": "reader", "ES_PASS": "wrong"}, runtime=ConnectorRuntime(sleep=lambda s: None))
    assert report.sources[0].error.startswith("ConnectorAuthError: elasticsearch: authentication failed (401): unable to authenticate")


def test_sigv4_signs_requests_for_amazon_opensearch(tmp_path, monkeypatch):
    # Given AWS credentials in the default chain and a sigv4 source (Amazon OpenSearch Service)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    dest = tmp_path / "dest"
    cfg = parse_sync_config(f"source: {{type: opensearch, url: '{ES}', index: kb, auth: sigv4, region: eu-west-1}}\n"
                            f"destination: {{path: '{dest}'}}\n")
    with responses.RequestsMock() as rsps:
        rsps.post(f"{ES}/kb/_search", json=_page([], 0))
        rsps.delete(f"{ES}/_search/scroll", json={"succeeded": True, "num_freed": 1})
        report = run_sync(cfg, environ={}, runtime=ConnectorRuntime(sleep=lambda s: None))
        headers = rsps.calls[0].request.headers
    # Then the search carried a SigV4 signature for service "es" in that region
    assert report.sources[0].error is None
    assert headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/eu-west-1/es/aws4_request" in headers["Authorization"] and "X-Amz-Date" in headers
