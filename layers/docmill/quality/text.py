"""Plain-text helpers the quality signals share: sentences, words, content words.

Deliberately simple and language-light (Latin-script stopwords, a suffix-stripping stem): the
signals compare texts with each other, so the same normalisation on both sides is what matters.
"""

from __future__ import annotations

import re
import unicodedata

_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])|\n{2,}|\n(?=\s*[-*•]\s)")
_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)?", re.UNICODE)
LONG_SENTENCE = 400
_CITATION = re.compile(r"\s*\[\d+(?:\s*[,;-]\s*\d+)*\]")

STOPWORDS = frozenset(
    ["a", "about", "above", "after", "again", "against", "all", "also", "am", "an", "and", "any", "are", "aren", "as", "at", "be", "because", "been", "before", "being", "below", "between", "both", "but", "by", "can", "cannot", "could", "did", "do", "does", "doing", "don", "down", "during", "each", "either", "else", "etc", "ever", "every", "few", "for", "from", "further", "get", "gets", "got", "had", "has", "have", "having", "he", "her", "here", "hers", "herself", "him", "himself", "his", "how", "however", "i", "if", "in", "into", "is", "isn", "it", "its", "itself", "just", "least", "less", "let", "like", "may", "me", "might", "more", "most", "much", "must", "my", "myself", "neither", "no", "nor", "not", "now", "of", "off", "often", "on", "once", "only", "or", "other", "others", "otherwise", "ought", "our", "ours", "ourselves", "out", "over", "own", "per", "perhaps", "please", "quite", "rather", "same", "several", "shall", "she", "should", "since", "so", "some", "such", "than", "that", "the", "their", "theirs", "them", "themselves", "then", "there", "these", "they", "this", "those", "though", "through", "thus", "to", "too", "under", "until", "up", "upon", "us", "use", "used", "uses", "using", "very", "via", "was", "wasn", "we", "well", "were", "weren", "what", "whatever", "when", "where", "whether", "which", "while", "who", "whom", "whose", "why", "will", "with", "within", "without", "would", "yes", "yet", "you", "your", "yours", "yourself", "yourselves", "one", "two", "many", "s", "t", "d", "ll", "ve", "re", "m", "o", "y", "describe", "explain", "list", "summarise", "summarize", "according", "say", "says", "said", "tell", "give", "document", "documents", "passage", "text", "section"]
)


def normalise(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def strip_citation_marks(text: str) -> str:
    return _CITATION.sub("", text)


def words(text: str) -> list[str]:
    return _WORD.findall(normalise(text))


def stem(word: str) -> str:
    """A crude suffix strip so that 'inspected'/'inspection'/'inspects' meet; good enough to
    compare an answer with its context, which is all it is used for."""
    for suffix in ("ational", "ations", "ation", "ments", "ment", "ings", "ing", "ness", "ies", "ied", "ed", "es", "ly", "s"):
        if len(word) > len(suffix) + 2 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def content_words(text: str) -> list[str]:
    """Stemmed words that carry meaning: not stopwords, not one-character tokens."""
    return [stem(w) for w in words(text) if w not in STOPWORDS and (len(w) > 1 or w.isdigit())]


def sentences(text: str, *, min_chars: int = 3) -> list[str]:
    """Split prose into sentences (and list items / paragraphs into their own units)."""
    text = strip_citation_marks(text).strip()
    if not text:
        return []
    out: list[str] = []
    for raw in _SENTENCE_END.split(text):
        # A very long "sentence" is a table or a list without punctuation: its lines are the units.
        pieces = raw.split("\n") if len(raw) > LONG_SENTENCE else [raw]
        for piece in pieces:
            part = " ".join(piece.split()).lstrip("-*•# ").strip()
            if len(part) >= min_chars:
                out.append(part)
    return out


def trim_repetition(text: str) -> tuple[str, bool]:
    """Cut a model's text where it starts repeating itself (a sentence said before) and drop
    an unfinished last sentence when complete ones precede it. Returns (text, trimmed)."""
    parts = [p for p in re.split(r"(?<=[.!?])\s+", text.strip()) if p.strip()]
    seen: set[str] = set()
    kept: list[str] = []
    for part in parts:
        key = " ".join(words(part))
        if key and key in seen:
            break
        seen.add(key)
        kept.append(part)
    if len(kept) > 1 and kept[-1].rstrip()[-1:] not in ".!?)\"'”’":
        kept.pop()
    out = " ".join(kept).strip()
    return out, out != " ".join(text.split()).strip()


__all__ = ["STOPWORDS", "content_words", "normalise", "sentences", "stem", "strip_citation_marks", "trim_repetition", "words"]
