"""Slack channels over the Web API: each channel-day becomes one Markdown document.

``conversations.history`` is read with cursor pagination (``response_metadata.next_cursor``);
HTTP 429 answers carry ``Retry-After`` and are waited out by ``HttpClient``; Slack's own
errors come as HTTP 200 with ``{"ok": false, "error": ...}`` and are mapped here
(``invalid_auth``/``not_authed``/``token_revoked`` ... -> ``ConnectorAuthError``). A day's
version is a hash of its messages' ids, edit stamps and reply markers, so a day is re-landed
only when a message in it was posted, edited, deleted or got replies. With ``days`` set, only
that many recent days are read (from the start of the cutoff's UTC day, so no day is landed
half) and older days already synced are left alone rather than deleted.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import Field

from docmill.connectors.base import Connector, ConnectorOptions, SourceDocument, iso_utc, safe_segment
from docmill.connectors.http import HttpClient
from docmill.connectors.registry import ConnectorRuntime
from docmill.errors import ConfigurationError, ConnectorAuthError, ConnectorError

_AUTH_ERRORS = {"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired",
                "no_permission", "missing_scope", "not_allowed_token_type", "ekm_access_denied"}


class SlackOptions(ConnectorOptions):
    channels: list[str] = Field(..., min_length=1, description="channel ids (C0123...) or #names")
    days: int | None = Field(None, ge=1, description="only this many recent days; default: whole history")
    include_threads: bool = False
    resolve_users: bool = True
    api_url: str = "https://slack.com/api"
    page_size: int = Field(200, ge=1, le=999)


def _day(ts: str) -> str:
    return datetime.fromtimestamp(float(ts), tz=UTC).strftime("%Y-%m-%d")


class SlackConnector(Connector):
    type = "slack"
    options_model = SlackOptions

    def __init__(self, options: SlackOptions, credentials: Mapping[str, str], runtime: ConnectorRuntime) -> None:
        token = credentials.get("token")
        if not token:
            raise ConfigurationError("slack source needs a 'token' credential (a bot token, xoxb-...)")
        self.options = options
        self.runtime = runtime
        self.api = options.api_url.rstrip("/")
        self.http = HttpClient(service="slack", headers={"Authorization": f"Bearer {token}"}, sleep=runtime.sleep,
                               clock=runtime.clock, max_retries=runtime.max_retries, max_wait=runtime.max_wait,
                               timeout=runtime.timeout, base_urls=[options.api_url], url_policy=runtime.url_policy)
        self._users: dict[str, str] = {}
        self._cutoff_day: str | None = None

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        body = self.http.get_json(f"{self.api}/{method}", params={k: v for k, v in params.items() if v is not None})
        if not body.get("ok"):
            error = body.get("error", "unknown_error")
            if error in _AUTH_ERRORS:
                raise ConnectorAuthError(f"slack: {method} refused the token: {error}")
            raise ConnectorError(f"slack: {method} failed: {error}")
        return body

    def _paged(self, method: str, key: str, **params: Any) -> Iterator[dict[str, Any]]:
        cursor: str | None = None
        while True:
            body = self.call(method, cursor=cursor, limit=str(self.options.page_size), **params)
            yield from body.get(key, [])
            cursor = (body.get("response_metadata") or {}).get("next_cursor") or None
            if not cursor:
                return

    def _channels(self) -> list[tuple[str, str]]:
        wanted_names = {c.lstrip("#") for c in self.options.channels if c.startswith("#")}
        found: dict[str, str] = {}
        if wanted_names:
            for ch in self._paged("conversations.list", "channels", types="public_channel,private_channel",
                                  exclude_archived="true"):
                if ch.get("name") in wanted_names:
                    found[ch["name"]] = ch["id"]
            missing = wanted_names - set(found)
            if missing:
                raise ConnectorError(f"slack: no channel named {', '.join('#' + m for m in sorted(missing))}")
        out = []
        for ref in self.options.channels:
            if ref.startswith("#"):
                out.append((found[ref.lstrip("#")], ref.lstrip("#")))
            else:
                info = self.call("conversations.info", channel=ref)["channel"]
                out.append((ref, info.get("name") or ref))
        return out

    def _user(self, user_id: str | None) -> str:
        if not user_id:
            return "unknown"
        if not self.options.resolve_users:
            return user_id
        if user_id not in self._users:
            try:
                user = self.call("users.info", user=user_id)["user"]
                profile = user.get("profile") or {}
                self._users[user_id] = profile.get("display_name") or user.get("real_name") or user.get("name") or user_id
            except ConnectorAuthError:
                raise
            except ConnectorError:
                self._users[user_id] = user_id  # deactivated or foreign user: keep the id
        return self._users[user_id]

    def list_documents(self) -> Iterator[SourceDocument]:
        oldest = None
        if self.options.days:
            cutoff = datetime.fromtimestamp(self.runtime.clock() - self.options.days * 86400, tz=UTC)
            start = cutoff.replace(hour=0, minute=0, second=0, microsecond=0)
            oldest = f"{start.timestamp():.6f}"
            self._cutoff_day = start.strftime("%Y-%m-%d")
        for channel_id, name in self._channels():
            days: dict[str, list[dict[str, Any]]] = defaultdict(list)
            for msg in self._paged("conversations.history", "messages", channel=channel_id, oldest=oldest):
                if msg.get("type") == "message" and msg.get("ts"):
                    days[_day(msg["ts"])].append(msg)
            for day in sorted(days):
                messages = sorted(days[day], key=lambda m: float(m["ts"]))
                marker = "|".join(
                    f"{m['ts']}:{(m.get('edited') or {}).get('ts', '')}:{m.get('reply_count', 0)}:{m.get('latest_reply', '')}:"
                    f"{hashlib.sha1((m.get('text') or '').encode(), usedforsecurity=False).hexdigest()[:8]}"
                    for m in messages
                )
                authors = sorted({m.get("user") or m.get("username") or m.get("bot_id") or "" for m in messages} - {""})
                yield SourceDocument(
                    id=f"{channel_id}/{day}",
                    key=f"{safe_segment(name)}/{day}.md",
                    version=hashlib.sha256(marker.encode()).hexdigest()[:32],
                    title=f"#{name} {day}",
                    url=f"https://slack.com/app_redirect?channel={channel_id}",
                    modified=iso_utc(max(float((m.get("edited") or {}).get("ts") or m["ts"]) for m in messages)),
                    content_type="text/markdown; charset=utf-8",
                    extra={"channel": channel_id, "name": name, "messages": messages, "authors": authors},
                )

    def covers(self, doc_id: str, entry: dict[str, Any]) -> bool:
        day = doc_id.rsplit("/", 1)[-1]
        return self._cutoff_day is None or day >= self._cutoff_day

    def fetch(self, doc: SourceDocument) -> bytes:
        channel, name = doc.extra["channel"], doc.extra["name"]
        lines = [f"# #{name} — {doc.id.rsplit('/', 1)[-1]}", ""]
        for msg in doc.extra["messages"]:
            lines += self._render(msg, indent="")
            if self.options.include_threads and msg.get("reply_count"):
                for reply in self._paged("conversations.replies", "messages", channel=channel, ts=msg["ts"]):
                    if reply.get("ts") != msg["ts"]:
                        lines += self._render(reply, indent="> ")
        doc.author = ", ".join(self._user(a) for a in doc.extra["authors"])[:200] or None
        return ("\n".join(lines).rstrip() + "\n").encode("utf-8")

    def _render(self, msg: dict[str, Any], *, indent: str) -> list[str]:
        when = datetime.fromtimestamp(float(msg["ts"]), tz=UTC).strftime("%H:%M")
        who = self._user(msg.get("user")) if msg.get("user") else (msg.get("username") or msg.get("bot_id") or "unknown")
        text = (msg.get("text") or "").strip()
        for f in msg.get("files") or []:
            text += f"\n[file: {f.get('name') or f.get('title') or f.get('id')}]"
        edited = " (edited)" if msg.get("edited") else ""
        body = [f"{indent}**{who}** {when} UTC{edited}:"] + [f"{indent}{line}" for line in text.splitlines()]
        return body + [""]

    def close(self) -> None:
        self.http.close()
