"""LLM calls for the engine: a shared token budget, per-batch accounting, and JSON calls with
repair and one corrective retry.

Every stage calls the model through ``LLMCaller`` so budget, call log and stage statistics are
kept in one place whatever the stage does with the reply.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from docmill.errors import BudgetExhausted, LLMError
from docmill.generation.models import BatchReport, BatchSpec, CallLog, GeneratedRecord
from docmill.generation.parsing import OutputParseError
from docmill.llm.tokens import estimate_messages_tokens, estimate_tokens
from docmill.llm.base import ChatMessage, GenerationParams, LLMClient, LLMResponse

CORRECTIVE = (
    "Your previous reply could not be used: {error}. Reply again with ONLY the JSON the "
    "instructions ask for: no explanation, no code fence, double-quoted keys and strings."
)


class TokenBudget:
    """A token budget shared by all threads. Each call reserves its worst case (prompt estimate
    + max_tokens) before it starts and settles to the real usage after, so the total never
    passes the limit by more than the estimate's error."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.used = 0
        self._reserved = 0
        self._lock = threading.Lock()
        self.exhausted = False

    def reserve(self, tokens: int) -> int:
        with self._lock:
            if self.limit is not None and (self.exhausted or self.used + self._reserved + tokens > self.limit):
                self.exhausted = True
                raise BudgetExhausted(f"token budget of {self.limit} reached ({self.used} used)")
            self._reserved += tokens
            return tokens

    def settle(self, reserved: int, actual: int) -> None:
        with self._lock:
            self._reserved -= reserved
            self.used += actual


@dataclass
class Sink:
    """Per-batch results and stats; the engine updates it under one lock."""

    spec: BatchSpec
    report: BatchReport
    records: list[GeneratedRecord] = field(default_factory=list)
    chunks_left: int = 0
    written: bool = False


class LLMCaller:
    def __init__(self, llm: LLMClient, budget: TokenBudget, lock: threading.Lock, keep_calls: int) -> None:
        self.llm = llm
        self.budget = budget
        self.lock = lock
        self.keep_calls = keep_calls

    def call(self, sink: Sink, stage: str, chunk_id: str, messages: list[ChatMessage], params: GenerationParams) -> LLMResponse:
        reserved = self.budget.reserve(estimate_messages_tokens(messages) + params.max_tokens)
        started = time.perf_counter()
        try:
            response = self.llm.chat(messages, params)
        except LLMError as exc:
            self.budget.settle(reserved, 0)
            with self.lock:
                st = sink.report.stage(stage)
                st.calls += 1
                st.failures += 1
                st.latency_s += time.perf_counter() - started
                self._log(sink, CallLog(stage=stage, chunk_id=chunk_id, ok=False, error=f"{exc.code}: {exc.message}"[:300]))
            raise
        except BaseException:
            self.budget.settle(reserved, 0)
            raise
        used = response.usage.input_tokens + response.usage.output_tokens
        if used == 0:  # an endpoint that reports no usage still spends budget
            used = estimate_messages_tokens(messages) + estimate_tokens(response.text)
        self.budget.settle(reserved, used)
        latency = response.latency_s or (time.perf_counter() - started)
        with self.lock:
            st = sink.report.stage(stage)
            st.calls += 1
            st.input_tokens += response.usage.input_tokens
            st.output_tokens += response.usage.output_tokens
            st.latency_s += latency
            sink.report.tokens_used += used
            self._log(
                sink,
                CallLog(
                    stage=stage,
                    chunk_id=chunk_id,
                    ok=True,
                    input_tokens=response.usage.input_tokens,
                    output_tokens=response.usage.output_tokens,
                    latency_s=round(latency, 4),
                ),
            )
        return response

    @staticmethod
    def _sample(sink: Sink, stage: str, chunk_id: str, exc: OutputParseError, text: str) -> None:
        if len(sink.report.parse_failure_samples) < 10:
            sink.report.parse_failure_samples.append(
                {"stage": stage, "chunk_id": chunk_id, "error": exc.message[:200], "reply": text[:400]}
            )

    def _log(self, sink: Sink, entry: CallLog) -> None:
        if len(sink.report.calls) < self.keep_calls:
            sink.report.calls.append(entry)

    def call_json(
        self,
        sink: Sink,
        stage: str,
        chunk_id: str,
        messages: list[ChatMessage],
        params: GenerationParams,
        parser: Callable[[str], Any],
        prefill: str | None = None,
    ) -> tuple[Any, int]:
        """Call, parse (with repair); on failure retry once with a corrective message. Returns
        (parsed, tokens used). Raises ``OutputParseError`` when the retry fails too.

        With ``prefill`` (for clients that continue an assistant message) the reply is primed
        with it and the parser reads prefill + continuation."""
        primer = [ChatMessage(role="assistant", content=prefill)] if prefill and self.llm.supports_prefill else []
        head = prefill if primer and prefill else ""
        response = self.call(sink, stage, chunk_id, [*messages, *primer], params)
        tokens = response.usage.input_tokens + response.usage.output_tokens
        try:
            parsed = parser(head + response.text)
        except OutputParseError as exc:
            # A model too small to follow the format is rarely rescued by a corrective turn,
            # which costs a whole call: it is given up at once (and counted).
            retry_allowed = not getattr(self.llm, "too_small_to_judge", False)
            with self.lock:
                st = sink.report.stage(stage)
                st.parse_failures += 1
                st.corrective_retries += int(retry_allowed)
                st.dropped += int(not retry_allowed)
                self._sample(sink, stage, chunk_id, exc, response.text)
            if not retry_allowed:
                raise
            retry = [
                *messages,
                ChatMessage(role="assistant", content=(head + response.text)[:4000] or "(empty)"),
                ChatMessage(role="user", content=CORRECTIVE.format(error=exc.message)),
                *primer,
            ]
            response = self.call(sink, stage, chunk_id, retry, params)
            tokens += response.usage.input_tokens + response.usage.output_tokens
            try:
                parsed = parser(head + response.text)
            except OutputParseError as exc:
                with self.lock:
                    st = sink.report.stage(stage)
                    st.parse_failures += 1
                    st.dropped += 1
                    self._sample(sink, stage, chunk_id, exc, response.text)
                raise
        if getattr(parsed, "repairs", None):
            with self.lock:
                sink.report.stage(stage).repaired += 1
        return parsed, tokens


