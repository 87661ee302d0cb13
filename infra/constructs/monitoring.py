"""Monitoring: one CloudWatch dashboard and the alarms an operator acts on, published to SNS.

Alarms: events DLQ not empty, failed files (EMF metric the handlers emit), generation and
large-file workflow failures, LLM endpoint 5xx errors and p90 model latency.
"""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subs
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra import paths
from infra.config import MonitoringConfig


class Monitoring(Construct):
    """Attributes: ``topic`` (alarm notifications), ``dashboard``, ``alarms`` (name -> Alarm)."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: MonitoringConfig,
        queue: sqs.IQueue,
        dlq: sqs.IQueue,
        route: lambda_.IFunction,
        process: lambda_.IFunction,
        generation: sfn.IStateMachine,
        large_files: sfn.IStateMachine | None,
        endpoint_name: str,
        variant_name: str,
    ) -> None:
        super().__init__(scope, id)
        key = kms.Key(self, "TopicKey", enable_key_rotation=True, description="docmill alarm topic")
        # CloudWatch alarms publish to an encrypted topic only if the key lets them.
        key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
            )
        )
        self.topic = sns.Topic(
            self, "Alarms", master_key=key, enforce_ssl=True, display_name="docmill alarms"
        )
        if config.alarm_email:
            self.topic.add_subscription(subs.EmailSubscription(config.alarm_email))
        action = cw_actions.SnsAction(self.topic)
        five_min = Duration.minutes(5)

        # Files fail in two places: refused by route (unsupported type) or by processing.
        failed_by = {
            service: cw.Metric(
                namespace=paths.METRICS_NAMESPACE,
                metric_name=paths.FILES_FAILED_METRIC,
                dimensions_map={"service": service},
                statistic="Sum",
                period=five_min,
            )
            for service in ("process_document", "route")
        }
        files_failed = cw.MathExpression(
            expression="FILL(process, 0) + FILL(route, 0)",
            using_metrics={"process": failed_by["process_document"], "route": failed_by["route"]},
            label="files failed",
            period=five_min,
        )
        endpoint_dims = {"EndpointName": endpoint_name, "VariantName": variant_name}
        endpoint_5xx = cw.Metric(
            namespace="AWS/SageMaker",
            metric_name="Invocation5XXErrors",
            dimensions_map=endpoint_dims,
            statistic="Sum",
            period=five_min,
        )
        endpoint_invocations = cw.Metric(
            namespace="AWS/SageMaker",
            metric_name="Invocations",
            dimensions_map=endpoint_dims,
            statistic="Sum",
            period=five_min,
        )
        # ModelLatency is reported in microseconds.
        model_latency = cw.Metric(
            namespace="AWS/SageMaker",
            metric_name="ModelLatency",
            dimensions_map=endpoint_dims,
            statistic="p90",
            period=five_min,
        )

        def alarm(name: str, metric: cw.IMetric, threshold: float, description: str) -> cw.Alarm:
            a = cw.Alarm(
                self,
                name,
                metric=metric,
                threshold=threshold,
                evaluation_periods=1,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
                alarm_description=description,
            )
            a.add_alarm_action(action)
            return a

        self.alarms = {
            "DlqDepth": alarm(
                "DlqDepth",
                dlq.metric_approximate_number_of_messages_visible(period=five_min, statistic="Maximum"),
                config.dlq_depth_threshold,
                "object events or process invocations that kept failing are in the DLQ",
            ),
            "FilesFailed": alarm(
                "FilesFailed",
                files_failed,
                config.failed_files_threshold,
                "documents that could not be processed (see the per-file reasons)",
            ),
            "GenerationFailed": alarm(
                "GenerationFailed",
                generation.metric_failed(period=five_min),
                config.workflow_failures_threshold,
                "generation executions failed",
            ),
            "GenerationTimedOut": alarm(
                "GenerationTimedOut",
                generation.metric_timed_out(period=five_min),
                1,
                "generation executions timed out",
            ),
            "Endpoint5xx": alarm(
                "Endpoint5xx",
                endpoint_5xx,
                config.endpoint_5xx_threshold,
                "the LLM endpoint returns server errors",
            ),
            "EndpointLatency": alarm(
                "EndpointLatency",
                model_latency,
                config.endpoint_latency_p90_ms * 1000,
                "LLM endpoint p90 model latency above the threshold",
            ),
        }
        if large_files is not None:
            self.alarms["LargeFileFailed"] = alarm(
                "LargeFileFailed",
                large_files.metric_failed(period=five_min),
                config.workflow_failures_threshold,
                "large-file ingestion executions failed",
            )

        self.dashboard = cw.Dashboard(
            self, "Dashboard", dashboard_name=f"{Stack.of(self).stack_name}-pipeline"
        )
        self.dashboard.add_widgets(
            cw.GraphWidget(
                title="Object events",
                left=[
                    queue.metric_approximate_number_of_messages_visible(period=five_min),
                    queue.metric_approximate_age_of_oldest_message(period=five_min),
                ],
                right=[dlq.metric_approximate_number_of_messages_visible(period=five_min)],
            ),
            cw.GraphWidget(
                title="Route / process",
                left=[
                    route.metric_invocations(period=five_min),
                    process.metric_invocations(period=five_min),
                ],
                right=[
                    route.metric_errors(period=five_min),
                    process.metric_errors(period=five_min),
                    files_failed,
                ],
            ),
            cw.GraphWidget(
                title="Process duration", left=[process.metric_duration(period=five_min, statistic="p90")]
            ),
        )
        self.dashboard.add_widgets(
            cw.GraphWidget(
                title="Generation workflow",
                left=[
                    generation.metric_started(period=five_min),
                    generation.metric_succeeded(period=five_min),
                    generation.metric_failed(period=five_min),
                ],
            ),
            cw.GraphWidget(
                title="LLM endpoint", left=[endpoint_invocations, endpoint_5xx], right=[model_latency]
            ),
            cw.AlarmStatusWidget(title="Alarms", alarms=list(self.alarms.values())),
        )
