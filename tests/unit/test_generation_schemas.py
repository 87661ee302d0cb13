"""The question and judge schemas under llguidance: a 'model' emitting random tokens, primed
with the question prompt's real prefill, still yields a parseable list whose instructions open
like questions, and judge replies that parse as verdicts."""

from __future__ import annotations

import pytest
import torch

from docmill.generation.parsing import parse_judge, parse_questions
from docmill.generation.prompts import load_prompts
from docmill.generation.schemas import OPENINGS, judge_schema, question_schema
from docmill.llm.constrained import JsonSchemaConstraint
from docmill.llm.decoding import DecodeParams, Sequence, reply_ids
from tests.support.tiny_lm import eos_only_tokenizer


@pytest.fixture(scope="module")
def tokenizer():
    corpus = ['[{"type": "factual", "instruction": "What is the refund policy?", "input": "", "output": "30 days"}]',
              '{"relevance": 4, "groundedness": 5, "helpfulness": 4, "answerable": true, "reason": "ok"}'] * 20
    return eos_only_tokenizer(corpus)


def decode(tokenizer, schema, prefix: str, seed: int) -> str:
    constraint = JsonSchemaConstraint(tokenizer, schema, prefix_ids=tokenizer.encode(prefix, add_special_tokens=False))
    s = Sequence([1], DecodeParams(max_new_tokens=400, temperature=1.0, seed=seed), frozenset({tokenizer.eos_token_id}),
                 constraint=constraint)
    generator = torch.Generator().manual_seed(seed)
    while not s.finished:
        logits = torch.randn(len(tokenizer), generator=generator) * 3
        logits[tokenizer.eos_token_id] += 6
        s.choose(logits)
    return prefix + tokenizer.decode(reply_ids(s), skip_special_tokens=True)


def test_question_replies_under_the_schema_parse_and_open_like_questions(tokenizer):
    types = ["factual", "summary"]
    prefill = load_prompts().question.render_prefill(types=types, n=len(types))
    for seed in range(3):
        text = decode(tokenizer, question_schema(types), prefill, seed)
        parsed = parse_questions(text, expected_types=types)
        assert parsed.items and len(parsed.items) <= 2
        assert all(item.instruction.startswith(OPENINGS) for item in parsed.items), text


def test_judge_replies_under_the_schema_parse(tokenizer):
    prefill = load_prompts().judge.render_prefill()
    for seed in range(2):
        verdict = parse_judge(decode(tokenizer, judge_schema(), prefill, seed)).verdict
        assert 1 <= verdict.relevance <= 5 and isinstance(verdict.answerable, bool)
