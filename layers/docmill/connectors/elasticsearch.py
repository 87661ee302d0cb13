"""Elasticsearch / OpenSearch indexes over their (shared) REST API, each hit one document.

The scroll API is the same on Elasticsearch 7/8 and OpenSearch 1/2 (point-in-time APIs
differ), so one code path reads both: ``POST /<index>/_search?scroll=...`` sorted by
``_doc`` with ``version: true``, then ``POST /_search/scroll`` until a page comes back empty,
then the scroll context is cleared. A hit's ``_version`` (or a configured modified field, or
a hash of ``_source``) is its sync version. Auth: none, basic (``username``/``password``),
an Elasticsearch API key (``api_key``), or AWS SigV4 for Amazon OpenSearch Service /
Serverless (``auth: sigv4``, credentials from the AWS chain).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping
from typing import Any, Literal

import requests
from pydantic import Field

from docmill.connectors.base import Connector, SourceDocument, iso_utc, safe_segment
from docmill.connectors.http import HttpClient
from docmill.connectors.records import RecordOptions, content_version, get_path, render_record
from docmill.connectors.registry import ConnectorRuntime
from docmill.errors import ConfigurationError, ConnectorError


class ElasticsearchOptions(RecordOptions):
    url: str = Field(..., description="https://host:9200")
    index: str = Field(..., description="index name, alias or pattern")
    query: dict[str, Any] = Field(default_factory=lambda: {"match_all": {}})
    source_fields: list[str] = Field(default_factory=list, description="_source includes; empty = all")
    page_size: int = Field(500, ge=1, le=10000)
    scroll: str = "2m"
    auth: Literal["none", "basic", "api_key", "sigv4"] = "none"
    region: str | None = None
    service: Literal["es", "aoss"] = "es"
    verify_certs: bool = True


class SigV4Auth(requests.auth.AuthBase):
    """Signs each request with AWS SigV4 (Amazon OpenSearch Service ``es`` / Serverless ``aoss``)."""

    def __init__(self, region: str, service: str) -> None:
        import boto3  # the credential chain only: no client is made here

        creds = boto3.session.Session().get_credentials()
        if creds is None:
            raise ConfigurationError("sigv4: no AWS credentials found in the default chain")
        self.credentials, self.region, self.service = creds, region, service

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        from botocore.auth import SigV4Auth as _Signer
        from botocore.awsrequest import AWSRequest

        body = r.body or b""
        req = AWSRequest(method=r.method, url=r.url, data=body,
                         headers={"Content-Type": r.headers.get("Content-Type", "application/json")})
        _Signer(self.credentials.get_frozen_credentials(), self.service, self.region).add_auth(req)
        r.headers.update(dict(req.headers.items()))
        return r


class ElasticsearchConnector(Connector):
    type = "elasticsearch"
    options_model = ElasticsearchOptions

    def __init__(self, options: ElasticsearchOptions, credentials: Mapping[str, str], runtime: ConnectorRuntime) -> None:
        self.options = options
        headers = {"Content-Type": "application/json"}
        auth: Any = None
        if options.auth == "basic":
            if not credentials.get("username") or not credentials.get("password"):
                raise ConfigurationError("elasticsearch auth 'basic' needs 'username' and 'password' credentials")
            auth = (credentials["username"], credentials["password"])
        elif options.auth == "api_key":
            if not credentials.get("api_key"):
                raise ConfigurationError("elasticsearch auth 'api_key' needs an 'api_key' credential")
            headers["Authorization"] = f"ApiKey {credentials['api_key']}"
        elif options.auth == "sigv4":
            if not options.region:
                raise ConfigurationError("elasticsearch auth 'sigv4' needs 'region'")
            auth = SigV4Auth(options.region, options.service)
        self.http = HttpClient(service="elasticsearch", headers=headers, auth=auth, sleep=runtime.sleep,
                               clock=runtime.clock, max_retries=runtime.max_retries, max_wait=runtime.max_wait,
                               timeout=runtime.timeout, base_urls=[options.url], url_policy=runtime.url_policy)
        self.http.session.verify = options.verify_certs
        self.base = options.url.rstrip("/")

    def _hits(self) -> Iterator[dict[str, Any]]:
        o = self.options
        body: dict[str, Any] = {"size": o.page_size, "query": o.query, "sort": ["_doc"], "version": True}
        if o.source_fields:
            body["_source"] = o.source_fields
        page = self.http.request("POST", f"{self.base}/{o.index}/_search", params={"scroll": o.scroll},
                                 data=json.dumps(body)).json()
        scroll_ids: set[str] = set()
        try:
            while True:
                if page.get("_scroll_id"):
                    scroll_ids.add(page["_scroll_id"])
                if (page.get("_shards") or {}).get("failed"):
                    raise ConnectorError(f"elasticsearch: shard failures while reading {o.index}: {page['_shards']}")
                hits = (page.get("hits") or {}).get("hits") or []
                if not hits:
                    return
                yield from hits
                page = self.http.request("POST", f"{self.base}/_search/scroll",
                                         data=json.dumps({"scroll": o.scroll, "scroll_id": page["_scroll_id"]})).json()
        finally:
            if scroll_ids:
                # Free the server's scroll context; it would expire anyway.
                with contextlib.suppress(requests.RequestException, ConnectorError):
                    self.http.send("DELETE", f"{self.base}/_search/scroll",
                                   data=json.dumps({"scroll_id": sorted(scroll_ids)}))

    def list_documents(self) -> Iterator[SourceDocument]:
        o = self.options
        for hit in self._hits():
            source = hit.get("_source") or {}
            index, hit_id = hit["_index"], str(hit["_id"])
            title = get_path(source, o.title_field) or f"{index} {hit_id}"
            modified = get_path(source, o.modified_field)
            if "_version" in hit:
                version = f"v{hit['_version']}"
            elif modified:
                version = f"m:{modified}"
            else:
                version = content_version(source)
            data, ctype, ext = render_record(source, title=str(title), text_fields=o.text_fields, fmt=o.format)
            author = get_path(source, o.author_field)
            yield SourceDocument(
                id=f"{index}/{hit_id}",
                key=f"{safe_segment(index)}/{safe_segment(hit_id)}{ext}",
                version=version,
                title=str(title),
                author=str(author) if author else None,
                url=o.url_template.format(id=hit_id, index=index) if o.url_template else f"{self.base}/{index}/_doc/{hit_id}",
                modified=iso_utc(modified) if isinstance(modified, (str, int, float)) else None,
                content_type=ctype,
                content=data,
            )

    def fetch(self, doc: SourceDocument) -> bytes:
        if doc.content is None:
            raise ConnectorError(f"{doc.id}: listed without its content")
        return doc.content

    def close(self) -> None:
        self.http.close()
