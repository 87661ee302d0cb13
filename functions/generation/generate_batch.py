"""Generation workflow, map item: questions, retrieval, answers and judge for one batch -> shard.

Raises ``LLMThrottled`` / ``LLMTimeout`` / ``TransientError`` (by those class names) for the
state machine's Retry; anything else fails the item and the Catch records it."""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.typing import LambdaContext

from docmill.runtime import context as runtime_context
from docmill.runtime.environment import GenerationEnvironment
from docmill.runtime.observability import observability
from docmill.runtime.workflow import BatchEvent, generate_batch_step

obs = observability("generation_batch")
logger, tracer, metrics = obs.logger, obs.tracer, obs.metrics


@logger.inject_lambda_context(correlation_id_path="run_id")
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    result = generate_batch_step(runtime_context.current(GenerationEnvironment, os.environ), parse(event=event, model=BatchEvent))
    logger.info("batch done", extra={k: result.get(k) for k in ("batch_id", "records", "complete", "reused")})
    metrics.add_metric(name="GenerationRecords", unit="Count", value=result.get("records", 0))
    return result
