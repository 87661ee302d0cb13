"""LLM-free quality signals on hand-made cases: a copied answer, an unrelated one, a looping
one and a paraphrase; relevance, question checks, retrieval summary, trimming, extractive
answers and template questions. The hashing embedder stands in for MiniLM (fast, and
similar wording -> similar vectors); the real model's figures are in the README."""

from __future__ import annotations

import pytest
from docmill.generation.extractive import extractive_answer
from docmill.generation.templates import display_title, key_phrase, template_questions
from docmill.quality.signals import (
    EmbeddingCache,
    content_share,
    degeneration,
    question_problems,
    relevance,
    retrieval_summary,
    support,
)
from docmill.quality.text import sentences, trim_repetition

from tests.support.generation_doubles import HashingEmbedder

CONTEXT = [
    (
        "The pump station P-4 feeds the northern reservoir. During maintenance windows the bypass valve "
        "V-12 is opened so that the reservoir keeps at least 60 percent of its capacity. Inspections of "
        "the station happen every two weeks."
    )
]
COPIED = "During maintenance windows the bypass valve V-12 is opened so that the reservoir keeps at least 60 percent of its capacity."
PARAPHRASE = "While P-4 is being serviced, the operators open valve V-12 as a bypass, which keeps the northern reservoir at least 60% full."
UNRELATED = "Norwich City signed the Welsh striker in 1997 and he scored 84 goals for the club."
LOOPING = "The image is stored in a new machine. " * 8
QUESTION = "What happens to valve V-12 during maintenance of pump station P-4?"


@pytest.fixture(scope="module")
def embed():
    return EmbeddingCache(HashingEmbedder())


@pytest.mark.parametrize("use_embedder", [False, True])
def test_copied_answer_is_fully_supported_and_unrelated_one_is_not(use_embedder, embed):
    # Given the context, When a copied and an unrelated answer are scored
    e = embed if use_embedder else None
    copied = support(COPIED, CONTEXT, embed=e)
    unrelated = support(UNRELATED, CONTEXT, embed=e)
    # Then the copy scores ~1 and the unrelated answer ~0
    assert copied.score >= 0.95 and copied.unsupported_sentences == 0
    assert unrelated.score <= 0.15 and unrelated.unsupported_sentences == 1
    assert (copied.semantic is not None) == use_embedder


def test_paraphrase_is_partly_supported_and_between_copy_and_unrelated():
    para = support(PARAPHRASE, CONTEXT)
    assert 0.25 <= para.score <= 0.85
    assert support(UNRELATED, CONTEXT).score < para.score < support(COPIED, CONTEXT).score


def test_support_weighs_each_sentence_so_a_half_invented_answer_scores_about_half():
    mixed = support(COPIED + " " + UNRELATED, CONTEXT)
    assert 0.35 <= mixed.score <= 0.75 and mixed.sentences == 2 and mixed.unsupported_sentences == 1


def test_empty_answer_or_context_has_no_support():
    assert support("", CONTEXT).score == 0.0 and support(COPIED, []).score == 0.0


def test_looping_answer_is_degenerate_and_a_normal_one_is_not():
    loop = degeneration(LOOPING)
    assert loop.degenerate and loop.max_sentence_repeats == 8 and loop.repeated_ngram_share > 0.5
    assert not degeneration(COPIED).degenerate and not degeneration(PARAPHRASE).degenerate


def test_truncation_is_flagged_from_the_text_or_the_finish_reason():
    assert degeneration("The valve is opened during the").truncated
    assert degeneration(COPIED, finish_reason="length").truncated
    assert not degeneration(COPIED).truncated


def test_relevance_ranks_an_on_topic_answer_above_an_unrelated_one(embed):
    for e in (None, embed):
        assert relevance(QUESTION, COPIED, embed=e) > 0.3 > relevance(QUESTION, UNRELATED, embed=e)


def test_content_share_counts_answer_words_found_in_the_source():
    assert content_share(COPIED, CONTEXT[0]) == 1.0
    assert content_share(UNRELATED, CONTEXT[0]) == 0.0


def test_questions_are_checked_for_form_subject_and_residue():
    chunk = CONTEXT[0]
    assert question_problems(QUESTION, chunk) == []
    assert question_problems("Summarise how the northern reservoir stays supplied during maintenance.", chunk) == []
    assert "not_a_question" in question_problems("The reservoir is fed by pump station P-4.", chunk)
    assert "not_self_contained" in question_problems("What does the passage say about valve V-12?", chunk)
    assert "off_topic" in question_problems("Who won the 1997 football league in Norwich?", chunk)
    assert "template_residue" in question_problems('{"instruction": "What feeds the reservoir?"', chunk)
    assert "too_short" in question_problems("Why?", chunk)


def test_retrieval_summary_gives_hit_at_k_and_mrr():
    assert retrieval_summary([1, 2, None, 5], k=4) == {"hit_at_k": 0.5, "mrr": round((1 + 0.5 + 0.2) / 4, 4), "k": 4}
    assert retrieval_summary([], k=4)["hit_at_k"] is None


def test_trim_repetition_cuts_a_loop_and_an_unfinished_tail():
    text, trimmed = trim_repetition(LOOPING)
    assert text == "The image is stored in a new machine." and trimmed
    text, trimmed = trim_repetition("Valves are opened. Pumps are checked. And then the")
    assert text == "Valves are opened. Pumps are checked." and trimmed
    assert trim_repetition(COPIED) == (COPIED, False)


def test_sentences_split_prose_and_long_table_lines():
    assert sentences("One fact here. Another fact [2]. A third!") == ["One fact here.", "Another fact.", "A third!"]
    table = "\n".join(f"Row {i} value {i * 3}" for i in range(40))
    assert len(sentences(table)) == 40


def test_extractive_answer_takes_the_context_sentences_that_answer(embed):
    passages = [("other", UNRELATED), ("src", CONTEXT[0])]
    answer = extractive_answer(QUESTION, passages, source_id="src", embed=embed)
    assert "V-12 is opened" in answer and "Norwich" not in answer
    assert support(answer, [p[1] for p in passages]).score >= 0.95
    assert extractive_answer(QUESTION, []) == ""


def test_template_questions_name_a_key_phrase_of_informative_sentences():
    items = template_questions(CONTEXT[0], ["factual", "summary"], title="plant-manual.pdf")
    assert len(items) == 2 and {i.type for i in items} == {"factual", "summary"}
    for item in items:
        assert question_problems(item.question, CONTEXT[0]) == [], item.question
        assert item.output in sentences(CONTEXT[0])
    assert display_title("plant-manual.pdf") == "plant manual"
    assert key_phrase("Roberts signed for Wolverhampton Wanderers after three seasons.") == "Wolverhampton Wanderers"


def test_extractive_answer_skips_headings_and_words_the_whole_context_repeats():
    # Given a section whose title words appear in the question and in a heading line
    text = (
        "Supervised fine-tuning\n\nThe sft format follows the Alpaca layout with the fields instruction, input and "
        "output. The rlhf format holds two strings in the Anthropic HH style that share the same dialogue prefix."
    )
    answer = extractive_answer("List the facts supervised fine-tuning gives about the Anthropic HH style.", [("c", text)])
    # Then the answer is the sentence about the asked subject, not the heading
    assert answer.startswith("The rlhf format holds two strings in the Anthropic HH style")
