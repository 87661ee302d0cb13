"""The ScriptedLLM test double behaves as documented, so other tests can rely on it."""

from __future__ import annotations

import random

import pytest

from docmill.errors import LLMThrottled, LLMTimeout
from docmill.llm.base import ChatMessage, GenerationParams
from docmill.llm.ratelimit import CallGuard
from docmill.retry import RetryPolicy
from docmill_devtools.scripted import ScriptedLLM, ScriptExhausted

USER = [ChatMessage(role="user", content="What is the capital of France?")]


def test_list_replies_are_returned_in_order_with_estimated_usage():
    llm = ScriptedLLM(["first", "second"])

    a, b = llm.chat(USER), llm.chat(USER)

    assert (a.text, b.text) == ("first", "second")
    assert a.usage.input_tokens > 0 and a.usage.output_tokens == 2
    assert llm.accounting.calls == 2 and llm.accounting.output_tokens == 4
    assert llm.calls[0][0].content == USER[0].content
    assert llm.remaining == 0


def test_running_out_of_script_fails_loudly_not_as_an_llm_error():
    llm = ScriptedLLM(["only"])
    llm.chat(USER)

    with pytest.raises(ScriptExhausted):
        llm.chat(USER)


def test_callable_script_sees_the_messages():
    llm = ScriptedLLM(lambda messages: messages[-1].content.upper())

    assert llm.chat(USER).text == USER[0].content.upper()


def test_injected_failures_raise_on_the_chosen_attempt_without_consuming_a_reply():
    llm = ScriptedLLM(["ok"], failures={0: LLMThrottled, 1: LLMTimeout("slow")})

    with pytest.raises(LLMThrottled):
        llm.chat(USER)
    with pytest.raises(LLMTimeout, match="slow"):
        llm.chat(USER)
    assert llm.chat(USER).text == "ok"
    assert llm.accounting.failures == 2 and llm.accounting.calls == 3


def test_exception_in_the_reply_list_is_raised_at_that_position():
    llm = ScriptedLLM(["a", LLMTimeout, "b"])

    assert llm.chat(USER).text == "a"
    with pytest.raises(LLMTimeout):
        llm.chat(USER)
    assert llm.chat(USER).text == "b"


def test_with_a_guard_injected_throttles_are_retried_and_counted():
    # Given two injected throttles and a guard that sleeps instantly
    slept: list[float] = []
    guard = CallGuard(retry=RetryPolicy(max_retries=3, base_delay=1.0), sleep=slept.append, rng=random.Random(7))
    llm = ScriptedLLM(["answer"], failures={0: LLMThrottled, 1: LLMThrottled}, guard=guard)

    # When one logical call is made
    response = llm.chat(USER, GenerationParams(max_tokens=16))

    # Then it succeeds on the third attempt and the accounting shows one call, two retries
    assert response.text == "answer"
    assert llm.attempts == 3 and len(slept) == 2
    assert llm.accounting.calls == 1 and llm.accounting.retries == 2 and llm.accounting.failures == 0
