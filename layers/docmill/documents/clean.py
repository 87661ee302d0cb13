"""Text cleaning applied to each element before chunking."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

DROPPED_CATEGORIES = {"Header", "Footer", "PageBreak", "PageNumber"}
PROSE_CATEGORIES = {"NarrativeText", "UncategorizedText", "ListItem"}
# Unstructured's replace_unicode_quotes fixes mis-decoded quotes (mojibake); typographic quotes
# themselves are mapped here so that the same sentence always embeds and dedups the same way.
_QUOTES = str.maketrans({"\u201c": '"', "\u201d": '"', "\u201e": '"', "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u00a0": " "})
# Leaders: the runs of dots (or middle dots, ellipsis characters) a table of contents draws
# between a title and its page number, spaces allowed between them. Each dot is a token to the
# embedder: a contents page became chunks of hundreds of dots, a whole 256-token window of
# nothing, and the titles after the first leaders fell outside that window. Prose has up to four
# dots (an ellipsis after a full stop, "again.... Mrs.") and up to two ellipsis characters (the
# Chinese "……"), so a leader is five dots or three ellipsis characters.
_LEADERS = re.compile(r"[ \t]*(?:(?:[.\u00b7\u2024\u2025][ \t]*){5,}|(?:\u2026[ \t]*){3,})")
ELLIPSIS = "\u2026"  # one token to the embedder


def collapse_leaders(text: str) -> str:
    """Each run of leader dots as one ellipsis between its neighbours; none at either end."""
    collapsed = _LEADERS.sub(f" {ELLIPSIS} ", text)
    return text if collapsed == text else collapsed.strip(f" \t\n{ELLIPSIS}")


def has_content(text: str) -> bool:
    """Whether the text holds more than punctuation and spaces ("....", "* * *", "—"): an element
    without any can answer nothing and only pads a chunk."""
    return any(not (ch.isspace() or unicodedata.category(ch).startswith("P")) for ch in text)


def clean_elements(elements: list[Any], *, drop_headers_footers: bool = True) -> list[Any]:
    """Normalise whitespace, quotes and leader dots, rejoin broken paragraphs, drop page furniture
    and what is left without content (a line of leaders or of punctuation alone)."""
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
        text = collapse_leaders(replace_unicode_quotes(text).translate(_QUOTES))
        text = text.strip() if element.category == "Table" else clean_extra_whitespace(text)
        if not has_content(text):
            continue
        element.text = text
        cleaned.append(element)
    return cleaned
