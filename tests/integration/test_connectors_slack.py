"""Slack connector over HTTP with recorded Web API responses (real shapes: ok/error, cursors, 429)."""

from __future__ import annotations

from pathlib import Path

import responses
from responses import matchers

from docmill.connectors import metadata as md
from docmill.connectors.config import parse_sync_config
from docmill.connectors.registry import ConnectorRuntime
from docmill.connectors.sync import run_sync
from docmill.storage import LocalStore

API = "https://slack.com/api"
DAY1 = 1714554000  # 2024-05-01T09:00:00Z
DAY2 = 1714644000  # 2024-05-02T10:00:00Z


def _msg(ts: float, user: str, text: str, **extra) -> dict:
    return {"type": "message", "user": user, "text": text, "ts": f"{ts:.6f}", "team": "T012AB3C4", **extra}


def _common(rsps) -> None:
    rsps.get(f"{API}/conversations.info", json={"ok": True, "channel": {
        "id": "C024BE91L", "name": "fun", "is_channel": True, "created": 1449252889, "is_archived": False}})
    for uid, name in (("U1", "ada"), ("U2", "grace")):
        rsps.get(f"{API}/users.info", match=[matchers.query_param_matcher({"user": uid})], json={
            "ok": True, "user": {"id": uid, "name": name, "real_name": name.title(),
                                 "profile": {"display_name": name.title(), "real_name": name.title()}}})


def _cfg(tmp_path: Path, extra: str = "") -> tuple:
    dest = tmp_path / "dest"
    cfg = parse_sync_config(f"source: {{type: slack, name: chat, channels: [C024BE91L], {extra}"
                            "credentials: {env: {token: SLACK_TOKEN}}}\n"
                            f"destination: {{path: '{dest}'}}\n")
    return cfg, dest


def test_history_pages_and_429_give_one_document_per_channel_day(tmp_path):
    cfg, dest = _cfg(tmp_path)
    sleeps: list[float] = []
    runtime = ConnectorRuntime(sleep=sleeps.append)
    with responses.RequestsMock() as rsps:
        # Given two pages of history over two days, the first call rate limited (Retry-After: 2)
        _common(rsps)
        rsps.get(f"{API}/conversations.history", status=429, headers={"Retry-After": "2"},
                 json={"ok": False, "error": "ratelimited"})
        rsps.get(f"{API}/conversations.history",
                 match=[matchers.query_param_matcher({"channel": "C024BE91L", "limit": "200"})],
                 json={"ok": True, "messages": [_msg(DAY2 + 60, "U2", "Second day"), _msg(DAY1 + 120, "U1", "Lunch?")],
                       "has_more": True, "pin_count": 0,
                       "response_metadata": {"next_cursor": "bmV4dF90czoxNTEyMDg1ODYxMDAwNTQz"}})
        rsps.get(f"{API}/conversations.history",
                 match=[matchers.query_param_matcher({"channel": "C024BE91L", "limit": "200",
                                                      "cursor": "bmV4dF90czoxNTEyMDg1ODYxMDAwNTQz"})],
                 json={"ok": True, "messages": [_msg(DAY1, "U2", "Morning all"),
                                                {"type": "message", "subtype": "channel_join", "user": "U1",
                                                 "text": "<@U1> has joined the channel", "ts": f"{DAY1 - 60:.6f}"}],
                       "has_more": False, "pin_count": 0, "response_metadata": {"next_cursor": ""}})
        # When synced
        report = run_sync(cfg, environ={"SLACK_TOKEN": "xoxb-test"}, runtime=runtime)
        assert rsps.calls[0].request.headers["Authorization"] == "Bearer xoxb-test"
    # Then each day is one Markdown document in time order with names resolved
    src = report.sources[0]
    assert src.error is None and src.added == 2 and sleeps == [2.0]
    day1 = (dest / "fun" / "2024-05-01.md").read_text(encoding="utf-8")
    assert day1.startswith("# #fun — 2024-05-01")
    assert day1.index("Morning all") < day1.index("Lunch?") and "**Grace** 09:00 UTC:" in day1
    meta = md.read_source_metadata(LocalStore(dest).head("fun/2024-05-01.md"))
    assert meta["source_type"] == "slack" and meta["title"] == "#fun 2024-05-01" and meta["author"] == "Ada, Grace"

    with responses.RequestsMock() as rsps:
        # Given one message of day 1 edited and day 2's only message deleted
        _common(rsps)
        rsps.get(f"{API}/conversations.history", json={"ok": True, "has_more": False, "messages": [
            _msg(DAY1 + 120, "U1", "Lunch at noon?", edited={"user": "U1", "ts": f"{DAY1 + 600:.6f}"}),
            _msg(DAY1, "U2", "Morning all")], "response_metadata": {"next_cursor": ""}})
        report = run_sync(cfg, environ={"SLACK_TOKEN": "xoxb-test"}, runtime=runtime)
    # Then day 1 is updated and day 2 deleted
    assert {d.key: d.status for d in report.sources[0].documents} == {"fun/2024-05-01.md": "updated",
                                                                       "fun/2024-05-02.md": "deleted"}
    day1 = (dest / "fun" / "2024-05-01.md").read_text(encoding="utf-8")
    assert "Lunch at noon?" in day1 and "**Ada** 09:02 UTC (edited):" in day1


def test_a_recent_days_window_leaves_older_days_alone(tmp_path):
    cfg_full, dest = _cfg(tmp_path)
    with responses.RequestsMock() as rsps:
        # Given both days synced once
        _common(rsps)
        rsps.get(f"{API}/conversations.history", json={"ok": True, "has_more": False, "messages": [
            _msg(DAY2, "U2", "Second day"), _msg(DAY1, "U1", "First day")]})
        run_sync(cfg_full, environ={"SLACK_TOKEN": "x"}, runtime=ConnectorRuntime(sleep=lambda s: None))
    cfg_window, _ = _cfg(tmp_path, "days: 1, ")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        # When a one-day window is synced on 2024-05-03 06:00 (history from the start of 05-02)
        _common(rsps)
        rsps.get(f"{API}/conversations.history", match=[matchers.query_param_matcher(
            {"channel": "C024BE91L", "limit": "200", "oldest": f"{DAY2 - 10 * 3600:.6f}"})],
            json={"ok": True, "has_more": False, "messages": [_msg(DAY2, "U2", "Second day")]})
        report = run_sync(cfg_window, environ={"SLACK_TOKEN": "x"},
                          runtime=ConnectorRuntime(sleep=lambda s: None, clock=lambda: DAY2 + 20 * 3600))
    # Then day 2 is unchanged and day 1, outside the window, is neither re-read nor deleted
    assert {d.key: d.status for d in report.sources[0].documents} == {"fun/2024-05-02.md": "unchanged"}
    assert (dest / "fun" / "2024-05-01.md").exists()


def test_invalid_auth_in_an_ok_false_body_is_an_auth_error(tmp_path):
    cfg, _ = _cfg(tmp_path)
    with responses.RequestsMock() as rsps:
        # Given Slack's HTTP 200 answer with ok=false
        rsps.get(f"{API}/conversations.info", json={"ok": False, "error": "invalid_auth"})
        report = run_sync(cfg, environ={"SLACK_TOKEN": "xoxb-revoked"}, runtime=ConnectorRuntime(sleep=lambda s: None))
    assert report.sources[0].error == "ConnectorAuthError: slack: conversations.info refused the token: invalid_auth"
