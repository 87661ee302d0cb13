"""Curation on the LLM-free signals, with and without the judge: support, relevance, looping,
retrieval rank, and the support gap a preference pair needs."""

from __future__ import annotations

from docmill.generation.assemble.curate import curate
from docmill.generation.models import CurationConfig

from tests.support.generation_doubles import make_record, signals


def rec(rid, question, *, judged=False, **quality):
    return make_record(rid, question, judged=judged, quality=signals(**quality))


def test_without_the_judge_records_are_kept_or_dropped_on_their_signals():
    # Given unjudged records with different measured qualities
    records = [
        rec("good", "How often is the pump station inspected?"),
        rec("unsupported", "Who signs the boiler permit in winter?", support_chosen=0.3),
        rec("irrelevant", "What colour is the forklift in hall B?", relevance=0.05),
        rec("looping", "Where is logbook 11 kept for the valve?", degenerate_chosen=True),
    ]
    # When they are curated
    result = curate(records, CurationConfig())
    # Then only the well-supported, relevant, non-looping one stays
    assert [r.id for r in result.kept] == ["good"]
    assert result.drops == {"chosen_degenerate": 1, "chosen_irrelevant": 1, "chosen_unsupported": 1}


def test_pairs_need_chosen_clearly_better_supported_than_rejected():
    records = [
        rec("wide", "How often is the pump station inspected?", support_rejected=0.1),
        rec("narrow", "Which team checks valve V-12 each week?", support_rejected=0.85),
        rec("loop", "Where is logbook 11 kept for the valve?", degenerate_rejected=True),
    ]
    result = curate(records, CurationConfig(min_support_gap=0.25))
    assert {r.id for r in result.kept} == {"wide", "narrow", "loop"}
    assert result.pair_ids == {"wide"}
    assert result.pair_drops == {"pair_rejected_degenerate": 1, "pair_support_gap_below_threshold": 1}
    assert curate(records, CurationConfig(min_support_gap=0.05)).pair_ids == {"wide", "narrow"}


def test_with_the_judge_both_the_signals_and_the_judge_must_agree():
    records = [
        rec("both", "How often is the pump station inspected?", judged=True),
        make_record("judge-low", "Who signs the boiler permit in winter?", chosen_scores=(2, 2, 2), quality=signals()),
        make_record("unsupported", "What colour is the forklift in hall B?", quality=signals(support_chosen=0.2)),
        make_record("small-margin", "Which team checks valve V-12 weekly?", rejected_scores=(5, 5, 4), quality=signals()),
    ]
    result = curate(records, CurationConfig(min_margin=1.0))
    assert {r.id for r in result.kept} == {"both", "small-margin"}
    assert result.drops == {"chosen_low_score": 1, "chosen_unsupported": 1}
    # the support gap is wide for both, but the judge margin is not for small-margin
    assert result.pair_ids == {"both"} and result.pair_drops == {"pair_margin_below_threshold": 1}


def test_max_source_rank_drops_questions_that_do_not_find_their_source():
    records = [
        rec("found", "How often is the pump station inspected?", source_rank=1),
        rec("deep", "Which team checks valve V-12 each week?", source_rank=7),
        rec("missing", "Where is logbook 11 kept for the valve?", source_rank=None),
    ]
    assert len(curate(records, CurationConfig()).kept) == 3  # off by default
    result = curate(records, CurationConfig(max_source_rank=4))
    assert [r.id for r in result.kept] == ["found"] and result.drops == {"question_not_retrieved": 2}


def test_duplicates_keep_the_best_supported_record_when_nothing_was_judged():
    records = [
        rec("weaker", "How often is the pump station inspected?", support_chosen=0.7),
        rec("better", "How often is the pump station inspected?", support_chosen=0.9),
    ]
    result = curate(records, CurationConfig())
    assert [r.id for r in result.kept] == ["better"] and result.drops == {"duplicate_exact": 1}
