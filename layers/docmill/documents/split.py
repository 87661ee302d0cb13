"""A long PDF partitioned as page ranges in parallel, reassembled as if it had been partitioned whole.

Workers each partition a range of pages (``partition_pdf_range``); the parent feeds the ranges,
in page order, to a ``RangeAssembler``, which links them into one element hierarchy, cleans and
chunks them as they arrive (so the embedder can start on the first pages) and finally yields the
same ``ProcessedDocument`` the whole-file path gives: Unstructured numbers pages from the
range's first page, and element ids hash the file name, text, page number and position on the
page, so they come out the same; chunks that could span a range boundary are held back until
the next range arrives (``StreamingChunker``).
"""

from __future__ import annotations

import os
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from docmill.config import IngestOptions, PartitionOptions
from docmill.documents.chunk import StreamingChunker
from docmill.documents.clean import clean_elements
from docmill.documents.partition import call_partition, ensure_not_empty, has_text
from docmill.documents.process import CheckedFile, ProcessedDocument, SourceDescriptor, chunk_records
from docmill.errors import DocumentTooLarge
from docmill.models import ChunkRecord

def pdf_page_count(path: Path) -> int | None:
    """Pages in the PDF, or None when it cannot be opened (the whole-file checks report why)."""
    import pikepdf

    try:
        with pikepdf.open(path) as pdf:
            return len(pdf.pages)
    except Exception:  # noqa: BLE001 - encrypted, damaged...: not split, checked the usual way
        return None


def page_ranges(pages: int, range_pages: int) -> list[tuple[int, int]]:
    """[start, end) zero-based page ranges covering ``pages``."""
    return [(start, min(start + range_pages, pages)) for start in range(0, pages, range_pages)]


def should_split(options: IngestOptions, pages: int | None, workers: int) -> bool:
    # Small ranges let both workers share a file and the first chunks arrive early; each range
    # costs a little (writing it out, starting a partition). OCR pages are independent too, but
    # whether a PDF needs OCR is decided for the whole document first.
    size = options.split_pages
    return (
        workers >= 2 and size > 0 and options.partition.pdf_strategy in ("auto", "fast")
        and bool(pages) and (pages or 0) >= 2 * size
    )


@dataclass
class PartitionedRange:
    start: int
    end: int
    elements: list[Any]
    seconds: float


def partition_pdf_range(path: str, name: str, start: int, end: int, options: PartitionOptions) -> PartitionedRange:
    """Partition pages [start, end) of the PDF at ``path`` (the fast, text-layer strategy)."""
    import pikepdf
    from unstructured.partition.common.metadata import get_last_modified_date

    from docmill.documents.unstructured_setup import configure_unstructured

    started = time.perf_counter()
    configure_unstructured()
    with tempfile.TemporaryDirectory(prefix="docmill-range-") as tmp:
        part = Path(tmp) / "range.pdf"
        with pikepdf.open(path) as pdf, pikepdf.new() as out, warnings.catch_warnings():
            # Named destinations and form fields are not text; partitioning never reads them.
            warnings.simplefilter("ignore")
            out.pages.extend(pdf.pages[start:end])
            out.save(part)
        elements = call_partition(
            part,
            name=name,
            strategy="fast",
            options=options,
            starting_page_number=start + 1,
            # The original's, as the whole-file path records it (the range is a temp file).
            metadata_last_modified=get_last_modified_date(path),
        )
    directory = os.path.dirname(path)
    for element in elements:  # the original's folder, not the temp one
        if element.metadata.file_directory is not None:
            element.metadata.file_directory = directory
    return PartitionedRange(start, end, elements, time.perf_counter() - started)


@dataclass
class RangeAssembler:
    """Reassemble page ranges (arriving in any order) into one processed document."""

    source: SourceDescriptor
    collection: str
    tenant: str
    options: IngestOptions
    ranges: list[tuple[int, int]]
    elements: list[Any] = field(default_factory=list)  # cleaned, in document order
    phases: dict[str, float] = field(default_factory=dict)
    _arrived: dict[int, PartitionedRange] = field(default_factory=dict)
    _next: int = 0
    _chain: list[Any] = field(default_factory=list)
    _raw_text: bool = False
    records: list[ChunkRecord] = field(default_factory=list)  # every chunk so far, in order
    _chunker: StreamingChunker = field(init=False)
    _started: float = field(default_factory=time.perf_counter)

    def __post_init__(self) -> None:
        self._chunker = StreamingChunker(self.options.chunking)
        for phase in ("partition", "clean", "chunk"):
            self.phases.setdefault(phase, 0.0)

    @property
    def complete(self) -> bool:
        return self._next == len(self.ranges)

    def add(self, part: PartitionedRange) -> list[ChunkRecord]:
        """Take one range; return the chunks that became final (not yet embedded)."""
        self._arrived[part.start] = part
        self.phases["partition"] += part.seconds
        records: list[ChunkRecord] = []
        while self._next < len(self.ranges) and self.ranges[self._next][0] in self._arrived:
            ready = self._arrived.pop(self.ranges[self._next][0])
            self._next += 1
            records += self._take(ready.elements)
        return records

    def _take(self, raw: list[Any]) -> list[ChunkRecord]:
        self._link(raw)
        self._raw_text = self._raw_text or has_text(raw)
        clock = time.perf_counter()
        cleaned = clean_elements(raw, drop_headers_footers=self.options.partition.clean_headers_footers)
        self.elements += cleaned
        chunked = time.perf_counter()
        self.phases["clean"] += chunked - clock
        records = self._records(self._chunker.feed(cleaned))
        self.phases["chunk"] += time.perf_counter() - chunked
        return records

    def _link(self, raw: list[Any]) -> None:
        """Parent ids as Unstructured sets them over the whole document.

        Its pass keeps a stack that, after any element, holds exactly that element's chain of
        ancestors; replaying the chain of the previous range's last element restores it.
        """
        from unstructured.partition.common.metadata import set_element_hierarchy

        saved = [(e, e.metadata.parent_id) for e in self._chain]
        for element in [*self._chain, *raw]:
            element.metadata.parent_id = None
        set_element_hierarchy([*self._chain, *raw])
        for element, parent in saved:
            element.metadata.parent_id = parent
        if raw:
            by_id = {e.id: e for e in [*self._chain, *raw]}
            chain, element = [], raw[-1]
            while element is not None:
                chain.append(element)
                element = by_id.get(element.metadata.parent_id)
            self._chain = chain[::-1]

    def _records(self, drafts: list) -> list[ChunkRecord]:
        records = chunk_records(
            drafts, self.source, first_index=len(self.records), collection=self.collection, tenant=self.tenant,
            sha256="", file_type="pdf",  # the hash comes with the checks, filled in by finish
        )
        self.records += records
        return records

    @property
    def needs_ocr(self) -> bool:
        """No range had a text layer: the whole-file path must decide (OCR, or empty)."""
        return self.complete and not self._raw_text and self.options.partition.pdf_strategy == "auto"

    def finish(self, checked: CheckedFile) -> tuple[list[ChunkRecord], ProcessedDocument]:
        """The last chunks, and the document; its ``chunks`` are every chunk, in order."""
        from unstructured.staging.base import elements_to_dicts

        ensure_not_empty(self.elements)
        pages = checked.pdf_pages
        if pages and pages > self.options.partition.max_pages:
            raise DocumentTooLarge(f"{pages} pages is over the limit of {self.options.partition.max_pages} (raise --max-pages)")
        clock = time.perf_counter()
        last = self._records(self._chunker.finish())
        self.phases["chunk"] += time.perf_counter() - clock
        self.phases["checks"] = checked.seconds
        doc = ProcessedDocument(
            source=self.source,
            sha256=checked.sha256,
            file_type="pdf",
            strategy="fast",
            pages=pages,
            elements=elements_to_dicts(self.elements),
            chunks=[],
            seconds=time.perf_counter() - self._started,
            phases=dict(self.phases),
        )
        for record in self.records:
            record.source_sha256 = checked.sha256
        doc.chunks = self.records  # the same objects the caller embedded as they came
        return last, doc
