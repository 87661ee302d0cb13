"""Process (or forget) one version of one raw-bucket object: what the container Lambda, the ECS
task and ``docmill dev`` all run.

Idempotency comes from the ingestion layer: chunk ids are deterministic and ``source.json``
records the object version that was committed, so a re-delivered event for the same version is
a no-op (``skipped``). An event for a version that is no longer the current one is skipped too,
so a late, out-of-order delivery can never replace newer chunks with older ones.

Failures are classified: a problem of the document itself (corrupt, encrypted, empty,
unsupported ...) is *permanent*: recorded under ``collections/<c>/failures/<source_id>.json`` in
the processed bucket and not retried. Anything else (storage, index, embedding endpoint) is
recorded the same way and raised as ``TransientError`` so Lambda retries the invocation and,
when retries are spent, the event lands in the dead-letter queue.
"""

from __future__ import annotations

from typing import Any, Literal

from botocore.exceptions import ClientError
from pydantic import BaseModel, Field, field_validator

from docmill import aws
from docmill.clock import utc_iso
from docmill.errors import DocumentError, TransientError
from docmill.ingest import Ingestor
from docmill.ingest.sources import SourceRef, describe_s3_object, source_id_for
from docmill.models import FileResult
from docmill.names import collection_prefix
from docmill.runtime.context import Runtime
from docmill.runtime.keys import ignore_reason, placement_for_key, unsupported_reason


def _subclasses(cls: type[DocumentError]) -> set[type[DocumentError]]:
    out: set[type[DocumentError]] = set()
    for sub in cls.__subclasses__():
        out |= {sub} | _subclasses(sub)
    return out


#: error codes of failures that retrying cannot fix
PERMANENT_CODES = frozenset(
    {DocumentError.code, *(c.code for c in _subclasses(DocumentError))} | {"SourceNotFound", "EventParseError"}
)


class ProcessRequest(BaseModel):
    """One object version to process: the container Lambda's event and the ECS task's input."""

    bucket: str
    key: str
    version_id: str | None = None
    size: int | None = None
    alternate_key: str | None = None
    tenant: str | None = None
    collection: str | None = None
    event_name: str | None = None

    @field_validator("version_id", mode="before")
    @classmethod
    def _no_version(cls, value: object) -> object:
        # The large-file state machine passes "" for an unversioned object; S3 says "null".
        return None if value in ("", "null") else value


class ProcessOutcome(BaseModel):
    status: Literal["ok", "failed", "skipped"]
    source: str
    tenant: str
    collection: str
    reason: str | None = None
    error_code: str | None = None
    retryable: bool = False
    chunks: int = 0
    removed_chunks: int = 0
    result: dict[str, Any] | None = None
    failure_record: str | None = None
    extra: dict[str, Any] = Field(default_factory=dict)


def failure_key(collection: str, source_uri: str, tenant: str | None = None) -> str:
    return f"{collection_prefix(collection, tenant)}/failures/{source_id_for(source_uri)}.json"


def _not_found(exc: ClientError) -> bool:
    code = str(exc.response.get("Error", {}).get("Code", ""))
    return code in {"404", "NoSuchKey", "NoSuchVersion", "NotFound"} or exc.response.get(
        "ResponseMetadata", {}
    ).get("HTTPStatusCode") == 404


class ObjectProcessor:
    """Runs ingestion for single objects with the runtime's embedder, store and output."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.settings = runtime.settings

    def _placement(self, req: ProcessRequest) -> tuple[str, str]:
        p = placement_for_key(
            req.key, default_tenant=self.settings.tenant, default_collection=self.settings.aws.default_collection
        )
        return req.tenant or p.tenant, req.collection or p.collection

    def _ingestor(self, tenant: str, collection: str, *, embed: bool = True) -> Ingestor:
        rt = self.runtime
        options = self.settings.ingest.model_copy(update={"workers": 1})
        return Ingestor(
            output=rt.processed_store(),
            collection=collection,
            tenant=tenant,
            options=options,
            embedder=rt.embedder if embed else None,
            vector_store=rt.vector_store(),
        )

    # -- API document status ----------------------------------------------------------------

    def api_status(self, tenant: str, key: str, status: str, *, reason: str | None = None, chunks: int | None = None) -> None:
        """Objects uploaded through the chat API (``<tenant>/<collection>/<doc id>/<name>``)
        have a status record in the API's state table: the pipeline keeps it current."""
        from docmill.api.documents import document_id_in

        table = self.settings.api.state_table
        document_id = document_id_in("/" + key)
        if not table or not document_id:
            return
        from docmill.api.documents import record_status
        from docmill.api.state import DynamoState

        record_status(DynamoState(table, client=aws.client("dynamodb")), tenant, document_id,
                      status=status, reason=reason, chunks=chunks)

    # -- failure records ------------------------------------------------------------------

    def record_failure(
        self, *, req: ProcessRequest, tenant: str, collection: str, source: str, reason: str, code: str, retryable: bool
    ) -> str:
        store = self.runtime.processed_store()
        key = failure_key(collection, source, tenant)
        store.write_json(
            key,
            {
                "source": source,
                "status": "failed",
                "reason": reason,
                "error_code": code,
                "retryable": retryable,
                "bucket": req.bucket,
                "key": req.key,
                "version_id": req.version_id,
                "tenant": tenant,
                "collection": collection,
                "event_name": req.event_name,
                "recorded_at": utc_iso(),
            },
        )
        return store.uri(key)

    def clear_failure(self, collection: str, source: str, tenant: str | None = None) -> None:
        store = self.runtime.processed_store()
        key = failure_key(collection, source, tenant)
        if store.exists(key):
            store.delete(key)

    # -- created ----------------------------------------------------------------------------

    def _describe(self, req: ProcessRequest) -> SourceRef | None:
        keys = [req.key] + ([req.alternate_key] if req.alternate_key else [])
        for key in keys:
            try:
                ref = describe_s3_object(req.bucket, key, version_id=req.version_id)
            except ClientError as exc:
                if _not_found(exc):
                    continue
                raise TransientError(f"cannot read s3://{req.bucket}/{key}: {exc}") from exc
            if key != req.key:
                req.key = key
            return ref
        return None

    def _current_version(self, bucket: str, key: str) -> tuple[bool, str | None]:
        try:
            head = aws.client("s3").head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if _not_found(exc):
                return False, None
            raise TransientError(f"cannot stat s3://{bucket}/{key}: {exc}") from exc
        version = head.get("VersionId")
        return True, (version if version and version != "null" else None)

    def process(self, req: ProcessRequest) -> ProcessOutcome:
        tenant, collection = self._placement(req)
        source = f"s3://{req.bucket}/{req.key}"
        base = {"source": source, "tenant": tenant, "collection": collection}
        ignored = ignore_reason(req.key)
        if ignored:
            return ProcessOutcome(status="skipped", reason=ignored, **base)
        unsupported = unsupported_reason(req.key)
        if unsupported:
            record = self.record_failure(
                req=req, tenant=tenant, collection=collection, source=source, reason=unsupported,
                code="UnsupportedFileType", retryable=False,
            )
            self.api_status(tenant, req.key, "failed", reason=unsupported)
            return ProcessOutcome(status="failed", reason=unsupported, error_code="UnsupportedFileType", failure_record=record, **base)
        ref = self._describe(req)
        source = f"s3://{req.bucket}/{req.key}"
        base["source"] = source
        if ref is None:
            # Deleted before we got to it: the ObjectRemoved event cleans up; nothing to retry.
            return ProcessOutcome(status="skipped", reason="the object no longer exists", **base)
        if req.version_id:
            exists, current = self._current_version(req.bucket, req.key)
            if not exists:
                return ProcessOutcome(status="skipped", reason="the object was deleted after this event", **base)
            if current and current != req.version_id:
                return ProcessOutcome(
                    status="skipped", reason=f"superseded by a newer version ({current})", **base
                )
        self.api_status(tenant, req.key, "processing")
        result: FileResult = self._ingestor(tenant, collection).ingest_one(ref)
        payload = result.model_dump(mode="json")
        if result.status != "failed":
            self.clear_failure(collection, source, tenant)
            self.api_status(tenant, req.key, "indexed", chunks=result.chunks)
            return ProcessOutcome(status=result.status, reason=result.reason, chunks=result.chunks, result=payload, **base)
        code = result.error_code or "Unknown"
        retryable = code not in PERMANENT_CODES
        record = self.record_failure(
            req=req, tenant=tenant, collection=collection, source=source, reason=result.reason or "unknown failure",
            code=code, retryable=retryable,
        )
        outcome = ProcessOutcome(
            status="failed", reason=result.reason, error_code=code, retryable=retryable, result=payload,
            failure_record=record, **base,
        )
        if retryable:
            raise TransientError(f"{code}: {result.reason} ({source})")
        self.api_status(tenant, req.key, "failed", reason=result.reason)
        return outcome

    # -- removed ----------------------------------------------------------------------------

    def remove(self, req: ProcessRequest) -> ProcessOutcome:
        tenant, collection = self._placement(req)
        source = f"s3://{req.bucket}/{req.key}"
        base = {"source": source, "tenant": tenant, "collection": collection}
        if ignore_reason(req.key):
            return ProcessOutcome(status="skipped", reason=ignore_reason(req.key), **base)
        removed = 0
        kept: str | None = None
        # An EventBridge key may be spelled two ways (see events.py): forget whichever is gone.
        for key in [req.key] + ([req.alternate_key] if req.alternate_key else []):
            exists, current = self._current_version(req.bucket, key)
            if exists:
                # A non-current version was deleted, or the object was written again since: keep it.
                kept = current or "unversioned"
                continue
            uri = f"s3://{req.bucket}/{key}"
            removed += self._ingestor(tenant, collection, embed=False).delete_source(uri)
            self.clear_failure(collection, uri, tenant)
        if kept is not None and removed == 0:
            return ProcessOutcome(status="skipped", reason=f"a current version still exists ({kept})", **base)
        return ProcessOutcome(status="ok", reason="deleted", removed_chunks=removed, **base)


def process_object(runtime: Runtime, req: ProcessRequest) -> ProcessOutcome:
    """Process one object version (container Lambda, ECS task, local runtime)."""
    return ObjectProcessor(runtime).process(req)

