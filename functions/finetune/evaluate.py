"""Fine-tune workflow, last step: record the trained job's test-split evaluation (base vs tuned)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.typing import LambdaContext

from docmill import aws
from docmill.config import load_settings
from docmill.finetune.jobs import JobStore
from docmill.finetune.sagemaker import EvaluateEvent, record_evaluation
from docmill.runtime.observability import observability
from docmill.storage import S3Store

obs = observability("finetune_evaluate")
logger, tracer, metrics = obs.logger, obs.tracer, obs.metrics


@logger.inject_lambda_context(correlation_id_path="job_id")
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = load_settings()
    jobs = JobStore(S3Store(settings.aws.models_bucket or "", "jobs"))
    result = record_evaluation(jobs, aws.client("s3"), parse(event=event, model=EvaluateEvent))
    metrics.add_metric(name="FineTunesImproved" if result["improved"] else "FineTunesNotImproved", unit="Count", value=1)
    return result
