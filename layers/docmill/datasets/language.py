"""The language of a dataset, for the card's ``language`` field (an ISO 639-1 code)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

#: Records sampled: the majority of a few hundred is stable and costs milliseconds.
SAMPLE = 200


def detect_language(texts: Iterable[str], *, sample: int = SAMPLE) -> str | None:
    """Majority language of the texts (``en``, ``de``, ``zh`` ...), None when none is detected."""
    from langdetect import DetectorFactory, LangDetectException, detect

    DetectorFactory.seed = 0  # langdetect is randomised; the card must not change between runs
    votes: Counter[str] = Counter()
    for i, text in enumerate(texts):
        if i >= sample:
            break
        if not text or not text.strip():
            continue
        try:
            votes[detect(text).split("-")[0]] += 1
        except LangDetectException:
            continue
    return votes.most_common(1)[0][0] if votes else None
