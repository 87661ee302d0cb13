"""The incremental sync engine: list, compare with the saved state, move only what changed.

For each listed document:
- same id, same non-empty version, same destination key, object still there -> ``unchanged``
  (nothing fetched, nothing written);
- otherwise its bytes are fetched; if their sha256 equals the saved one (a touched file, a
  re-saved page) it stays ``unchanged`` and only the state's version moves; else it is
  written with its metadata -> ``added`` / ``updated``.
After a listing that completed, every previously synced document that the listing covered and
did not return is deleted at the destination -> ``deleted``; in the raw bucket that delete
raises the ObjectRemoved event that removes its chunks. A listing that failed (auth, rate
limit, network) deletes nothing: a partial listing must never read as mass deletion.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from docmill.connectors import metadata as md
from docmill.connectors.base import Connector, SourceDocument
from docmill.connectors.config import SourceConfig, SyncConfig, resolve_credentials
from docmill.connectors.registry import ConnectorRuntime, build_connector
from docmill.connectors.state import StateEntry, SyncState, load_state, save_state
from docmill.clock import utc_iso
from docmill.errors import ConnectorAuthError, ConnectorRateLimited, DocmillError
from docmill.storage import ObjectStore, is_s3_uri, open_store

DocStatus = Literal["added", "updated", "deleted", "unchanged", "failed"]
COUNTED: tuple[DocStatus, ...] = ("added", "updated", "deleted", "unchanged", "failed")


class DocumentOutcome(BaseModel):
    source: str
    id: str
    key: str
    status: DocStatus
    reason: str | None = None
    version: str | None = None
    uri: str | None = None


class SourceSyncReport(BaseModel):
    source: str
    type: str
    destination: str
    state: str
    added: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0
    failed: int = 0
    error: str | None = None  # the listing itself failed: nothing was deleted
    seconds: float = 0.0
    documents: list[DocumentOutcome] = Field(default_factory=list)

    def record(self, outcome: DocumentOutcome) -> None:
        self.documents.append(outcome)
        setattr(self, outcome.status, getattr(self, outcome.status) + 1)

    @property
    def ok(self) -> bool:
        return self.error is None and self.failed == 0


class SyncReport(BaseModel):
    sources: list[SourceSyncReport] = Field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.sources)

    def summary(self) -> dict[str, Any]:
        """The ``--json`` object: totals, every document's outcome, and per-source lines."""
        out: dict[str, Any] = {k: sum(getattr(s, k) for s in self.sources) for k in COUNTED}
        out["errors"] = [{"source": s.source, "error": s.error} for s in self.sources if s.error]
        out["documents"] = [d.model_dump() for s in self.sources for d in s.documents]
        out["sources"] = [s.model_dump(exclude={"documents"}) for s in self.sources]
        return out


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _unique_key(doc: SourceDocument, used: dict[str, str]) -> str:
    """Two different documents never share a destination key (the second gets an id suffix)."""
    key = doc.key.strip("/")
    owner = used.get(key)
    if owner is None or owner == doc.id:
        used[key] = doc.id
        return key
    stem, dot, ext = key.rpartition(".")
    suffix = hashlib.sha1(doc.id.encode(), usedforsecurity=False).hexdigest()[:8]
    key = f"{stem}-{suffix}.{ext}" if dot and "/" not in ext else f"{key}-{suffix}"
    used[key] = doc.id
    return key


def landed_metadata(
    doc: SourceDocument, *, source_type: str, source_name: str, sha256: str, synced_at: str
) -> dict[str, str]:
    return md.encode_metadata(
        {
            md.SOURCE_TYPE: source_type,
            md.SOURCE_NAME: source_name,
            md.SOURCE_ID: doc.id,
            md.SOURCE_URL: doc.url,
            md.TITLE: doc.title,
            md.AUTHOR: doc.author,
            md.MODIFIED: doc.modified,
            md.VERSION: doc.version,
            md.SHA256: sha256,
            md.SYNCED_AT: synced_at,
        }
    )


@dataclass
class _Job:
    """One document to fetch and (maybe) write, decided by the main thread."""

    doc: SourceDocument
    key: str
    prev: StateEntry | None
    present: bool
    data_sha: str | None = None
    written: bool = False
    error: BaseException | None = None


def _transfer(connector: Connector, job: _Job, destination: ObjectStore, source_name: str, synced_at: str) -> _Job:
    """Worker side: fetch the bytes, and write them unless they are the ones already landed."""
    try:
        data = connector.fetch(job.doc)
        job.data_sha = _sha256(data)
        if job.prev is not None and job.prev.sha256 == job.data_sha and job.prev.key == job.key and job.present:
            return job  # same bytes under a new version marker: nothing to move
        meta = landed_metadata(job.doc, source_type=connector.type, source_name=source_name, sha256=job.data_sha,
                               synced_at=synced_at)
        destination.write_bytes(job.key, data, content_type=job.doc.content_type, metadata=meta)
        job.written = True
    except BaseException as exc:  # noqa: BLE001 - handed back to the main thread, which decides what it means
        job.error = exc
    return job


def sync_source(
    connector: Connector,
    *,
    source_name: str,
    destination: ObjectStore,
    state_store: ObjectStore,
    workers: int = 4,
    checkpoint_every: int = 200,
    clock: Callable[[], float] = time.monotonic,
) -> SourceSyncReport:
    """Sync one source into ``destination``; the state is saved even when the run stops early.

    Listing and bookkeeping run on the calling thread; fetching and writing changed documents
    run on ``workers`` threads (bounded in flight, so memory stays at a few documents per
    worker). The state is checkpointed every ``checkpoint_every`` landed documents so a task
    killed mid-run does not transfer them again.
    """
    started = clock()
    dest_uri = destination.uri()
    state = load_state(state_store, source_name=source_name, source_type=connector.type, destination=dest_uri)
    report = SourceSyncReport(
        source=source_name, type=connector.type, destination=dest_uri, state=state_store.uri(f"{source_name}.json")
    )
    synced_at = utc_iso(zulu=True)
    existing = {info.key for info in destination.list() if not md.is_sync_internal(info.key)}
    used: dict[str, str] = {e.key: doc_id for doc_id, e in state.documents.items()}
    seen: set[str] = set()
    listing_complete = False
    since_checkpoint = 0
    pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix=f"sync-{source_name}")
    in_flight: set[Future[_Job]] = set()

    def settle(done: Iterable[Future[_Job]]) -> None:
        nonlocal since_checkpoint
        fatal: BaseException | None = None
        for fut in done:
            in_flight.discard(fut)
            job = fut.result()
            if isinstance(job.error, (ConnectorAuthError, ConnectorRateLimited)):
                fatal = fatal or job.error  # the whole source is affected: stop, delete nothing
                continue
            _commit(job, state, report, destination, existing, source_name)
            since_checkpoint += job.written
        if since_checkpoint >= checkpoint_every:
            save_state(state_store, state)
            since_checkpoint = 0
        if fatal is not None:
            raise fatal

    try:
        for doc in connector.list_documents():
            if doc.id in seen:
                continue  # a source that lists one document twice (paging overlap) moves it once
            seen.add(doc.id)
            prev = state.documents.get(doc.id)
            same_key = prev is not None and prev.key.strip("/") == doc.key.strip("/")
            key = prev.key if same_key and prev is not None else _unique_key(doc, used)
            present = key in existing
            if prev is not None and doc.version and prev.version == doc.version and prev.key == key and present:
                report.record(DocumentOutcome(source=source_name, id=doc.id, key=key, status="unchanged",
                                              version=doc.version))
                continue
            in_flight.add(pool.submit(_transfer, connector, _Job(doc, key, prev, present), destination,
                                      source_name, synced_at))
            if len(in_flight) >= 2 * max(1, workers):
                done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                settle(done)
        settle(wait(in_flight).done)
        listing_complete = True
    except DocmillError as exc:
        report.error = f"{exc.code}: {exc.message}"
    except Exception as exc:  # noqa: BLE001 - a connector bug or an unexpected library error: still report it
        report.error = f"{type(exc).__name__}: {exc}"
    finally:
        # Whatever is still running finishes and is recorded (its object may be written).
        for fut in wait(in_flight).done:
            job = fut.result()
            if not isinstance(job.error, (ConnectorAuthError, ConnectorRateLimited)):
                _commit(job, state, report, destination, existing, source_name)
        in_flight.clear()
        pool.shutdown(wait=True)
        if listing_complete:
            in_use = Counter(e.key for e in state.documents.values())
            for doc_id in sorted(set(state.documents) - seen):
                entry = state.documents[doc_id]
                if not connector.covers(doc_id, entry.model_dump()):
                    continue
                try:
                    if in_use[entry.key] <= 1:  # never delete an object another document now owns
                        destination.delete(entry.key)
                except DocmillError as exc:
                    report.record(DocumentOutcome(source=source_name, id=doc_id, key=entry.key, status="failed",
                                                  reason=f"delete failed: {exc.message}"))
                    continue
                in_use[entry.key] -= 1
                del state.documents[doc_id]
                report.record(DocumentOutcome(source=source_name, id=doc_id, key=entry.key, status="deleted",
                                              version=entry.version, uri=destination.uri(entry.key)))
        state.synced_at = synced_at
        save_state(state_store, state)
        connector.close()
        report.documents.sort(key=lambda d: (d.key, d.id))  # stable output whatever the thread timing
        report.seconds = round(clock() - started, 3)
    return report


def _commit(
    job: _Job,
    state: SyncState,
    report: SourceSyncReport,
    destination: ObjectStore,
    existing: set[str],
    source_name: str,
) -> None:
    """Main-thread side: record the outcome of one transfer in the state and the report."""
    doc, key, prev = job.doc, job.key, job.prev
    if job.error is not None:
        exc = job.error
        reason = exc.message if isinstance(exc, DocmillError) else f"{type(exc).__name__}: {exc}"
        if job.data_sha is not None:
            reason = f"write failed: {reason}"
        report.record(DocumentOutcome(source=source_name, id=doc.id, key=key, status="failed", reason=reason,
                                      version=doc.version))
        return
    if job.data_sha is None:  # the job succeeded, so it hashed what it read
        raise DocmillError(f"{doc.id}: fetched without a checksum")
    state.documents[doc.id] = StateEntry(key=key, version=doc.version, sha256=job.data_sha, modified=doc.modified,
                                         title=doc.title)
    if not job.written:
        report.record(DocumentOutcome(source=source_name, id=doc.id, key=key, status="unchanged", version=doc.version))
        return
    existing.add(key)
    if prev is not None and prev.key != key:
        # Renamed at the source (same id, new path): the old object goes, its chunks with it.
        # Left behind on failure; the next run does not know it any more, so report nothing more.
        with contextlib.suppress(DocmillError):
            destination.delete(prev.key)
        existing.discard(prev.key)
    status: DocStatus = "updated" if prev is not None and job.present else "added"
    report.record(DocumentOutcome(source=source_name, id=doc.id, key=key, status=status, version=doc.version,
                                  uri=destination.uri(key)))


def state_store_for(config: SyncConfig, source: SourceConfig, *, home: Path | None) -> ObjectStore:
    """Where a source's state lives: ``state.path`` > ``<home>/sync`` > ``<destination>/.docmill-sync``."""
    if config.state.path:
        return open_store(config.state.path)
    if home is not None:
        return open_store(str(Path(home) / "sync"))
    dest = config.destination_for(source).rstrip("/")
    return open_store(f"{dest}/{md.SYNC_STATE_DIR}" if is_s3_uri(dest) else str(Path(dest) / md.SYNC_STATE_DIR))


def run_sync(
    config: SyncConfig,
    *,
    environ: Mapping[str, str],
    home: Path | None = None,
    only: Iterable[str] | None = None,
    runtime: ConnectorRuntime | None = None,
) -> SyncReport:
    """Sync every configured source (or the ``only`` ones); one failing source does not stop the rest."""
    runtime = runtime or ConnectorRuntime()
    wanted = set(only or [])
    sources = [config.source(n) for n in wanted] if wanted else config.sources
    report = SyncReport()
    for source in sources:
        destination = open_store(config.destination_for(source))
        state_store = state_store_for(config, source, home=home)
        try:
            credentials = resolve_credentials(source.credentials, environ=environ)
            connector = build_connector(source, credentials, runtime)
        except DocmillError as exc:
            report.sources.append(
                SourceSyncReport(source=source.name, type=source.type, destination=destination.uri(),
                                 state=state_store.uri(f"{source.name}.json"), error=f"{exc.code}: {exc.message}")
            )
            continue
        report.sources.append(
            sync_source(connector, source_name=source.name, destination=destination, state_store=state_store,
                        workers=config.workers)
        )
    return report
