"""Llama 3 Instruct on a SageMaker real-time endpoint (``sagemaker-runtime InvokeEndpoint``).

Two payload styles, chosen per endpoint:

``payload="messages"`` (default): the Messages / Chat Completions API of the LMI (DJL
  Serving, vLLM backend) and TGI containers; the container applies the chat template.
  Request ``{"messages": [...], "max_tokens", "temperature", "top_p", "stop", "seed"}``;
  response as OpenAI ``chat.completion``: ``choices[0].message.content``,
  ``choices[0].finish_reason``, ``usage.prompt_tokens`` / ``usage.completion_tokens``.

``payload="inputs"``: the raw generate schema; docmill applies the Llama 3 chat template.
  Request ``{"inputs": prompt, "parameters": {"max_new_tokens", "temperature", "top_p",
  "do_sample", "details": true, "return_full_text": false, ...}}`` with the stop key of the
  container (TGI ``stop``, LMI ``stop_sequences``). Responses accepted:
  TGI (and LMI with ``tgi_compat``) ``[{"generated_text": ..., "details": {...}}]``,
  LMI rolling batch ``{"generated_text": ..., "details": {"generated_tokens": ...}}``,
  LMI dynamic batch ``[{"generated_text": ...}]``. Output tokens come from
  ``details.generated_tokens`` when present; input tokens from ``details.prefill`` when
  present, otherwise both are estimated.

Structured output: with ``container="tgi"`` a request's ``json_schema`` becomes TGI guidance,
``response_format: {"type": "json_object", "value": schema}`` (Messages API) or
``parameters.grammar: {"type": "json", "value": schema}`` (generate); LMI gets none (its
schema support depends on the backend), so ``supports_json_schema`` is False there and
callers validate the reply. ``repetition_penalty``, when a request sets it, goes into the
generate ``parameters`` (TGI and LMI accept it); the Messages API has no such field.

Errors: ``ThrottlingException`` / ``ModelNotReadyException`` / a ``ModelError`` whose
container answered 429 -> ``LLMThrottled``; read/connect timeouts (and a container 408/504)
-> ``LLMTimeout``; 5xx and connection failures -> ``LLMUnavailable`` (all retried by the
guard); anything else -> ``LLMError`` (not retried).
"""

from __future__ import annotations

import json
from typing import Any, Literal

from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from docmill import aws
from docmill.errors import LLMError, LLMResponseError, LLMThrottled, LLMTimeout, LLMUnavailable
from docmill.llm.base import ChatMessage, GenerationParams, LLMResponse
from docmill.llm.guarded import GuardedLLM
from docmill.llm.ratelimit import CallGuard
from docmill.llm.payloads import EOT, llama3_prompt, parse_chat_completion, parse_generated_text

_THROTTLE_CODES = {"ThrottlingException", "ModelNotReadyException", "TooManyRequestsException",
                   "ProvisionedThroughputExceededException"}
_UNAVAILABLE_CODES = {"InternalFailure", "ServiceUnavailable", "InternalDependencyException",
                      "InternalServerError"}


class SageMakerLLM(GuardedLLM):
    def __init__(
        self,
        endpoint_name: str,
        *,
        payload: Literal["messages", "inputs"] = "messages",
        container: Literal["tgi", "lmi"] = "tgi",
        model_id: str | None = None,
        region: str | None = None,
        inference_component: str | None = None,
        guard: CallGuard | None = None,
        default_params: GenerationParams | None = None,
        timeout: float | None = None,
    ) -> None:
        if payload not in ("messages", "inputs"):
            raise ValueError(f"payload must be 'messages' or 'inputs', not {payload!r}")
        if container not in ("tgi", "lmi"):
            raise ValueError(f"container must be 'tgi' or 'lmi', not {container!r}")
        super().__init__(model_id=model_id or f"sagemaker:{endpoint_name}", guard=guard,
                         default_params=default_params)
        self.endpoint_name = endpoint_name
        self.timeout = timeout
        self.payload = payload
        self.container = container
        self.region = region
        self.inference_component = inference_component
        self.supports_json_schema = container == "tgi"

    # -- request -----------------------------------------------------------------------
    def build_body(self, messages: list[ChatMessage], params: GenerationParams) -> dict[str, Any]:
        if self.payload == "messages":
            body: dict[str, Any] = {
                "messages": [{"role": m.role, "content": m.content} for m in messages],
                "max_tokens": params.max_tokens,
                "temperature": params.temperature,
                "top_p": params.top_p,
            }
            if params.stop:
                body["stop"] = list(params.stop)
            if params.seed is not None:
                body["seed"] = params.seed
            if params.json_schema is not None and self.supports_json_schema:
                body["response_format"] = {"type": "json_object", "value": params.json_schema}
            return body
        sampled = params.temperature > 0
        parameters: dict[str, Any] = {
            "max_new_tokens": params.max_tokens,
            "do_sample": sampled,
            "details": True,
            "return_full_text": False,
        }
        if sampled:
            # TGI rejects temperature <= 0 and top_p outside (0, 1).
            parameters["temperature"] = params.temperature
            if 0 < params.top_p < 1:
                parameters["top_p"] = params.top_p
        if params.seed is not None:
            parameters["seed"] = params.seed
        if params.repetition_penalty is not None:
            parameters["repetition_penalty"] = params.repetition_penalty
        if params.json_schema is not None and self.supports_json_schema:
            parameters["grammar"] = {"type": "json", "value": params.json_schema}
        stops = [EOT, *(params.stop or [])]
        parameters["stop" if self.container == "tgi" else "stop_sequences"] = stops
        return {"inputs": llama3_prompt(messages), "parameters": parameters}

    # -- one attempt -------------------------------------------------------------------
    def _complete(self, messages: list[ChatMessage], params: GenerationParams) -> LLMResponse:
        body = self.build_body(messages, params)
        request: dict[str, Any] = {
            "EndpointName": self.endpoint_name,
            "ContentType": "application/json",
            "Accept": "application/json",
            "Body": json.dumps(body).encode("utf-8"),
        }
        if self.inference_component:
            request["InferenceComponentName"] = self.inference_component
        # botocore's own retries off: the guard retries with backoff inside the rate limits.
        runtime = aws.client("sagemaker-runtime", region=self.region, max_attempts=1, read_timeout=self.timeout)
        try:
            raw = runtime.invoke_endpoint(**request)
            payload = json.loads(raw["Body"].read())
        except ClientError as error:
            raise map_client_error(error, self.endpoint_name) from error
        except (ReadTimeoutError, ConnectTimeoutError) as error:
            raise LLMTimeout(f"SageMaker endpoint {self.endpoint_name} timed out: {error}") from error
        except (EndpointConnectionError, ConnectionClosedError) as error:
            raise LLMUnavailable(f"SageMaker endpoint {self.endpoint_name} unreachable: {error}") from error
        except json.JSONDecodeError as error:
            raise LLMResponseError(f"SageMaker endpoint {self.endpoint_name} returned non-JSON: {error}") from error
        if self.payload == "messages":
            return parse_chat_completion(payload, model_id=self.model_id, prompt_messages=messages)
        return parse_generated_text(payload, model_id=self.model_id, prompt=body["inputs"])


def map_client_error(error: ClientError, endpoint: str) -> LLMError:
    info = error.response.get("Error", {})
    code = info.get("Code", "")
    message = info.get("Message", str(error))
    status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    where = f"SageMaker endpoint {endpoint}: {code}: {message}"
    if code in _THROTTLE_CODES or status == 429:
        return LLMThrottled(where)
    if code == "ModelError":
        # The container's own status (boto3 puts it next to the error, or in the message).
        original = error.response.get("OriginalStatusCode") or info.get("OriginalStatusCode")
        original = int(original) if original else 0
        if original == 429:
            return LLMThrottled(where)
        if original in (408, 504):
            return LLMTimeout(where)
        if original >= 500:
            return LLMUnavailable(where)
        return LLMError(where)
    if code in _UNAVAILABLE_CODES or status >= 500:
        return LLMUnavailable(where)
    return LLMError(where)
