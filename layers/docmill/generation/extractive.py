"""Extractive answers: an answer made of the context sentences that answer the question.

For models that cannot write faithful text (the embedded 135M model), the chosen answer is
composed from the retrieved context itself: the sentence that best matches the question
(embedding similarity and shared content words, with a small preference for the chunk the
question was written from) plus its neighbours in the same passage that also match, in
document order. Every word is backed by the context by construction; what is measured is
whether it answers the question (relevance) and whether the question found its source.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from docmill.quality.signals import EmbeddingCache, scale
from docmill.quality.text import content_words, sentences

SOURCE_BONUS = 0.15
MIN_WORDS = 5
MAX_SENTENCES = {"factual": 2, "reasoning": 3, "summary": 3, "instruction": 3}


def extractive_answer(
    question: str,
    passages: Sequence[tuple[str, str]],
    *,
    source_id: str | None = None,
    question_type: str = "factual",
    embed: EmbeddingCache | None = None,
    max_chars: int = 700,
) -> str:
    """``passages``: (chunk_id, text) in retrieval order. Returns "" when nothing matches."""
    # Headings and fragments (under MIN_WORDS words) are not answers.
    units = [
        (pi, si, s)
        for pi, (_, text) in enumerate(passages)
        for si, s in enumerate(sentences(text, min_chars=12))
        if len(s.split()) >= MIN_WORDS
    ]
    if not units:
        return ""
    q_words = set(content_words(question))
    unit_words = [set(content_words(s)) for _, _, s in units]
    # Words the whole context repeats (a document's title, its subject) say little about which
    # sentence answers: each question word weighs by its rarity across the context sentences.
    weight = {w: math.log(1 + len(units) / (1 + sum(w in uw for uw in unit_words))) for w in q_words}
    total = sum(weight.values())
    lexical = [(sum(weight[w] for w in q_words & uw) / total) if total else 0.0 for uw in unit_words]
    vecs = embed([question] + [s for _, _, s in units]) if embed is not None else None
    if vecs is not None:
        semantic = [scale(float(vecs[0] @ v), 0.1, 0.7) for v in vecs[1:]]
        scores = [(lex + sem) / 2 for lex, sem in zip(lexical, semantic, strict=True)]
    else:
        scores = list(lexical)
    scores = [
        sc + (SOURCE_BONUS if source_id is not None and passages[pi][0] == source_id else 0.0)
        for sc, (pi, _, _) in zip(scores, units, strict=True)
    ]
    best = max(range(len(units)), key=lambda i: (scores[i], -i))
    if scores[best] <= 0:
        return ""
    passage = units[best][0]
    same = [i for i, u in enumerate(units) if u[0] == passage]
    position = {i: units[i][1] for i in same}
    limit = MAX_SENTENCES.get(question_type, 2)
    picked = {best}
    # Neighbours that also match, then the next sentence when the best one is short.
    for i in sorted(same, key=lambda i: -scores[i]):
        if len(picked) >= limit:
            break
        if i != best and abs(position[i] - position[best]) <= 2 and scores[i] >= 0.7 * scores[best]:
            picked.add(i)
    if len(units[best][2]) < 80 and best + 1 in same and position[best + 1] == position[best] + 1 and len(picked) < limit:
        picked.add(best + 1)
    out: list[str] = []
    for i in sorted(picked):
        s = units[i][2]
        if out and len(" ".join(out)) + len(s) > max_chars:
            break
        out.append(s if s.rstrip()[-1:] in ".!?" else s.rstrip() + ".")
    return " ".join(out)


__all__ = ["extractive_answer"]
