"""Streaming from an OpenAI-compatible server (what chat's SSE relays), against the test server
speaking the real ``chat.completion.chunk`` wire format."""

from __future__ import annotations

import pytest

from docmill.config import LLMSettings
from docmill.errors import LLMError
from docmill.llm.base import ChatMessage
from docmill.llm.factory import make_llm
from tests.support.openai_server import FakeOpenAIServer


def test_stream_yields_the_reply_piece_by_piece_and_retries_before_the_first_piece() -> None:
    reply = "Refunds are paid within thirty days [1]."
    with FakeOpenAIServer(reply=lambda body: reply) as server:
        llm = make_llm(f"openai:{server.url}", LLMSettings(max_retries=2))
        server.fail_next(429, retry_after="0")
        pieces = list(llm.stream_chat([ChatMessage(role="user", content="refunds?")]))
        assert len(pieces) == len(reply.split(" ")) and "".join(pieces) == reply
        assert server.bodies[-1]["stream"] is True and len(server.bodies) == 2  # the 429, then the stream
        assert llm.accounting.calls == 1 and llm.accounting.output_tokens > 0
        server.fail_next(400)
        with pytest.raises(LLMError):
            list(llm.stream_chat([ChatMessage(role="user", content="refunds?")]))
