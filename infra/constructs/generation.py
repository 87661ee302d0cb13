"""Generation workflow: settings -> plan -> Distributed Map over chunk batches -> assemble.

Contract with the handlers (functions/generation/*.py, issue #5); each task's Resource is the
function itself (payload-response-only), so a task's input is the Lambda event and its result the
handler's return value:
- plan gets the execution input plus ``settings`` ({"batch_size", "manifest_format",
  "tolerated_failure_percentage", "results_prefix"}), writes the batch manifest (``json``: one
  JSON array; ``jsonl``: one batch per line) to the datasets bucket under ``_work/`` and returns
  at least ``{"manifest_key": ..., "run_id": ...}`` (stored at ``$.plan``);
- generate_batch gets ``{"batch": <one manifest item>, "index": n, "run_id": ...}`` and writes its
  shard to S3 (container Lambda: it embeds questions for retrieval). Retries: throttling and
  transient errors with exponential backoff and jitter; after that the per-item Catch records
  ``{"status": "failed", "batch", "error", "cause"}`` as that item's result and the run goes on;
  ToleratedFailurePercentage bounds what the Catch cannot absorb;
- the Map's results go to S3 (ResultWriter, ``_work/generation-results/``) so a large run never
  hits the 256 KiB state payload limit;
- assemble gets ``{"request": <state>, "plan": ..., "results": {"Bucket", "Key"}}`` (Key = the
  ResultWriter's manifest.json) and writes the datasets; its result is stored at ``$.datasets``.

The same definition runs locally: ``infra.asl_export.generation_asl()`` returns the synthesised ASL
with placeholder ARNs that ``docmill dev`` binds to in-process handlers.
"""

from __future__ import annotations

from typing import cast

from aws_cdk import CfnResource, Duration
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct, IConstruct

from infra import paths
from infra.config import GenerationStageConfig
from infra.constructs.log_groups import LogGroups
from infra.constructs.network import Network
from infra.constructs.runtime_code import RuntimeCode
from infra.constructs.storage import WORK_PREFIX
from infra.errors import batch_retry_errors, task_retry_errors

RESULTS_PREFIX = f"{WORK_PREFIX}generation-results/"
STATE_MACHINE_METADATA_KEY = "docmill:workflow"


class GenerationWorkflow(Construct):
    """Attributes: ``plan``, ``generate_batch``, ``assemble`` (functions), ``state_machine``,
    ``log_group``, ``task_functions`` (role name -> Function, the placeholders of the local runtime)."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: GenerationStageConfig,
        code: RuntimeCode,
        network: Network,
        datasets: s3.IBucket,
        log_groups: LogGroups,
        tracing: bool,
        common_env: dict[str, str],
    ) -> None:
        super().__init__(scope, id)
        trace = lambda_.Tracing.ACTIVE if tracing else lambda_.Tracing.DISABLED
        self.log_group = log_groups.create(self, "WorkflowLogs")

        self.plan = lambda_.Function(
            self,
            "Plan",
            description="docmill generation plan: write the batch manifest",
            runtime=lambda_.Runtime.PYTHON_3_11,
            code=lambda_.Code.from_asset(str(paths.GENERATION_CODE)),
            handler=paths.PLAN_HANDLER,
            layers=[code.layer],
            memory_size=1024,
            timeout=Duration.minutes(5),
            tracing=trace,
            log_group=log_groups.create(self, "PlanLogs"),
            environment={**common_env, "POWERTOOLS_SERVICE_NAME": "generation_plan"},
        )
        self.generate_batch = lambda_.DockerImageFunction(
            self,
            "GenerateBatch",
            description="docmill generation: questions, retrieval, answers and judge for one batch",
            code=lambda_.DockerImageCode.from_ecr(
                code.image.repository, tag_or_digest=code.image.image_tag, cmd=[paths.GENERATE_BATCH_CMD]
            ),
            memory_size=config.batch_memory_mb,
            timeout=Duration.seconds(config.batch_timeout_seconds),
            vpc=network.vpc,
            vpc_subnets=network.private_subnets,
            security_groups=[network.workload_sg],
            tracing=trace,
            log_group=log_groups.create(self, "GenerateBatchLogs"),
            environment={**common_env, "POWERTOOLS_SERVICE_NAME": "generation_batch"},
        )
        self.assemble = lambda_.DockerImageFunction(
            self,
            "Assemble",
            description="docmill generation: dedup, split and write the datasets",
            code=lambda_.DockerImageCode.from_ecr(
                code.image.repository, tag_or_digest=code.image.image_tag, cmd=[paths.ASSEMBLE_CMD]
            ),
            memory_size=config.assemble_memory_mb,
            ephemeral_storage_size=None,
            timeout=Duration.seconds(config.assemble_timeout_seconds),
            tracing=trace,
            log_group=log_groups.create(self, "AssembleLogs"),
            environment={**common_env, "POWERTOOLS_SERVICE_NAME": "generation_assemble"},
        )
        self.task_functions = {
            "plan": self.plan,
            "generate_batch": self.generate_batch,
            "assemble": self.assemble,
        }

        # Run settings travel in the state input (``$.settings``), so the plan handler and the Map
        # read the stage config from the definition itself, on AWS and in the local emulator alike.
        # (ToleratedFailurePercentage goes through a Path: moto's ASL parser rejects an integer literal.)
        settings = sfn.Pass(
            self,
            "Settings",
            result=sfn.Result.from_object(
                {
                    "batch_size": config.batch_size,
                    "manifest_format": config.manifest_format,
                    "tolerated_failure_percentage": config.tolerated_failure_percentage,
                    "results_prefix": RESULTS_PREFIX,
                }
            ),
            result_path="$.settings",
        )
        plan = tasks.LambdaInvoke(
            self,
            "PlanBatches",
            lambda_function=self.plan,
            payload_response_only=True,
            retry_on_service_exceptions=False,
            result_path="$.plan",
            comment="writes the batch manifest under _work/ (datasets bucket); returns manifest_key, run_id",
        )
        plan.add_retry(
            errors=task_retry_errors(), interval=Duration.seconds(2), backoff_rate=2.0, max_attempts=3
        )

        batch = tasks.LambdaInvoke(
            self,
            "GenerateBatchTask",
            state_name="GenerateBatch",
            lambda_function=self.generate_batch,
            payload_response_only=True,
            retry_on_service_exceptions=False,
        )
        batch.add_retry(
            errors=batch_retry_errors(),
            interval=Duration.seconds(config.retry_interval_seconds),
            backoff_rate=config.retry_backoff_rate,
            max_attempts=config.retry_max_attempts,
            max_delay=Duration.seconds(config.retry_max_delay_seconds),
            jitter_strategy=sfn.JitterType.FULL,
        )
        record_failure = sfn.Pass(
            self,
            "RecordFailedBatch",
            comment="a failed batch becomes a result record; the run goes on and assemble reports it",
            parameters={
                "status": "failed",
                "batch.$": "$.batch",
                "error.$": "$.error.Error",
                "cause.$": "$.error.Cause",
            },
        )
        batch.add_catch(record_failure, errors=["States.ALL"], result_path="$.error")

        reader_cls = sfn.S3JsonItemReader if config.manifest_format == "json" else sfn.S3JsonLItemReader
        fan_out = sfn.DistributedMap(
            self,
            "GenerateBatches",
            item_reader=reader_cls(bucket=datasets, key=sfn.JsonPath.string_at("$.plan.manifest_key")),
            item_selector={
                "batch.$": "$$.Map.Item.Value",
                "index.$": "$$.Map.Item.Index",
                "run_id.$": "$.plan.run_id",
            },
            max_concurrency=config.max_concurrency,
            tolerated_failure_percentage_path="$.settings.tolerated_failure_percentage",
            result_writer_v2=sfn.ResultWriterV2(bucket=datasets, prefix=RESULTS_PREFIX),
            result_path="$.map",
            label="GenerateBatches",
        )
        fan_out.item_processor(batch)

        assemble = tasks.LambdaInvoke(
            self,
            "AssembleDatasets",
            lambda_function=self.assemble,
            payload_response_only=True,
            retry_on_service_exceptions=False,
            result_path="$.datasets",
            payload=sfn.TaskInput.from_object(
                {
                    "request.$": "$",
                    "plan.$": "$.plan",
                    "results.$": "$.map.ResultWriterDetails",
                }
            ),
        )
        assemble.add_retry(
            errors=task_retry_errors(), interval=Duration.seconds(5), backoff_rate=2.0, max_attempts=3
        )

        definition = settings.next(plan).next(fan_out).next(assemble).next(sfn.Succeed(self, "Done"))
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            definition_body=sfn.DefinitionBody.from_chainable(definition),
            timeout=Duration.hours(config.workflow_timeout_hours),
            tracing_enabled=tracing,
            logs=sfn.LogOptions(
                destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=False
            ),
        )
        # Lets infra.asl_export find this state machine and its task functions in any template.
        cfn = cast(CfnResource, self.state_machine.node.default_child)
        cfn.add_metadata(
            STATE_MACHINE_METADATA_KEY,
            {
                "name": "generation",
                "tasks": {role: _logical_id(fn) for role, fn in self.task_functions.items()},
                "buckets": {"datasets": _logical_id(datasets)},
            },
        )


def _logical_id(construct: IConstruct) -> str:
    return cast(CfnResource, construct.node.default_child).logical_id
