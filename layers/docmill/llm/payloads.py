"""Request/response shapes shared by the clients (verified against the container docs).

* OpenAI ``chat.completion`` (LMI Messages API, TGI Messages API, vLLM, llama.cpp, Ollama):
  ``{"choices": [{"message": {"role", "content"}, "finish_reason"}], "usage":
  {"prompt_tokens", "completion_tokens", "total_tokens"}}``.
* TGI generate: ``[{"generated_text", "details": {"finish_reason": "length"|"eos_token"|
  "stop_sequence", "generated_tokens", "seed", "prefill", "tokens"}}]`` (a list on SageMaker).
* LMI rolling batch: ``{"generated_text", "details": {"finish_reason", "generated_tokens",
  "inputs", "tokens"}}``; with ``tgi_compat`` the same object in a one-element list; a
  generation error is ``generated_text: ""`` with ``finish_reason: "error"``.
"""

from __future__ import annotations

from typing import Any

from docmill.errors import LLMResponseError, LLMUnavailable
from docmill.llm.base import ChatMessage, LLMResponse, Usage
from docmill.llm.tokens import estimate_messages_tokens, estimate_tokens

BEGIN = "<|begin_of_text|>"
EOT = "<|eot_id|>"
END_OF_TEXT = "<|end_of_text|>"


def llama3_prompt(messages: list[ChatMessage]) -> str:
    """The Llama 3 Instruct chat template, ending with an open assistant header."""
    parts = [BEGIN]
    for message in messages:
        parts.append(f"<|start_header_id|>{message.role}<|end_header_id|>\n\n{message.content.strip()}{EOT}")
    parts.append("<|start_header_id|>assistant<|end_header_id|>\n\n")
    return "".join(parts)


def _finish_reason(raw: Any) -> str | None:
    if raw in ("eos_token", "stop_sequence"):
        return "stop"
    return raw


def parse_chat_completion(payload: Any, *, model_id: str, prompt_messages: list[ChatMessage]) -> LLMResponse:
    """OpenAI ``chat.completion`` (LMI Messages API, TGI Messages API, vLLM, llama.cpp, Ollama)."""
    try:
        choice = payload["choices"][0]
        content = choice["message"]["content"]
    except (KeyError, IndexError, TypeError) as error:
        raise LLMResponseError(f"not a chat completion response: {str(payload)[:300]}") from error
    text = content or ""
    usage = payload.get("usage") or {}
    prompt_tokens = usage.get("prompt_tokens")
    completion_tokens = usage.get("completion_tokens")
    if prompt_tokens is None:
        prompt_tokens = estimate_messages_tokens(prompt_messages)
    if completion_tokens is None:
        completion_tokens = estimate_tokens(text)
    return LLMResponse(
        text=text,
        usage=Usage(input_tokens=int(prompt_tokens), output_tokens=int(completion_tokens)),
        model_id=model_id,
        finish_reason=_finish_reason(choice.get("finish_reason")),
    )


def parse_generated_text(payload: Any, *, model_id: str, prompt: str) -> LLMResponse:
    """TGI ``[{"generated_text", "details"}]`` or LMI ``{"generated_text", "details"}``."""
    item = payload[0] if isinstance(payload, list) and payload else payload
    if not isinstance(item, dict) or "generated_text" not in item:
        raise LLMResponseError(f"no generated_text in response: {str(payload)[:300]}")
    text = str(item["generated_text"])
    if text.startswith(prompt):  # a container that ignored return_full_text=false
        text = text[len(prompt):]
    for marker in (EOT, END_OF_TEXT):
        if text.endswith(marker):
            text = text[: -len(marker)]
    details = item.get("details") or {}
    finish = details.get("finish_reason", details.get("finish reason"))
    if finish == "error":
        # LMI reports a failure during generation this way, with an empty text.
        raise LLMUnavailable("the endpoint reported finish_reason=error during generation")
    generated = details.get("generated_tokens")
    prefill = details.get("prefill")
    return LLMResponse(
        text=text,
        usage=Usage(
            input_tokens=len(prefill) if prefill else estimate_tokens(prompt),
            output_tokens=int(generated) if generated is not None else estimate_tokens(text),
        ),
        model_id=model_id,
        finish_reason=_finish_reason(finish),
    )
