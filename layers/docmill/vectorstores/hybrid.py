"""Client-side hybrid ranking shared by both back ends.

Each result list (k-NN, BM25) is min-max normalised to [0, 1] on its own, then the two are
combined as ``w * knn + (1 - w) * bm25`` (a document missing from one list scores 0 there).
This is the arithmetic-mean combination of OpenSearch's ``normalization-processor``; doing it
here keeps one ranking for the embedded store and OpenSearch, works on every OpenSearch
version and on Serverless without creating a search pipeline (a cluster-level resource that
needs extra permissions), and costs one extra small query.
"""

from __future__ import annotations

from collections.abc import Sequence

from docmill.vectorstores.base import SearchHit

MIN_SCORE = 0.001


def min_max(scores: Sequence[float]) -> list[float]:
    if not scores:
        return []
    lo, hi = min(scores), max(scores)
    if hi - lo <= 1e-12:
        # One hit, or all equal: they are all "the best" of that list.
        return [1.0 for _ in scores]
    # The list's worst hit still beats "not in the list" (OpenSearch's min-max does the same).
    return [max(MIN_SCORE, (s - lo) / (hi - lo)) for s in scores]


_HitKey = tuple[str, str, str]


def combine(
    knn_hits: Sequence[SearchHit], text_hits: Sequence[SearchHit], k: int, vector_weight: float = 0.5
) -> list[SearchHit]:
    if not 0.0 <= vector_weight <= 1.0:
        raise ValueError("vector_weight must be within [0, 1]")
    combined: dict[_HitKey, float] = {}
    by_key: dict[_HitKey, SearchHit] = {}
    for hits, weight in ((knn_hits, vector_weight), (text_hits, 1.0 - vector_weight)):
        for hit, norm in zip(hits, min_max([h.score for h in hits]), strict=True):
            key = (hit.tenant, hit.collection, hit.chunk_id)
            combined[key] = combined.get(key, 0.0) + weight * norm
            by_key.setdefault(key, hit)
    ranked = sorted(combined.items(), key=lambda item: (-item[1], item[0]))[:k]
    return [by_key[key].model_copy(update={"score": score}) for key, score in ranked]
