"""Ingestion: the ``route`` Lambda on the object-event queue, the processing container as a Lambda
(small documents) and as an ECS Fargate task (large ones), and the optional large-file workflow.

Contract with the runtime (issue #5), all strings in the environment:
- route reads DOCMILL_AWS__* (see ``route_environment``) and the shared DOCMILL_* settings;
- the container Lambda is invoked asynchronously with one object per event
  ``{"bucket", "key", "version_id", "size", ...}``; after 2 retries the event and its error
  land in the events DLQ (Lambda on-failure destination);
- the ECS task runs ``python3 -m functions.process_document.ecs_task`` and reads the object from
  DOCMILL_OBJECT_BUCKET / DOCMILL_OBJECT_KEY / DOCMILL_OBJECT_VERSION_ID.
"""

from __future__ import annotations

from aws_cdk import Duration, Size, Stack
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from infra import paths
from infra.config import IngestionConfig
from infra.constructs.log_groups import LogGroups
from infra.constructs.network import Network
from infra.constructs.runtime_code import RuntimeCode
from infra.constructs.storage import grant_produce, producer_view
from infra.errors import task_retry_errors

PROCESS_CONTAINER = "process"


class Ingestion(Construct):
    """Attributes: ``route`` (Function), ``process`` (DockerImageFunction), ``cluster``,
    ``task_definition``, ``container``, ``state_machine`` (large-file workflow or None),
    ``log_groups`` (name -> LogGroup)."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: IngestionConfig,
        code: RuntimeCode,
        network: Network,
        queue: sqs.IQueue,
        dlq: sqs.IQueue,
        log_groups: LogGroups,
        tracing: bool,
        common_env: dict[str, str],
    ) -> None:
        super().__init__(scope, id)
        self.config = config
        self._network = network
        trace = lambda_.Tracing.ACTIVE if tracing else lambda_.Tracing.DISABLED
        self.log_groups = {
            name: log_groups.create(self, f"{name.title()}Logs")
            for name in ("route", "process", "task", "workflow")
        }

        self.route = lambda_.Function(
            self,
            "Route",
            description="docmill route: S3 object events from SQS -> process (Lambda or ECS) or delete",
            runtime=lambda_.Runtime.PYTHON_3_11,
            code=lambda_.Code.from_asset(str(paths.ROUTE_CODE)),
            handler=paths.ROUTE_HANDLER,
            layers=[code.layer],
            memory_size=config.route_memory_mb,
            timeout=Duration.seconds(config.route_timeout_seconds),
            reserved_concurrent_executions=config.route_reserved_concurrency,
            # In the VPC: an ObjectRemoved event deletes the source's chunks from the vector store.
            vpc=network.vpc,
            vpc_subnets=network.private_subnets,
            security_groups=[network.workload_sg],
            tracing=trace,
            log_group=self.log_groups["route"],
            environment={**common_env, "POWERTOOLS_SERVICE_NAME": "route"},
        )
        self.route.add_event_source(
            sources.SqsEventSource(
                queue,
                batch_size=config.route_batch_size,
                report_batch_item_failures=True,
                max_batching_window=Duration.seconds(5) if config.route_batch_size > 10 else None,
            )
        )

        self.process = lambda_.DockerImageFunction(
            self,
            "Process",
            description="docmill process_document: partition, chunk, embed and index one object version",
            code=lambda_.DockerImageCode.from_ecr(
                code.image.repository,
                tag_or_digest=code.image.image_tag,
                cmd=[paths.PROCESS_DOCUMENT_CMD],
            ),
            memory_size=config.process_memory_mb,
            ephemeral_storage_size=Size.mebibytes(config.process_ephemeral_storage_mb),
            timeout=Duration.seconds(config.process_timeout_seconds),
            reserved_concurrent_executions=config.process_reserved_concurrency,
            vpc=network.vpc,
            vpc_subnets=network.private_subnets,
            security_groups=[network.workload_sg],
            tracing=trace,
            log_group=self.log_groups["process"],
            retry_attempts=2,
            on_failure=destinations.SqsDestination(producer_view(dlq)),
            environment={**common_env, "POWERTOOLS_SERVICE_NAME": "process_document"},
        )
        grant_produce(dlq, self.process)
        self.process.grant_invoke(self.route)

        self.cluster = ecs.Cluster(
            self,
            "Cluster",
            vpc=network.vpc,
            container_insights_v2=ecs.ContainerInsights.ENABLED,
        )
        self.task_definition = ecs.FargateTaskDefinition(
            self,
            "ProcessTask",
            cpu=config.ecs_cpu,
            memory_limit_mib=config.ecs_memory_mb,
            ephemeral_storage_gib=config.ecs_ephemeral_storage_gib,
            runtime_platform=ecs.RuntimePlatform(
                cpu_architecture=ecs.CpuArchitecture.X86_64,
                operating_system_family=ecs.OperatingSystemFamily.LINUX,
            ),
        )
        self.container = self.task_definition.add_container(
            PROCESS_CONTAINER,
            image=ecs.ContainerImage.from_docker_image_asset(code.image),
            # The image's ENTRYPOINT is the Lambda bootstrap; the task runs the module instead.
            entry_point=["python3", "-m"],
            command=[paths.ECS_TASK_MODULE],
            logging=ecs.LogDrivers.aws_logs(stream_prefix="process", log_group=self.log_groups["task"]),
            environment={**common_env, "POWERTOOLS_SERVICE_NAME": "process_task"},
            readonly_root_filesystem=False,
        )

        self.state_machine: sfn.StateMachine | None = None
        if config.large_file_workflow:
            self.state_machine = self._large_file_workflow(tracing)
            self.state_machine.grant_start_execution(self.route)
        else:
            self.task_definition.grant_run(self.route)
            self.route.add_to_role_policy(_run_task_scope(self.cluster))

        for key, value in self.route_environment().items():
            self.route.add_environment(key, value)

    def route_environment(self) -> dict[str, str]:
        """What route needs to hand a document on: the function, the thresholds, and either the
        large-file state machine or what it takes to run the ECS task itself."""
        env = {
            "DOCMILL_AWS__PROCESS_FUNCTION": self.process.function_name,
            "DOCMILL_AWS__LARGE_FILE_BYTES": str(self.config.large_file_bytes),
            "DOCMILL_AWS__LARGE_FILE_PAGES": str(self.config.large_file_pages),
        }
        if self.state_machine is not None:
            env["DOCMILL_AWS__INGEST_STATE_MACHINE_ARN"] = self.state_machine.state_machine_arn
            return env
        subnets = self._network.vpc.select_subnets(subnet_type=self._network.private_subnets.subnet_type)
        env.update(
            {
                "DOCMILL_AWS__ECS_CLUSTER": self.cluster.cluster_arn,
                "DOCMILL_AWS__ECS_TASK_DEFINITION": self.task_definition.task_definition_arn,
                "DOCMILL_AWS__ECS_CONTAINER": PROCESS_CONTAINER,
                "DOCMILL_AWS__ECS_SUBNETS": ",".join(subnets.subnet_ids),
                "DOCMILL_AWS__ECS_SECURITY_GROUPS": self._network.workload_sg.security_group_id,
            }
        )
        return env

    @property
    def workers(self) -> list:
        """Principals that read raw objects and write processed output / the index."""
        return [self.process, self.task_definition.task_role]

    def _large_file_workflow(self, tracing: bool) -> sfn.StateMachine:
        """Input ``{"bucket", "key", "version_id", "size", "estimated_pages"?}`` (version_id "" if none)."""
        cfg = self.config
        invoke = tasks.LambdaInvoke(
            self,
            "ProcessInLambda",
            lambda_function=self.process,
            payload_response_only=True,
            retry_on_service_exceptions=False,
            result_path="$.result",
        )
        invoke.add_retry(
            errors=task_retry_errors(),
            interval=Duration.seconds(5),
            backoff_rate=2.0,
            max_attempts=4,
            jitter_strategy=sfn.JitterType.FULL,
        )
        run_task = tasks.EcsRunTask(
            self,
            "ProcessInEcs",
            integration_pattern=sfn.IntegrationPattern.RUN_JOB,
            cluster=self.cluster,
            task_definition=self.task_definition,
            launch_target=tasks.EcsFargateLaunchTarget(platform_version=ecs.FargatePlatformVersion.LATEST),
            subnets=self._network.private_subnets,
            security_groups=[self._network.workload_sg],
            assign_public_ip=False,
            container_overrides=[
                tasks.ContainerOverride(
                    container_definition=self.container,
                    environment=[
                        tasks.TaskEnvironmentVariable(
                            name="DOCMILL_OBJECT_BUCKET", value=sfn.JsonPath.string_at("$.bucket")
                        ),
                        tasks.TaskEnvironmentVariable(
                            name="DOCMILL_OBJECT_KEY", value=sfn.JsonPath.string_at("$.key")
                        ),
                        tasks.TaskEnvironmentVariable(
                            name="DOCMILL_OBJECT_VERSION_ID", value=sfn.JsonPath.string_at("$.version_id")
                        ),
                    ],
                )
            ],
            result_path=sfn.JsonPath.DISCARD,
            task_timeout=sfn.Timeout.duration(Duration.hours(6)),
        )
        run_task.add_retry(
            errors=["ECS.AmazonECSException", "ECS.ServerException"],
            interval=Duration.seconds(30),
            backoff_rate=2.0,
            max_attempts=3,
        )
        is_large = sfn.Condition.or_(
            sfn.Condition.number_greater_than_equals("$.size", cfg.large_file_bytes),
            sfn.Condition.and_(
                sfn.Condition.is_present("$.estimated_pages"),
                sfn.Condition.number_greater_than_equals("$.estimated_pages", cfg.large_file_pages),
            ),
        )
        definition = (
            sfn.Choice(self, "BySize", comment="large documents run on ECS Fargate")
            .when(is_large, run_task)
            .otherwise(invoke)
        )
        return sfn.StateMachine(
            self,
            "LargeFileWorkflow",
            definition_body=sfn.DefinitionBody.from_chainable(definition),
            timeout=Duration.hours(8),
            tracing_enabled=tracing,
            logs=sfn.LogOptions(
                destination=self.log_groups["workflow"], level=sfn.LogLevel.ALL, include_execution_data=False
            ),
        )


def _run_task_scope(cluster: ecs.Cluster) -> iam.PolicyStatement:
    """Route checks on the tasks it started (DescribeTasks); scoped to this cluster's tasks."""
    task_arn = Stack.of(cluster).format_arn(
        service="ecs", resource="task", resource_name=f"{cluster.cluster_name}/*"
    )
    return iam.PolicyStatement(actions=["ecs:DescribeTasks"], resources=[task_arn])
