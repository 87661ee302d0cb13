"""The other stages and switches synthesise with zero unacknowledged cdk-nag findings.

One extra synthesis for the whole module: prod (multi-AZ domain, dedicated masters, retained
buckets), the Serverless stage (collection + existing endpoint) and a dev variant with the
large-file workflow off, SSE-S3 buckets and no monitoring, as three stacks of one app.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def stage_templates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    import aws_cdk as cdk

    from infra.app import add_nag, add_stack, cdk_json_context
    from infra.config import stage_config_from_context

    context = cdk_json_context(**{"aws:cdk:bundling-stacks": []})
    app = cdk.App(context=context, outdir=str(tmp_path_factory.mktemp("stages")))
    configs = {
        "prod": stage_config_from_context({**context, "docmill:stage": "prod"}.get),
        "serverless": stage_config_from_context({**context, "docmill:stage": "serverless"}.get),
        "plain": stage_config_from_context(
            {
                **context,
                "docmill:override": json.dumps(
                    {
                        "stage": "plain",
                        "ingestion": {"large_file_workflow": False},
                        "storage": {"encryption": "s3"},
                        "monitoring": {"enabled": False},
                    }
                ),
            }.get
        ),
    }
    stacks = {name: add_stack(app, cfg) for name, cfg in configs.items()}
    add_nag(app)
    assembly = app.synth()  # raises on any unacknowledged cdk-nag error
    return {name: assembly.get_stack_by_name(stack.stack_name).template for name, stack in stacks.items()}


def _of_type(template: dict[str, Any], type_: str) -> list[dict[str, Any]]:
    return [r for r in template["Resources"].values() if r["Type"] == type_]


def test_prod_domain_is_multi_az_with_dedicated_masters_and_retained_buckets(stage_templates) -> None:
    prod = stage_templates["prod"]
    (domain,) = _of_type(prod, "AWS::OpenSearchService::Domain")
    cluster = domain["Properties"]["ClusterConfig"]
    assert cluster["ZoneAwarenessEnabled"] is True and cluster["InstanceCount"] == 2
    assert cluster["DedicatedMasterEnabled"] is True and cluster["DedicatedMasterCount"] == 3
    for bucket in _of_type(prod, "AWS::S3::Bucket"):
        assert bucket["DeletionPolicy"] == "Retain"


def test_serverless_stage_has_a_collection_and_no_sagemaker_resources(stage_templates) -> None:
    tpl = stage_templates["serverless"]
    assert len(_of_type(tpl, "AWS::OpenSearchServerless::Collection")) == 1
    assert not _of_type(tpl, "AWS::OpenSearchService::Domain")
    assert not _of_type(tpl, "AWS::SageMaker::Endpoint")
    env = next(
        f["Properties"]["Environment"]["Variables"]
        for f in _of_type(tpl, "AWS::Lambda::Function")
        if f["Properties"].get("ImageConfig", {}).get("Command")
        == ["functions.generation.generate_batch.handler"]
    )
    assert env["DOCMILL_LLM__SPEC"] == "sagemaker:my-llama3-endpoint"
    assert env["DOCMILL_OPENSEARCH__SERVICE"] == "aoss"


def test_without_the_large_file_workflow_route_runs_the_task_itself(stage_templates) -> None:
    tpl = stage_templates["plain"]
    machines = [
        lid for lid, r in tpl["Resources"].items()
        if r["Type"] == "AWS::StepFunctions::StateMachine" and not lid.startswith("FineTuning")
    ]
    assert len(machines) == 1, machines  # generation only: no large-file ingest workflow
    policies = [
        st for p in _of_type(tpl, "AWS::IAM::Policy") for st in p["Properties"]["PolicyDocument"]["Statement"]
    ]
    run_task = [st for st in policies if "ecs:RunTask" in json.dumps(st["Action"])]
    assert run_task, "route must be allowed to run the processing task"
    route_env = next(
        f["Properties"]["Environment"]["Variables"]
        for lid, f in tpl["Resources"].items()
        if lid.startswith("IngestionRoute") and f["Type"] == "AWS::Lambda::Function"
    )
    assert {
        "DOCMILL_AWS__ECS_CLUSTER",
        "DOCMILL_AWS__ECS_TASK_DEFINITION",
        "DOCMILL_AWS__ECS_SUBNETS",
    } <= set(route_env)
    assert "DOCMILL_AWS__INGEST_STATE_MACHINE_ARN" not in route_env
    assert not _of_type(tpl, "AWS::CloudWatch::Alarm")
    assert not [lid for lid in tpl["Resources"] if lid.startswith("Monitoring")]
    # The storage switch covers the pipeline's buckets; the models bucket always has its own KMS key.
    for lid, bucket in tpl["Resources"].items():
        if bucket["Type"] != "AWS::S3::Bucket" or lid.startswith("FineTuning"):
            continue
        sse = bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
        assert sse["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
