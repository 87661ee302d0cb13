"""Curation: judge filters, length bounds, exact and near-duplicate removal, preference margins.

Order (each drop counted under its reason):
1. ``unanswerable``: the judge says the context does not answer the question;
2. ``chosen_low_score``: the chosen answer's mean judge score is under ``min_chosen_score``;
3. ``question_too_short`` / ``question_too_long`` / ``answer_too_short`` / ``answer_too_long``;
4. ``duplicate_exact`` (same normalised question) and ``duplicate_near`` (MinHash Jaccard of
   word 3-shingles at or above the threshold), across the whole dataset. Of a duplicate group
   the record with the best chosen score is kept (ties: smaller id), so the result does not
   depend on shard order.
Kept records all go to sft/completion/text; a record is also a preference pair when
``chosen - rejected >= min_margin`` (else counted ``pair_margin_below_threshold``) and the two
answers differ (``pair_identical_answers``).
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from docmill.generation.models import CurationConfig, GeneratedRecord

_WORD = re.compile(r"\w+", re.UNICODE)


def normalise_question(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(_WORD.findall(text))


def _shingles(text: str, n: int = 3) -> set[str]:
    words = normalise_question(text).split()
    if len(words) < n:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i : i + n]) for i in range(len(words) - n + 1)}


@dataclass
class CurationResult:
    kept: list[GeneratedRecord] = field(default_factory=list)
    pair_ids: set[str] = field(default_factory=set)
    drops: dict[str, int] = field(default_factory=dict)  # records removed, by reason
    pair_drops: dict[str, int] = field(default_factory=dict)  # kept records that are not pairs
    input_records: int = 0

    @property
    def pairs(self) -> list[GeneratedRecord]:
        return [r for r in self.kept if r.id in self.pair_ids]


def _length_reason(rec: GeneratedRecord, cfg: CurationConfig, answer_of: dict[str, str]) -> str | None:
    q = rec.question
    if len(q) < cfg.min_question_chars:
        return "question_too_short"
    if len(q) > cfg.max_question_chars:
        return "question_too_long"
    answer = answer_of.get(rec.id, rec.chosen)
    if len(answer) < cfg.min_answer_chars:
        return "answer_too_short"
    if len(answer) > cfg.max_answer_chars:
        return "answer_too_long"
    return None


def curate(
    records: Sequence[GeneratedRecord],
    cfg: CurationConfig,
    *,
    answer_text: dict[str, str] | None = None,
) -> CurationResult:
    """``answer_text`` optionally gives the chosen answer as it will be written (e.g. with
    citations stripped), so length bounds apply to what the dataset holds."""
    answer_of = answer_text or {}
    result = CurationResult(input_records=len(records))
    drops: Counter[str] = Counter()

    survivors: list[GeneratedRecord] = []
    for rec in records:
        if cfg.require_answerable and not rec.judge_chosen.answerable:
            drops["unanswerable"] += 1
            continue
        if rec.judge_chosen.score < cfg.min_chosen_score:
            drops["chosen_low_score"] += 1
            continue
        reason = _length_reason(rec, cfg, answer_of)
        if reason:
            drops[reason] += 1
            continue
        survivors.append(rec)

    # Best first, so that the kept member of a duplicate group is the best one.
    survivors.sort(key=lambda r: (-r.judge_chosen.score, -r.margin, r.id))
    seen_exact: set[str] = set()
    unique: list[GeneratedRecord] = []
    for rec in survivors:
        key = normalise_question(rec.question)
        if key in seen_exact:
            drops["duplicate_exact"] += 1
            continue
        seen_exact.add(key)
        unique.append(rec)

    if cfg.dedup == "minhash" and len(unique) > 1:
        from datasketch import MinHash, MinHashLSH

        lsh = MinHashLSH(threshold=cfg.near_duplicate_threshold, num_perm=cfg.num_perm)
        lsh_index: dict[str, MinHash] = {}
        deduped: list[GeneratedRecord] = []
        for rec in unique:
            shingles = _shingles(rec.question)
            mh = MinHash(num_perm=cfg.num_perm, seed=1)
            for sh in shingles:
                mh.update(sh.encode("utf-8"))
            # LSH finds candidates; confirm with the estimated Jaccard so the threshold is exact-ish.
            if any(mh.jaccard(other) >= cfg.near_duplicate_threshold for other in (lsh_index[c] for c in lsh.query(mh))):
                drops["duplicate_near"] += 1
                continue
            lsh.insert(rec.id, mh)
            lsh_index[rec.id] = mh
            deduped.append(rec)
        unique = deduped

    unique.sort(key=lambda r: (r.order, r.id))
    pair_drops: Counter[str] = Counter()
    for rec in unique:
        if rec.chosen.strip() == rec.rejected.strip():
            pair_drops["pair_identical_answers"] += 1
        elif rec.margin < cfg.min_margin:
            pair_drops["pair_margin_below_threshold"] += 1
        else:
            result.pair_ids.add(rec.id)
    result.kept = unique
    result.drops = dict(sorted(drops.items()))
    result.pair_drops = dict(sorted(pair_drops.items()))
    return result

