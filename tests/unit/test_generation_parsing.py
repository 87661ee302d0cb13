"""Strict JSON parsing of model output: extraction, repair, typed validation."""

from __future__ import annotations

import pytest

from docmill.generation.parsing import (
    OutputParseError,
    cited_numbers,
    parse_json,
    parse_judge,
    parse_questions,
    strip_citations,
)


def test_plain_json_parses_without_repairs():
    parsed = parse_json('[{"a": 1}]')
    assert parsed.value == [{"a": 1}]
    assert parsed.repairs == []


def test_code_fence_with_prose_around_it_is_extracted():
    text = 'Sure! Here you go:\n```json\n{"a": "b"}\n```\nHope that helps.'
    parsed = parse_json(text)
    assert parsed.value == {"a": "b"}
    assert "code_fence" in parsed.repairs


def test_prose_before_and_after_bare_json_is_cut():
    parsed = parse_json('Here is the list: [{"x": 1}, {"x": 2}] -- done')
    assert parsed.value == [{"x": 1}, {"x": 2}]


def test_trailing_commas_are_removed():
    parsed = parse_json('[{"a": 1, "b": [1, 2,],}, ]')
    assert parsed.value == [{"a": 1, "b": [1, 2]}]
    assert "trailing_commas" in parsed.repairs


def test_single_quoted_python_style_dict_is_repaired_keeping_apostrophes():
    parsed = parse_json("{'type': 'factual', 'instruction': \"What's new?\", 'ok': True, 'x': None}")
    assert parsed.value == {"type": "factual", "instruction": "What's new?", "ok": True, "x": None}


def test_truncated_list_keeps_complete_elements_only():
    # Given a reply cut off by max_tokens in the middle of the third element
    text = '[{"instruction": "q1"}, {"instruction": "q2"}, {"instruction": "q3 is cut'
    # When parsed
    parsed = parse_json(text)
    # Then the two complete elements survive and the repair is recorded
    assert parsed.value == [{"instruction": "q1"}, {"instruction": "q2"}]
    assert "truncated" in parsed.repairs


def test_truncated_object_is_closed():
    parsed = parse_json('{"relevance": 4, "groundedness": 5, "helpfulness": 3, "answerable": true, "reason": "ok so')
    assert parsed.value["helpfulness"] == 3
    assert parsed.value["reason"].startswith("ok so")


@pytest.mark.parametrize("text", ["", "   ", "I cannot help with that.", "{{{{", "[1, 2"[:1] + "oops"])
def test_unrepairable_output_raises_parse_error(text):
    with pytest.raises(OutputParseError):
        parse_json(text)


def test_questions_accept_aliases_wrappers_and_skip_invalid_items():
    text = (
        '{"questions": [{"type": "Fact", "instruction": " What is X? ", "input": null},'
        ' {"type": "instruction-style", "instruction": "List it", "input": "a, b", "output": ["a", "b"]},'
        ' {"type": "factual", "instruction": ""}, "not an object"]}'
    )
    result = parse_questions(text)
    assert [i.type for i in result.items] == ["factual", "instruction"]
    assert result.items[0].instruction == "What is X?"
    assert result.items[0].input == ""
    assert result.items[1].question == "List it\n\na, b"
    assert result.items[1].output == '["a", "b"]'
    assert result.invalid_items == 2


def test_questions_with_no_valid_item_is_a_parse_error():
    with pytest.raises(OutputParseError):
        parse_questions('[{"type": "factual"}, {"type": "poem", "instruction": "x"}]')


def test_judge_coerces_strings_and_floats():
    verdict = parse_judge('{"Relevance": "4/5", "groundedness": 4.6, "helpfulness": 3, "answerable": "no"}').verdict
    assert (verdict.relevance, verdict.groundedness, verdict.helpfulness) == (4, 5, 3)
    assert verdict.answerable is False
    assert verdict.score == pytest.approx(4.0)


@pytest.mark.parametrize(
    "text",
    [
        '{"relevance": 9, "groundedness": 4, "helpfulness": 3, "answerable": true}',
        '{"relevance": 4, "helpfulness": 3, "answerable": true}',
        '["relevance", 4]',
    ],
)
def test_judge_rejects_out_of_range_or_missing_scores(text):
    with pytest.raises(OutputParseError):
        parse_judge(text)


def test_citations_are_found_and_stripped():
    answer = "Economy is standard [1]. Business needs 8 hours [2][3], see also [1, 4]."
    assert cited_numbers(answer) == [1, 2, 3, 4]
    assert strip_citations(answer) == "Economy is standard. Business needs 8 hours, see also."


def test_judge_accepts_labelled_scores_when_there_is_no_json():
    parsed = parse_judge("Relevance: 4/5\nGroundedness - 2\nHelpfulness: 3\nAnswerable: no")
    assert (parsed.verdict.relevance, parsed.verdict.groundedness, parsed.verdict.helpfulness) == (4, 2, 3)
    assert parsed.verdict.answerable is False and parsed.repairs == ["labelled_text"]
    with pytest.raises(OutputParseError):
        parse_judge("Relevance: 4. The rest is fine.")


def test_unknown_question_types_take_the_requested_type_when_known():
    text = '[{"type": "fabulous", "instruction": "Why?"}, {"instruction": "How?"}, {"type": "summary", "instruction": "Sum up."}]'
    result = parse_questions(text, expected_types=["reasoning", "factual", "instruction"])
    assert [i.type for i in result.items] == ["reasoning", "factual", "summary"]
    assert "type_from_request" in result.repairs
    # without the request, an unknown type is invalid
    assert parse_questions(text).invalid_items == 1
