"""S3 source: any bucket/prefix on AWS or any S3 API endpoint (MinIO, LocalStack, moto).

Uses ``docmill.storage.S3Store`` over a client from ``docmill.aws.client`` (so tests inject
moto and ``AWS_ENDPOINT_URL`` works); ``endpoint_url`` in the options points the source at
another S3 API than the destination's. The ETag (or VersionId on versioned buckets) is the
version: a second sync lists the prefix and fetches only objects whose ETag moved.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator, Mapping

from pydantic import Field

from docmill import aws
from docmill.connectors import metadata as md
from docmill.connectors.base import Connector, ConnectorOptions, SourceDocument, iso_utc
from docmill.errors import ConfigurationError
from docmill.storage import S3Store, parse_s3_uri


class S3Options(ConnectorOptions):
    uri: str = Field(..., description="s3://bucket/prefix")
    endpoint_url: str | None = None
    region: str | None = None
    include: list[str] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=list)


class S3Connector(Connector):
    type = "s3"
    options_model = S3Options

    def __init__(self, options: S3Options, credentials: Mapping[str, str], runtime: object = None) -> None:
        if credentials:
            # boto3 clients come only from docmill.aws.client, which uses the default chain
            # (task role, profile, AWS_* variables): refuse rather than silently ignore keys.
            raise ConfigurationError(
                "the s3 source uses the AWS credential chain (task role / AWS_* variables); remove 'credentials'"
            )
        self.options = options
        bucket, prefix = parse_s3_uri(options.uri)
        client = aws.client("s3", region=options.region, endpoint_url=options.endpoint_url) \
            if (options.endpoint_url or options.region) else None
        self.store = S3Store(bucket, prefix, client=client)

    def _wanted(self, key: str) -> bool:
        if md.is_sync_internal(key):
            return False
        if self.options.include and not any(fnmatch.fnmatch(key, p) for p in self.options.include):
            return False
        return not any(fnmatch.fnmatch(key, p) for p in self.options.exclude)

    def list_documents(self) -> Iterator[SourceDocument]:
        for info in self.store.list():
            if not info.key or not self._wanted(info.key):
                continue
            yield SourceDocument(
                id=info.uri,
                key=info.key,
                version=info.version,
                title=info.key.rsplit("/", 1)[-1],
                url=info.uri,
                modified=iso_utc(info.last_modified),
                size=info.size,
            )

    def fetch(self, doc: SourceDocument) -> bytes:
        return self.store.read_bytes(doc.key)
