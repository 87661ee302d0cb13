"""SageMakerLLM against botocore's Stubber (request validated against the service model) and
moto's sagemaker-runtime (a real HTTP round trip), with documented container responses."""

from __future__ import annotations

import io
import json
import random

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber

from docmill import aws
from docmill.errors import LLMError, LLMThrottled, LLMTimeout, LLMUnavailable
from docmill.llm.base import ChatMessage, GenerationParams
from docmill.llm.ratelimit import CallGuard
from docmill.retry import RetryPolicy
from docmill.llm.sagemaker import SageMakerLLM

ENDPOINT = "llama3-8b-instruct"
MESSAGES = [
    ChatMessage(role="system", content="Answer from the context only."),
    ChatMessage(role="user", content="What does the refund policy say?"),
]
# LMI / TGI Messages API response (OpenAI chat.completion, djl-serving chat schema docs)
CHAT_COMPLETION = {
    "id": "chatcmpl-0", "object": "chat.completion", "created": 1711997860,
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Refunds within 30 days."},
                 "logprobs": None, "finish_reason": "eos_token"}],
    "usage": {"prompt_tokens": 41, "completion_tokens": 7, "total_tokens": 48},
}
# TGI /generate response as SageMaker returns it (a one-element list, details requested)
TGI_GENERATED = [{"generated_text": "Refunds within 30 days.",
                  "details": {"finish_reason": "eos_token", "generated_tokens": 7, "seed": None,
                              "prefill": [], "tokens": []}}]
# LMI rolling-batch response (an object), details requested
LMI_GENERATED = {"generated_text": "Refunds within 30 days.",
                 "details": {"finish_reason": "length", "generated_tokens": 9, "inputs": "..."}}


def _body(payload) -> dict:
    raw = json.dumps(payload).encode()
    return {"Body": StreamingBody(io.BytesIO(raw), len(raw)), "ContentType": "application/json"}


@pytest.fixture
def runtime():
    client = boto3.client("sagemaker-runtime", region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    aws.set_client("sagemaker-runtime", client)
    with Stubber(client) as stubber:
        yield stubber
    aws.reset_clients()


def _fast_guard(retries: int = 3) -> CallGuard:
    return CallGuard(retry=RetryPolicy(max_retries=retries, base_delay=0.001, max_delay=0.002),
                     sleep=lambda s: None, rng=random.Random(0))


def test_messages_payload_sends_openai_style_request_and_reads_usage(runtime):
    # Given an LMI/TGI endpoint answering with a chat completion
    runtime.add_response("invoke_endpoint", _body(CHAT_COMPLETION),
                         {"EndpointName": ENDPOINT, "ContentType": "application/json",
                          "Accept": "application/json", "Body": ANY})
    llm = SageMakerLLM(ENDPOINT, guard=_fast_guard())
    sent = llm.build_body(MESSAGES, GenerationParams(temperature=0.2, max_tokens=64, stop=["###"], seed=7))

    # When a conversation is sent
    response = llm.chat(MESSAGES, GenerationParams(temperature=0.2, max_tokens=64, stop=["###"], seed=7))

    # Then the body is the Messages API request and the reply's usage is reported
    assert sent == {"messages": [m.model_dump() for m in MESSAGES], "max_tokens": 64, "temperature": 0.2,
                    "top_p": 0.9, "stop": ["###"], "seed": 7}
    assert response.text == "Refunds within 30 days."
    assert (response.usage.input_tokens, response.usage.output_tokens) == (41, 7)
    assert response.finish_reason == "stop"
    assert llm.accounting.input_tokens == 41 and llm.accounting.calls == 1
    runtime.assert_no_pending_responses()


def test_inputs_payload_applies_the_llama3_template_for_tgi(runtime):
    runtime.add_response("invoke_endpoint", _body(TGI_GENERATED))
    llm = SageMakerLLM(ENDPOINT, payload="inputs", guard=_fast_guard())

    body = llm.build_body(MESSAGES, GenerationParams(temperature=0.0, max_tokens=32))
    response = llm.chat(MESSAGES, GenerationParams(temperature=0.0, max_tokens=32))

    assert body["inputs"].startswith("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n")
    assert body["inputs"].endswith("<|start_header_id|>assistant<|end_header_id|>\n\n")
    # greedy: TGI rejects temperature 0, so sampling is off and temperature is not sent
    assert body["parameters"] == {"max_new_tokens": 32, "do_sample": False, "details": True,
                                  "return_full_text": False, "stop": ["<|eot_id|>"]}
    assert response.text == "Refunds within 30 days." and response.usage.output_tokens == 7


def test_inputs_payload_for_lmi_uses_stop_sequences_and_reads_the_object_response(runtime):
    runtime.add_response("invoke_endpoint", _body(LMI_GENERATED))
    llm = SageMakerLLM(ENDPOINT, payload="inputs", container="lmi", guard=_fast_guard())

    body = llm.build_body(MESSAGES, GenerationParams(temperature=0.7, top_p=0.9, max_tokens=32, stop=["Q:"]))
    response = llm.chat(MESSAGES, GenerationParams(max_tokens=32))

    assert body["parameters"]["stop_sequences"] == ["<|eot_id|>", "Q:"]
    assert body["parameters"]["do_sample"] is True and body["parameters"]["temperature"] == 0.7
    assert response.usage.output_tokens == 9 and response.finish_reason == "length"
    assert response.usage.input_tokens > 0  # estimated: LMI reports no prompt token count


def test_inference_component_name_is_passed_through(runtime):
    runtime.add_response("invoke_endpoint", _body(CHAT_COMPLETION),
                         {"EndpointName": ENDPOINT, "InferenceComponentName": "llama-ic", "ContentType": ANY,
                          "Accept": ANY, "Body": ANY})
    llm = SageMakerLLM(ENDPOINT, inference_component="llama-ic", guard=_fast_guard())

    assert llm.chat(MESSAGES).text == "Refunds within 30 days."


def test_throttling_then_success_is_retried(runtime):
    # Given one ThrottlingException, one container 429 (ModelError) and one 503 before success
    runtime.add_client_error("invoke_endpoint", "ThrottlingException", "Rate exceeded", 400)
    runtime.add_client_error("invoke_endpoint", "ModelError", "Received client error (429)", 424,
                             modeled_fields={"OriginalStatusCode": 429, "OriginalMessage": "busy"})
    runtime.add_client_error("invoke_endpoint", "ServiceUnavailable", "try again", 503)
    runtime.add_response("invoke_endpoint", _body(CHAT_COMPLETION))
    llm = SageMakerLLM(ENDPOINT, guard=_fast_guard(retries=3))

    response = llm.chat(MESSAGES)

    assert response.text == "Refunds within 30 days."
    assert llm.accounting.retries == 3 and llm.accounting.failures == 0


@pytest.mark.parametrize(
    ("code", "status", "modeled", "expected"),
    [
        ("ThrottlingException", 400, None, LLMThrottled),
        ("ModelNotReadyException", 429, None, LLMThrottled),
        ("ModelError", 424, {"OriginalStatusCode": 429}, LLMThrottled),
        ("ModelError", 424, {"OriginalStatusCode": 504}, LLMTimeout),
        ("ModelError", 424, {"OriginalStatusCode": 500}, LLMUnavailable),
        ("InternalFailure", 500, None, LLMUnavailable),
        ("ModelError", 424, {"OriginalStatusCode": 400}, LLMError),
        ("ValidationError", 400, None, LLMError),
    ],
)
def test_endpoint_errors_map_to_typed_errors(runtime, code, status, modeled, expected):
    runtime.add_client_error("invoke_endpoint", code, "boom", status, modeled_fields=modeled)
    llm = SageMakerLLM(ENDPOINT, guard=_fast_guard(retries=0))

    with pytest.raises(expected) as raised:
        llm.chat(MESSAGES)

    # permanent errors are exactly LLMError, not a transient subclass
    if expected is LLMError:
        assert type(raised.value) is LLMError
    assert llm.accounting.failures == 1


def test_read_timeout_becomes_llm_timeout(monkeypatch):
    from botocore.exceptions import ReadTimeoutError

    class TimingOut:
        def invoke_endpoint(self, **kwargs):
            raise ReadTimeoutError(endpoint_url="https://runtime.sagemaker.us-east-1.amazonaws.com")

    aws.set_client("sagemaker-runtime", TimingOut())
    try:
        llm = SageMakerLLM(ENDPOINT, guard=_fast_guard(retries=1))
        with pytest.raises(LLMTimeout):
            llm.chat(MESSAGES)
        assert llm.accounting.retries == 1
    finally:
        aws.reset_clients()


def test_round_trip_through_moto_sagemaker_runtime(monkeypatch):
    # moto answers invoke_endpoint over real HTTP with a queued body: this checks the
    # serialisation and the streaming Body handling of the real botocore client.
    from moto import mock_aws
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.sagemakerruntime.models import sagemakerruntime_backends

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        backend = sagemakerruntime_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]
        backend.results_queue.append((json.dumps(TGI_GENERATED), "application/json", "AllTraffic", ""))
        aws.reset_clients()
        aws.set_client("sagemaker-runtime", boto3.client("sagemaker-runtime", region_name="us-east-1"))
        try:
            llm = SageMakerLLM(ENDPOINT, payload="inputs", guard=_fast_guard())
            response = llm.chat(MESSAGES, GenerationParams(max_tokens=16))
        finally:
            aws.reset_clients()

    assert response.text == "Refunds within 30 days." and response.usage.output_tokens == 7
