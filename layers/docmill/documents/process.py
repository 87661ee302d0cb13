"""One file in, cleaned elements and chunk records (not yet embedded) out.

Runs in worker processes, so it takes and returns only picklable values.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from docmill import __version__
from docmill.config import IngestOptions
from docmill.documents.chunk import chunk_elements
from docmill.documents.clean import clean_elements
from docmill.documents.filetypes import detect
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


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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
    size = path.stat().st_size
    if size > popts.max_file_bytes:
        raise DocumentTooLarge(
            f"{size / 1e6:.1f} MB is over the limit of {popts.max_file_bytes / 1e6:.1f} MB (raise --max-file-mb)"
        )
    data = path.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    kind = detect(source.name, data)
    pdf_pages = None
    if kind.file_type == "pdf":
        pdf_pages = inspect_pdf(data, max_pages=popts.max_pages, strict=not lenient_pdf).pages
    del data  # partitioning re-reads from disk; don't hold two copies of a large file

    elements, strategy = partition_file(path, kind, popts, name=source.name)
    elements = clean_elements(elements, drop_headers_footers=popts.clean_headers_footers)
    ensure_not_empty(elements)
    page_numbers = [e.metadata.page_number for e in elements if e.metadata.page_number is not None]
    if kind.paged and not page_numbers:
        # Word processors record page breaks only once a document was laid out; none means
        # the whole text sits on the first page as far as the file knows.
        for element in elements:
            element.metadata.page_number = 1
        page_numbers = [1]
    pages = pdf_pages or (max(page_numbers) if page_numbers and kind.paged else None)
    if pages and pages > popts.max_pages:
        raise DocumentTooLarge(f"{pages} pages is over the limit of {popts.max_pages} (raise --max-pages)")

    drafts = chunk_elements(elements, options.chunking)
    chunks = [
        ChunkRecord(
            chunk_id=chunk_id_for(source.uri, d.text, i),
            collection=collection,
            tenant=tenant,
            text=d.text,
            source_uri=source.uri,
            source_version=source.version,
            source_sha256=sha,
            file_type=kind.file_type,
            page_numbers=d.page_numbers,
            section_title=d.section_title,
            element_ids=d.element_ids,
            chunk_index=i,
            char_count=len(d.text),
            docmill_version=__version__,
            metadata=dict(source.metadata),
        )
        for i, d in enumerate(drafts)
    ]
    from unstructured.staging.base import elements_to_dicts

    return ProcessedDocument(
        source=source,
        sha256=sha,
        file_type=kind.file_type,
        strategy=strategy,
        pages=pages,
        elements=elements_to_dicts(elements),
        chunks=chunks,
        seconds=time.perf_counter() - started,
    )
