"""Scheduled source syncs on AWS: one EventBridge Scheduler schedule per configured source,
each running the shared ECS Fargate task with ``python -m docmill.connectors.task``.

Self-contained: it is handed the cluster, the task definition (the processing image, which
ships the docmill library) and the bucket holding the sync config, and it creates only what
the capability owns: a schedule group, one schedule per source, the schedules' dead-letter
queue (runs Scheduler could not start land there), and read access for the task to its config
object. Cross-capability grants are the stack's job: the task role (``self.task_role``) needs
``raw_bucket.grant_read_write`` + ``grant_delete`` on the raw bucket (syncs add, overwrite and
delete documents there), and ``secret.grant_read`` for every Secrets Manager secret a source's
``credentials.secret_id`` names.

Sources come from cdk context (``cdk.json`` or ``-c``)::

    "docmill:connectors": [
        {"name": "handbook", "schedule": "rate(1 hour)"},
        {"name": "wiki", "schedule": "cron(0 3 * * ? *)", "timezone": "Europe/Berlin"}
    ]

The names are the ``name`` of sources in the sync config at ``s3://<config bucket>/<config key>``.
Scheduler's ECS target passes the schedule's input as the RunTask task overrides (as
EventBridge rules do), which is how one task definition runs a different command per source.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from aws_cdk import Acknowledgment, Duration, RemovalPolicy, TimeZone, Validations
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as targets
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.constructs.storage import grant_produce, producer_view

CONTEXT_KEY = "docmill:connectors"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_EXPRESSION = re.compile(r"^(rate\(.+\)|cron\(.+\)|at\(.+\))$")


@dataclass(frozen=True)
class ConnectorSchedule:
    name: str
    schedule: str = "rate(1 day)"
    timezone: str | None = None
    enabled: bool = True

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(f"connector source name {self.name!r}: letters, digits, '.', '_' or '-' (max 64)")
        if not _EXPRESSION.match(self.schedule.strip()):
            raise ValueError(f"source {self.name!r}: schedule must be rate(...), cron(...) or at(...), got {self.schedule!r}")

    @classmethod
    def from_value(cls, value: ConnectorSchedule | Mapping[str, object]) -> ConnectorSchedule:
        if isinstance(value, ConnectorSchedule):
            return value
        unknown = set(value) - {"name", "schedule", "timezone", "enabled"}
        if unknown:
            raise ValueError(f"unknown keys in connector schedule {dict(value)}: {sorted(unknown)}")
        return cls(**value)  # type: ignore[arg-type]


def sources_from_context(scope: Construct, key: str = CONTEXT_KEY) -> list[ConnectorSchedule]:
    """The configured sources from cdk context; an absent key means no scheduled syncs."""
    raw = scope.node.try_get_context(key)
    if raw is None:
        return []
    if isinstance(raw, str):  # `-c docmill:connectors='[...]'` arrives as a string
        import json

        raw = json.loads(raw)
    if not isinstance(raw, list):
        raise ValueError(f"context {key!r} must be a list of {{name, schedule}} objects")
    return [ConnectorSchedule.from_value(v) for v in raw]


class SourceConnectors(Construct):
    """One EventBridge Scheduler schedule per source, each starting the sync ECS task."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cluster: ecs.ICluster,
        task_definition: ecs.FargateTaskDefinition,
        config_bucket: s3.IBucket,
        sources: Sequence[ConnectorSchedule | Mapping[str, object]],
        config_key: str = "connectors/sync.yaml",
        container_name: str | None = None,
        vpc_subnets: ec2.SubnetSelection | None = None,
        security_groups: Sequence[ec2.ISecurityGroup] | None = None,
        retry_attempts: int = 2,
        queue_key: kms.IKey | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        schedules = [ConnectorSchedule.from_value(s) for s in sources]
        names = [s.name for s in schedules]
        if len(set(names)) != len(names):
            raise ValueError(f"connector source names must be unique: {names}")
        container = container_name or (task_definition.default_container.container_name
                                       if task_definition.default_container else None)
        if not container:
            raise ValueError("task definition has no default container; pass container_name")

        self.config_uri = f"s3://{config_bucket.bucket_name}/{config_key}"
        self.task_role = task_definition.task_role
        # Exactly one object, read-only (grant_read would add s3:GetObject*/List* wildcards).
        self.task_role.add_to_principal_policy(iam.PolicyStatement(
            actions=["s3:GetObject"], resources=[config_bucket.arn_for_objects(config_key)]))
        if config_bucket.encryption_key is not None:
            config_bucket.encryption_key.grant_decrypt(self.task_role)
        # Scheduler assumes this role to start the task; the targets add ecs:RunTask on the
        # task definition, iam:PassRole on its task and execution roles, and sqs:SendMessage
        # to the dead-letter queue. Tags are not set, so no ecs:TagResource on task/* is needed.
        self.scheduler_role = iam.Role(self, "SchedulerRole",
                                       assumed_by=iam.ServicePrincipal("scheduler.amazonaws.com"),
                                       description="docmill: EventBridge Scheduler starts the source sync task")

        self.dead_letter_queue = sqs.Queue(
            self, "ScheduleDlq",
            encryption=sqs.QueueEncryption.KMS if queue_key is not None else sqs.QueueEncryption.SQS_MANAGED,
            encryption_master_key=queue_key,
            enforce_ssl=True,
            retention_period=Duration.days(14),
            removal_policy=RemovalPolicy.DESTROY,
        )
        Validations.of(self.dead_letter_queue).acknowledge(Acknowledgment(
            id="AwsSolutions-SQS3",
            reason="This queue is itself the dead-letter queue of the sync schedules; it has no consumer to fail.",
        ))
        grant_produce(self.dead_letter_queue, self.scheduler_role)
        self.schedule_group = scheduler.ScheduleGroup(self, "Group", removal_policy=RemovalPolicy.DESTROY)

        self.schedules: dict[str, scheduler.Schedule] = {}
        for source in schedules:
            command = ["python", "-m", "docmill.connectors.task", "--config", self.config_uri, "--source", source.name]
            target = targets.EcsRunFargateTask(
                cluster,
                task_definition=task_definition,
                vpc_subnets=vpc_subnets or ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
                security_groups=list(security_groups) if security_groups else None,
                assign_public_ip=False,
                input=scheduler.ScheduleTargetInput.from_object(
                    {"containerOverrides": [{"name": container, "command": command}]}
                ),
                dead_letter_queue=producer_view(self.dead_letter_queue),
                retry_attempts=retry_attempts,
                max_event_age=Duration.hours(1),
                role=self.scheduler_role,
            )
            expression = (
                scheduler.ScheduleExpression.expression(source.schedule, _tz(source.timezone))
                if source.timezone else scheduler.ScheduleExpression.expression(source.schedule)
            )
            self.schedules[source.name] = scheduler.Schedule(
                self, f"Sync-{source.name}",
                schedule=expression,
                target=target,
                schedule_group=self.schedule_group,
                description=f"docmill: sync source {source.name} into the raw bucket",
                enabled=source.enabled,
            )


def _tz(name: str) -> TimeZone:
    return TimeZone.of(name)


__all__ = ["CONTEXT_KEY", "ConnectorSchedule", "SourceConnectors", "sources_from_context"]
