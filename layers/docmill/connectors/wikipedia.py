"""Wikipedia (any MediaWiki) pages by title, over the Action API.

The listing asks ``action=query&prop=revisions|info`` for up to 50 titles per request
(following ``continue`` until the answer is complete; redirects and normalised titles
resolved) and takes each page's latest revision id as its version: a second sync fetches
nothing for pages nobody edited. A changed page is fetched with
``prop=extracts|revisions&explaintext=1`` (TextExtracts plain text, following ``continue``)
and landed as Markdown, wiki headings turned into Markdown headings. A page that no longer
exists (deleted, or its title dropped from the config) is deleted at the destination.
Wikimedia asks every client for a descriptive User-Agent; ``HttpClient`` sends one.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import quote

from pydantic import Field

from docmill.connectors.base import Connector, ConnectorOptions, SourceDocument, iso_utc, safe_segment
from docmill.connectors.http import HttpClient
from docmill.connectors.registry import ConnectorRuntime
from docmill.errors import ConnectorAuthError, ConnectorError

_HEADING = re.compile(r"^(={2,6})\s*(.+?)\s*\1\s*$", re.MULTILINE)
_RETRY_CODES = {"maxlag", "ratelimited", "readonly"}
_AUTH_CODES = {"readapidenied", "mwoauth-invalid-authorization", "mwoauth-invalid-authorization-invalid-user",
               "badtoken", "permissiondenied"}
BATCH = 50  # the API's limit on titles per query for ordinary clients


def _throttled(resp: Any) -> bool:
    """MediaWiki answers maxlag / ratelimited / readonly with 200 and an error body: wait, retry."""
    try:
        body = resp.json()
    except ValueError:
        return False
    error = body.get("error") if isinstance(body, dict) else None
    return isinstance(error, dict) and error.get("code") in _RETRY_CODES


class WikipediaOptions(ConnectorOptions):
    titles: list[str] = Field(..., min_length=1)
    api_url: str = "https://en.wikipedia.org/w/api.php"


def wiki_to_markdown(title: str, extract: str) -> str:
    body = _HEADING.sub(lambda m: "#" * len(m.group(1)) + " " + m.group(2), extract.strip())
    return f"# {title}\n\n{body}\n"


class WikipediaConnector(Connector):
    type = "wikipedia"
    options_model = WikipediaOptions

    def __init__(self, options: WikipediaOptions, credentials: Mapping[str, str], runtime: ConnectorRuntime) -> None:
        self.options = options
        self.runtime = runtime
        headers = {"Authorization": f"Bearer {credentials['token']}"} if credentials.get("token") else None
        self.http = HttpClient(service="wikipedia", headers=headers, sleep=runtime.sleep, clock=runtime.clock,
                               max_retries=runtime.max_retries, max_wait=runtime.max_wait, timeout=runtime.timeout,
                               base_urls=[options.api_url], url_policy=runtime.url_policy)

    def query(self, **params: Any) -> Iterator[dict[str, Any]]:
        """Every answer of one query, following ``continue`` (and waiting out maxlag/ratelimited)."""
        base = {"action": "query", "format": "json", "formatversion": "2", **params}
        cont: dict[str, str] = {}
        while True:
            resp = self.http.request("GET", self.options.api_url, params={**base, **cont}, throttled=_throttled)
            body = resp.json()
            if "error" in body:
                code = body["error"].get("code", "")
                if code in _AUTH_CODES:
                    raise ConnectorAuthError(f"wikipedia: {code}: {body['error'].get('info', '')}")
                raise ConnectorError(f"wikipedia: {code}: {body['error'].get('info', '')}")
            yield body
            if "continue" not in body:
                return
            cont = body["continue"]

    def list_documents(self) -> Iterator[SourceDocument]:
        titles = list(dict.fromkeys(t.strip() for t in self.options.titles if t.strip()))
        for i in range(0, len(titles), BATCH):
            pages: dict[int, dict[str, Any]] = {}
            for body in self.query(prop="revisions|info", rvprop="ids|timestamp|user", inprop="url",
                                   redirects="1", titles="|".join(titles[i:i + BATCH])):
                for page in body.get("query", {}).get("pages", []):
                    if page.get("missing") or page.get("invalid") or "pageid" not in page:
                        continue
                    merged = pages.setdefault(page["pageid"], {})
                    merged.update({k: v for k, v in page.items() if v is not None})
            for pageid, page in sorted(pages.items()):
                rev = (page.get("revisions") or [{}])[0]
                if not rev.get("revid"):
                    continue
                yield SourceDocument(
                    id=str(pageid),
                    key=f"{safe_segment(page['title'])}.md",
                    version=str(rev["revid"]),
                    title=page["title"],
                    author=rev.get("user"),
                    url=page.get("fullurl") or self._url(page["title"]),
                    modified=iso_utc(rev.get("timestamp")),
                    content_type="text/markdown; charset=utf-8",
                )

    def _url(self, title: str) -> str:
        root = self.options.api_url.rsplit("/w/api.php", 1)[0]
        return f"{root}/wiki/{quote(title.replace(' ', '_'))}"

    def fetch(self, doc: SourceDocument) -> bytes:
        extract = ""
        for body in self.query(prop="extracts|revisions", explaintext="1", exsectionformat="wiki",
                               rvprop="ids|timestamp|user", pageids=doc.id):
            for page in body.get("query", {}).get("pages", []):
                extract += page.get("extract") or ""
                rev = (page.get("revisions") or [{}])[0]
                if rev.get("revid"):
                    # Edited between listing and fetch: land what we read, under its own revision.
                    doc.version, doc.author = str(rev["revid"]), rev.get("user")
                    doc.modified = iso_utc(rev.get("timestamp"))
        if not extract.strip():
            raise ConnectorError(f"wikipedia: page {doc.title!r} has no text extract")
        return wiki_to_markdown(doc.title or doc.id, extract).encode("utf-8")

    def close(self) -> None:
        self.http.close()
