"""Wikipedia connector over HTTP with recorded MediaWiki Action API responses (formatversion=2)."""

from __future__ import annotations

from pathlib import Path

import responses
from responses import matchers

from docmill.connectors import metadata as md
from docmill.connectors.config import parse_sync_config
from docmill.connectors.registry import ConnectorRuntime
from docmill.connectors.sync import run_sync
from docmill.connectors.wikipedia import wiki_to_markdown
from docmill.storage import LocalStore

API = "https://en.wikipedia.org/w/api.php"
LIST = {"action": "query", "format": "json", "formatversion": "2", "prop": "revisions|info",
        "rvprop": "ids|timestamp|user", "inprop": "url", "redirects": "1",
        "titles": "RAG|python (programming language)|No such page xyz"}


def _rev(revid: int, user: str, ts: str) -> list[dict]:
    return [{"revid": revid, "parentid": revid - 7, "user": user, "timestamp": ts}]


def _page(pageid: int, title: str, **extra) -> dict:
    return {"pageid": pageid, "ns": 0, "title": title, "contentmodel": "wikitext", "pagelanguage": "en",
            "fullurl": f"https://en.wikipedia.org/wiki/{title.replace(' ', '_')}", **extra}


def _fetch(pageid: int, title: str, revid: int, extract: str) -> dict:
    return {"batchcomplete": True, "query": {"pages": [
        _page(pageid, title, revisions=_rev(revid, "Editor", "2024-08-01T12:00:00Z"), extract=extract)]}}


def _fetch_match(pageid: int):
    return [matchers.query_param_matcher({"action": "query", "format": "json", "formatversion": "2",
                                          "prop": "extracts|revisions", "explaintext": "1", "exsectionformat": "wiki",
                                          "rvprop": "ids|timestamp|user", "pageids": str(pageid)})]


def _cfg(tmp_path: Path) -> tuple:
    dest = tmp_path / "dest"
    cfg = parse_sync_config("source:\n  type: wikipedia\n  name: wiki\n"
                            "  titles: [RAG, python (programming language), No such page xyz]\n"
                            f"destination: {{path: '{dest}'}}\n")
    return cfg, dest


def test_continued_listing_redirects_missing_pages_and_maxlag(tmp_path):
    cfg, dest = _cfg(tmp_path)
    sleeps: list[float] = []
    runtime = ConnectorRuntime(sleep=sleeps.append)
    with responses.RequestsMock() as rsps:
        # Given a listing answered in two parts (continue), with a redirect, a normalised title
        # and a missing page, and a fetch first refused with maxlag (Retry-After: 5)
        rsps.get(API, match=[matchers.query_param_matcher(LIST)], json={
            "continue": {"rvcontinue": "24144|1200001", "continue": "||info"},
            "query": {"normalized": [{"fromencoded": False, "from": "python (programming language)",
                                      "to": "Python (programming language)"}],
                      "redirects": [{"from": "RAG", "to": "Retrieval-augmented generation"}],
                      "pages": [_page(7306, "Retrieval-augmented generation", revisions=_rev(1200000, "Alice", "2024-07-01T08:00:00Z")),
                                _page(23862, "Python (programming language)"),
                                {"ns": 0, "title": "No such page xyz", "missing": True}]}})
        rsps.get(API, match=[matchers.query_param_matcher({**LIST, "rvcontinue": "24144|1200001", "continue": "||info"})], json={
            "batchcomplete": True,
            "query": {"pages": [_page(7306, "Retrieval-augmented generation"),
                                _page(23862, "Python (programming language)", revisions=_rev(1210000, "Bob", "2024-07-02T09:30:00Z")),
                                {"ns": 0, "title": "No such page xyz", "missing": True}]}})
        rsps.get(API, match=_fetch_match(7306), headers={"Retry-After": "5"}, json={
            "error": {"code": "maxlag", "info": "Waiting for 10.64.48.35: 5.7 seconds lagged.", "host": "10.64.48.35",
                      "lag": 5.7, "type": "db"}, "servedby": "mw1432"})
        rsps.get(API, match=_fetch_match(7306), json=_fetch(7306, "Retrieval-augmented generation", 1200000,
                 "Retrieval-augmented generation (RAG) is a technique.\n\n\n== History ==\nIt began in 2020.\n\n=== Later work ===\nMore."))
        rsps.get(API, match=_fetch_match(23862), json=_fetch(23862, "Python (programming language)", 1210000,
                 "Python is a programming language."))
        # When synced
        report = run_sync(cfg, environ={}, runtime=runtime)
        assert "docmill/" in rsps.calls[0].request.headers["User-Agent"]  # Wikimedia's User-Agent policy
    # Then both existing pages landed as Markdown with revision metadata, the missing one did not
    src = report.sources[0]
    assert src.error is None and src.added == 2 and sleeps == [5.0]
    text = (dest / "Retrieval-augmented generation.md").read_text(encoding="utf-8")
    assert text.startswith("# Retrieval-augmented generation\n") and "\n## History\n" in text and "\n### Later work\n" in text
    meta = md.read_source_metadata(LocalStore(dest).head("Python (programming language).md"))
    assert (meta["source_version"], meta["author"], meta["source_id"]) == ("1210000", "Editor", "23862")
    assert meta["source_url"] == "https://en.wikipedia.org/wiki/Python_(programming_language)"

    with responses.RequestsMock() as rsps:
        # Given RAG edited since and the Python page deleted
        rsps.get(API, match=[matchers.query_param_matcher(LIST)], json={"batchcomplete": True, "query": {"pages": [
            _page(7306, "Retrieval-augmented generation", revisions=_rev(1250000, "Carol", "2024-09-01T00:00:00Z")),
            {"ns": 0, "title": "Python (programming language)", "missing": True},
            {"ns": 0, "title": "No such page xyz", "missing": True}]}})
        rsps.get(API, match=_fetch_match(7306), json=_fetch(7306, "Retrieval-augmented generation", 1250000, "RAG, revised."))
        # When synced again
        report = run_sync(cfg, environ={}, runtime=runtime)
    # Then the edited page is updated (new revision id as version) and the deleted one removed
    assert {d.key: d.status for d in report.sources[0].documents} == {
        "Retrieval-augmented generation.md": "updated", "Python (programming language).md": "deleted"}
    assert {d.key: d.version for d in report.sources[0].documents}["Retrieval-augmented generation.md"] == "1250000"


def test_unchanged_revisions_fetch_nothing(tmp_path):
    cfg, dest = _cfg(tmp_path)
    listing = {"batchcomplete": True, "query": {"pages": [
        _page(7306, "Retrieval-augmented generation", revisions=_rev(1200000, "Alice", "2024-07-01T08:00:00Z"))]}}
    with responses.RequestsMock() as rsps:
        rsps.get(API, match=[matchers.query_param_matcher(LIST)], json=listing)
        rsps.get(API, match=_fetch_match(7306), json=_fetch(7306, "Retrieval-augmented generation", 1200000, "Text."))
        run_sync(cfg, environ={}, runtime=ConnectorRuntime(sleep=lambda s: None))
    with responses.RequestsMock() as rsps:
        # Given the same revision listed again (no fetch answer is registered)
        rsps.get(API, match=[matchers.query_param_matcher(LIST)], json=listing)
        report = run_sync(cfg, environ={}, runtime=ConnectorRuntime(sleep=lambda s: None))
        # Then one listing request was all it took
        assert len(rsps.calls) == 1
    assert report.sources[0].unchanged == 1


def test_read_denied_wiki_is_an_auth_error(tmp_path):
    cfg, _ = _cfg(tmp_path)
    with responses.RequestsMock() as rsps:
        rsps.get(API, json={"error": {"code": "readapidenied", "info": "You need read permission to use this module."}})
        report = run_sync(cfg, environ={}, runtime=ConnectorRuntime(sleep=lambda s: None))
    assert report.sources[0].error.startswith("ConnectorAuthError: wikipedia: readapidenied")


def test_wiki_headings_become_markdown_headings():
    assert wiki_to_markdown("T", "Intro.\n== A ==\nx\n==== Deep ====\ny") == "# T\n\nIntro.\n## A\nx\n#### Deep\ny\n"
