"""OpenAICompatLLM against a real HTTP server on 127.0.0.1 (tests/support/openai_server.py)."""

from __future__ import annotations

import random
import socket
import threading

import pytest

from docmill.errors import LLMError, LLMThrottled, LLMTimeout, LLMUnavailable
from docmill.llm.base import ChatMessage, GenerationParams
from docmill.llm.openai_compat import OpenAICompatLLM, chat_completions_url, parse_retry_after
from docmill.llm.ratelimit import CallGuard
from docmill.retry import RetryPolicy
from tests.support.openai_server import FakeOpenAIServer

MESSAGES = [ChatMessage(role="system", content="Be brief."), ChatMessage(role="user", content="Say hi")]


def _guard(slept: list[float] | None = None, retries: int = 3) -> CallGuard:
    return CallGuard(retry=RetryPolicy(max_retries=retries, base_delay=0.01, max_delay=0.02),
                     sleep=(slept.append if slept is not None else (lambda s: None)), rng=random.Random(0))


@pytest.fixture
def server():
    with FakeOpenAIServer() as running:
        yield running


def test_chat_posts_the_openai_request_and_reads_text_and_usage(server):
    llm = OpenAICompatLLM(server.url, model="llama3", api_key="sk-test", guard=_guard())

    response = llm.chat(MESSAGES, GenerationParams(temperature=0.1, max_tokens=20, stop=["\n\n"], seed=1))

    assert response.text == "echo: Say hi"
    assert (response.usage.input_tokens, response.usage.output_tokens) == (12, 3)  # as the server counted them
    assert response.finish_reason == "stop" and response.latency_s > 0
    body = server.bodies[0]
    assert body == {"model": "llama3", "messages": [m.model_dump() for m in MESSAGES], "max_tokens": 20,
                    "temperature": 0.1, "top_p": 0.9, "stream": False, "stop": ["\n\n"], "seed": 1}
    assert server.headers[0]["Authorization"] == "Bearer sk-test"


def test_without_a_model_name_the_served_model_is_discovered(server):
    llm = OpenAICompatLLM(server.url, guard=_guard())

    llm.chat(MESSAGES)

    assert server.bodies[0]["model"] == server.model
    assert llm.model_id == f"openai:{server.model}"
    assert "Authorization" not in server.headers[0]  # no key configured, none sent


def test_429_with_retry_after_is_honoured_then_succeeds(server):
    server.fail_next(429, retry_after="2")
    slept: list[float] = []
    llm = OpenAICompatLLM(server.url, model="m", guard=_guard(slept))

    response = llm.chat(MESSAGES)

    assert response.text == "echo: Say hi"
    assert slept == [2.0]
    assert len(server.arrivals) == 2 and llm.accounting.retries == 1


def test_500_then_success_is_retried(server):
    server.fail_next(500, times=2)
    llm = OpenAICompatLLM(server.url, model="m", guard=_guard())

    assert llm.chat(MESSAGES).text == "echo: Say hi"
    assert llm.accounting.retries == 2 and len(server.arrivals) == 3


def test_persistent_5xx_gives_up_after_max_retries(server):
    server.fail_next(503, times=10)
    llm = OpenAICompatLLM(server.url, model="m", guard=_guard(retries=2))

    with pytest.raises(LLMUnavailable):
        llm.chat(MESSAGES)
    assert len(server.arrivals) == 3 and llm.accounting.failures == 1


def test_a_client_error_is_not_retried(server):
    server.fail_next(400)
    llm = OpenAICompatLLM(server.url, model="m", guard=_guard())

    with pytest.raises(LLMError) as raised:
        llm.chat(MESSAGES)
    assert not isinstance(raised.value, (LLMThrottled, LLMUnavailable, LLMTimeout))
    assert len(server.arrivals) == 1


def test_a_slow_server_times_out_as_llm_timeout():
    with FakeOpenAIServer(latency_s=0.5) as slow:
        llm = OpenAICompatLLM(slow.url, model="m", timeout=0.1, guard=_guard(retries=1))
        with pytest.raises(LLMTimeout):
            llm.chat(MESSAGES)
        assert llm.accounting.retries == 1


def test_a_closed_port_is_unavailable():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    llm = OpenAICompatLLM(f"http://127.0.0.1:{port}", model="m", guard=_guard(retries=0))

    with pytest.raises(LLMUnavailable):
        llm.chat(MESSAGES)


def test_concurrent_calls_from_many_threads_all_succeed():
    with FakeOpenAIServer(latency_s=0.05) as server:
        llm = OpenAICompatLLM(server.url, model="m", guard=CallGuard(concurrency=4))
        results: list[str] = []
        lock = threading.Lock()

        def call(i: int) -> None:
            text = llm.chat([ChatMessage(role="user", content=f"n{i}")]).text
            with lock:
                results.append(text)

        threads = [threading.Thread(target=call, args=(i,)) for i in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    assert sorted(results) == sorted(f"echo: n{i}" for i in range(12))
    assert llm.accounting.calls == 12


@pytest.mark.parametrize(
    ("base", "url"),
    [
        ("http://h:8000", "http://h:8000/v1/chat/completions"),
        ("http://h:8000/v1/", "http://h:8000/v1/chat/completions"),
        ("http://h/v1/chat/completions", "http://h/v1/chat/completions"),
    ],
)
def test_base_urls_are_normalised(base, url):
    assert chat_completions_url(base) == url


def test_retry_after_accepts_seconds_and_http_dates():
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == 10.0
    assert parse_retry_after("garbage") is None and parse_retry_after(None) is None
