"""Text cleaning applied to each element before chunking."""

from __future__ import annotations

from typing import Any

DROPPED_CATEGORIES = {"Header", "Footer", "PageBreak", "PageNumber"}
PROSE_CATEGORIES = {"NarrativeText", "UncategorizedText", "ListItem"}
# Unstructured's replace_unicode_quotes fixes mis-decoded quotes (mojibake); typographic quotes
# themselves are mapped here so that the same sentence always embeds and dedups the same way.
_QUOTES = str.maketrans({"\u201c": '"', "\u201d": '"', "\u201e": '"', "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u00a0": " "})


def clean_elements(elements: list[Any], *, drop_headers_footers: bool = True) -> list[Any]:
    """Normalise whitespace and quotes, rejoin broken paragraphs, drop page furniture."""
    from unstructured.cleaners.core import (
        clean_extra_whitespace,
        group_broken_paragraphs,
        replace_unicode_quotes,
    )

    cleaned = []
    for element in elements:
        if drop_headers_footers and element.category in DROPPED_CATEGORIES:
            continue
        text = element.text or ""
        if element.category in PROSE_CATEGORIES and "\n" in text:
            text = group_broken_paragraphs(text)
        text = replace_unicode_quotes(text).translate(_QUOTES)
        text = text.strip() if element.category == "Table" else clean_extra_whitespace(text)
        if not text:
            continue
        element.text = text
        cleaned.append(element)
    return cleaned
