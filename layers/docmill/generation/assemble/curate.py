"""Curation: quality signals, judge filters, length bounds, duplicates, preference pairs.

Order (each drop counted under its reason):
1. LLM-free signals (``record.quality``, see ``docmill.quality``), for every record:
   ``chosen_degenerate`` (the answer loops), ``chosen_unsupported`` (support under
   ``min_support``), ``chosen_irrelevant`` (relevance under ``min_relevance``) and, when
   ``max_source_rank`` is set, ``question_not_retrieved`` (the question's search does not rank
   its own source chunk that high);
2. the judge, only for records it scored: ``unanswerable`` and ``chosen_low_score``;
3. ``question_too_short`` / ``question_too_long`` / ``answer_too_short`` / ``answer_too_long``;
4. ``duplicate_exact`` (same normalised question) and ``duplicate_near`` (MinHash Jaccard of
   word 3-shingles at or above the threshold), across the whole dataset. Of a duplicate group
   the best record is kept (judge score, then support; ties: smaller id), so the result does
   not depend on shard order.
Kept records all go to sft/completion/text. A kept record is also a preference pair when the
answers differ (else ``pair_identical_answers``), the rejected one does not loop
(``pair_rejected_degenerate``), chosen is clearly better supported
(``support_gap >= min_support_gap``, else ``pair_support_gap_below_threshold``) and, when the
judge ran, ``chosen - rejected >= min_margin`` (else ``pair_margin_below_threshold``).
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


def _signal_reason(rec: GeneratedRecord, cfg: CurationConfig) -> str | None:
    q = rec.quality
    if not q:  # a record made before quality signals existed: judged by the judge alone
        return None
    if cfg.drop_degenerate and q.get("degenerate_chosen"):
        return "chosen_degenerate"
    if float(q.get("support_chosen", 0.0)) < cfg.min_support:
        return "chosen_unsupported"
    if float(q.get("relevance", 0.0)) < cfg.min_relevance:
        return "chosen_irrelevant"
    if cfg.max_source_rank is not None:
        rank = q.get("source_rank", rec.source_rank)
        if rank is None or rank > cfg.max_source_rank:
            return "question_not_retrieved"
    return None


def _judge_reason(rec: GeneratedRecord, cfg: CurationConfig) -> str | None:
    if rec.judge_chosen is None:
        return None
    if cfg.require_answerable and not rec.judge_chosen.answerable:
        return "unanswerable"
    if rec.judge_chosen.score < cfg.min_chosen_score:
        return "chosen_low_score"
    return None


def _pair_reason(rec: GeneratedRecord, cfg: CurationConfig) -> str | None:
    if " ".join(rec.chosen.split()) == " ".join(rec.rejected.split()):
        return "pair_identical_answers"
    if rec.quality:
        if rec.quality.get("degenerate_rejected"):
            return "pair_rejected_degenerate"
        if rec.support_gap < cfg.min_support_gap:
            return "pair_support_gap_below_threshold"
    margin = rec.margin
    if margin is not None and margin < cfg.min_margin:
        return "pair_margin_below_threshold"
    return None


def _rank_key(rec: GeneratedRecord) -> tuple[float, float, float, str]:
    judge = rec.judge_chosen.score if rec.judge_chosen is not None else 0.0
    return (-judge, -rec.support_chosen, -(rec.margin or 0.0), rec.id)


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
        reason = _signal_reason(rec, cfg) or _judge_reason(rec, cfg) or _length_reason(rec, cfg, answer_of)
        if reason:
            drops[reason] += 1
            continue
        survivors.append(rec)

    # Best first, so that the kept member of a duplicate group is the best one.
    survivors.sort(key=_rank_key)
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
        reason = _pair_reason(rec, cfg)
        if reason:
            pair_drops[reason] += 1
        else:
            result.pair_ids.add(rec.id)
    result.kept = unique
    result.drops = dict(sorted(drops.items()))
    result.pair_drops = dict(sorted(pair_drops.items()))
    return result

