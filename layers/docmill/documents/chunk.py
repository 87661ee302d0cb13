"""Chunking with Unstructured (by_title by default, basic as an option) and lineage extraction."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from docmill.config import ChunkingOptions


@dataclass
class ChunkDraft:
    """A chunk before it is embedded: text plus where it came from."""

    text: str
    page_numbers: list[int] = field(default_factory=list)
    element_ids: list[str] = field(default_factory=list)
    section_title: str | None = None


def chunk_elements(elements: list[Any], options: ChunkingOptions) -> list[ChunkDraft]:
    if not elements:
        return []
    return _drafts(_chunk(elements, options), _section_titles(elements))


def _chunk(elements: list[Any], options: ChunkingOptions) -> list[Any]:
    common: dict[str, Any] = {
        "max_characters": options.max_characters,
        "new_after_n_chars": options.new_after_n_chars,
        "overlap": options.overlap,
        "overlap_all": options.overlap_all,
        "include_orig_elements": True,
    }
    if options.strategy == "by_title":
        from unstructured.chunking.title import chunk_by_title

        return chunk_by_title(
            elements,
            combine_text_under_n_chars=options.combine_text_under_n_chars,
            multipage_sections=options.multipage_sections,
            **common,
        )
    from unstructured.chunking.basic import chunk_elements as chunk_basic

    return chunk_basic(elements, **common)


def _drafts(chunks: list[Any], sections: dict[str, str]) -> list[ChunkDraft]:
    drafts = []
    for chunk in chunks:
        text = (chunk.text or "").strip()
        if not text:
            continue
        origs = getattr(chunk.metadata, "orig_elements", None) or []
        pages = sorted({o.metadata.page_number for o in origs if o.metadata.page_number is not None})
        if not pages and chunk.metadata.page_number is not None:
            pages = [chunk.metadata.page_number]
        ids = [o.id for o in origs]
        title = next((sections[i] for i in ids if sections.get(i)), None)
        drafts.append(ChunkDraft(text=text, page_numbers=pages, element_ids=ids, section_title=title))
    return drafts


class StreamingChunker:
    """Chunk a document that arrives in consecutive parts (page ranges) as if it came whole.

    The chunkers are greedy left to right: whether a (combined) pre-chunk ends depends only on
    what it holds and the next element. So every pre-chunk but the last two of what has arrived
    is final; the rest is chunked again with the next part. Pre-chunks are recognised in the
    output as runs of chunks with the same original elements (a text-split pre-chunk yields
    several). With ``overlap_all`` a chunk's text depends on the one before it, so nothing is
    emitted until the end.
    """

    def __init__(self, options: ChunkingOptions) -> None:
        self.options = options
        self._pending: list[Any] = []
        self._sections: dict[str, str] = {}
        self._title: str | None = None
        self._streaming = not (options.overlap_all and options.overlap)

    def feed(self, elements: list[Any]) -> list[ChunkDraft]:
        """Add the next part; return the chunks that no later part can change."""
        for element in elements:
            if element.category == "Title":
                self._title = element.text[:200]
            if self._title:
                self._sections[element.id] = self._title
        self._pending.extend(elements)
        if not self._streaming or not self._pending:
            return []
        groups = _groups(_chunk(self._pending, self.options))
        if len(groups) < 3:
            return []
        final = [chunk for group in groups[:-2] for chunk in group]
        restart = _first_element_id(groups[-2])
        at = next((i for i, e in enumerate(self._pending) if e.id == restart), None)
        if at is None:  # pragma: no cover - a chunk always holds its elements
            return []
        self._pending = self._pending[at:]
        return _drafts(final, self._sections)

    def finish(self) -> list[ChunkDraft]:
        """The remaining chunks, once the last part has been fed."""
        chunks = _chunk(self._pending, self.options) if self._pending else []
        self._pending = []
        return _drafts(chunks, self._sections)


def _orig_ids(chunk: Any) -> tuple[str, ...]:
    return tuple(o.id for o in getattr(chunk.metadata, "orig_elements", None) or [])


def _groups(chunks: list[Any]) -> list[list[Any]]:
    groups: list[list[Any]] = []
    for chunk in chunks:
        if groups and _orig_ids(groups[-1][-1]) == _orig_ids(chunk):
            groups[-1].append(chunk)
        else:
            groups.append([chunk])
    return groups


def _first_element_id(group: list[Any]) -> str | None:
    ids = _orig_ids(group[0])
    return ids[0] if ids else None


def _section_titles(elements: list[Any]) -> dict[str, str]:
    """element id -> the text of the Title element it falls under."""
    current: str | None = None
    out: dict[str, str] = {}
    for element in elements:
        if element.category == "Title":
            current = element.text[:200]
        if current:
            out[element.id] = current
    return out
