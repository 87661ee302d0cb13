"""Given a document's elements arriving in parts (page ranges), When the streaming chunker takes
them part by part, Then it yields exactly the chunks that chunking the whole list gives, for
every split point and chunking setting, and it releases most chunks before the last part."""

from __future__ import annotations

import random

import pytest
from unstructured.documents.elements import ElementMetadata, ListItem, NarrativeText, Table, Title

from docmill.config import ChunkingOptions
from docmill.documents.chunk import StreamingChunker, chunk_elements

WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa", "lambda", "mu", "nu", "xi", "omicron", "pi", "rho"]


def _document(seed: int, n: int = 160) -> list:
    rng = random.Random(seed)
    elements, page = [], 1
    for i in range(n):
        if rng.random() < 0.15:
            page += 1
        # Short, medium and over-long texts: combining, plain and text-split chunks all occur.
        length = rng.choice([3, 12, 40, 120, 260])
        text = " ".join(rng.choice(WORDS) for _ in range(length)) + f" #{i}."
        kind = rng.choices([Title, NarrativeText, ListItem, Table], weights=[2, 6, 2, 1])[0]
        if kind is Title:
            text = text[:60]
        element = kind(text=text, metadata=ElementMetadata(page_number=page, filename="doc.pdf"))
        element.id_to_hash(i)
        elements.append(element)
    return elements


def _parts(elements: list, cuts: list[int]) -> list[list]:
    bounds = [0, *sorted(cuts), len(elements)]
    return [elements[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]


SETTINGS = [
    ChunkingOptions(),
    ChunkingOptions(max_characters=400, new_after_n_chars=300, combine_text_under_n_chars=150),
    ChunkingOptions(multipage_sections=False),
    ChunkingOptions(overlap=50),
    ChunkingOptions(overlap=50, overlap_all=True),
    ChunkingOptions(strategy="basic", max_characters=500),
]


@pytest.mark.parametrize("options", SETTINGS, ids=lambda o: f"{o.strategy}-{o.max_characters}-{o.overlap}-{o.overlap_all}-{o.multipage_sections}")
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_streaming_chunks_equal_whole_document_chunks(options, seed):
    # Given a document and random cut points (one part may be a single element)
    elements = _document(seed)
    rng = random.Random(seed * 7)
    cuts = rng.sample(range(1, len(elements)), 9)
    whole = chunk_elements(elements, options)

    # When the parts are fed one at a time
    chunker = StreamingChunker(options)
    released = [chunker.feed(part) for part in _parts(elements, cuts)]
    streamed = [d for batch in released for d in batch] + chunker.finish()

    # Then the chunks are the same, in the same order, with the same lineage
    assert [(d.text, d.page_numbers, d.element_ids, d.section_title) for d in streamed] == [
        (d.text, d.page_numbers, d.element_ids, d.section_title) for d in whole
    ]
    if not options.overlap_all:
        # and most of them were released before the end (what lets the embedder start early)
        assert sum(len(b) for b in released) > len(whole) // 2


def test_streaming_with_every_element_its_own_part():
    elements = _document(4, n=60)
    options = ChunkingOptions()
    chunker = StreamingChunker(options)
    streamed = [d for e in elements for d in chunker.feed([e])] + chunker.finish()
    assert [d.text for d in streamed] == [d.text for d in chunk_elements(elements, options)]
