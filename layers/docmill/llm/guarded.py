"""Base class of the real clients: one attempt per ``_complete``, the shared ``CallGuard``
(limiter, bounded concurrency, retries, accounting) around it."""

from __future__ import annotations

import time
from abc import abstractmethod
from collections.abc import Sequence

from docmill.errors import LLMError
from docmill.llm.base import ChatMessage, GenerationParams, LLMClient, LLMResponse
from docmill.llm.ratelimit import CallGuard
from docmill.llm.tokens import estimate_messages_tokens


class GuardedLLM(LLMClient):
    """Subclasses implement ``_complete`` (one attempt, typed errors); ``chat`` adds the rest."""

    def __init__(self, *, model_id: str, guard: CallGuard | None = None,
                 default_params: GenerationParams | None = None) -> None:
        super().__init__()
        self.model_id = model_id
        self.guard = guard or CallGuard()
        self.default_params = default_params or GenerationParams()

    def chat(self, messages: Sequence[ChatMessage], params: GenerationParams | None = None) -> LLMResponse:
        conversation = list(messages)
        if not conversation:
            raise LLMError("chat needs at least one message")
        params = params or self.default_params
        estimate = estimate_messages_tokens(conversation) + params.max_tokens
        return self.guard.chat(self, lambda: self._timed(conversation, params), estimated_tokens=estimate)

    def _timed(self, messages: list[ChatMessage], params: GenerationParams) -> LLMResponse:
        started = time.perf_counter()
        response = self._complete(messages, params)
        if not response.latency_s:
            response.latency_s = time.perf_counter() - started
        return response

    @abstractmethod
    def _complete(self, messages: list[ChatMessage], params: GenerationParams) -> LLMResponse:
        """One attempt. Raise LLMThrottled / LLMTimeout / LLMUnavailable for transient trouble."""
