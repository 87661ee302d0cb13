"""Quality signals that need no LLM: support, relevance, degeneration, retrieval, questions.

Every signal is a number in [0, 1] (or a count) computed from the texts themselves and, when
an embedder is given, sentence embeddings. None asks the model that wrote the text whether
the text is good, so a small model cannot grade its own homework.

- support: how much of an answer the context backs, sentence by sentence. Each answer
  sentence is scored by lexical overlap (share of its content words and content-word pairs
  found in the context) and by semantic similarity to its best context sentence; the answer's
  support is the mean weighted by content words. A copied answer scores ~1, an unrelated
  one ~0, a faithful paraphrase in between (higher with an embedder).
- relevance: does the answer talk about what the question asks (embedding similarity and
  the share of the question's content words the answer takes up).
- degeneration: repeated word 3-grams, sentences said again and again, truncation.
- retrieval: the rank of the source chunk when the question is searched (hit@k, MRR).
"""

from __future__ import annotations

import math
import re
import threading
from collections import Counter
from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel

from docmill.embeddings.base import Embedder
from docmill.quality.text import content_words, normalise, sentences, words

# Cosine similarities of MiniLM-style sentence embeddings: unrelated sentences sit around
# 0.0-0.25, paraphrases around 0.7-0.9. Mapped linearly onto [0, 1] between these bounds.
SEMANTIC_FLOOR = 0.25
SEMANTIC_CEIL = 0.8
RELEVANCE_FLOOR = 0.1
RELEVANCE_CEIL = 0.65
UNSUPPORTED_BELOW = 0.35


class EmbeddingCache:
    """Embeds sentences once per run (context sentences repeat across questions)."""

    def __init__(self, embedder: Embedder | None, max_items: int = 50_000) -> None:
        self.embedder = embedder
        self._cache: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()
        self.max_items = max_items

    def __call__(self, texts: Sequence[str]) -> np.ndarray | None:
        if self.embedder is None or not texts:
            return None
        with self._lock:
            missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if missing:
            vectors = self.embedder.embed_documents(missing)
            with self._lock:
                if len(self._cache) > self.max_items:
                    self._cache.clear()
                for t, v in zip(missing, vectors, strict=True):
                    self._cache[t] = np.asarray(v, dtype=np.float32)
        with self._lock:
            return np.stack([self._cache[t] for t in texts])


def scale(value: float, floor: float, ceil: float) -> float:
    return float(min(1.0, max(0.0, (value - floor) / (ceil - floor))))


def _pairs(tokens: Sequence[str]) -> set[tuple[str, str]]:
    return {(tokens[i], tokens[i + 1]) for i in range(len(tokens) - 1)}


class SupportScore(BaseModel):
    score: float  # weighted mean over answer sentences, 0..1
    lexical: float
    semantic: float | None = None
    sentences: int = 0
    unsupported_sentences: int = 0  # sentences scoring under UNSUPPORTED_BELOW


def support(answer: str, context: Sequence[str], *, embed: EmbeddingCache | None = None) -> SupportScore:
    """How much of ``answer`` the ``context`` passages back (see the module docstring)."""
    ctx_sentences = [s for text in context for s in sentences(text)]
    ctx_tokens = [content_words(s) for s in ctx_sentences]
    ctx_words = {w for toks in ctx_tokens for w in toks}
    ctx_pairs = set().union(*(_pairs(t) for t in ctx_tokens)) if ctx_tokens else set()
    ans_sentences = [s for s in sentences(answer) if content_words(s)]
    if not ans_sentences or not ctx_sentences:
        return SupportScore(score=0.0, lexical=0.0, semantic=0.0 if embed and embed.embedder else None)
    lexical: list[float] = []
    weights: list[int] = []
    for s in ans_sentences:
        toks = content_words(s)
        unigram = sum(t in ctx_words for t in toks) / len(toks)
        pairs = _pairs(toks)
        bigram = (len(pairs & ctx_pairs) / len(pairs)) if pairs else unigram
        lexical.append((unigram + bigram) / 2)
        weights.append(len(toks))
    semantic: list[float] | None = None
    vecs = embed(ans_sentences + ctx_sentences) if embed is not None else None
    if vecs is not None:
        a, c = vecs[: len(ans_sentences)], vecs[len(ans_sentences) :]
        best = (a @ c.T).max(axis=1)
        semantic = [scale(float(x), SEMANTIC_FLOOR, SEMANTIC_CEIL) for x in best]
    per_sentence = [
        (lex + sem) / 2 if semantic is not None else lex
        for lex, sem in zip(lexical, semantic or lexical, strict=True)
    ]
    total = sum(weights)
    return SupportScore(
        score=round(sum(p * w for p, w in zip(per_sentence, weights, strict=True)) / total, 4),
        lexical=round(sum(p * w for p, w in zip(lexical, weights, strict=True)) / total, 4),
        semantic=round(sum(p * w for p, w in zip(semantic, weights, strict=True)) / total, 4) if semantic else None,
        sentences=len(ans_sentences),
        unsupported_sentences=sum(p < UNSUPPORTED_BELOW for p in per_sentence),
    )


def content_share(answer: str, source: str) -> float:
    """Share of the answer's content words found in ``source`` (the issue's faithfulness target)."""
    toks = content_words(answer)
    if not toks:
        return 0.0
    vocab = set(content_words(source))
    return round(sum(t in vocab for t in toks) / len(toks), 4)


def relevance(question: str, answer: str, *, embed: EmbeddingCache | None = None) -> float:
    """0..1: the answer is about what the question asks."""
    q_words = set(content_words(question))
    a_words = set(content_words(answer))
    lexical = len(q_words & a_words) / len(q_words) if q_words else 0.0
    vecs = embed([question, answer]) if embed is not None and answer.strip() else None
    if vecs is None:
        return round(lexical, 4)
    semantic = scale(float(vecs[0] @ vecs[1]), RELEVANCE_FLOOR, RELEVANCE_CEIL)
    return round((lexical + semantic) / 2, 4)


class Degeneration(BaseModel):
    repeated_ngram_share: float  # share of word 3-grams that repeat an earlier one
    max_sentence_repeats: int  # how often the most repeated sentence occurs
    truncated: bool  # ends mid-sentence (or the model hit its token limit)
    degenerate: bool  # looping: the text should not be trained on


def degeneration(text: str, *, finish_reason: str | None = None, max_repeat_share: float = 0.3) -> Degeneration:
    toks = words(text)
    grams = [tuple(toks[i : i + 3]) for i in range(len(toks) - 2)]
    repeated = (1 - len(set(grams)) / len(grams)) if len(grams) >= 6 else 0.0
    sent_counts = Counter(normalise(s) for s in sentences(text))
    max_repeats = max(sent_counts.values(), default=0)
    stripped = text.rstrip()
    truncated = finish_reason == "length" or (bool(stripped) and stripped[-1] not in ".!?)\"'”’:;]*`")
    return Degeneration(
        repeated_ngram_share=round(repeated, 4),
        max_sentence_repeats=max_repeats,
        truncated=truncated,
        degenerate=repeated >= max_repeat_share or max_repeats >= 3,
    )


_INTERROGATIVE = re.compile(
    r"^(what|which|who|whom|whose|when|where|why|how|is|are|was|were|do|does|did|can|could|should|would|will|"
    r"has|have|had|may|might|must|shall|in what|to what|according|under what|for what|on what|by what|at what)\b",
    re.IGNORECASE,
)
_IMPERATIVE = re.compile(
    r"^(list|name|describe|explain|summari[sz]e|give|state|identify|compare|outline|define|extract|rewrite|"
    r"find|tell|show|provide|classify|translate)\b",
    re.IGNORECASE,
)
_NOT_SELF_CONTAINED = re.compile(r"\b(the|this|that|above|given) (passage|text|excerpt|paragraph|context|snippet)\b", re.IGNORECASE)
_JUNK = re.compile(r"[{}<>]|\b(instruction|output|input)\s*[:\"]|\\n|\"type\"", re.IGNORECASE)


def question_problems(question: str, chunk: str, *, min_words: int = 4, max_words: int = 45) -> list[str]:
    """Why ``question`` is not a usable question about ``chunk`` ([] when it is)."""
    q = " ".join(question.split())
    problems: list[str] = []
    n_words = len(words(q))
    if n_words < min_words:
        problems.append("too_short")
    if n_words > max_words:
        problems.append("too_long")
    if not (q.endswith("?") or _INTERROGATIVE.match(q) or _IMPERATIVE.match(q)):
        problems.append("not_a_question")
    if _NOT_SELF_CONTAINED.search(q):
        problems.append("not_self_contained")
    if _JUNK.search(q):
        problems.append("template_residue")
    q_words = set(content_words(q))
    if not q_words or len(q_words & set(content_words(chunk))) / len(q_words) < 0.34:
        problems.append("off_topic")
    if degeneration(q).degenerate:
        problems.append("degenerate")
    return problems


def reciprocal_rank(rank: int | None) -> float:
    return 1.0 / rank if rank else 0.0


def retrieval_summary(ranks: Sequence[int | None], k: int) -> dict[str, float | None]:
    """hit@k and MRR of the source chunk ranks (``None``: not found in the searched depth)."""
    if not ranks:
        return {"hit_at_k": None, "mrr": None, "k": k}
    hits = sum(1 for r in ranks if r is not None and r <= k)
    mrr = sum(reciprocal_rank(r) for r in ranks) / len(ranks)
    return {"hit_at_k": round(hits / len(ranks), 4), "mrr": round(mrr, 4), "k": k}


def percentile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    vals = sorted(values)
    pos = (len(vals) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return round(vals[lo] + (vals[hi] - vals[lo]) * (pos - lo), 4)


__all__ = [
    "Degeneration",
    "EmbeddingCache",
    "SupportScore",
    "content_share",
    "degeneration",
    "percentile",
    "question_problems",
    "reciprocal_rank",
    "relevance",
    "retrieval_summary",
    "scale",
    "support",
]
