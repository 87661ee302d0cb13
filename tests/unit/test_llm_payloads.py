"""Request/response shapes of the containers, as documented (see docmill.llm.payloads)."""

from __future__ import annotations

import pytest

from docmill.errors import LLMResponseError, LLMUnavailable
from docmill.llm.base import ChatMessage
from docmill.llm.payloads import llama3_prompt, parse_chat_completion, parse_generated_text

CONVERSATION = [
    ChatMessage(role="system", content="You write questions."),
    ChatMessage(role="user", content=" Write one question. "),
]


def test_llama3_template_matches_the_model_card_format():
    assert llama3_prompt(CONVERSATION) == (
        "<|begin_of_text|>"
        "<|start_header_id|>system<|end_header_id|>\n\nYou write questions.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nWrite one question.<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    )


def test_chat_completion_text_usage_and_finish_reason_are_read():
    # Shape of the LMI chat completions schema example (djl-serving docs)
    payload = {
        "id": "chatcmpl-0", "object": "chat.completion", "created": 1711997860,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Deep learning is..."},
                     "logprobs": None, "finish_reason": "length"}],
        "usage": {"prompt_tokens": 33, "completion_tokens": 30, "total_tokens": 63},
    }

    response = parse_chat_completion(payload, model_id="m", prompt_messages=CONVERSATION)

    assert response.text == "Deep learning is..."
    assert (response.usage.input_tokens, response.usage.output_tokens) == (33, 30)
    assert response.finish_reason == "length"


def test_chat_completion_without_usage_falls_back_to_estimates():
    payload = {"choices": [{"message": {"role": "assistant", "content": "Twelve words here"},
                            "finish_reason": "eos_token"}]}

    response = parse_chat_completion(payload, model_id="m", prompt_messages=CONVERSATION)

    assert response.usage.input_tokens > 0 and response.usage.output_tokens == 5
    assert response.finish_reason == "stop"


def test_a_response_without_choices_is_a_response_error():
    with pytest.raises(LLMResponseError):
        parse_chat_completion({"error": "nope"}, model_id="m", prompt_messages=CONVERSATION)


def test_tgi_list_response_uses_generated_tokens_and_strips_the_end_of_turn():
    payload = [{"generated_text": "What is X?<|eot_id|>",
                "details": {"finish_reason": "eos_token", "generated_tokens": 6, "seed": None,
                            "prefill": [], "tokens": []}}]

    response = parse_generated_text(payload, model_id="m", prompt="p" * 40)

    assert response.text == "What is X?"
    assert response.usage.output_tokens == 6 and response.usage.input_tokens == 10
    assert response.finish_reason == "stop"


def test_lmi_object_response_reads_details_including_the_spaced_key_of_the_docs():
    payload = {"generated_text": "Deep Learning is a really cool field",
               "details": {"finish reason": "length", "generated_tokens": 8, "inputs": "What is Deep Learning?"}}

    response = parse_generated_text(payload, model_id="m", prompt="What is Deep Learning?")

    assert response.usage.output_tokens == 8 and response.finish_reason == "length"


def test_lmi_dynamic_batch_response_without_details_is_estimated():
    response = parse_generated_text([{"generated_text": "abcdefgh"}], model_id="m", prompt="q")

    assert response.text == "abcdefgh" and response.usage.output_tokens == 2


def test_lmi_generation_error_is_transient():
    payload = {"generated_text": "", "details": {"finish_reason": "error", "generated_tokens": None,
                                                 "inputs": None, "tokens": None}}

    with pytest.raises(LLMUnavailable):
        parse_generated_text(payload, model_id="m", prompt="q")


def test_full_text_echo_of_the_prompt_is_removed():
    response = parse_generated_text({"generated_text": "PROMPT answer"}, model_id="m", prompt="PROMPT ")

    assert response.text == "answer"
