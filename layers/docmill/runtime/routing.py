"""The ``route`` step: decide what an S3 object event means and hand it to the right worker.

- test events, folder markers, hidden and sync-bookkeeping keys: ignored;
- a created object of an unsupported type: rejected, the reason recorded as a failure record;
- a created object below the large-file thresholds: the container Lambda, invoked
  asynchronously with one ``ProcessRequest`` (Lambda retries it twice, then its on-failure
  destination, the events DLQ, keeps the event and the error);
- a large one (``large_file_bytes`` or an estimated ``large_file_pages``, estimated as size /
  ``bytes_per_page_estimate`` for paged types): an ECS Fargate task (``ecs.run_task`` with the
  object in container environment overrides), or the large-file state machine when configured;
- a removed object: its chunks leave the index and its outputs the processed bucket, here.

Without a configured process function (local use) small objects are processed in this process.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any, Literal

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel

from docmill import aws
from docmill.errors import ConfigurationError, TransientError
from docmill.runtime.context import Runtime
from docmill.runtime.events import EventParseError, ObjectEvent, parse_object_events
from docmill.runtime.keys import ignore_reason, is_paged, placement_for_key, unsupported_reason
from docmill.runtime.process import ObjectProcessor, ProcessOutcome, ProcessRequest

logger = logging.getLogger(__name__)

#: Failures that a retry cannot fix: recorded, then the message is consumed.
NON_RETRYABLE: tuple[type[Exception], ...] = (EventParseError,)

Action = Literal["ignore", "reject", "lambda", "ecs", "workflow", "inline", "delete"]


class RouteDecision(BaseModel):
    action: Action
    reason: str
    bucket: str = ""
    key: str = ""
    version_id: str | None = None
    tenant: str | None = None
    collection: str | None = None
    size: int | None = None
    estimated_pages: int | None = None
    dispatched: str | None = None  # request id, task arn or execution arn of the hand-off
    outcome: ProcessOutcome | None = None


def decide(event: ObjectEvent, runtime: Runtime) -> RouteDecision:
    """Pure decision for one event (no I/O)."""
    settings = runtime.settings
    cfg = settings.aws
    if event.kind == "test":
        return RouteDecision(action="ignore", reason="s3:TestEvent", bucket=event.bucket)
    placement = placement_for_key(event.key, default_tenant=settings.tenant, default_collection=cfg.default_collection)
    base: dict[str, Any] = {
        "bucket": event.bucket,
        "key": event.key,
        "version_id": event.version_id,
        "tenant": placement.tenant,
        "collection": placement.collection,
        "size": event.size,
    }
    if cfg.raw_bucket and event.bucket != cfg.raw_bucket:
        # Only the raw bucket is ingested: an event naming the processed bucket (or any other)
        # would index docmill's own outputs, or another system's objects.
        return RouteDecision(
            action="reject", reason=f"foreign bucket: events are accepted only for {cfg.raw_bucket}", **base
        )
    ignored = ignore_reason(event.key)
    if ignored:
        return RouteDecision(action="ignore", reason=ignored, **base)
    if event.kind == "removed":
        return RouteDecision(action="delete", reason=event.event_name, **base)
    unsupported = unsupported_reason(event.key)
    if unsupported:
        return RouteDecision(action="reject", reason=unsupported, **base)
    size = event.size or 0
    pages = size // cfg.bytes_per_page_estimate if is_paged(event.key) else None
    if size >= cfg.large_file_bytes or (pages is not None and pages >= cfg.large_file_pages):
        why = f"large: {size} bytes" + (f", ~{pages} pages" if pages is not None else "")
        if cfg.ingest_state_machine_arn:
            return RouteDecision(action="workflow", reason=why, estimated_pages=pages, **base)
        if cfg.ecs_cluster and cfg.ecs_task_definition:
            return RouteDecision(action="ecs", reason=why, estimated_pages=pages, **base)
    if cfg.process_function:
        return RouteDecision(action="lambda", reason=f"{size} bytes", estimated_pages=pages, **base)
    if cfg.process_inline:
        return RouteDecision(action="inline", reason="processing in the router (process_inline)", estimated_pages=pages, **base)
    raise ConfigurationError(
        "no processing target: set DOCMILL_AWS__PROCESS_FUNCTION (or DOCMILL_AWS__PROCESS_INLINE=true)"
    )


def _request(event: ObjectEvent, decision: RouteDecision) -> ProcessRequest:
    return ProcessRequest(
        bucket=event.bucket,
        key=event.key,
        version_id=event.version_id,
        size=event.size,
        alternate_key=event.alternate_key,
        tenant=decision.tenant,
        collection=decision.collection,
        event_name=event.event_name,
    )


class Router:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.processor = ObjectProcessor(runtime)

    def route_message(self, message: str | dict) -> list[RouteDecision]:
        """Every event of one queue message (or one EventBridge event), routed in order."""
        return [self.route(event) for event in parse_object_events(message)]

    def route_queue_message(self, message_id: str, body: str, *, receive_count: int | None = None) -> list[RouteDecision]:
        """``route_message`` for one SQS record; a failure is recorded with its reason under
        ``_events/failures/<message_id>.json`` (processed bucket) and raised, so the record is
        retried and, after ``maxReceiveCount`` receives, SQS moves it to the dead-letter queue
        whose messages can be matched to their reasons by message id."""
        try:
            return self.route_message(body)
        except Exception as exc:
            retryable = not isinstance(exc, NON_RETRYABLE)
            try:
                self.runtime.processed_store().write_json(
                    f"_events/failures/{message_id}.json",
                    {
                        "message_id": message_id,
                        "error_code": getattr(exc, "code", type(exc).__name__),
                        "reason": str(exc)[:2000],
                        "retryable": retryable,
                        "receive_count": receive_count,
                        "body": body[:10_000],
                    },
                )
            except Exception:  # the original failure is what must surface; this one is only logged
                logger.warning("could not record the failure of message %s", message_id, exc_info=True)
                raise exc from None  # unrecorded: let SQS keep the message
            if retryable:
                raise
            # Recorded as not retryable: the same message would fail the same way on every
            # receive, so it is consumed here instead of travelling to the dead-letter queue.
            logger.warning("message %s refused for good: %s", message_id, exc)
            return []

    def route(self, event: ObjectEvent) -> RouteDecision:
        decision = decide(event, self.runtime)
        cfg = self.runtime.settings.aws
        try:
            if decision.action == "reject":
                req = _request(event, decision)
                foreign = decision.reason.startswith("foreign bucket")
                self.processor.record_failure(
                    req=req, tenant=decision.tenant or "", collection=decision.collection or "",
                    source=event.uri, reason=decision.reason,
                    code="ForeignBucket" if foreign else "UnsupportedFileType", retryable=False,
                )
                self.processor.api_status(decision.tenant or "", event.key, "failed", reason=decision.reason)
            elif decision.action == "delete":
                decision.outcome = self.processor.remove(_request(event, decision))
            elif decision.action == "inline":
                decision.outcome = self.processor.process(_request(event, decision))
            elif decision.action == "lambda":
                resp = aws.client("lambda").invoke(
                    FunctionName=cfg.process_function,
                    InvocationType="Event",
                    Payload=_request(event, decision).model_dump_json().encode(),
                )
                decision.dispatched = resp.get("ResponseMetadata", {}).get("RequestId")
            elif decision.action == "ecs":
                decision.dispatched = self._run_task(event, decision)
            elif decision.action == "workflow":
                decision.dispatched = self._start_workflow(event, decision)
        except (ClientError, BotoCoreError) as exc:
            raise TransientError(f"{decision.action} hand-off failed for {event.uri}: {exc}") from exc
        return decision

    def _run_task(self, event: ObjectEvent, decision: RouteDecision) -> str:
        cfg = self.runtime.settings.aws
        env = [
            {"name": "DOCMILL_OBJECT_BUCKET", "value": event.bucket},
            {"name": "DOCMILL_OBJECT_KEY", "value": event.key},
            {"name": "DOCMILL_OBJECT_VERSION_ID", "value": event.version_id or ""},
        ]
        kwargs: dict = {
            "cluster": cfg.ecs_cluster,
            "taskDefinition": cfg.ecs_task_definition,
            "launchType": "FARGATE",
            "count": 1,
            "startedBy": "docmill-route",
            "overrides": {"containerOverrides": [{"name": cfg.ecs_container, "environment": env}]},
        }
        if cfg.subnet_ids:
            kwargs["networkConfiguration"] = {
                "awsvpcConfiguration": {
                    "subnets": cfg.subnet_ids,
                    "securityGroups": cfg.security_group_ids,
                    "assignPublicIp": "DISABLED",
                }
            }
        resp = aws.client("ecs").run_task(**kwargs)
        if resp.get("failures") or not resp.get("tasks"):
            raise TransientError(f"ECS could not start a task for {event.uri}: {resp.get('failures')}")
        return resp["tasks"][0]["taskArn"]

    def _start_workflow(self, event: ObjectEvent, decision: RouteDecision) -> str:
        cfg = self.runtime.settings.aws
        payload = {
            "bucket": event.bucket,
            "key": event.key,
            "version_id": event.version_id or "",
            "size": event.size or 0,
        }
        if decision.estimated_pages is not None:
            payload["estimated_pages"] = decision.estimated_pages
        # The same object version always gets the same execution name: a re-delivered event
        # cannot start a second run (StartExecution is idempotent for name + input).
        name = hashlib.sha256(f"{event.uri}@{event.version_id or event.etag or ''}".encode()).hexdigest()[:64]
        sfn = aws.client("stepfunctions")
        try:
            resp = sfn.start_execution(stateMachineArn=cfg.ingest_state_machine_arn, name=name, input=json.dumps(payload))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ExecutionAlreadyExists":
                return f"{cfg.ingest_state_machine_arn}:{name} (already started)"
            raise
        return resp["executionArn"]
