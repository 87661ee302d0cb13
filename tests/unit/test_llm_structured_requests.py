"""Remote clients pass a request's JSON schema and repetition penalty in each API's own shape,
and leave them out when the API has none."""

from __future__ import annotations

from docmill.llm.base import ChatMessage, GenerationParams
from docmill.llm.openai_compat import OpenAICompatLLM
from docmill.llm.sagemaker import SageMakerLLM

SCHEMA = {"type": "object", "properties": {"question": {"type": "string"}}, "required": ["question"]}
MESSAGES = [ChatMessage(role="user", content="Ask a question.")]


def test_openai_compatible_requests_carry_response_format_json_schema():
    llm = OpenAICompatLLM("http://127.0.0.1:9/v1", model="m")

    body = llm.build_body(MESSAGES, GenerationParams(json_schema=SCHEMA, repetition_penalty=1.2))

    assert body["response_format"] == {"type": "json_schema",
                                       "json_schema": {"name": "reply", "schema": SCHEMA, "strict": True}}
    assert body["repetition_penalty"] == 1.2 and llm.supports_json_schema


def test_openai_compatible_requests_without_them_stay_plain_openai():
    body = OpenAICompatLLM("http://127.0.0.1:9/v1", model="m").build_body(MESSAGES, GenerationParams())

    assert "response_format" not in body and "repetition_penalty" not in body


def test_sagemaker_tgi_gets_guidance_in_both_payload_styles():
    messages = SageMakerLLM("ep", payload="messages", container="tgi", region="us-east-1")
    inputs = SageMakerLLM("ep", payload="inputs", container="tgi", region="us-east-1")
    params = GenerationParams(json_schema=SCHEMA, repetition_penalty=1.15)

    assert messages.build_body(MESSAGES, params)["response_format"] == {"type": "json_object", "value": SCHEMA}
    parameters = inputs.build_body(MESSAGES, params)["parameters"]
    assert parameters["grammar"] == {"type": "json", "value": SCHEMA}
    assert parameters["repetition_penalty"] == 1.15
    assert messages.supports_json_schema and inputs.supports_json_schema


def test_sagemaker_lmi_sends_no_schema_and_says_so():
    llm = SageMakerLLM("ep", payload="inputs", container="lmi", region="us-east-1")

    parameters = llm.build_body(MESSAGES, GenerationParams(json_schema=SCHEMA))["parameters"]

    assert "grammar" not in parameters and not llm.supports_json_schema
