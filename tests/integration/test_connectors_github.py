"""GitHub connector driven over HTTP with recorded responses in the REST API's real shapes."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
import responses
from responses import matchers

from docmill.connectors import metadata as md
from docmill.connectors.config import parse_sync_config
from docmill.connectors.registry import ConnectorRuntime
from docmill.connectors.sync import run_sync
from docmill.storage import LocalStore

API = "https://api.github.com/repos/acme/handbook"
NOW = 1_700_000_000.0
ROOT_SHA = "9fb037999f264ba9a7fc6274d15fa3ae2ab98312"
DOCS_SHA = "f484d249c660418515fb01c2b9662073663c242e"


def _blob(sha: str, text: str) -> dict:
    encoded = base64.encodebytes(text.encode()).decode()  # GitHub wraps base64 at 60 chars with \n
    return {"sha": sha, "node_id": "B_kw", "size": len(text), "url": f"{API}/git/blobs/{sha}", "content": encoded,
            "encoding": "base64"}


def _entry(path: str, sha: str, kind: str = "blob", mode: str = "100644", size: int | None = 10) -> dict:
    e = {"path": path, "mode": mode, "type": kind, "sha": sha, "url": f"{API}/git/{kind}s/{sha}"}
    if kind == "blob":
        e["size"] = size
    return e


def _commit(name: str, date: str, login: str) -> list[dict]:
    return [{
        "sha": "7638417db6d59f3c431d3e1f261cc637155684cd", "node_id": "C_kw",
        "commit": {"author": {"name": name, "email": f"{login}@example.com", "date": date},
                   "committer": {"name": "GitHub", "email": "noreply@github.com", "date": date},
                   "message": "Update docs", "tree": {"sha": ROOT_SHA, "url": "..."}},
        "author": {"login": login, "id": 1}, "html_url": "https://github.com/acme/handbook/commit/7638417",
    }]


def _config(tmp_path: Path) -> tuple:
    dest = tmp_path / "dest"
    cfg = parse_sync_config(
        "source:\n  type: github\n  name: handbook\n  repo: acme/handbook\n  exclude: ['*.png']\n"
        "  credentials: {env: {token: GH_TOKEN}}\n"
        f"destination: {{path: '{dest}'}}\n"
    )
    return cfg, dest


def _repo(rsps) -> None:
    rsps.get(API, json={"id": 1296269, "name": "handbook", "full_name": "acme/handbook", "default_branch": "main",
                        "html_url": "https://github.com/acme/handbook", "private": True},
             match=[matchers.header_matcher({"Authorization": "Bearer ghp_test"})])


def test_truncated_tree_is_walked_rate_limit_waited_and_only_changed_blobs_refetched(tmp_path):
    cfg, dest = _config(tmp_path)
    sleeps: list[float] = []
    runtime = ConnectorRuntime(sleep=sleeps.append, clock=lambda: NOW)
    with responses.RequestsMock() as rsps:
        # Given a large repository whose recursive tree comes back truncated, after one
        # primary rate-limit refusal (403, remaining 0, reset 30 s from now)
        _repo(rsps)
        rsps.get(f"{API}/git/trees/main", status=403,
                 headers={"x-ratelimit-limit": "5000", "x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(NOW) + 30)},
                 json={"message": "API rate limit exceeded for user ID 1.",
                       "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"})
        rsps.get(f"{API}/git/trees/main", match=[matchers.query_param_matcher({"recursive": "1"})],
                 json={"sha": ROOT_SHA, "url": f"{API}/git/trees/{ROOT_SHA}", "truncated": True,
                       "tree": [_entry("README.md", "a1" * 20)]})
        rsps.get(f"{API}/git/trees/{ROOT_SHA}", json={"sha": ROOT_SHA, "url": "...", "truncated": False, "tree": [
            _entry("README.md", "a1" * 20), _entry("docs", DOCS_SHA, kind="tree", mode="040000"),
            _entry("vendor/lib", "c3" * 20, kind="commit", mode="160000"),
            _entry("latest", "d4" * 20, mode="120000")]})
        rsps.get(f"{API}/git/trees/{DOCS_SHA}", json={"sha": DOCS_SHA, "url": "...", "truncated": False, "tree": [
            _entry("guide.md", "b2" * 20), _entry("logo.png", "e5" * 20)]})
        rsps.get(f"{API}/git/blobs/{'a1' * 20}", json=_blob("a1" * 20, "# Handbook\n"))
        rsps.get(f"{API}/git/blobs/{'b2' * 20}", json=_blob("b2" * 20, "# Guide\n\nStep one.\n"))
        rsps.get(f"{API}/commits", match=[matchers.query_param_matcher({"path": "README.md", "sha": "main", "per_page": "1"})],
                 json=_commit("Ada Lovelace", "2024-05-01T10:00:00Z", "ada"))
        rsps.get(f"{API}/commits", match=[matchers.query_param_matcher({"path": "docs/guide.md", "sha": "main", "per_page": "1"})],
                 json=_commit("Grace Hopper", "2024-06-02T11:30:00Z", "grace"))
        # When synced
        report = run_sync(cfg, environ={"GH_TOKEN": "ghp_test"}, runtime=runtime)
    # Then the limit was waited out until its reset, blobs (not submodules, symlinks or
    # excluded files) landed, and author and date come from the last commit
    src = report.sources[0]
    assert src.error is None and src.added == 2
    assert sleeps == [31.0]
    assert (dest / "docs" / "guide.md").read_text() == "# Guide\n\nStep one.\n"
    meta = md.read_source_metadata(LocalStore(dest).head("docs/guide.md"))
    assert meta["author"] == "Grace Hopper" and meta["modified"] == "2024-06-02T11:30:00Z"
    assert meta["source_url"] == "https://github.com/acme/handbook/blob/main/docs/guide.md"
    assert meta["source_version"] == "b2" * 20

    with responses.RequestsMock() as rsps:
        # Given the guide edited (new blob sha) and the README deleted
        _repo(rsps)
        rsps.get(f"{API}/git/trees/main", json={"sha": "new", "url": "...", "truncated": False, "tree": [
            _entry("docs", DOCS_SHA, kind="tree", mode="040000"), _entry("docs/guide.md", "f6" * 20)]})
        rsps.get(f"{API}/git/blobs/{'f6' * 20}", json=_blob("f6" * 20, "# Guide\n\nStep one, revised.\n"))
        rsps.get(f"{API}/commits", json=_commit("Grace Hopper", "2024-07-01T09:00:00Z", "grace"))
        # When synced again (only the calls registered here are possible)
        report = run_sync(cfg, environ={"GH_TOKEN": "ghp_test"}, runtime=runtime)
    # Then one update and one deletion, and only the changed blob was fetched
    assert {d.key: d.status for d in report.sources[0].documents} == {"docs/guide.md": "updated", "README.md": "deleted"}
    assert not (dest / "README.md").exists()
    assert "revised" in (dest / "docs" / "guide.md").read_text()


def test_bad_credentials_stop_the_source_without_deleting(tmp_path):
    cfg, dest = _config(tmp_path)
    dest.mkdir()
    (dest / "keep.md").write_text("landed earlier")
    with responses.RequestsMock() as rsps:
        # Given GitHub refusing the token
        rsps.get(API, status=401, json={"message": "Bad credentials",
                                        "documentation_url": "https://docs.github.com/rest", "status": "401"})
        # When synced
        report = run_sync(cfg, environ={"GH_TOKEN": "ghp_test"}, runtime=ConnectorRuntime(sleep=lambda s: None))
    # Then the source reports an auth error and nothing at the destination was touched
    assert report.sources[0].error.startswith("ConnectorAuthError: github: authentication failed (401): Bad credentials")
    assert (dest / "keep.md").exists() and not report.ok


def test_secondary_rate_limit_beyond_the_cap_fails_with_a_transient_error(tmp_path):
    cfg, _ = _config(tmp_path)
    with responses.RequestsMock() as rsps:
        # Given a secondary rate limit asking to come back in an hour
        rsps.get(API, status=403, headers={"Retry-After": "3600"},
                 json={"message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."})
        # When synced with the default 300 s cap on a single wait
        report = run_sync(cfg, environ={"GH_TOKEN": "ghp_test"}, runtime=ConnectorRuntime(sleep=pytest.fail))
    # Then the run stops at once with a retryable error instead of sleeping an hour
    assert report.sources[0].error.startswith("ConnectorRateLimited: github: rate limited after 1 attempts")
    assert "3600" in report.sources[0].error


def test_missing_token_variable_is_a_configuration_error(tmp_path):
    cfg, _ = _config(tmp_path)
    report = run_sync(cfg, environ={})
    assert report.sources[0].error == "ConfigurationError: credential environment variable(s) not set: GH_TOKEN"
    assert json.dumps(report.summary())  # the summary stays serialisable with an error in it
