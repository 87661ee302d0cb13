"""Powertools logger, tracer and metrics for the handlers, configured the same way everywhere.

Service names come from ``POWERTOOLS_SERVICE_NAME`` (set per function by infra/) with the
handler's own name as the fallback; the metrics namespace is ``docmill`` (the monitoring
construct alarms on ``FilesFailed`` there). Outside Lambda the tracer disables itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_lambda_powertools import Logger, Metrics, Tracer

METRICS_NAMESPACE = "docmill"
FILES_FAILED_METRIC = "FilesFailed"


@dataclass
class Observability:
    logger: Logger
    tracer: Tracer
    metrics: Metrics


def observability(service: str) -> Observability:
    return Observability(
        logger=Logger(service=service),
        tracer=Tracer(service=service),
        metrics=Metrics(namespace=METRICS_NAMESPACE, service=service),
    )
