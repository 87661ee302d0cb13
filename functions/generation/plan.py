"""Generation workflow, step 1: sample the collection's chunks into batches; write the plan and
the Distributed Map's manifest under the datasets bucket's work prefix."""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.typing import LambdaContext

from docmill.runtime import context as runtime_context
from docmill.runtime.environment import GenerationEnvironment
from docmill.runtime.observability import observability
from docmill.runtime.workflow import PlanEvent, plan_step

obs = observability("generation_plan")
logger, tracer, metrics = obs.logger, obs.tracer, obs.metrics


@logger.inject_lambda_context(correlation_id_path="run_id")
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    result = plan_step(runtime_context.current(GenerationEnvironment, os.environ), parse(event=event, model=PlanEvent))
    logger.info("planned", extra={"run_id": result["run_id"], "batches": result["batches"]})
    metrics.add_metric(name="GenerationBatchesPlanned", unit="Count", value=result["batches"])
    return result
