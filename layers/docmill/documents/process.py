"""One file in, cleaned elements and chunk records (not yet embedded) out.

Runs in worker processes, so it takes and returns only picklable values.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from docmill import __version__
from docmill.config import IngestOptions
from docmill.documents.chunk import ChunkDraft, chunk_elements
from docmill.documents.clean import clean_elements
from docmill.documents.filetypes import FileKind, detect
from docmill.documents.partition import ensure_not_empty, partition_file
from docmill.documents.pdf import inspect_pdf
from docmill.errors import DocumentTooLarge
from docmill.models import ChunkRecord, chunk_id_for


class SourceDescriptor(BaseModel):
    """Identity of one source version; everything lineage needs."""

    uri: str
    name: str  # file name used for type detection and display
    version: str | None = None
    size: int | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class ProcessedDocument(BaseModel):
    source: SourceDescriptor
    sha256: str
    file_type: str
    strategy: str
    pages: int | None
    elements: list[dict[str, Any]]
    chunks: list[ChunkRecord]
    seconds: float
    # Seconds per phase (checks, partition, clean, chunk; the pipeline adds embed, write, index).
    phases: dict[str, float] = Field(default_factory=dict)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class CheckedFile:
    """What the checks before partitioning learnt about a file."""

    sha256: str
    kind: FileKind
    pdf_pages: int | None
    seconds: float


def check_file(path: Path, source: SourceDescriptor, options: IngestOptions, lenient_pdf: bool = False) -> CheckedFile:
    """Size limit, hash, type and (PDF) structure checks; a ``DocumentError`` when refused."""
    started = time.perf_counter()
    popts = options.partition
    size = path.stat().st_size
    if size > popts.max_file_bytes:
        raise DocumentTooLarge(
            f"{size / 1e6:.1f} MB is over the limit of {popts.max_file_bytes / 1e6:.1f} MB (raise --max-file-mb)"
        )
    data = path.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    kind = detect(source.name, data, popts)
    pdf_pages = None
    if kind.file_type == "pdf":
        pdf_pages = inspect_pdf(
            data, max_pages=popts.max_pages, strict=not lenient_pdf, max_ocr_pages=popts.max_ocr_pages,
            strategy=popts.pdf_strategy,
        ).pages
    del data  # partitioning re-reads from disk; don't hold two copies of a large file
    return CheckedFile(sha256=sha, kind=kind, pdf_pages=pdf_pages, seconds=time.perf_counter() - started)


def chunk_records(
    drafts: list[ChunkDraft], source: SourceDescriptor, *, first_index: int, collection: str, tenant: str,
    sha256: str, file_type: str,
) -> list[ChunkRecord]:
    return [
        ChunkRecord(
            chunk_id=chunk_id_for(source.uri, d.text, i),
            collection=collection,
            tenant=tenant,
            text=d.text,
            source_uri=source.uri,
            source_version=source.version,
            source_sha256=sha256,
            file_type=file_type,
            page_numbers=d.page_numbers,
            section_title=d.section_title,
            element_ids=d.element_ids,
            chunk_index=i,
            char_count=len(d.text),
            docmill_version=__version__,
            metadata=dict(source.metadata),
        )
        for i, d in enumerate(drafts, start=first_index)
    ]


def process_file(
    path: Path,
    source: SourceDescriptor,
    *,
    collection: str,
    tenant: str,
    options: IngestOptions,
    lenient_pdf: bool = False,
) -> ProcessedDocument:
    started = time.perf_counter()
    popts = options.partition
    checked = check_file(path, source, options, lenient_pdf)
    kind = checked.kind
    clock = time.perf_counter()
    elements, strategy = partition_file(path, kind, popts, name=source.name, pages=checked.pdf_pages)
    partitioned = time.perf_counter()
    elements = clean_elements(elements, drop_headers_footers=popts.clean_headers_footers)
    cleaned = time.perf_counter()
    ensure_not_empty(elements)
    page_numbers = [e.metadata.page_number for e in elements if e.metadata.page_number is not None]
    if kind.paged and not page_numbers:
        # Word processors record page breaks only once a document was laid out; none means
        # the whole text sits on the first page as far as the file knows.
        for element in elements:
            element.metadata.page_number = 1
        page_numbers = [1]
    pages = checked.pdf_pages or (max(page_numbers) if page_numbers and kind.paged else None)
    if pages and pages > popts.max_pages:
        raise DocumentTooLarge(f"{pages} pages is over the limit of {popts.max_pages} (raise --max-pages)")

    drafts = chunk_elements(elements, options.chunking)
    chunks = chunk_records(
        drafts, source, first_index=0, collection=collection, tenant=tenant, sha256=checked.sha256,
        file_type=kind.file_type,
    )
    from unstructured.staging.base import elements_to_dicts

    return ProcessedDocument(
        source=source,
        sha256=checked.sha256,
        file_type=kind.file_type,
        strategy=strategy,
        pages=pages,
        elements=elements_to_dicts(elements),
        chunks=chunks,
        seconds=time.perf_counter() - started,
        phases={
            "checks": checked.seconds,
            "partition": partitioned - clock,
            "clean": cleaned - partitioned,
            "chunk": time.perf_counter() - cleaned,
        },
    )
