"""route: S3 object events (from SQS, or from EventBridge directly) -> process / ECS task / delete.

SQS batches report partial failures (``batchItemFailures``): only the records that raised are
retried, and after ``maxReceiveCount`` receives SQS moves them to the dead-letter queue.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from docmill.runtime import context as runtime_context
from docmill.runtime.environment import RouteEnvironment
from docmill.runtime.observability import FILES_FAILED_METRIC, observability
from docmill.runtime.routing import RouteDecision, Router

obs = observability("route")
logger, tracer, metrics = obs.logger, obs.tracer, obs.metrics
processor = BatchProcessor(event_type=EventType.SQS)


def _report(decisions: list[RouteDecision]) -> list[dict[str, Any]]:
    for d in decisions:
        logger.info(
            "routed",
            extra={"action": d.action, "reason": d.reason, "bucket": d.bucket, "key": d.key,
                   "version_id": d.version_id, "collection": d.collection, "dispatched": d.dispatched},
        )
        metrics.add_metric(name=f"Routed_{d.action}", unit=MetricUnit.Count, value=1)
        if d.action == "reject" or (d.outcome is not None and d.outcome.status == "failed"):
            metrics.add_metric(name=FILES_FAILED_METRIC, unit=MetricUnit.Count, value=1)
    return [d.model_dump(mode="json", exclude_none=True) for d in decisions]


@tracer.capture_method
def record_handler(record: SQSRecord) -> list[dict[str, Any]]:
    logger.set_correlation_id(record.message_id)
    try:
        router = Router(runtime_context.current(RouteEnvironment, os.environ))
        receives = int(record.attributes.approximate_receive_count or 0) or None
        return _report(router.route_queue_message(record.message_id, record.body, receive_count=receives))
    except Exception as exc:
        # The record goes back to the queue (and, after maxReceiveCount, to the DLQ): log why.
        logger.exception("record failed", extra={"message_id": record.message_id, "error": type(exc).__name__})
        raise


@logger.inject_lambda_context(correlation_id_path=correlation_paths.EVENT_BRIDGE)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> Mapping[str, Any]:
    if "Records" in event:
        return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
    # An S3 event delivered by EventBridge (rule target = this function): one event per call.
    return {"decisions": _report(Router(runtime_context.current(RouteEnvironment, os.environ)).route_message(event))}
