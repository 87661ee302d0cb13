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
    sections = _section_titles(elements)
    common: dict[str, Any] = {
        "max_characters": options.max_characters,
        "new_after_n_chars": options.new_after_n_chars,
        "overlap": options.overlap,
        "overlap_all": options.overlap_all,
        "include_orig_elements": True,
    }
    if options.strategy == "by_title":
        from unstructured.chunking.title import chunk_by_title

        chunks = chunk_by_title(
            elements,
            combine_text_under_n_chars=options.combine_text_under_n_chars,
            multipage_sections=options.multipage_sections,
            **common,
        )
    else:
        from unstructured.chunking.basic import chunk_elements as chunk_basic

        chunks = chunk_basic(elements, **common)

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
