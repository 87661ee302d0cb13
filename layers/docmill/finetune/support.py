"""How far an answer is supported by its source context, in [0, 1].

Interim scorer until the dataset-quality work's ``support`` signal lands in the library; the
evaluation only calls :func:`support_score`, so swapping it is a one-line change here.

Lexical support: the share of the answer's content words (lower-cased, stop words and one-letter
tokens removed, crude plural folding) that occur in the context. An answer copied from the
context scores 1, an invented one near 0; an empty answer scores 0 (it supports nothing).
"""

from __future__ import annotations

import re

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_STOP = frozenset(
    ["a", "an", "and", "are", "as", "at", "be", "been", "but", "by", "can", "could", "did", "do", "does", "for", "from", "had", "has", "have", "he", "her", "his", "how", "i", "if", "in", "into", "is", "it", "its", "may", "might", "must", "no", "not", "of", "on", "or", "our", "she", "should", "so", "such", "than", "that", "the", "their", "them", "then", "there", "these", "they", "this", "those", "to", "was", "we", "were", "what", "when", "where", "which", "who", "why", "will", "with", "would", "you", "your", "also", "about", "any", "all", "more", "most", "other", "some", "only", "very", "just"]
)


def content_words(text: str) -> list[str]:
    words = (w.lower() for w in _WORD.findall(text))
    return [w[:-1] if len(w) > 3 and w.endswith("s") else w for w in words if len(w) > 1 and w not in _STOP]


def support_score(answer: str, context: str) -> float:
    answer_words = content_words(answer)
    if not answer_words:
        return 0.0
    known = set(content_words(context))
    return sum(1 for w in answer_words if w in known) / len(answer_words)
