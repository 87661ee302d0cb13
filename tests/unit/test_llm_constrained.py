"""JSON Schema constrained decoding (llguidance) drives even a random 'model' to valid JSON.

The tokenizer is a small byte-level BPE trained here in memory (the packaged model's tokenizer
takes long to read from its GGUF); the real model is exercised in
tests/integration/test_llm_local.py.
"""

from __future__ import annotations

import json

import pytest
import torch

from docmill.errors import ConfigurationError, LLMError
from docmill.llm.constrained import JsonSchemaConstraint
from docmill.llm.decoding import DecodeParams, Sequence, reply_ids
from tests.support.tiny_lm import eos_only_tokenizer

SCHEMA = {
    "type": "object",
    "properties": {
        "question": {"type": "string", "minLength": 3, "maxLength": 40},
        "type": {"enum": ["factual", "reasoning", "summary"]},
        "score": {"type": "integer", "minimum": 1, "maximum": 5},
    },
    "required": ["question", "type", "score"],
    "additionalProperties": False,
}


@pytest.fixture(scope="module")
def tokenizer():
    corpus = ['{"question": "What is the refund policy?", "type": "factual", "score": 4}',
              "Refunds are issued within 30 days of purchase when the item is returned unused."] * 20
    return eos_only_tokenizer(corpus)


def decode_randomly(tokenizer, seed: int, *, prefix: str = "", max_new_tokens: int = 200) -> tuple[str, Sequence]:
    eos = frozenset({tokenizer.eos_token_id})
    prefix_ids = tokenizer.encode(prefix, add_special_tokens=False) if prefix else []
    constraint = JsonSchemaConstraint(tokenizer, SCHEMA, prefix_ids=prefix_ids)
    s = Sequence([1], DecodeParams(max_new_tokens=max_new_tokens, temperature=1.0, seed=seed,
                                   repetition_penalty=1.1, no_repeat_ngram_size=4), eos, constraint=constraint)
    generator = torch.Generator().manual_seed(seed)
    vocab = len(tokenizer)
    while not s.finished:
        # A 'model' with no idea of JSON: random logits, eos strongly preferred.
        logits = torch.randn(vocab, generator=generator) * 3
        logits[tokenizer.eos_token_id] += 6
        s.choose(logits)
    return prefix + tokenizer.decode(reply_ids(s), skip_special_tokens=True), s


def test_random_logits_under_the_schema_always_give_valid_json(tokenizer):
    # Given a model that emits random tokens, When 25 replies are decoded under the schema
    for seed in range(25):
        text, s = decode_randomly(tokenizer, seed)

        # Then every reply is complete, valid JSON that satisfies the schema
        value = json.loads(text)
        assert s.finish_reason == "stop", text
        assert set(value) == {"question", "type", "score"}
        assert 3 <= len(value["question"]) <= 40 and value["type"] in SCHEMA["properties"]["type"]["enum"]
        assert 1 <= value["score"] <= 5


def test_a_prefilled_opening_is_continued_validly(tokenizer):
    text, _ = decode_randomly(tokenizer, 3, prefix='{"question": "')

    assert json.loads(text)["question"]


def test_a_compact_prefill_is_accepted_too(tokenizer):
    text, _ = decode_randomly(tokenizer, 4, prefix='{"question":"')

    assert json.loads(text)["type"] in ("factual", "reasoning", "summary")


def test_a_prefill_that_breaks_the_schema_is_refused(tokenizer):
    with pytest.raises(LLMError, match="prefill"):
        JsonSchemaConstraint(tokenizer, SCHEMA, prefix_ids=tokenizer.encode('{"answer": ', add_special_tokens=False))


def test_an_unusable_schema_is_a_configuration_error(tokenizer):
    with pytest.raises(ConfigurationError):
        JsonSchemaConstraint(tokenizer, {"type": "no-such-type"})
