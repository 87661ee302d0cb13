"""MongoDB collections with pymongo: each document (``find`` with filter and projection) one file.

The connection string is a credential (``uri``: it usually holds a password). Documents are
read in ``_id`` order with a server-side batch size; each is rendered to Markdown (or JSON,
Extended JSON relaxed for ObjectId/dates) by ``records.render_record``. The version is the
configured ``modified_field`` when the collection keeps one, else a hash of the document, so
only documents whose content changed are re-landed.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pydantic import Field

from docmill.connectors.base import Connector, SourceDocument, iso_utc, safe_segment
from docmill.connectors.records import RecordOptions, content_version, get_path, render_record
from docmill.connectors.registry import ConnectorRuntime
from docmill.errors import ConfigurationError, ConnectorAuthError, ConnectorError


class MongoDBOptions(RecordOptions):
    database: str
    collection: str
    filter: dict[str, Any] = Field(default_factory=dict)
    projection: dict[str, Any] | list[str] | None = None
    batch_size: int = Field(500, ge=1)
    server_selection_timeout_ms: int = 10_000


def _plain(value: Any) -> Any:
    """BSON values as plain JSON: ObjectId -> hex string, datetime -> ISO 8601 UTC, others via Extended JSON."""
    from datetime import datetime

    from bson import ObjectId, json_util

    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, ObjectId):
        return str(value)
    if isinstance(value, datetime):
        return iso_utc(value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    import json

    return json.loads(json_util.dumps(value, json_options=json_util.RELAXED_JSON_OPTIONS))


class MongoDBConnector(Connector):
    type = "mongodb"
    options_model = MongoDBOptions

    def __init__(self, options: MongoDBOptions, credentials: Mapping[str, str], runtime: ConnectorRuntime | None = None,
                 *, client: Any | None = None) -> None:
        self.options = options
        if client is None:
            uri = credentials.get("uri")
            if not uri:
                raise ConfigurationError("mongodb source needs a 'uri' credential (mongodb://... or mongodb+srv://...)")
            import pymongo

            client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=options.server_selection_timeout_ms,
                                         appname="docmill-sync")
        self.client = client

    def list_documents(self) -> Iterator[SourceDocument]:
        from pymongo.errors import OperationFailure, PyMongoError

        o = self.options
        coll = self.client[o.database][o.collection]
        try:
            cursor = coll.find(o.filter, projection=o.projection, batch_size=o.batch_size).sort("_id", 1)
            for raw in cursor:
                record = _plain(raw)
                raw_id = raw.get("_id")
                doc_id = str(raw_id)
                title = get_path(record, o.title_field) or f"{o.collection} {doc_id}"
                modified = get_path(raw, o.modified_field)
                version = f"m:{iso_utc(modified) or modified}" if modified is not None else content_version(record)
                data, ctype, ext = render_record(record, title=str(title), text_fields=o.text_fields, fmt=o.format)
                author = get_path(record, o.author_field)
                yield SourceDocument(
                    id=f"{o.database}.{o.collection}/{doc_id}",
                    key=f"{safe_segment(o.database)}/{safe_segment(o.collection)}/{safe_segment(doc_id)}{ext}",
                    version=version,
                    title=str(title),
                    author=str(author) if author else None,
                    url=o.url_template.format(id=doc_id) if o.url_template else None,
                    modified=iso_utc(modified) if modified is not None else None,
                    content_type=ctype,
                    content=data,
                )
        except OperationFailure as exc:
            if exc.code in (13, 18):  # Unauthorized, AuthenticationFailed
                raise ConnectorAuthError(f"mongodb: {exc}") from exc
            raise ConnectorError(f"mongodb: {exc}") from exc
        except PyMongoError as exc:
            raise ConnectorError(f"mongodb: {exc}") from exc

    def fetch(self, doc: SourceDocument) -> bytes:
        if doc.content is None:
            raise ConnectorError(f"{doc.id}: listed without its content")
        return doc.content

    def close(self) -> None:
        close = getattr(self.client, "close", None)
        if callable(close):
            close()
