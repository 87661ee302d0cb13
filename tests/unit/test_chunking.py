"""Given cleaned elements, When docmill chunks them, Then sizes, overlap and lineage follow the options."""

from __future__ import annotations

import itertools

import pytest

from docmill.config import ChunkingOptions
from docmill.documents.chunk import chunk_elements
from docmill.documents.clean import clean_elements
from docmill.documents.unstructured_setup import configure_unstructured


@pytest.fixture
def elements():
    # Fresh elements per test: cleaning edits them in place.
    configure_unstructured()
    from unstructured.documents.elements import ElementMetadata, Footer, Header, NarrativeText, Title

    out = []
    for page in (1, 2, 3):
        out.append(Header(text=f"ACME confidential page {page}", metadata=ElementMetadata(page_number=page)))
        out.append(Title(text=f"Section {page}", metadata=ElementMetadata(page_number=page)))
        for i in range(4):
            out.append(
                NarrativeText(
                    text=f"Paragraph {i} of section {page} talks about \u201csolar\u201d panels   and batteries. " * 3,
                    metadata=ElementMetadata(page_number=page),
                )
            )
        out.append(Footer(text=f"{page}", metadata=ElementMetadata(page_number=page)))
    return out


def test_cleaning_drops_headers_footers_and_normalises_text(elements):
    cleaned = clean_elements(list(elements))

    assert {e.category for e in cleaned} == {"Title", "NarrativeText"}
    assert all("  " not in e.text and "\u201c" not in e.text for e in cleaned)


def test_by_title_keeps_sections_apart_and_records_pages_and_titles(elements):
    chunks = chunk_elements(clean_elements(list(elements)), ChunkingOptions(max_characters=2000, new_after_n_chars=2000))

    assert [c.section_title for c in chunks] == ["Section 1", "Section 2", "Section 3"]
    assert [c.page_numbers for c in chunks] == [[1], [2], [3]]
    assert all(len(c.element_ids) == 5 for c in chunks)


def test_max_characters_is_a_hard_limit_and_overlap_repeats_text(elements):
    options = ChunkingOptions(strategy="basic", max_characters=300, new_after_n_chars=250, overlap=40, overlap_all=True)

    chunks = chunk_elements(clean_elements(list(elements)), options)

    assert all(len(c.text) <= 300 for c in chunks)
    assert any(prev.text[-40:].strip()[:20] in cur.text for prev, cur in itertools.pairwise(chunks))


def test_basic_strategy_ignores_section_boundaries(elements):
    by_title = chunk_elements(clean_elements(list(elements)), ChunkingOptions(max_characters=5000, new_after_n_chars=5000))
    basic = chunk_elements(clean_elements(list(elements)), ChunkingOptions(strategy="basic", max_characters=5000, new_after_n_chars=5000))

    assert len(basic) < len(by_title)
    assert basic[0].page_numbers == [1, 2, 3]
