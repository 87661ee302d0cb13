"""Documents of a tenant: upload, status, list, delete.

An upload enters the same ingestion path as a file dropped in the raw bucket: it is written
under the raw key convention ``<tenant>/<collection>/<document id>/<file name>`` and then

* locally (``LocalIntake``), a background worker runs the library's ``Ingestor`` on it, exactly
  what the process function runs for a raw-bucket object, and records the status;
* on AWS (``RawBucketIntake``), it is put in the raw bucket, and the pipeline (route ->
  process, Lambda or ECS) does the rest and writes the status to the state table.

Status: ``queued`` -> ``processing`` -> ``indexed`` | ``failed`` (with the per-file reason).
"""

from __future__ import annotations

import re
import shutil
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from docmill.api.errors import InvalidRequest, NotFound, UnsupportedMedia
from docmill.api.ids import is_id, new_id
from docmill.api.state import StateStore, now_iso
from docmill.api.tenants import Principal, check_name
from docmill.documents.filetypes import detect
from docmill.errors import DocumentError, UnsupportedFileType

KIND = "document"
STATUSES = ("queued", "processing", "indexed", "failed")
_DOC_IN_URI = re.compile(r"/(doc_[0-9a-f]{22})/[^/]+$")


def raw_key(tenant: str, collection: str, document_id: str, name: str) -> str:
    return f"{tenant}/{collection}/{document_id}/{name}"


def document_id_in(source_uri: str) -> str | None:
    """The API document id inside a source URI (None for files ingested another way)."""
    match = _DOC_IN_URI.search(source_uri)
    return match.group(1) if match else None


def safe_name(filename: str | None) -> str:
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1].strip()
    name = re.sub(r"[\x00-\x1f]", "", name)
    if not name or name in (".", ".."):
        raise InvalidRequest("the upload has no file name")
    return name[:200]


def public(record: dict[str, Any]) -> dict[str, Any]:
    keys = ("id", "name", "collection", "status", "reason", "chunks", "size", "created", "updated", "metadata")
    return {k: record.get(k) for k in keys}


class Intake(ABC):
    """Where an accepted upload goes to be ingested, and how a deleted one is forgotten."""

    @abstractmethod
    def submit(self, tenant: str, record: dict[str, Any], data: bytes) -> str:
        """Store the bytes, start ingestion; return the source URI its chunks will carry."""

    @abstractmethod
    def remove(self, tenant: str, record: dict[str, Any]) -> None:
        """Remove the file, its outputs and its chunks."""

    def close(self) -> None:  # noqa: B027 - optional hook
        pass


class LocalIntake(Intake):
    """Files under ``<home>/raw`` (the raw bucket's key layout), ingested by one worker thread.

    One worker: ingestion embeds on the CPU, and two at once only contend for the same cores.
    """

    def __init__(self, home: Path, state: StateStore, *, ingestor_for: Callable[[str, str], Any]) -> None:
        self.raw_root = Path(home) / "raw"
        self.state = state
        self.ingestor_for = ingestor_for  # (tenant, collection) -> docmill.ingest.Ingestor
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="docmill-ingest")
        self._lock = threading.Lock()  # ingest and delete of the same tenant never interleave

    def _path(self, tenant: str, record: dict[str, Any]) -> Path:
        return self.raw_root / raw_key(tenant, record["collection"], record["id"], record["name"])

    def submit(self, tenant: str, record: dict[str, Any], data: bytes) -> str:
        path = self._path(tenant, record)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        self._pool.submit(self._ingest, tenant, dict(record), path)
        return path.resolve().as_uri()

    def _ingest(self, tenant: str, record: dict[str, Any], path: Path) -> None:
        from docmill.documents.process import SourceDescriptor
        from docmill.ingest.sources import SourceRef

        with self._lock:
            if self.state.update(tenant, KIND, record["id"], status="processing", updated=now_iso()) is None:
                return  # deleted while queued
            ref = SourceRef(
                descriptor=SourceDescriptor(uri=path.resolve().as_uri(), name=record["name"], size=path.stat().st_size,
                                            metadata=dict(record.get("metadata") or {})),
                local_path=path,
                mtime=path.stat().st_mtime,
            )
            try:
                result = self.ingestor_for(tenant, record["collection"]).ingest_one(ref)
                fields: dict[str, Any] = (
                    {"status": "failed", "reason": result.reason, "chunks": 0}
                    if result.status == "failed"
                    else {"status": "indexed", "reason": None, "chunks": result.chunks, "pages": result.pages}
                )
            except Exception as exc:  # noqa: BLE001 - one bad document never stops the worker
                fields = {"status": "failed", "reason": f"error: {getattr(exc, 'message', exc)}", "chunks": 0}
            self.state.update(tenant, KIND, record["id"], updated=now_iso(), **fields)

    def remove(self, tenant: str, record: dict[str, Any]) -> None:
        with self._lock:
            path = self._path(tenant, record)
            self.ingestor_for(tenant, record["collection"]).delete_source(path.resolve().as_uri())
            shutil.rmtree(path.parent, ignore_errors=True)

    def drain(self, timeout: float = 60.0) -> None:
        """Wait until every queued ingestion is done (tests, shutdown)."""
        self._pool.submit(lambda: None).result(timeout=timeout)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class RawBucketIntake(Intake):
    """AWS: the object goes to the raw bucket; the event-driven pipeline ingests it and writes
    the status (``docmill.api.documents.record_status``) to the state table."""

    def __init__(self, bucket: str, *, s3_client: Any) -> None:
        self.bucket = bucket
        self.s3 = s3_client

    def submit(self, tenant: str, record: dict[str, Any], data: bytes) -> str:
        key = raw_key(tenant, record["collection"], record["id"], record["name"])
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=data)
        return f"s3://{self.bucket}/{key}"

    def presigned_upload(self, tenant: str, record: dict[str, Any], *, max_bytes: int, expires_s: int = 900) -> dict[str, Any]:
        key = raw_key(tenant, record["collection"], record["id"], record["name"])
        post = self.s3.generate_presigned_post(
            Bucket=self.bucket, Key=key, Conditions=[["content-length-range", 1, max_bytes]], ExpiresIn=expires_s
        )
        return {"url": post["url"], "fields": post["fields"], "expires_in": expires_s}

    def remove(self, tenant: str, record: dict[str, Any]) -> None:
        # The ObjectRemoved event makes the pipeline drop the outputs and the chunks.
        key = raw_key(tenant, record["collection"], record["id"], record["name"])
        self.s3.delete_object(Bucket=self.bucket, Key=key)


def record_status(state: StateStore, tenant: str, document_id: str, *, status: str, reason: str | None = None,
                  chunks: int | None = None) -> bool:
    """What the pipeline calls when it starts, finishes or fails an API document (AWS)."""
    fields: dict[str, Any] = {"status": status, "reason": reason, "updated": now_iso()}
    if chunks is not None:
        fields["chunks"] = chunks
    return state.update(tenant, KIND, document_id, **fields) is not None


class DocumentService:
    def __init__(self, state: StateStore, intake: Intake, *, default_collection: str = "default") -> None:
        self.state = state
        self.intake = intake
        self.default_collection = default_collection

    def _new_record(self, principal: Principal, filename: str | None, size: int, collection: str | None,
                    metadata: dict[str, Any] | None) -> dict[str, Any]:
        now = now_iso()
        return {
            "id": new_id("doc"),
            "name": safe_name(filename),
            "collection": check_name(collection or self.default_collection, "collection"),
            "status": "queued",
            "reason": None,
            "chunks": 0,
            "size": size,
            "created": now,
            "updated": now,
            "uploaded_by": principal.user,
            "metadata": metadata or {},
        }

    def upload(self, principal: Principal, filename: str | None, data: bytes, *, collection: str | None = None,
               metadata: dict[str, Any] | None = None) -> dict[str, Any]:
        record = self._new_record(principal, filename, len(data), collection, metadata)
        try:
            detect(record["name"], data)  # refuse what can be refused before any work
        except UnsupportedFileType as exc:
            raise UnsupportedMedia(exc.reason) from None
        except DocumentError as exc:
            raise InvalidRequest(exc.reason) from None
        self.state.put(principal.tenant, KIND, record["id"], record)
        try:
            record["source_uri"] = self.intake.submit(principal.tenant, record, data)
        except Exception:
            self.state.delete(principal.tenant, KIND, record["id"])
            raise
        self.state.update(principal.tenant, KIND, record["id"], source_uri=record["source_uri"])
        return record

    def presign(self, principal: Principal, filename: str | None, *, collection: str | None, max_bytes: int) -> dict[str, Any]:
        if not isinstance(self.intake, RawBucketIntake):
            raise InvalidRequest("presigned uploads exist on AWS only; POST /api/v1/documents takes the file here")
        record = self._new_record(principal, filename, 0, collection, None)
        self.state.put(principal.tenant, KIND, record["id"], record)
        return {"id": record["id"], "status": "queued",
                **self.intake.presigned_upload(principal.tenant, record, max_bytes=max_bytes)}

    def get(self, principal: Principal, document_id: str) -> dict[str, Any]:
        record = self.state.get(principal.tenant, KIND, document_id) if is_id(document_id, "doc") else None
        if record is None:
            raise NotFound(f"no document {document_id!r}")
        return record

    def list(self, principal: Principal, collection: str | None = None) -> list[dict[str, Any]]:
        records = self.state.list(principal.tenant, KIND)
        return [r for r in records if collection is None or r["collection"] == collection]

    def delete(self, principal: Principal, document_id: str) -> dict[str, Any]:
        record = self.get(principal, document_id)
        self.state.delete(principal.tenant, KIND, document_id)
        self.intake.remove(principal.tenant, record)
        return record
