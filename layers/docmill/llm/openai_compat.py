"""Any OpenAI-compatible ``/v1/chat/completions`` server: vLLM, Ollama, llama.cpp server, TGI,
LM Studio, or OpenAI itself.

``base_url`` may be the server root (``http://host:8000``), the API root (``.../v1``) or the
full ``.../v1/chat/completions`` URL. Without a model name the client asks ``GET /v1/models``
once and uses the first model served (vLLM and llama.cpp serve exactly one).

Status mapping: 429 -> ``LLMThrottled`` carrying ``Retry-After`` (seconds or an HTTP date),
which the guard honours; 408/504 and client-side timeouts -> ``LLMTimeout``; other 5xx and
connection errors -> ``LLMUnavailable``; other 4xx -> ``LLMError`` (not retried).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from docmill.errors import LLMError, LLMResponseError, LLMThrottled, LLMTimeout, LLMUnavailable
from docmill.llm.base import ChatMessage, GenerationParams, LLMResponse, Usage
from docmill.llm.guarded import GuardedLLM
from docmill.llm.ratelimit import CallGuard
from docmill.llm.payloads import parse_chat_completion
from docmill.llm.tokens import estimate_messages_tokens, estimate_tokens
from docmill.retry import parse_retry_after


def chat_completions_url(base_url: str) -> str:
    url = base_url.rstrip("/")
    if url.endswith("/chat/completions"):
        return url
    if url.endswith("/v1"):
        return url + "/chat/completions"
    return url + "/v1/chat/completions"


class OpenAICompatLLM(GuardedLLM):
    supports_json_schema = True

    def __init__(
        self,
        base_url: str,
        *,
        model: str | None = None,
        api_key: str | None = None,
        timeout: float = 120.0,
        connect_timeout: float = 10.0,
        guard: CallGuard | None = None,
        default_params: GenerationParams | None = None,
        extra_body: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(model_id=f"openai:{model or base_url}", guard=guard, default_params=default_params)
        self.url = chat_completions_url(base_url)
        self.model = model
        self.api_key = api_key
        self.timeout = (min(connect_timeout, timeout), timeout)
        self.extra_body = dict(extra_body or {})
        self._local = threading.local()
        self._model_lock = threading.Lock()

    def _session(self) -> requests.Session:
        # One session (connection pool) per thread: requests.Session is not documented thread-safe.
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.mount("http://", HTTPAdapter(pool_maxsize=4, max_retries=0))
            session.mount("https://", HTTPAdapter(pool_maxsize=4, max_retries=0))
            session.headers["Content-Type"] = "application/json"
            if self.api_key:
                session.headers["Authorization"] = f"Bearer {self.api_key}"
            self._local.session = session
        return session

    def _resolve_model(self) -> str:
        with self._model_lock:
            if self.model:
                return self.model
            models_url = self.url[: -len("/chat/completions")] + "/models"
            try:
                reply = self._session().get(models_url, timeout=self.timeout)
                reply.raise_for_status()
                self.model = str(reply.json()["data"][0]["id"])
            except (requests.RequestException, KeyError, IndexError, TypeError, ValueError):
                # Servers that serve one model (llama.cpp) accept any name.
                self.model = "default"
            self.model_id = f"openai:{self.model}"
            return self.model

    def build_body(self, messages: list[ChatMessage], params: GenerationParams) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self._resolve_model(),
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "max_tokens": params.max_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "stream": False,
        }
        if params.stop:
            body["stop"] = list(params.stop)
        if params.seed is not None:
            body["seed"] = params.seed
        if params.json_schema is not None:
            # OpenAI structured outputs; vLLM, llama.cpp server, Ollama and TGI accept this shape.
            body["response_format"] = {"type": "json_schema",
                                       "json_schema": {"name": "reply", "schema": params.json_schema, "strict": True}}
        if params.repetition_penalty is not None:
            # Not an OpenAI field: vLLM and TGI read it, so it is sent only when a caller asks.
            body["repetition_penalty"] = params.repetition_penalty
        body.update(self.extra_body)
        return body

    def _complete(self, messages: list[ChatMessage], params: GenerationParams) -> LLMResponse:
        body = self.build_body(messages, params)
        try:
            reply = self._session().post(self.url, json=body, timeout=self.timeout)
        except requests.Timeout as error:
            raise LLMTimeout(f"{self.url} timed out after {self.timeout[1]}s") from error
        except requests.ConnectionError as error:
            raise LLMUnavailable(f"{self.url} unreachable: {error}") from error
        self._raise_for_status(reply)
        try:
            payload = reply.json()
        except ValueError as error:
            raise LLMResponseError(f"{self.url} returned non-JSON: {_snippet(reply)}") from error
        return parse_chat_completion(payload, model_id=self.model_id, prompt_messages=messages)

    def _raise_for_status(self, reply: requests.Response) -> None:
        status = reply.status_code
        if status == 429:
            raise LLMThrottled(f"{self.url} answered 429: {_snippet(reply)}",
                               retry_after=parse_retry_after(reply.headers.get("Retry-After")))
        if status in (408, 504):
            raise LLMTimeout(f"{self.url} answered {status}: {_snippet(reply)}")
        if status >= 500:
            raise LLMUnavailable(f"{self.url} answered {status}: {_snippet(reply)}")
        if status >= 400:
            raise LLMError(f"{self.url} answered {status}: {_snippet(reply)}")

    def stream_chat(self, messages: Sequence[ChatMessage], params: GenerationParams | None = None) -> Iterator[str]:
        """The reply's text pieces as the server generates them (``"stream": true``).

        Opening the stream goes through the guard like ``chat`` (rate limits, bounded
        concurrency, retries on 429/5xx/timeouts): nothing has been yielded yet, so a retry is
        invisible. Once text flows, a broken connection raises ``LLMUnavailable``.
        """
        conversation = list(messages)
        if not conversation:
            raise LLMError("chat needs at least one message")
        params = params or self.default_params
        prompt_tokens = estimate_messages_tokens(conversation)
        opened: dict[str, requests.Response] = {}

        def attempt() -> LLMResponse:
            body = {**self.build_body(conversation, params), "stream": True}
            try:
                reply = self._session().post(self.url, json=body, timeout=self.timeout, stream=True)
            except requests.Timeout as error:
                raise LLMTimeout(f"{self.url} timed out after {self.timeout[1]}s") from error
            except requests.ConnectionError as error:
                raise LLMUnavailable(f"{self.url} unreachable: {error}") from error
            try:
                self._raise_for_status(reply)
            except LLMError:
                reply.close()
                raise
            opened["reply"] = reply
            return LLMResponse(text="", usage=Usage(input_tokens=prompt_tokens), model_id=self.model_id)

        started = time.perf_counter()
        self.guard.call(attempt, estimated_tokens=prompt_tokens + params.max_tokens)
        reply, parts = opened["reply"], []
        try:
            for line in reply.iter_lines(decode_unicode=True):
                if not line or not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    break
                try:
                    choices = json.loads(data).get("choices") or [{}]
                except ValueError as error:
                    raise LLMResponseError(f"{self.url} streamed a non-JSON event: {data[:200]}") from error
                piece = (choices[0].get("delta") or {}).get("content")
                if piece:
                    parts.append(piece)
                    yield piece
        except requests.RequestException as error:
            self._record(None)
            raise LLMUnavailable(f"{self.url} stream broke: {error}") from error
        finally:
            reply.close()
        text = "".join(parts)
        self._record(LLMResponse(text=text, usage=Usage(input_tokens=prompt_tokens, output_tokens=estimate_tokens(text)),
                                 latency_s=time.perf_counter() - started, model_id=self.model_id))


def _snippet(reply: requests.Response) -> str:
    return reply.text[:300].replace("\n", " ")
