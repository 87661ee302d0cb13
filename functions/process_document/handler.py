"""process_document (container Lambda): partition, chunk, embed and index one object version.

Invoked asynchronously by route with a ``ProcessRequest``. A permanently bad document is
recorded and returns normally; a retryable failure raises ``TransientError`` so Lambda retries
and then hands the event and the error to the on-failure destination (the events DLQ).
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.typing import LambdaContext

from docmill.runtime import context as runtime_context
from docmill.runtime.environment import ProcessEnvironment
from docmill.runtime.observability import FILES_FAILED_METRIC, observability
from docmill.runtime.process import ProcessRequest, process_object

obs = observability("process_document")
logger, tracer, metrics = obs.logger, obs.tracer, obs.metrics


@logger.inject_lambda_context(correlation_id_path="key")
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse(event=event, model=ProcessRequest)
    outcome = process_object(runtime_context.current(ProcessEnvironment, os.environ), request)
    logger.info("processed", extra=outcome.model_dump(mode="json", exclude={"result"}))
    metrics.add_metric(name=f"Files_{outcome.status}", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="Chunks", unit=MetricUnit.Count, value=outcome.chunks)
    if outcome.status == "failed":
        metrics.add_metric(name=FILES_FAILED_METRIC, unit=MetricUnit.Count, value=1)
    return outcome.model_dump(mode="json")
