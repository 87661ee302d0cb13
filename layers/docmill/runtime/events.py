"""S3 object events in the shapes AWS delivers them, parsed into one typed ``ObjectEvent``.

Accepted shapes (each may arrive as an SQS message body, i.e. a JSON string):
- S3 event notifications (``{"Records": [{"eventSource": "aws:s3", ...}]}``): object keys are
  URL-encoded form style ("red flower.jpg" arrives as "red+flower.jpg"), so they are decoded with
  ``unquote_plus``;
- the ``s3:TestEvent`` S3 sends when a notification is configured: ignored;
- S3 events through EventBridge (``{"source": "aws.s3", "detail-type": "Object Created", ...}``):
  the key is used as delivered; ``alternate_key`` holds its form-decoded spelling, tried when the
  object is not found under the first (EventBridge's encoding is not documented the same way);
- an SNS envelope around either (``{"Type": "Notification", "Message": "..."}``).

The shapes are read through Powertools' event data classes (``S3EventRecord``,
``S3EventBridgeNotificationEvent``, ``SNSMessage``); the SQS batch around them is Powertools'
``BatchProcessor`` in the route handler. Fields that are optional in what S3 actually sends are
read with ``get`` (the data classes' accessors raise on them or return ``""``).
"""

from __future__ import annotations

import json
from typing import Any, Literal
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.data_classes.s3_event import (
    S3EventBridgeNotificationEvent,
    S3EventRecord,
)
from aws_lambda_powertools.utilities.data_classes.sns_event import SNSMessage
from pydantic import BaseModel

from docmill.errors import DocmillError

EventKind = Literal["created", "removed", "test"]


class EventParseError(DocmillError):
    """A message that is not an S3 object event docmill understands (never retried)."""

    code = "EventParseError"


class ObjectEvent(BaseModel):
    kind: EventKind
    event_name: str
    bucket: str
    key: str
    version_id: str | None = None
    size: int | None = None
    etag: str | None = None
    sequencer: str | None = None
    event_time: str | None = None
    alternate_key: str | None = None
    via: Literal["s3", "eventbridge"] = "s3"

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def _kind(event_name: str) -> EventKind:
    name = event_name.lower().replace("s3:", "")
    if name.startswith("objectcreated") or name == "object created":
        return "created"
    if name.startswith("objectremoved") or name in ("object deleted", "lifecycleexpiration:delete"):
        return "removed"
    if name == "testevent":
        return "test"
    raise EventParseError(f"unsupported S3 event {event_name!r}")


def _version(value: Any) -> str | None:
    return str(value) if value not in (None, "", "null") else None


def _from_record(record: S3EventRecord) -> ObjectEvent:
    try:
        obj = record.s3.get_object
        return ObjectEvent(
            kind=_kind(record.event_name),
            event_name=record.event_name,
            bucket=record.s3.bucket.name,
            key=unquote_plus(obj.key),
            version_id=_version(obj.version_id),
            # optional in the shapes S3 sends (a delete carries no size): absent stays None
            size=obj.get("size"),
            etag=obj.get("eTag"),
            sequencer=obj.get("sequencer"),
            event_time=record.get("eventTime"),
        )
    except (KeyError, TypeError) as exc:
        raise EventParseError(f"malformed S3 event record: missing {exc}") from exc


def _from_eventbridge(event: S3EventBridgeNotificationEvent) -> ObjectEvent:
    try:
        detail = event.detail
        obj = detail.object
        # Powertools' ``key`` is form-decoded; EventBridge's spelling is kept as delivered and
        # the decoded one offered as the alternate (see the module docstring).
        key = obj["key"]
        decoded = unquote_plus(key)
        return ObjectEvent(
            kind=_kind(event.detail_type),
            event_name=f"{event.detail_type}:{detail.reason or ''}".rstrip(":"),
            bucket=detail.bucket.name,
            key=key,
            version_id=_version(obj.get("version-id")),
            size=obj.size,
            etag=obj.get("etag"),
            sequencer=obj.get("sequencer"),
            event_time=event.get("time"),
            alternate_key=decoded if decoded != key else None,
            via="eventbridge",
        )
    except (KeyError, TypeError) as exc:
        raise EventParseError(f"malformed EventBridge S3 event: missing {exc}") from exc


def parse_object_events(message: str | dict[str, Any]) -> list[ObjectEvent]:
    """Every object event in one message (an S3 notification may carry several records).

    A ``s3:TestEvent`` gives one event of kind ``test``; callers ignore it."""
    if isinstance(message, (str, bytes)):
        try:
            message = json.loads(message)
        except ValueError as exc:
            raise EventParseError(f"message body is not JSON: {exc}") from exc
    if not isinstance(message, dict):
        raise EventParseError("message body is not a JSON object")
    if message.get("Type") == "Notification" and "Message" in message:  # SNS fan-out
        return parse_object_events(SNSMessage(message).message)
    if message.get("Event") == "s3:TestEvent":
        return [
            ObjectEvent(kind="test", event_name="s3:TestEvent", bucket=str(message.get("Bucket", "")), key="")
        ]
    if message.get("source") == "aws.s3" and "detail" in message:
        return [_from_eventbridge(S3EventBridgeNotificationEvent(message))]
    records = message.get("Records")
    if isinstance(records, list):
        return [
            _from_record(S3EventRecord(r))
            for r in records
            if isinstance(r, dict) and r.get("eventSource", "aws:s3").endswith("s3")
        ]
    raise EventParseError("not an S3 object event (no Records, no EventBridge detail)")
