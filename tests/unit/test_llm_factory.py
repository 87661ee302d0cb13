"""make_llm turns --llm specs into guarded clients configured from LLMSettings."""

from __future__ import annotations

import pytest

from docmill.config import LLMSettings
from docmill.errors import ConfigurationError
from docmill.llm.factory import make_llm
from docmill.llm.local import LocalLLM
from docmill.llm.openai_compat import OpenAICompatLLM
from docmill.llm.sagemaker import SageMakerLLM

SETTINGS = LLMSettings(requests_per_minute=90, tokens_per_minute=9000, concurrency=3, max_retries=2,
                       temperature=0.3, max_tokens=128, api_key="k", model="llama3", timeout=7.0)


def test_local_spec_builds_the_embedded_model_client_without_loading_it():
    llm = make_llm("local", SETTINGS)

    assert isinstance(llm, LocalLLM)
    assert llm.default_params.max_tokens == 128 and llm.default_params.temperature == 0.3


def test_openai_spec_carries_url_key_model_timeout_and_limits():
    llm = make_llm("openai:http://127.0.0.1:8000/v1", SETTINGS)

    assert isinstance(llm, OpenAICompatLLM)
    assert llm.url == "http://127.0.0.1:8000/v1/chat/completions"
    assert (llm.api_key, llm.model, llm.timeout[1]) == ("k", "llama3", 7.0)
    assert llm.guard.concurrency == 3 and llm.guard.retry.max_retries == 2
    assert llm.guard.limiter.requests.rate_per_s == pytest.approx(1.5 * 0.98)
    assert llm.guard.limiter.tokens.rate_per_s == pytest.approx(150 * 0.98)


def test_sagemaker_spec_with_options():
    llm = make_llm("sagemaker:my-llama?payload=inputs&container=lmi&component=ic1&region=eu-west-1", SETTINGS)

    assert isinstance(llm, SageMakerLLM)
    assert (llm.endpoint_name, llm.payload, llm.container) == ("my-llama", "inputs", "lmi")
    assert (llm.inference_component, llm.region) == ("ic1", "eu-west-1")


def test_default_spec_comes_from_settings():
    assert isinstance(make_llm(None, LLMSettings(spec="sagemaker:ep")), SageMakerLLM)


@pytest.mark.parametrize("spec", ["bedrock:x", "openai:", "openai:ftp://x", "sagemaker:", "sagemaker:ep?payload=xml",
                                  "sagemaker:ep?colour=red", "local:extra"])
def test_bad_specs_are_configuration_errors(spec):
    with pytest.raises(ConfigurationError):
        make_llm(spec, SETTINGS)
