"""Curation: judge filters, margins, length bounds, exact and near-duplicate removal."""

from __future__ import annotations

from docmill.generation.assemble.curate import curate, normalise_question
from docmill.generation.models import CurationConfig
from tests.support.generation_doubles import make_record

CFG = CurationConfig()


def test_unanswerable_and_low_scoring_chosen_answers_are_dropped():
    records = [
        make_record("a", "How often is the pump inspected?"),
        make_record("b", "Who signs the boiler permit?", answerable=False),
        make_record("c", "What colour is the forklift?", chosen_scores=(2, 2, 3)),
    ]
    result = curate(records, CFG)
    assert [r.id for r in result.kept] == ["a"]
    assert result.drops == {"chosen_low_score": 1, "unanswerable": 1}


def test_pairs_need_the_judge_margin_and_distinct_answers():
    records = [
        make_record("wide", "How often is the pump inspected?", rejected_scores=(2, 2, 2)),  # margin 3
        make_record("narrow", "Where is logbook 11 kept?", rejected_scores=(5, 4, 4)),  # margin 0.67
        make_record("same", "Which team checks the valve?", chosen="Same words here, clearly.", rejected="Same words here, clearly."),
    ]
    result = curate(records, CurationConfig(min_margin=1.0))
    assert {r.id for r in result.kept} == {"wide", "narrow", "same"}  # all still good for sft
    assert result.pair_ids == {"wide"}
    assert result.pair_drops == {"pair_identical_answers": 1, "pair_margin_below_threshold": 1}
    # a lower threshold admits the narrow pair
    assert curate(records, CurationConfig(min_margin=0.5)).pair_ids == {"wide", "narrow"}


def test_length_bounds_apply_to_the_written_answer_text():
    cfg = CurationConfig(min_question_chars=10, max_question_chars=60, min_answer_chars=15, max_answer_chars=80)
    records = [
        make_record("short-q", "Why?"),
        make_record("long-q", "Why " * 40),
        make_record("short-a", "How often is the pump inspected?", chosen="Weekly [1]."),
        make_record("long-a", "Who escalates faults on the pump?", chosen="x" * 200),
        make_record("ok", "Which team inspects the pump unit?"),
    ]
    # the written answer of "ok" is what counts, not the raw one
    result = curate(records, cfg, answer_text={"ok": "The valve team inspects it."})
    assert [r.id for r in result.kept] == ["ok"]
    assert result.drops == {"answer_too_long": 1, "answer_too_short": 1, "question_too_long": 1, "question_too_short": 1}


def test_exact_duplicates_keep_the_best_scored_copy():
    records = [
        make_record("z-worse", "How often is the PUMP inspected?", chosen_scores=(4, 4, 4), order=(0, 0, 0)),
        make_record("a-better", "how often is the pump inspected", chosen_scores=(5, 5, 5), order=(0, 1, 0)),
    ]
    result = curate(records, CFG)
    assert [r.id for r in result.kept] == ["a-better"]
    assert result.drops == {"duplicate_exact": 1}
    assert normalise_question("How often, is the PUMP?") == "how often is the pump"


def test_near_duplicates_are_removed_and_distinct_questions_kept():
    base = "How often is the pump unit in building four inspected by the valve maintenance team each quarter?"
    near = "How often is the pump unit in building four inspected by the valve maintenance team each quarter, please?"
    other = "Which supervisor receives escalations about faults found on the boiler during the night shift?"
    records = [make_record("1", base), make_record("2", near, chosen_scores=(4, 4, 4)), make_record("3", other)]
    result = curate(records, CFG)
    assert {r.id for r in result.kept} == {"1", "3"}
    assert result.drops == {"duplicate_near": 1}
    # with dedup off both stay
    assert len(curate(records, CurationConfig(dedup="none")).kept) == 3


def test_kept_records_come_back_in_generation_order():
    records = [make_record(str(i), f"Question number {i} about topic {chr(97 + i) * 5}?", order=(0, 5 - i, 0)) for i in range(5)]
    result = curate(records, CFG)
    assert [r.id for r in result.kept] == ["4", "3", "2", "1", "0"]
