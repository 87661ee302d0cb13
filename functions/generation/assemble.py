"""Generation workflow, last step: curate every shard, split, write the datasets and the card."""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.typing import LambdaContext

from docmill.runtime import context as runtime_context
from docmill.runtime.environment import GenerationEnvironment
from docmill.runtime.observability import observability
from docmill.runtime.workflow import AssembleEvent, assemble_step

obs = observability("generation_assemble")
logger, tracer, metrics = obs.logger, obs.tracer, obs.metrics


@logger.inject_lambda_context(correlation_id_path="plan.run_id")
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    result = assemble_step(runtime_context.current(GenerationEnvironment, os.environ), parse(event=event, model=AssembleEvent))
    logger.info("assembled", extra={"run_id": result["run_id"], "records_kept": result["records_kept"],
                                    "failed_batches": len(result["failed_batches"])})
    metrics.add_metric(name="GenerationRecordsKept", unit="Count", value=result["records_kept"])
    metrics.add_metric(name="GenerationBatchesFailed", unit="Count", value=len(result["failed_batches"]))
    return result
