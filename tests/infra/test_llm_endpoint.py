"""LLM endpoint construct: Llama 3 8B Instruct on ml.g5.2xlarge with the LMI image, or an existing one."""

from __future__ import annotations

import json

from infra.constructs.llm_endpoint import lmi_image_uri
from infra.nag import render
from tests.infra.conftest import ACCOUNT, REGION, Synth, as_list, statements


def test_model_uses_the_regional_lmi_image_and_the_hub_model_id(synth: Synth) -> None:
    (model,) = synth.resources("AWS::SageMaker::Model").values()
    container = model["Properties"]["PrimaryContainer"]
    assert (
        container["Image"]
        == f"763104351884.dkr.ecr.{REGION}.amazonaws.com/djl-inference:0.32.0-lmi14.0.0-cu126"
    )
    env = container["Environment"]
    assert env["HF_MODEL_ID"] == "meta-llama/Meta-Llama-3-8B-Instruct"
    assert env["OPTION_ROLLING_BATCH"] == "vllm"
    # The token is a deploy-time Secrets Manager reference, never a value in the template.
    assert env["HF_TOKEN"] == "{{resolve:secretsmanager:docmill/hf-token:SecretString}}"


def test_endpoint_config_serves_one_g5_2xlarge(synth: Synth) -> None:
    (config,) = synth.resources("AWS::SageMaker::EndpointConfig").values()
    (variant,) = config["Properties"]["ProductionVariants"]
    assert variant["InstanceType"] == "ml.g5.2xlarge"
    assert variant["InitialInstanceCount"] == 1
    assert variant["ContainerStartupHealthCheckTimeoutInSeconds"] == 1800
    (endpoint,) = synth.resources("AWS::SageMaker::Endpoint").values()
    assert endpoint["Properties"]["EndpointName"] == "docmill-dev-llm"


def test_only_generate_batch_and_the_chat_api_may_invoke_the_endpoint_and_only_that_one(synth: Synth) -> None:
    invokers = [
        (lid, st)
        for lid, st in statements(synth.template)
        if "sagemaker:InvokeEndpoint" in as_list(st["Action"])
    ]
    assert sorted(lid.startswith("GenerationGenerateBatch") for lid, _ in invokers) == [False, True]
    assert all(lid.startswith(("GenerationGenerateBatch", "ChatApiFunction")) for lid, _ in invokers)
    for _, st in invokers:
        assert json.dumps(st["Resource"]).endswith(':endpoint/docmill-dev-llm"]]}')


def test_s3_weights_need_no_token(synth: Synth) -> None:
    tpl = synth.variants["variant-llm"]
    (model,) = synth.resources("AWS::SageMaker::Model", tpl).values()
    container = model["Properties"]["PrimaryContainer"]
    assert container["ModelDataSource"]["S3DataSource"] == {
        "S3Uri": "s3://weights-bucket/llama3/",
        "S3DataType": "S3Prefix",
        "CompressionType": "None",
    }
    assert "HF_TOKEN" not in container["Environment"] and "HF_MODEL_ID" not in container["Environment"]


def test_existing_endpoint_creates_nothing_and_grants_on_its_lowercase_arn(synth: Synth) -> None:
    tpl = synth.variants["variant-llm"]
    assert len(synth.resources("AWS::SageMaker::Endpoint", tpl)) == 1  # only the S3-weights one
    ((_, st),) = [(lid, st) for lid, st in statements(tpl, "CallerDefaultPolicy")]
    assert render(st["Resource"]) == f"arn:<AWS::Partition>:sagemaker:{REGION}:{ACCOUNT}:endpoint/my-endpoint"


def test_image_uri_uses_the_regional_dlc_account() -> None:
    assert lmi_image_uri("eu-south-1", "t").startswith(
        "692866216735.dkr.ecr.eu-south-1.amazonaws.com/djl-inference:"
    )
    assert lmi_image_uri("eu-west-1", "t") == "763104351884.dkr.ecr.eu-west-1.amazonaws.com/djl-inference:t"
