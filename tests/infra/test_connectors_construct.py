"""The scheduled source-sync construct: one schedule per source, least privilege, cdk-nag clean."""

from __future__ import annotations

import json

import aws_cdk as cdk
import pytest
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Match, Template
from cdk_nag import AwsSolutionsChecks

from infra.constructs.connectors import ConnectorSchedule, SourceConnectors, sources_from_context

SOURCES = [{"name": "handbook", "schedule": "rate(1 hour)"},
           {"name": "wiki", "schedule": "cron(0 3 * * ? *)", "timezone": "Europe/Berlin"}]


def _render(value) -> str:
    """A CloudFormation string (possibly an Fn::Join of Refs) as text, Refs shown as <LogicalId>."""
    if isinstance(value, str):
        return value
    sep, parts = value["Fn::Join"]
    return sep.join(p if isinstance(p, str) else f"<{p.get('Ref', p)}>" for p in parts)


def _ack(construct, *rules: str) -> None:
    for rule in rules:
        cdk.Validations.of(construct).acknowledge(cdk.Acknowledgment(
            id=rule, reason="test scaffolding: owned and hardened by the storage/compute constructs, not this one"))


@pytest.fixture(scope="module")
def synth():
    # Given a stack with the scaffolding another construct owns (VPC, cluster, task
    # definition, config bucket) and the sources in cdk context, checked by cdk-nag
    app = cdk.App(context={"docmill:connectors": SOURCES})
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    stack = cdk.Stack(app, "Docmill", env=cdk.Environment(account="111111111111", region="eu-west-1"))
    vpc = ec2.Vpc(stack, "Vpc", max_azs=2)
    cluster = ecs.Cluster(stack, "Cluster", vpc=vpc)
    task_def = ecs.FargateTaskDefinition(stack, "ProcessTask", cpu=1024, memory_limit_mib=4096)
    task_def.add_container("processor", image=ecs.ContainerImage.from_registry("public.ecr.aws/docker/library/python:3.11-slim"))
    bucket = s3.Bucket(stack, "ConfigBucket")
    _ack(vpc, "AwsSolutions-VPC7")
    _ack(cluster, "AwsSolutions-ECS4")
    _ack(task_def, "AwsSolutions-ECS7")
    _ack(bucket, "AwsSolutions-S1", "AwsSolutions-S10")
    # When the construct is added
    connectors = SourceConnectors(stack, "Connectors", cluster=cluster, task_definition=task_def,
                                  config_bucket=bucket, sources=sources_from_context(stack))
    # Then synthesis passes cdk-nag (Template.from_stack raises on an unacknowledged finding)
    return Template.from_stack(stack), connectors, stack


def test_one_schedule_per_source_runs_the_sync_task_for_that_source(synth):
    template, connectors, stack = synth
    template.resource_count_is("AWS::Scheduler::Schedule", 2)
    schedules = template.find_resources("AWS::Scheduler::Schedule")
    by_expr = {props["Properties"]["ScheduleExpression"]: props["Properties"] for props in schedules.values()}
    assert set(by_expr) == {"rate(1 hour)", "cron(0 3 * * ? *)"}
    assert by_expr["cron(0 3 * * ? *)"]["ScheduleExpressionTimezone"] == "Europe/Berlin"
    for expr, name in (("rate(1 hour)", "handbook"), ("cron(0 3 * * ? *)", "wiki")):
        target = by_expr[expr]["Target"]
        overrides = json.loads(_render(target["Input"]))
        command = overrides["containerOverrides"][0]["command"]
        assert overrides["containerOverrides"][0]["name"] == "processor"
        assert command[:4] == ["python", "-m", "docmill.connectors.task", "--config"]
        assert command[-2:] == ["--source", name]
        assert command[4].startswith("s3://<ConfigBucket") and command[4].endswith("/connectors/sync.yaml")
        assert target["EcsParameters"]["LaunchType"] == "FARGATE"
        assert target["EcsParameters"]["NetworkConfiguration"]["AwsvpcConfiguration"]["AssignPublicIp"] == "DISABLED"
        assert target["RetryPolicy"]["MaximumRetryAttempts"] == 2
        assert "DeadLetterConfig" in target
    assert set(connectors.schedules) == {"handbook", "wiki"}


def test_task_role_reads_only_its_config_object(synth):
    template, connectors, _ = synth
    template.has_resource_properties("AWS::IAM::Policy", {
        "PolicyDocument": {"Statement": Match.array_with([Match.object_like({
            "Action": "s3:GetObject", "Effect": "Allow",
            "Resource": {"Fn::Join": ["", [Match.object_like({"Fn::GetAtt": Match.array_with(["Arn"])}),
                                           "/connectors/sync.yaml"]]}})])},
        "Roles": [{"Ref": Match.string_like_regexp("ProcessTaskTaskRole")}],
    })


def test_scheduler_role_is_trusted_by_scheduler_and_may_pass_the_task_roles(synth):
    template, _, _ = synth
    template.has_resource_properties("AWS::IAM::Role", {"AssumeRolePolicyDocument": {"Statement": [
        Match.object_like({"Principal": {"Service": "scheduler.amazonaws.com"}})]}})
    policies = json.dumps(template.find_resources("AWS::IAM::Policy"))
    assert '"ecs:RunTask"' in policies and '"iam:PassRole"' in policies and '"sqs:SendMessage"' in policies
    template.has_resource_properties("AWS::SQS::Queue", {"SqsManagedSseEnabled": True})


def test_invalid_schedules_and_duplicate_names_are_refused():
    with pytest.raises(ValueError, match="rate"):
        ConnectorSchedule(name="x", schedule="every hour")
    with pytest.raises(ValueError, match="unknown keys"):
        ConnectorSchedule.from_value({"name": "x", "schedul": "rate(1 day)"})
    app = cdk.App()
    stack = cdk.Stack(app, "S")
    cluster = ecs.Cluster(stack, "C", vpc=ec2.Vpc(stack, "V", max_azs=1))
    td = ecs.FargateTaskDefinition(stack, "T")
    td.add_container("c", image=ecs.ContainerImage.from_registry("python:3.11-slim"))
    with pytest.raises(ValueError, match="unique"):
        SourceConnectors(stack, "X", cluster=cluster, task_definition=td, config_bucket=s3.Bucket(stack, "B"),
                         sources=[{"name": "a"}, {"name": "a"}])
