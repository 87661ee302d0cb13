"""Parsing S3 object events (tests/events/*.json) and the route decision, without any I/O."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from docmill.errors import ConfigurationError
from docmill.config import AwsSettings, Settings
from docmill.runtime.context import Runtime
from docmill.runtime.events import EventParseError, parse_object_events
from docmill.runtime.keys import placement_for_key
from docmill.runtime.routing import decide

EVENTS = Path(__file__).resolve().parents[1] / "events"
UNICODE_KEY = "acme/handbook/Q3 report été (1).md"


def load(name: str) -> dict:
    return json.loads((EVENTS / name).read_text())


def runtime(**aws: object) -> Runtime:
    return Runtime(settings=Settings(home=Path("/nonexistent"), aws=AwsSettings(**aws)))


def test_s3_notification_key_is_url_decoded_with_spaces_unicode_and_parentheses() -> None:
    (event,) = parse_object_events(load("s3_notification_created.json"))

    assert event.kind == "created"
    assert event.key == UNICODE_KEY
    assert (event.bucket, event.version_id, event.size) == ("docmill-test-raw", "3HL4kqtJlcpXroDTDmjVBH40Nrjfkd", 1024)


def test_sqs_record_bodies_parse_to_the_object_event_and_the_test_event() -> None:
    records = load("sqs_s3_object_created.json")["Records"]

    created = parse_object_events(records[0]["body"])
    test_event = parse_object_events(records[1]["body"])

    assert [e.key for e in created] == [UNICODE_KEY]
    assert [e.kind for e in test_event] == ["test"]


def test_eventbridge_event_keeps_its_key_and_offers_no_alternate_when_nothing_is_encoded() -> None:
    (event,) = parse_object_events(load("eventbridge_s3_object_created.json"))

    assert (event.kind, event.via, event.key) == ("created", "eventbridge", UNICODE_KEY)
    assert event.alternate_key is None
    assert event.version_id == "3HL4kqtJlcpXroDTDmjVBH40Nrjfkd"


def test_eventbridge_key_that_looks_encoded_gets_a_decoded_alternate() -> None:
    raw = load("eventbridge_s3_object_created.json")
    raw["detail"]["object"]["key"] = "acme/handbook/Q3+report.md"

    (event,) = parse_object_events(raw)

    assert event.key == "acme/handbook/Q3+report.md"
    assert event.alternate_key == "acme/handbook/Q3 report.md"


def test_removed_event_is_a_delete_decision_for_the_decoded_key() -> None:
    (event,) = parse_object_events(load("s3_notification_removed.json"))

    decision = decide(event, runtime(process_function="docmill-process"))

    assert (event.kind, decision.action, decision.key) == ("removed", "delete", UNICODE_KEY)
    assert (decision.tenant, decision.collection) == ("acme", "handbook")


def test_test_event_folder_marker_and_sync_state_are_ignored() -> None:
    rt = runtime(process_function="docmill-process")
    events = parse_object_events(load("s3_test_event.json")) + parse_object_events(
        load("s3_notification_folder_and_sync_state.json")
    )

    decisions = [decide(e, rt) for e in events]

    assert [d.action for d in decisions] == ["ignore", "ignore", "ignore"]
    assert [d.reason for d in decisions] == ["s3:TestEvent", "folder marker", "sync bookkeeping object"]


@pytest.mark.parametrize(
    ("size", "key", "expected"),
    [
        (10_000, "acme/handbook/a.pdf", "lambda"),
        (60 * 1024 * 1024, "acme/handbook/a.pdf", "ecs"),  # over large_file_bytes
        (400 * 60_000, "acme/handbook/a.pdf", "ecs"),  # ~400 estimated pages
        (400 * 60_000, "acme/handbook/a.txt", "lambda"),  # not a paged type: bytes only
        (10_000, "acme/handbook/a.zip", "reject"),
        (10_000, "acme/handbook/no-extension", "reject"),
    ],
)
def test_size_and_type_pick_the_worker(size: int, key: str, expected: str) -> None:
    rt = runtime(process_function="docmill-process", ecs_cluster="c", ecs_task_definition="td")
    raw = load("s3_notification_created.json")
    raw["Records"][0]["s3"]["object"].update(key=key, size=size)
    (event,) = parse_object_events(raw)

    assert decide(event, rt).action == expected


def test_large_object_prefers_the_large_file_workflow_when_configured() -> None:
    rt = runtime(process_function="p", ecs_cluster="c", ecs_task_definition="td", ingest_state_machine_arn="arn:sm")
    raw = load("s3_notification_created.json")
    raw["Records"][0]["s3"]["object"].update(key="acme/h/big.pdf", size=80 * 1024 * 1024)
    (event,) = parse_object_events(raw)

    assert decide(event, rt).action == "workflow"


def test_given_inline_processing_asked_for_when_routing_then_small_objects_are_processed_inline() -> None:
    (event,) = parse_object_events(load("s3_notification_created.json"))

    assert decide(event, runtime(process_inline=True)).action == "inline"


def test_given_no_processing_target_when_routing_then_it_is_an_error_not_a_fallback() -> None:
    (event,) = parse_object_events(load("s3_notification_created.json"))

    with pytest.raises(ConfigurationError, match="DOCMILL_AWS__PROCESS_FUNCTION"):
        decide(event, runtime())


@pytest.mark.parametrize(
    ("key", "tenant", "collection"),
    [
        ("acme/handbook/sub/dir/file.pdf", "acme", "handbook"),
        ("acme/file.pdf", "acme", "acme"),
        ("file.pdf", "default", "docs"),
        ("bad tenant!/x/file.pdf", "default", "docs"),
    ],
)
def test_key_convention_gives_tenant_and_collection(key: str, tenant: str, collection: str) -> None:
    p = placement_for_key(key, default_tenant="default", default_collection="docs")

    assert (p.tenant, p.collection) == (tenant, collection)


@pytest.mark.parametrize("body", ["not json", "[]", '{"hello": 1}', '{"Records": [{"eventSource": "aws:s3"}]}'])
def test_messages_that_are_not_s3_events_raise_a_parse_error(body: str) -> None:
    with pytest.raises(EventParseError):
        parse_object_events(body)


def test_s3_notification_inside_an_sns_envelope_is_unwrapped() -> None:
    inner = (EVENTS / "s3_notification_created.json").read_text()
    envelope = {"Type": "Notification", "MessageId": "m-1", "TopicArn": "arn:aws:sns:us-east-1:1:t", "Message": inner}

    (event,) = parse_object_events(json.dumps(envelope))

    assert event.key == UNICODE_KEY
