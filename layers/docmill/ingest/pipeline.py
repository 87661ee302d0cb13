"""Run ingestion over many sources: parallel partitioning, batched embedding, atomic outputs.

Layout under the output root (a folder or an S3 prefix):

    <root>/sources/<source_id>/elements.json
    <root>/sources/<source_id>/chunks.jsonl
    <root>/sources/<source_id>/source.json   (written last: the commit marker)
    <root>/runs/<run_id>.json                (the per-run manifest)

where ``<root>`` is ``collections/<collection>`` for the default tenant and
``tenants/<tenant>/collections/<collection>`` for any other (``docmill.names``).

A source whose ``source.json`` matches the file (same version or same sha256) and the same
settings fingerprint is skipped as unchanged.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from docmill import __version__
from docmill.clock import utc_iso, utc_now
from docmill.config import IngestOptions
from docmill.documents.filetypes import SUPPORTED, TEXT_TYPES, extension_of
from docmill.documents.process import CheckedFile, ProcessedDocument, check_file, process_file, sha256_file
from docmill.documents.split import (
    PartitionedRange,
    RangeAssembler,
    page_ranges,
    partition_pdf_range,
    pdf_page_count,
    should_split,
)
from docmill.embeddings.base import Embedder
from docmill.errors import DocmillError, DocumentError
from docmill.ingest.sources import SourceRef, discover_sources, prune_scopes, source_id_for
from docmill.ingest.workers import WorkerPool
from docmill.models import FileResult, IngestReport
from docmill.names import collection_prefix, validate_name
from docmill.storage import ObjectStore
from docmill.vectorstores.base import VectorStore

logger = logging.getLogger(__name__)


class IngestProgress(Protocol):
    def started(self, total_files: int) -> None: ...
    def file_started(self, source: str) -> None: ...
    def file_finished(self, result: FileResult) -> None: ...


SMALL_BATCH_BYTES = 512 * 1024
# With per-file limits on, plain text runs in-process only up to this much in all: the slowest
# text measured (one-line paragraphs, each classified by Unstructured) parses at ~200 KB in
# 45 s and +180 MB on a loaded 2-core machine, so 64 KB stays well inside the default limits.
INLINE_TEXT_BYTES = 64 * 1024
LIMIT_FIELDS = {"max_file_bytes", "max_pages", "max_ocr_pages", "max_unzipped_bytes", "max_zip_ratio", "max_zip_members"}
# Chunks per embedding task given to a worker: enough to amortise the round trip, few enough
# that both workers share one document's chunks.
EMBED_TASK_CHUNKS = 32
# A PDF at least this large counts as splittable when choosing how many workers to start (its
# page count decides once it is open), so one large PDF alone still gets parallel workers.
SPLIT_CANDIDATE_BYTES = 256 * 1024


def _warm_worker(embedder: Callable[[], Embedder] | None = None) -> None:
    """Run once in each worker before its first file: the imports every partition needs, and
    the embedding model when workers embed, so the memory they take is the worker's baseline,
    not charged to the first file (or embedding task) against its memory limit."""
    from docmill.documents.unstructured_setup import configure_unstructured

    configure_unstructured()
    import unstructured.partition.auto  # noqa: F401

    if embedder is not None:
        embedder().embed_documents(["warm up"])


def _check_worker(path: str, descriptor: Any, options: IngestOptions, lenient_pdf: bool) -> CheckedFile:
    return check_file(Path(path), descriptor, options, lenient_pdf)


def _process_worker(
    path: str, descriptor: Any, collection: str, tenant: str, options: IngestOptions, lenient_pdf: bool
) -> ProcessedDocument:
    return process_file(
        Path(path), descriptor, collection=collection, tenant=tenant, options=options, lenient_pdf=lenient_pdf
    )


def _embed_worker(factory: Callable[[], Embedder], texts: list[str]) -> tuple[list[list[float]], float]:
    clock = time.perf_counter()
    vectors = factory().embed_documents(texts)
    return vectors, time.perf_counter() - clock


@dataclass
class _Pending:
    ref: SourceRef
    started: float
    future: Future[ProcessedDocument] | None = None
    cleanup: Any = None
    result: ProcessedDocument | None = None
    error: BaseException | None = None
    split: _Split | None = None
    outstanding: int = 0  # futures of this source still in the pool
    # Embedding handed to the workers: each task's chunks.
    embeds: dict[Future[Any], list[Any]] = field(default_factory=dict)
    # Seconds spent embedding before the commit (early chunks of a split PDF, worker tasks).
    embed_seconds: float = 0.0


@dataclass
class _Split:
    """A PDF partitioned as page ranges: the checks and the ranges run as separate tasks."""

    path: str
    assembler: RangeAssembler
    check: Future[CheckedFile]
    parts: list[Future[PartitionedRange]]
    checked: CheckedFile | None = None
    whole: Future[ProcessedDocument] | None = None  # the whole-file path, when no range had text


@dataclass
class Ingestor:
    """Ingest sources into ``output`` (and ``vector_store`` when given) for one collection."""

    output: ObjectStore
    collection: str
    tenant: str = "default"
    options: IngestOptions = field(default_factory=IngestOptions)
    embedder: Embedder | Callable[[], Embedder] | None = None
    vector_store: VectorStore | None = None
    progress: IngestProgress | None = None
    lenient_pdf: bool = False
    s3_client: Any | None = None
    # With a lazy embedder (a factory), the model id the settings fingerprint needs; when it is
    # not given the embedder is loaded to ask it.
    embedding_model_id: str | None = None

    def __post_init__(self) -> None:
        validate_name("collection", self.collection)
        validate_name("tenant", self.tenant)
        self._root = self.output.child(collection_prefix(self.collection, self.tenant))
        self._embedder: Embedder | None = self.embedder if isinstance(self.embedder, Embedder) else None
        self._index_ready = False
        self._embed_threads = 0  # 0: the embedder's own choice
        self._worker_embedder: Callable[[], Embedder] | None = None  # set while workers embed

    # -- public API -------------------------------------------------------------------------

    def run(self, inputs: Sequence[str], *, prune: bool = False) -> IngestReport:
        """Ingest ``inputs``; with ``prune``, also forget every source of this collection that
        lies under one of the inputs but is no longer there (deleted or renamed)."""
        sources = discover_sources(inputs, s3_client=self.s3_client)
        scopes = prune_scopes(inputs, sources) if prune else None
        return self.run_sources(sources, prune=scopes)

    def run_sources(self, sources: Sequence[SourceRef], *, prune: Sequence[str] | None = None) -> IngestReport:
        started = time.perf_counter()
        report = IngestReport(
            run_id=utc_now().strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:8],
            collection=self.collection,
            tenant=self.tenant,
            started_at=utc_iso(),
            docmill_version=__version__,
            settings=self._settings_summary(),
        )
        if self.progress:
            self.progress.started(len(sources))
        todo: list[SourceRef] = []
        for ref in sources:
            early = self._early_result(ref)
            if early is not None:
                self._finish(report, early)
            else:
                todo.append(ref)
        workers = self._worker_count(todo)
        if workers <= 1 and self._inline_is_safe(todo):
            for ref in todo:
                self._finish(report, self._complete(self._run_inline(ref)))
        else:
            self._run_parallel(todo, workers, report)
        if prune:
            report.pruned = self._prune(prune, {ref.uri for ref in sources})
        if self.vector_store is not None:
            self.vector_store.refresh()  # one refresh per run: OpenSearch writes become searchable
        report.finished_at = utc_iso()
        report.totals.seconds = time.perf_counter() - started
        report.summarise()
        self._root.write_json(f"runs/{report.run_id}.json", report.model_dump(mode="json"))
        return report

    def ingest_one(self, ref: SourceRef) -> FileResult:
        """Process one source in this process (what a Lambda or ECS task does)."""
        early = self._early_result(ref)
        result = early if early is not None else self._complete(self._run_inline(ref))
        if self.vector_store is not None:
            self.vector_store.refresh()
        return result

    def delete_source(self, source_uri: str) -> int:
        """Forget a source: its outputs and its chunks in the index. Returns chunks removed."""
        removed = 0
        if self.vector_store is not None:
            removed = self.vector_store.delete_source(self.collection, source_uri, tenant=self.tenant)
        prefix = f"sources/{source_id_for(source_uri)}/"
        state = self._read_state(source_uri)
        self._root.delete_prefix(prefix)
        return removed or (state or {}).get("chunks", 0)

    def _prune(self, scopes: Sequence[str], present: set[str]) -> list[str]:
        """Forget the sources under ``scopes`` (a URI, or a prefix ending in "/") not in ``present``."""
        gone: list[str] = []
        for info in list(self._root.list("sources/")):
            if not info.key.endswith("/source.json"):
                continue
            try:
                uri = self._root.read_json(info.key).get("source_uri")
            except (DocmillError, ValueError, AttributeError):
                continue
            if not uri or uri in present:
                continue
            if any(uri == s or (s.endswith("/") and uri.startswith(s)) for s in scopes):
                self.delete_source(uri)
                gone.append(uri)
        return sorted(gone)

    # -- internals --------------------------------------------------------------------------

    def _settings_summary(self) -> dict[str, Any]:
        return {
            "chunking": self.options.chunking.model_dump(),
            # Limits decide whether a file is refused, not what an accepted file yields.
            "partition": self.options.partition.model_dump(exclude=LIMIT_FIELDS),
            "embedding_model": self._embedding_model_id(),
            "lenient_pdf": self.lenient_pdf,
        }

    def _embedding_model_id(self) -> str | None:
        if self._embedder is None and self.embedding_model_id:
            return self.embedding_model_id
        embedder = self._get_embedder()
        return embedder.model_id if embedder is not None else None

    def _fingerprint(self) -> str:
        blob = json.dumps(self._settings_summary(), sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def _get_embedder(self) -> Embedder | None:
        if self._embedder is None and callable(self.embedder):
            self._embedder = self.embedder()
            if self._embed_threads:
                self._embedder.set_threads(self._embed_threads)
        return self._embedder

    def _worker_count(self, todo: Sequence[SourceRef]) -> int:
        splittable = any(_split_candidate(r) for r in todo)
        if not self.options.workers and not splittable and sum(r.descriptor.size or 0 for r in todo) < SMALL_BATCH_BYTES:
            # Starting worker processes (each imports Unstructured) costs more than a few small
            # files take to parse; an explicit --workers still wins.
            return 1
        wanted = self.options.workers or len(os.sched_getaffinity(0))
        # A large PDF is split into page ranges, so it alone can keep every worker busy.
        units = sum(wanted if _split_candidate(r) else 1 for r in todo)
        return max(1, min(wanted, units))

    def _inline_is_safe(self, todo: Sequence[SourceRef]) -> bool:
        """Whether a batch may run in this process, outside the per-file limits.

        A limit can only be enforced on a process that can be killed without losing the run,
        so with limits on, only a few KB of plain text runs here: nothing in it expands (its
        bytes are decoded by the checks before any parser sees them), so its cost is bounded
        by its size (INLINE_TEXT_BYTES in all). Anything that can expand (ZIP packages, PDFs,
        images for OCR, e-mail) goes to a limited worker, even alone: one spawn (a few seconds)
        is the price of a bomb not taking down the run."""
        options = self.options
        if not (options.file_timeout_s or options.file_memory_mb):
            return True
        plain = all(SUPPORTED.get(extension_of(r.descriptor.name), ("", False))[0] in TEXT_TYPES for r in todo)
        return plain and sum(r.descriptor.size or 0 for r in todo) < INLINE_TEXT_BYTES

    def _state_key(self, source_uri: str) -> str:
        return f"sources/{source_id_for(source_uri)}/source.json"

    def _read_state(self, source_uri: str) -> dict[str, Any] | None:
        key = self._state_key(source_uri)
        try:
            return self._root.read_json(key) if self._root.exists(key) else None
        except (DocmillError, ValueError):
            return None

    def _early_result(self, ref: SourceRef) -> FileResult | None:
        """A result without processing: input errors, and unchanged files."""
        if ref.error:
            return FileResult(source=ref.uri, status="failed", reason=ref.error, error_code=ref.error_code)
        if self.options.force:
            return None
        state = self._read_state(ref.uri)
        if not state or state.get("status") != "ok" or state.get("fingerprint") != self._fingerprint():
            return None
        same = False
        if ref.local_path is not None:
            stats_kept = ref.ctime is not None and state.get("mtime") == ref.mtime and state.get("ctime") == ref.ctime
            if state.get("size") == ref.descriptor.size and stats_kept:
                same = True
            elif state.get("size") == ref.descriptor.size:
                # Same size, but touched since (or copied with its mtime kept): the content decides.
                same = state.get("sha256") == sha256_file(ref.local_path)
                if same:
                    # Record the new times, so that the file is not hashed again on every run.
                    self._root.write_json(self._state_key(ref.uri), {**state, "mtime": ref.mtime, "ctime": ref.ctime})
        else:
            same = ref.descriptor.version is not None and state.get("observed_version") == ref.descriptor.version
        if not same:
            return None
        return FileResult(
            source=ref.uri,
            status="skipped",
            reason="unchanged since the last ingest",
            file_type=state.get("file_type"),
            pages=state.get("pages"),
            elements=state.get("elements", 0),
            chunks=state.get("chunks", 0),
            sha256=state.get("sha256"),
            version=state.get("version"),
            bytes=ref.descriptor.size,
        )

    def _run_inline(self, ref: SourceRef) -> _Pending:
        pending = _Pending(ref=ref, started=time.perf_counter())
        if self.progress:
            self.progress.file_started(ref.uri)
        try:
            with ref.materialise(self.s3_client) as path:
                pending.result = process_file(
                    path,
                    ref.descriptor,
                    collection=self.collection,
                    tenant=self.tenant,
                    options=self.options,
                    lenient_pdf=self.lenient_pdf,
                )
        except BaseException as exc:
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            pending.error = exc
        return pending

    def _run_parallel(self, todo: list[SourceRef], workers: int, report: IngestReport) -> None:
        # Largest first, so one big file does not start last and leave the other cores idle.
        queue = sorted(todo, key=lambda r: -(r.descriptor.size or 0))
        in_flight: dict[Future[Any], _Pending] = {}
        active = 0
        # Bounded look-ahead: S3 sources are downloaded only shortly before a worker needs them.
        max_in_flight = workers * 2
        # The workers have the cores: one embedding thread beside them, measured faster than
        # letting the embedder's threads fight the workers (bench/ingest.py).
        cores = len(os.sched_getaffinity(0))
        self._embed_threads = max(1, cores - workers)
        if workers >= cores:
            # Every core has a worker: embedding goes to them too (one thread each), so it
            # runs on all cores beside the partitioning and after it, instead of one thread here.
            embedder = self._get_embedder()
            self._worker_embedder = embedder.worker_factory() if embedder is not None else None
        if self._embedder is not None:
            self._embedder.set_threads(self._embed_threads)
        try:
            # Spawned workers that die with this process, even on kill -9, and are killed and
            # replaced when one file goes past its time or memory limit (docmill.ingest.workers).
            with WorkerPool(
                workers, timeout_s=self.options.file_timeout_s, memory_mb=self.options.file_memory_mb,
                warm_up=functools.partial(_warm_worker, self._worker_embedder), preload=("docmill.ingest.worker_preload",),
            ) as pool:
                while queue or in_flight:
                    while queue and active < max_in_flight:
                        pending = self._submit(pool, queue.pop(0), workers)
                        if pending.outstanding == 0:
                            self._finish(report, self._complete(pending))
                            continue
                        active += 1
                        for future in self._futures_of(pending):
                            in_flight[future] = pending
                    if not in_flight:
                        continue
                    # Embed and write each result as it arrives, while the pool keeps partitioning.
                    done, _ = wait(list(in_flight), return_when=FIRST_COMPLETED)
                    for future in done:
                        pending = in_flight.pop(future)
                        pending.outstanding -= 1
                        extras: list[Future[Any]] = []
                        if future in pending.embeds:
                            self._embedded(pending, future)
                        elif pending.split is not None:
                            extras = self._split_progress(pool, pending, future)
                        else:
                            try:
                                pending.result = future.result()
                            except BaseException as exc:  # noqa: BLE001 - reported per file
                                pending.error = exc
                            else:
                                extras = self._submit_embeds(pool, pending, pending.result.chunks)
                        for extra in extras:
                            in_flight[extra] = pending
                            pending.outstanding += 1
                        if pending.outstanding:
                            continue
                        if pending.result is not None and pending.embed_seconds:
                            phases = pending.result.phases
                            phases["embed"] = phases.get("embed", 0.0) + pending.embed_seconds
                        active -= 1
                        if pending.cleanup is not None:
                            pending.cleanup.__exit__(None, None, None)
                        self._finish(report, self._complete(pending))
        finally:
            self._embed_threads = 0
            self._worker_embedder = None
            if self._embedder is not None:
                self._embedder.set_threads(cores)

    @staticmethod
    def _futures_of(pending: _Pending) -> list[Future[Any]]:
        split = pending.split
        if split is None:
            own: list[Future[Any]] = [pending.future] if pending.future is not None else []
        else:
            own = [split.check, *split.parts, *([split.whole] if split.whole is not None else [])]
        return [*own, *pending.embeds]

    def _submit(self, pool: WorkerPool, ref: SourceRef, workers: int) -> _Pending:
        pending = _Pending(ref=ref, started=time.perf_counter())
        if self.progress:
            self.progress.file_started(ref.uri)
        try:
            cm = ref.materialise(self.s3_client)
            path = cm.__enter__()
            pending.cleanup = cm
            pages = pdf_page_count(path) if ref.descriptor.name.lower().endswith(".pdf") and workers > 1 else None
            if should_split(self.options, pages, workers):
                ranges = page_ranges(pages or 0, self.options.split_pages)
                check = pool.submit(_check_worker, str(path), ref.descriptor, self.options, self.lenient_pdf)
                parts = [
                    pool.submit(partition_pdf_range, str(path), ref.descriptor.name, start, end, self.options.partition)
                    for start, end in ranges
                ]
                assembler = RangeAssembler(ref.descriptor, self.collection, self.tenant, self.options, ranges)
                pending.split = _Split(path=str(path), assembler=assembler, check=check, parts=parts)
                pending.outstanding = 1 + len(parts)
            else:
                pending.future = pool.submit(
                    _process_worker, str(path), ref.descriptor, self.collection, self.tenant, self.options, self.lenient_pdf
                )
                pending.outstanding = 1
        except Exception as exc:  # noqa: BLE001 - e.g. the S3 object vanished; reported per file
            pending.error = exc
            pending.outstanding = 0
            if pending.cleanup is not None:
                pending.cleanup.__exit__(None, None, None)
                pending.cleanup = None
        return pending

    def _split_progress(self, pool: WorkerPool, pending: _Pending, future: Future[Any]) -> list[Future[Any]]:
        """Take one finished task of a split PDF; embed the chunks it completes. Returns new tasks."""
        split = pending.split
        if split is None:
            raise RuntimeError(f"{pending.ref.uri}: a split-PDF task without its split")
        if pending.error is not None:
            return []  # already failed: what is still running is ignored
        new: list[Future[Any]] = []
        try:
            value = future.result()
            if future is split.check:
                split.checked = value
            elif future is split.whole:
                pending.result = value
                return self._submit_embeds(pool, pending, value.chunks)
            else:
                if not isinstance(value, PartitionedRange):
                    raise TypeError(f"a page-range task returned {type(value).__name__}")
                new += self._embed_early(pool, pending, split.assembler.add(value))
            if not split.assembler.complete or split.checked is None:
                return new
            if split.assembler.needs_ocr:
                split.whole = pool.submit(
                    _process_worker, split.path, pending.ref.descriptor, self.collection, self.tenant,
                    self.options, self.lenient_pdf,
                )
                return [*new, split.whole]
            last, doc = split.assembler.finish(split.checked)
            new += self._embed_early(pool, pending, last)
            pending.result = doc
            return new
        except BaseException as exc:
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            self._fail(pending, exc)
        return []

    def _embed_early(self, pool: WorkerPool, pending: _Pending, records: list[Any]) -> list[Future[Any]]:
        """Embed the chunks a split PDF has completed so far: on the workers when they embed
        (the futures returned), else here, while the workers go on partitioning."""
        embedder = self._get_embedder()
        if embedder is None or not records:
            return []
        if self._worker_embedder is not None:
            return self._submit_embeds(pool, pending, records)
        clock = time.perf_counter()
        vectors = embedder.embed_documents([r.text for r in records])
        for record, vector in zip(records, vectors, strict=True):
            record.embedding = vector
            record.embedding_model = embedder.model_id
        pending.embed_seconds += time.perf_counter() - clock
        return []

    def _submit_embeds(self, pool: WorkerPool, pending: _Pending, chunks: Sequence[Any]) -> list[Future[Any]]:
        """Hand ``chunks`` to the workers to embed, ahead of queued partitioning; none when the
        embedder stays in this process (``_commit`` embeds them then)."""
        factory = self._worker_embedder
        if factory is None or not chunks:
            return []
        futures = []
        for start in range(0, len(chunks), EMBED_TASK_CHUNKS):
            part = list(chunks[start : start + EMBED_TASK_CHUNKS])
            future = pool.submit(_embed_worker, factory, [c.text for c in part], first=True)
            pending.embeds[future] = part
            futures.append(future)
        return futures

    def _embedded(self, pending: _Pending, future: Future[Any]) -> None:
        chunks = pending.embeds.pop(future)
        if pending.error is not None:
            return
        try:
            vectors, seconds = future.result()
        except BaseException as exc:  # noqa: BLE001 - reported per file
            self._fail(pending, exc)
            return
        model_id = self._embedding_model_id()
        for chunk, vector in zip(chunks, vectors, strict=True):
            chunk.embedding = vector
            chunk.embedding_model = model_id
        pending.embed_seconds += seconds

    def _fail(self, pending: _Pending, exc: BaseException) -> None:
        pending.error = exc
        for other in self._futures_of(pending):
            other.cancel()  # those not started yet; running ones finish and are ignored

    def _complete(self, pending: _Pending) -> FileResult:
        """Embed, write and index one processed document; any failure becomes a failed result."""
        ref = pending.ref
        if pending.error is None and pending.result is not None:
            try:
                embed_started = time.perf_counter()
                result = self._commit(pending.result, ref)
                # Time spent on this file: its processing plus embedding and writing, not queueing.
                result.seconds = pending.result.seconds + (time.perf_counter() - embed_started)
                return result
            except BaseException as exc:
                if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                    raise
                pending.error = exc
        reason, code = _reason(pending.error)
        # No partial output may outlive a failed source, and the index must not keep chunks of
        # a version that is no longer the current one.
        try:
            self.delete_source(ref.uri)
        except Exception:  # the failure being reported matters more; this one is only logged
            logger.warning("could not remove partial output of %s", ref.uri, exc_info=True)
        return FileResult(
            source=ref.uri,
            status="failed",
            reason=reason,
            error_code=code,
            bytes=ref.descriptor.size,
            seconds=time.perf_counter() - pending.started,
        )

    def _commit(self, doc: ProcessedDocument, ref: SourceRef) -> FileResult:
        version = ref.descriptor.version or f"sha256:{doc.sha256[:16]}"
        chunks = doc.chunks
        for chunk in chunks:
            chunk.source_version = version
        phases = dict(doc.phases)
        clock = time.perf_counter()
        embedder = self._get_embedder()
        todo = [c for c in chunks if c.embedding is None]  # a split PDF's chunks come embedded
        if embedder is not None and todo:
            vectors = embedder.embed_documents([c.text for c in todo])
            for chunk, vector in zip(todo, vectors, strict=True):
                chunk.embedding = vector
                chunk.embedding_model = embedder.model_id
        phases["embed"] = phases.get("embed", 0.0) + time.perf_counter() - clock
        clock = time.perf_counter()
        source_dir = f"sources/{source_id_for(ref.uri)}"
        self._root.write_json(f"{source_dir}/elements.json", doc.elements)
        self._root.write_jsonl(f"{source_dir}/chunks.jsonl", (c.model_dump(mode="json") for c in chunks))
        phases["write"] = time.perf_counter() - clock
        clock = time.perf_counter()
        if self.vector_store is not None:
            if not self._index_ready:
                dimension = len(chunks[0].embedding or []) if chunks else 0
                self.vector_store.ensure_index(dimension or (embedder.dimension if embedder else 384))
                self._index_ready = True
            # What survives is decided by chunk id, so a re-chunked file with the same version
            # (or one that now yields no chunks) leaves nothing stale behind.
            result = self.vector_store.replace_source(self.collection, ref.uri, chunks, tenant=self.tenant)
            if result.errors:
                raise DocmillError(f"the index refused {len(result.errors)} chunks: {result.errors[0]}")
        phases["index"] = time.perf_counter() - clock
        clock = time.perf_counter()
        state = {
            "status": "ok",
            "source_uri": ref.uri,
            "version": version,
            "observed_version": ref.descriptor.version,
            "sha256": doc.sha256,
            "size": ref.descriptor.size,
            "mtime": ref.mtime,
            "ctime": ref.ctime,
            "file_type": doc.file_type,
            "strategy": doc.strategy,
            "pages": doc.pages,
            "elements": len(doc.elements),
            "chunks": len(chunks),
            "fingerprint": self._fingerprint(),
            "ingested_at": utc_iso(),
            "docmill_version": __version__,
            "metadata": ref.descriptor.metadata,
        }
        self._root.write_json(f"{source_dir}/source.json", state)
        phases["write"] += time.perf_counter() - clock
        return FileResult(
            source=ref.uri,
            status="ok",
            file_type=doc.file_type,
            pages=doc.pages,
            elements=len(doc.elements),
            chunks=len(chunks),
            bytes=ref.descriptor.size,
            sha256=doc.sha256,
            version=version,
            outputs={
                "elements": self._root.uri(f"{source_dir}/elements.json"),
                "chunks": self._root.uri(f"{source_dir}/chunks.jsonl"),
            },
            phases={k: round(v, 4) for k, v in phases.items()},
        )

    def _finish(self, report: IngestReport, result: FileResult) -> None:
        report.files.append(result)
        if self.progress:
            self.progress.file_finished(result)


def _split_candidate(ref: SourceRef) -> bool:
    return ref.descriptor.name.lower().endswith(".pdf") and (ref.descriptor.size or 0) >= SPLIT_CANDIDATE_BYTES


def _reason(exc: BaseException | None) -> tuple[str, str]:
    if isinstance(exc, DocumentError):
        return exc.reason, exc.code
    if isinstance(exc, DocmillError):
        return exc.message, exc.code
    if isinstance(exc, MemoryError):
        return "ran out of memory while processing; lower the size or page limits", "MemoryError"
    if exc is None:
        return "unknown failure", "Unknown"
    # A crashed worker process (e.g. killed for memory) surfaces as BrokenProcessPool.
    return f"{type(exc).__name__}: {exc}"[:300], type(exc).__name__
