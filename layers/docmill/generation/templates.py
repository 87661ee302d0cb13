"""Template questions: the fallback when a model's own questions are unusable.

A 135M model often writes no question at all (a statement, a copy of the prompt, a loop).
Rather than lose the chunk, docmill asks a plain question about a key phrase of one of the
chunk's informative sentences. These questions are honest but plain; every record made from
one says so in provenance (``question_source: template``).

Key sentences are those with the most distinct content words (names and numbers count
double), so that boilerplate lines and headings are not asked about. The key phrase is the
longest run of consecutive meaningful words in the sentence, so the question names its subject.
"""

from __future__ import annotations

import re
from pathlib import Path

from docmill.generation.parsing import QuestionItem
from docmill.quality.text import STOPWORDS, content_words, sentences

_TOKEN = re.compile(r"[^\W_]+(?:[-'’][^\W_]+)*", re.UNICODE)
_TEMPLATES = {
    "factual": "What does {title} say about {phrase}?",
    "reasoning": "How does {title} explain {phrase}?",
    "summary": "Summarise what {title} says about {phrase}.",
    "instruction": "List the facts {title} gives about {phrase}.",
}
_TEMPLATES_NO_TITLE = {
    "factual": "What is stated about {phrase}?",
    "reasoning": "How is {phrase} explained?",
    "summary": "Summarise what is said about {phrase}.",
    "instruction": "List the facts given about {phrase}.",
}


def display_title(title: str) -> str:
    """'norwich-city.txt' -> 'norwich city'; a real title is kept as it is."""
    t = title.strip()
    if not t:
        return ""
    stem = Path(t).stem if re.search(r"\.[A-Za-z0-9]{1,5}$", t) else t
    stem = re.sub(r"[-_]+", " ", stem).strip()
    return stem[:80]


def _informativeness(sentence: str) -> float:
    tokens = _TOKEN.findall(sentence)
    n_words = len(tokens)
    if n_words < 6 or n_words > 60:
        return 0.0
    distinct = set(content_words(sentence))
    names = sum(1 for t in tokens[1:] if t[:1].isupper() or any(ch.isdigit() for ch in t))
    return len(distinct) + names


def _is_name(tok: str, first: bool) -> bool:
    return (tok[:1].isupper() and not first) or any(ch.isdigit() for ch in tok)


def _trim_verbs(run: list[str]) -> list[str]:
    # Without a tagger: words ending like participles are rarely part of a subject phrase.
    while run and run[-1].islower() and run[-1].endswith(("ed", "ing")):
        run = run[:-1]
    while run and run[0].islower() and run[0].endswith(("ed", "ing")):
        run = run[1:]
    return run


def key_phrase(sentence: str, *, max_words: int = 4) -> str:
    """The best run of consecutive non-stopword tokens: names and numbers weigh double, so the
    question names the sentence's subject; ties go to the earliest run."""
    tokens = _TOKEN.findall(sentence)
    runs: list[list[tuple[int, str]]] = [[]]
    for i, tok in enumerate(tokens):
        if tok.casefold() not in STOPWORDS and len(tok) > 1:
            runs[-1].append((i, tok))
        elif runs[-1]:
            runs.append([])
    best: list[str] = []
    best_score = 0.0
    for run in runs:
        words = _trim_verbs([t for _, t in run])[:max_words]
        if not words:
            continue
        first = run[0][0] == 0
        score = sum(2.0 if _is_name(w, first and j == 0) else 1.0 for j, w in enumerate(words))
        if score > best_score:
            best, best_score = words, score
    return " ".join(best)


def template_questions(text: str, types: list[str], *, title: str = "", avoid: set[str] | None = None) -> list[QuestionItem]:
    """Up to ``len(types)`` template questions about distinct key sentences of ``text``; the
    reference output is the sentence itself. ``avoid``: key phrases already asked about."""
    ranked = sorted(
        ((s, _informativeness(s)) for s in sentences(text)),
        key=lambda pair: -pair[1],
    )
    seen = {p.casefold() for p in (avoid or set())}
    name = display_title(title)
    items: list[QuestionItem] = []
    for sentence, score in ranked:
        if len(items) >= len(types) or score <= 0:
            break
        phrase = key_phrase(sentence)
        if len(phrase.split()) < 2 or phrase.casefold() in seen:
            continue
        seen.add(phrase.casefold())
        kind = types[len(items)]
        template = (_TEMPLATES if name else _TEMPLATES_NO_TITLE)[kind]
        items.append(QuestionItem(type=kind, instruction=template.format(title=name, phrase=phrase), output=sentence))
    return items


__all__ = ["display_title", "key_phrase", "template_questions"]
