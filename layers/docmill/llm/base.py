"""One interface for every LLM docmill talks to: chat messages in, text + token usage out.

Implementations (SageMaker endpoint, OpenAI-compatible URL, local SmolLM2) enforce their own
timeouts, retries with backoff and jitter, rate limits (requests/min, tokens/min) and bounded
concurrency, so callers may call ``chat`` from many threads at once.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, Field


class ChatMessage(BaseModel):
    role: Literal["system", "user", "assistant"]
    content: str


class GenerationParams(BaseModel):
    temperature: float = 0.7
    max_tokens: int = 512
    top_p: float = 0.9
    stop: list[str] | None = None
    seed: int | None = None
    # Repetition control; None leaves it to the client (the local model applies its own
    # defaults, remote servers theirs). Both count only the reply's tokens, never the prompt's,
    # so an answer may quote its context.
    repetition_penalty: float | None = Field(None, ge=1.0, le=3.0)
    no_repeat_ngram_size: int | None = Field(None, ge=0, le=64)
    # A JSON Schema the reply must satisfy. Clients with ``supports_json_schema`` enforce it
    # while decoding (local: llguidance; OpenAI-compatible: response_format json_schema;
    # SageMaker TGI: grammar); the others ignore it, so callers still validate the reply.
    json_schema: dict[str, Any] | None = None


class Usage(BaseModel):
    input_tokens: int = 0
    output_tokens: int = 0


class LLMResponse(BaseModel):
    text: str
    usage: Usage = Field(default_factory=Usage)
    latency_s: float = 0.0
    model_id: str
    finish_reason: str | None = None


class CallAccounting(BaseModel):
    """Running totals a client keeps; they end up in the run report."""

    calls: int = 0
    failures: int = 0
    retries: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    latency_s_total: float = 0.0


class LLMClient(ABC):
    model_id: str
    # True when a conversation that ends with an assistant message is *continued*: the reply is
    # the rest of that message. Callers use it to fix the shape of an answer (e.g. the opening
    # of a JSON object) so that a small model only has to fill in the content.
    supports_prefill: bool = False
    # True when ``GenerationParams.json_schema`` is enforced during decoding (the reply is
    # valid JSON for the schema unless it was cut by ``max_tokens``).
    supports_json_schema: bool = False

    def __init__(self) -> None:
        self.accounting = CallAccounting()
        self._accounting_lock = threading.Lock()

    @abstractmethod
    def chat(self, messages: Sequence[ChatMessage], params: GenerationParams | None = None) -> LLMResponse:
        """Send one conversation, return the assistant's reply. Raises ``LLMError`` subclasses."""

    def _record(self, response: LLMResponse | None, *, retries: int = 0) -> None:
        with self._accounting_lock:
            a = self.accounting
            a.calls += 1
            a.retries += retries
            if response is None:
                a.failures += 1
                return
            a.input_tokens += response.usage.input_tokens
            a.output_tokens += response.usage.output_tokens
            a.latency_s_total += response.latency_s
