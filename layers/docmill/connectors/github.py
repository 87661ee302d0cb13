"""GitHub repository source over the REST API (git trees + blobs), token auth.

Listing is one ``GET /repos/{repo}/git/trees/{branch}?recursive=1``; when GitHub truncates
it (large repositories: over 100,000 entries or 7 MB), the tree is walked level by level
instead, one non-recursive tree request per folder. Each file's blob sha is its version, so a
second sync fetches only blobs whose sha moved. For a changed file, the last commit touching
its path (``GET /repos/{repo}/commits?path=...&per_page=1``) gives the author and the
modification time. Rate limits (403 with ``x-ratelimit-remaining: 0`` until
``x-ratelimit-reset``; 403/429 with ``Retry-After`` for secondary limits) are waited out by
``HttpClient`` up to a cap.
"""

from __future__ import annotations

import base64
import fnmatch
import mimetypes
from collections.abc import Iterator, Mapping
from urllib.parse import quote

from pydantic import Field, field_validator

from docmill.connectors.base import Connector, ConnectorOptions, SourceDocument, iso_utc
from docmill.connectors.http import HttpClient
from docmill.connectors.registry import ConnectorRuntime
from docmill.errors import ConnectorError


class GitHubOptions(ConnectorOptions):
    repo: str = Field(..., description="owner/name")
    branch: str | None = Field(None, description="branch, tag or commit; default: the repository's default branch")
    paths: list[str] = Field(default_factory=list, description="path prefixes to sync; empty = whole repository")
    include: list[str] = Field(default_factory=list, description="glob patterns, e.g. ['*.md', 'docs/**']")
    exclude: list[str] = Field(default_factory=list)
    api_url: str = "https://api.github.com"
    max_file_bytes: int = 50 * 1024 * 1024
    commit_info: bool = Field(True, description="look up author and date of the last commit for changed files")

    @field_validator("repo")
    @classmethod
    def _repo(cls, value: str) -> str:
        value = value.strip().removeprefix("https://github.com/").strip("/")
        if value.count("/") != 1:
            raise ValueError("repo must be 'owner/name'")
        return value


class GitHubConnector(Connector):
    type = "github"
    options_model = GitHubOptions

    def __init__(self, options: GitHubOptions, credentials: Mapping[str, str], runtime: ConnectorRuntime) -> None:
        self.options = options
        headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
        token = credentials.get("token")
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.http = HttpClient(service="github", headers=headers, sleep=runtime.sleep, clock=runtime.clock,
                               max_retries=runtime.max_retries, max_wait=runtime.max_wait, timeout=runtime.timeout,
                               base_urls=[options.api_url], url_policy=runtime.url_policy)
        self.api = options.api_url.rstrip("/")
        self.repo_api = f"{self.api}/repos/{options.repo}"
        self.branch: str | None = options.branch
        self.html_url = f"https://github.com/{options.repo}"

    def _wanted(self, path: str) -> bool:
        o = self.options
        if o.paths and not any(path == p.strip("/") or path.startswith(p.strip("/") + "/") for p in o.paths):
            return False
        if o.include and not any(fnmatch.fnmatch(path, pat) for pat in o.include):
            return False
        return not any(fnmatch.fnmatch(path, pat) for pat in o.exclude)

    def _tree(self, tree_ish: str, *, recursive: bool) -> dict:
        url = f"{self.repo_api}/git/trees/{quote(tree_ish, safe='')}"
        return self.http.get_json(url, params={"recursive": "1"} if recursive else None)

    def _walk(self, tree_sha: str, prefix: str) -> Iterator[dict]:
        # Truncated recursive listing: walk folder by folder (each answer is complete).
        tree = self._tree(tree_sha, recursive=False)
        for entry in tree.get("tree", []):
            path = f"{prefix}{entry['path']}"
            if entry["type"] == "tree":
                if not self.options.paths or any(
                    p.strip("/").startswith(path + "/") or path == p.strip("/") or path.startswith(p.strip("/") + "/")
                    for p in self.options.paths
                ):
                    yield from self._walk(entry["sha"], path + "/")
            else:
                yield {**entry, "path": path}

    def list_documents(self) -> Iterator[SourceDocument]:
        repo = self.http.get_json(self.repo_api)
        self.branch = self.branch or repo.get("default_branch") or "main"
        self.html_url = repo.get("html_url") or self.html_url
        tree = self._tree(self.branch, recursive=True)
        entries = self._walk(tree["sha"], "") if tree.get("truncated") else iter(tree.get("tree", []))
        for entry in entries:
            # Blobs only: sub-trees are folders, "commit" entries are submodules, 120000 are symlinks.
            if entry.get("type") != "blob" or entry.get("mode") == "120000":
                continue
            path = entry["path"]
            if not self._wanted(path) or (entry.get("size") or 0) > self.options.max_file_bytes:
                continue
            yield SourceDocument(
                id=path,
                key=path,
                version=entry["sha"],
                title=path.rsplit("/", 1)[-1],
                url=f"{self.html_url}/blob/{quote(self.branch)}/{quote(path)}",
                content_type=mimetypes.guess_type(path)[0],
                size=entry.get("size"),
                extra={"sha": entry["sha"]},
            )

    def fetch(self, doc: SourceDocument) -> bytes:
        blob = self.http.get_json(f"{self.repo_api}/git/blobs/{doc.extra['sha']}")
        if blob.get("encoding") != "base64" or "content" not in blob:
            raise ConnectorError(f"github: unexpected blob encoding {blob.get('encoding')!r} for {doc.id}")
        data = base64.b64decode(blob["content"])
        if self.options.commit_info:
            commits = self.http.get_json(
                f"{self.repo_api}/commits", params={"path": doc.id, "sha": self.branch, "per_page": "1"}
            )
            if commits:
                commit = commits[0].get("commit", {})
                author = commit.get("author") or {}
                login = (commits[0].get("author") or {}).get("login")
                doc.author = author.get("name") or login
                doc.modified = iso_utc(author.get("date") or (commit.get("committer") or {}).get("date"))
        return data

    def close(self) -> None:
        self.http.close()
