"""ScriptedLLM: a TEST DOUBLE for deterministic tests, never used for real generation.

It stands in for an LLM endpoint this machine cannot run in tests (SageMaker, a remote vLLM)
so that parsing, repair, retry, budget and curation logic can be tested deterministically.
Replies come from a list (consumed in order) or from a callable that looks at the messages;
chosen calls can raise injected errors (``LLMThrottled``, ``LLMTimeout``, any exception) to
exercise retry paths. Token usage is estimated from the text (see ``docmill.llm.tokens``).

Example::

    llm = ScriptedLLM(['{"question": "What is X?"}', "X is ..."],
                      failures={0: LLMThrottled("slow down")})
    # call 0 raises LLMThrottled, call 1 returns the first reply, call 2 the second.

With ``guard=`` (a ``docmill.llm.ratelimit.CallGuard``) the double goes through the same
limiter and retry helper as the real clients, so an injected throttle is retried there.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from docmill.llm.base import ChatMessage, GenerationParams, LLMClient, LLMResponse, Usage
from docmill.llm.tokens import estimate_messages_tokens, estimate_tokens

Reply = str | LLMResponse | BaseException | type[BaseException]
ReplyFn = Callable[[list[ChatMessage]], "str | LLMResponse"]


class ScriptExhausted(AssertionError):
    """The test asked for more replies than it scripted (an AssertionError so it is never
    mistaken for an LLM failure and swallowed by retry/drop logic)."""


class ScriptedLLM(LLMClient):
    """Test double: scripted replies and injected failures (see module docstring).

    Args:
        replies: a list of replies (str, ``LLMResponse``, or an exception instance/class to
            raise on that call), consumed in call order; or a callable ``(messages) -> str``.
        failures: ``{attempt_index: exception}``: raise this on the given 0-based attempt
            (every call of ``chat``, including retried attempts, counts). The attempt does not
            consume a scripted reply.
        cycle: restart the reply list when it runs out instead of raising ``ScriptExhausted``.
        latency_s: sleep this long per attempt (for concurrency tests).
        guard: optional ``CallGuard`` (rate limiter + retries) the real clients use.
    """

    def __init__(
        self,
        replies: Sequence[Reply] | ReplyFn,
        *,
        failures: Mapping[int, BaseException | type[BaseException]] | None = None,
        model_id: str = "scripted-test-double",
        cycle: bool = False,
        latency_s: float = 0.0,
        guard: Any | None = None,
    ) -> None:
        super().__init__()
        self.model_id = model_id
        self._fn: ReplyFn | None = replies if callable(replies) else None
        self._replies: list[Reply] = [] if callable(replies) else list(replies)
        self._failures = dict(failures or {})
        self._cycle = cycle
        self._latency_s = latency_s
        self._guard = guard
        self._lock = threading.Lock()
        self._next_reply = 0
        self.attempts = 0
        #: every conversation passed to an attempt, in order (tests assert on prompts)
        self.calls: list[list[ChatMessage]] = []
        #: the GenerationParams of every attempt, in order
        self.params_seen: list[GenerationParams] = []

    @property
    def remaining(self) -> int:
        """Scripted list replies not yet consumed (0 for a callable script)."""
        with self._lock:
            return max(0, len(self._replies) - self._next_reply)

    def chat(self, messages: Sequence[ChatMessage], params: GenerationParams | None = None) -> LLMResponse:
        params = params or GenerationParams()
        if self._guard is None:
            try:
                response = self._attempt(list(messages), params)
            except BaseException:
                self._record(None)
                raise
            self._record(response)
            return response
        return self._guard.chat(self, lambda: self._attempt(list(messages), params),
                                estimated_tokens=estimate_messages_tokens(messages) + params.max_tokens)

    def _attempt(self, messages: list[ChatMessage], params: GenerationParams) -> LLMResponse:
        with self._lock:
            index = self.attempts
            self.attempts += 1
            self.calls.append(messages)
            self.params_seen.append(params)
            failure = self._failures.get(index)
            reply: Reply | None = None
            if failure is None and self._fn is None:
                if self._next_reply >= len(self._replies):
                    if not (self._cycle and self._replies):
                        raise ScriptExhausted(f"ScriptedLLM: no scripted reply left for attempt {index}")
                    self._next_reply = 0
                reply = self._replies[self._next_reply]
                self._next_reply += 1
        if self._latency_s:
            time.sleep(self._latency_s)
        started = time.perf_counter()
        if failure is not None:
            raise _as_exception(failure, index)
        if self._fn is not None:
            reply = self._fn(messages)
        if isinstance(reply, BaseException) or (isinstance(reply, type) and issubclass(reply, BaseException)):
            raise _as_exception(reply, index)
        if isinstance(reply, LLMResponse):
            return reply
        text = str(reply)
        return LLMResponse(
            text=text,
            usage=Usage(input_tokens=estimate_messages_tokens(messages), output_tokens=estimate_tokens(text)),
            latency_s=self._latency_s + (time.perf_counter() - started),
            model_id=self.model_id,
            finish_reason="stop",
        )


def _as_exception(value: BaseException | type[BaseException], index: int) -> BaseException:
    if isinstance(value, BaseException):
        return value
    try:
        return value(f"injected by ScriptedLLM on attempt {index}")
    except TypeError:
        return value()
