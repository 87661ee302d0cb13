"""S3 object events through the real route and process_document handlers, against moto.

The process function is bound in-process (docmill_devtools.local_lambda), exactly as in
``docmill dev``; chunks go to the embedded LanceDB store in a temp folder, embedded by a tiny
deterministic hashing embedder (the model is not what these tests are about).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from docmill.errors import VectorStoreError
from docmill.runtime.process import failure_key
from tests.support.runtime_env import EVENTS, RuntimeEnv, notification, runtime_env

CORPUS_BAD = Path("/work/shared/corpus/bad")
DOC_V1 = b"# Pumps\n\nThe pump unit is inspected every week by the valve team.\n\nFaults go to the supervisor.\n"
DOC_V2 = b"# Turbines\n\nThe turbine hall is cleaned on Mondays.\n\nThe boiler log is kept in the harbor office.\n"


@pytest.fixture(autouse=True)
def _aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)


@pytest.fixture
def env(tmp_path: Path) -> Iterator[RuntimeEnv]:
    with runtime_env(tmp_path / "home") as e:
        yield e


def uri(env: RuntimeEnv, key: str) -> str:
    return f"s3://{env.names.raw}/{key}"


def test_uploaded_document_is_routed_processed_indexed_and_written(env: RuntimeEnv) -> None:
    key = "acme/handbook/pumps.md"
    version = env.put(key, DOC_V1)

    env.poller.drain()

    chunks = env.chunks("handbook", uri(env, key))
    assert chunks and all(c["source_version"] == version and c["tenant"] == "acme" for c in chunks)
    assert ("docmill-process", "Event") in env.functions.invocations  # async hand-off, as on AWS
    written = env.processed_keys("tenants/acme/collections/handbook/sources/")
    assert any(k.endswith("/chunks.jsonl") for k in written) and any(k.endswith("/source.json") for k in written)
    assert env.dlq_messages() == []


def test_key_with_spaces_and_unicode_is_decoded_and_processed(env: RuntimeEnv) -> None:
    key = "acme/handbook/Q3 report été (1).md"
    env.put(key, DOC_V1)

    env.poller.drain()

    assert env.chunks("handbook", uri(env, key))


def test_the_same_event_delivered_twice_adds_no_duplicates(env: RuntimeEnv) -> None:
    key = "acme/handbook/pumps.md"
    version = env.put(key, DOC_V1)
    env.poller.drain()
    first = sorted(c["chunk_id"] for c in env.chunks("handbook"))

    env.send_event(notification(env.names.raw, key, version_id=version, size=len(DOC_V1)))
    env.poller.drain()

    assert sorted(c["chunk_id"] for c in env.chunks("handbook")) == first


def test_overwrite_replaces_the_old_chunks(env: RuntimeEnv) -> None:
    key = "acme/handbook/pumps.md"
    env.put(key, DOC_V1)
    env.poller.drain()

    v2 = env.put(key, DOC_V2)
    env.poller.drain()

    chunks = env.chunks("handbook", uri(env, key))
    assert chunks and {c["source_version"] for c in chunks} == {v2}
    assert all("pump" not in c["text"].lower() for c in chunks)


def test_deleting_an_old_version_keeps_the_current_chunks(env: RuntimeEnv) -> None:
    key = "acme/handbook/pumps.md"
    v1 = env.put(key, DOC_V1)
    v2 = env.put(key, DOC_V2)
    env.poller.drain()

    env.s3.delete_object(Bucket=env.names.raw, Key=key, VersionId=v1)
    env.send_event(notification(env.names.raw, key, version_id=v1, size=None, name="ObjectRemoved:Delete"))
    env.poller.drain()

    assert {c["source_version"] for c in env.chunks("handbook", uri(env, key))} == {v2}


def test_late_event_for_an_old_version_does_not_bring_old_chunks_back(env: RuntimeEnv) -> None:
    key = "acme/handbook/pumps.md"
    v1 = env.put(key, DOC_V1)
    v2 = env.put(key, DOC_V2)
    env.poller.drain()

    env.send_event(notification(env.names.raw, key, version_id=v1, size=len(DOC_V1)))
    env.poller.drain()

    assert {c["source_version"] for c in env.chunks("handbook", uri(env, key))} == {v2}


@pytest.mark.parametrize("how", ["delete marker", "last version deleted"])
def test_delete_removes_chunks_from_the_index_and_outputs_from_the_processed_bucket(env: RuntimeEnv, how: str) -> None:
    key = "acme/handbook/pumps.md"
    version = env.put(key, DOC_V1)
    env.poller.drain()
    assert env.chunks("handbook", uri(env, key))

    if how == "delete marker":  # ObjectRemoved:DeleteMarkerCreated
        env.s3.delete_object(Bucket=env.names.raw, Key=key)
    else:  # ObjectRemoved:Delete
        env.s3.delete_object(Bucket=env.names.raw, Key=key, VersionId=version)
    env.poller.drain()

    assert env.chunks("handbook", uri(env, key)) == []
    assert env.processed_keys("tenants/acme/collections/handbook/sources/") == []


def test_corrupt_file_is_recorded_and_the_rest_of_the_batch_is_processed(env: RuntimeEnv) -> None:
    bad_key = "acme/handbook/fake-incomplete-json.txt"
    env.put(bad_key, (CORPUS_BAD / "fake-incomplete-json.txt").read_bytes())
    env.put("acme/handbook/pumps.md", DOC_V1)

    env.poller.drain()

    record = json.loads(
        env.s3.get_object(Bucket=env.names.processed, Key=failure_key("handbook", uri(env, bad_key), "acme"))["Body"].read()
    )
    assert record["status"] == "failed" and record["retryable"] is False
    assert record["reason"].startswith("corrupt") and record["error_code"] == "CorruptDocument"
    assert env.chunks("handbook", uri(env, "acme/handbook/pumps.md"))
    # A permanently bad document is recorded once, not retried into the DLQ.
    assert [n for n, _ in env.functions.invocations].count("docmill-process") == 2
    assert env.dlq_messages() == []


def test_unsupported_type_is_rejected_by_route_with_a_recorded_reason(env: RuntimeEnv) -> None:
    key = "acme/handbook/simple.zip"
    env.put(key, (CORPUS_BAD / "simple.zip").read_bytes())

    env.poller.drain()

    record = json.loads(
        env.s3.get_object(Bucket=env.names.processed, Key=failure_key("handbook", uri(env, key), "acme"))["Body"].read()
    )
    assert record["error_code"] == "UnsupportedFileType" and "archives" in record["reason"]
    assert env.functions.invocations == []  # never handed to a worker


def test_folder_markers_sync_state_and_test_events_are_ignored(env: RuntimeEnv) -> None:
    env.put("acme/handbook/", b"")
    env.put("acme/handbook/.docmill-sync/state.json", b"{}")
    env.send_event(json.loads((EVENTS / "s3_test_event.json").read_text()))

    env.poller.drain()

    assert env.functions.invocations == []
    assert env.processed_keys() == []


def test_poison_message_is_recorded_once_and_not_retried(env: RuntimeEnv) -> None:
    msg = env.sqs.send_message(QueueUrl=env.provisioned.queue_url, MessageBody="this is not an S3 event")

    for _ in range(4):  # maxReceiveCount is 2: a retried message would reach the DLQ
        env.poller.drain()

    # A failure no retry can fix is recorded with its reason and consumed, not retried
    assert env.dlq_messages() == []
    why = json.loads(
        env.s3.get_object(Bucket=env.names.processed, Key=f"_events/failures/{msg['MessageId']}.json")["Body"].read()
    )
    assert why["error_code"] == "EventParseError" and "not JSON" in why["reason"] and why["retryable"] is False
    assert why["receive_count"] == 1


def test_retryable_processing_failure_is_retried_then_sent_to_the_dlq_with_its_reason(
    env: RuntimeEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    def index_down(*args: object, **kwargs: object) -> None:
        raise VectorStoreError("index unavailable (503)")

    store = env.runtime.vector_store()
    monkeypatch.setattr(store, "replace_source", index_down)
    monkeypatch.setattr(store, "upsert", index_down)
    key = "acme/handbook/pumps.md"
    env.put(key, DOC_V1)

    env.poller.drain()

    assert [n for n, _ in env.functions.invocations] == ["docmill-process"]
    (dead,) = env.dlq_messages()
    record = json.loads(dead["Body"])
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 3
    assert record["requestPayload"]["key"] == key
    assert record["responsePayload"]["errorType"] == "TransientError"
    assert "index unavailable" in record["responsePayload"]["errorMessage"]


def test_eventbridge_event_sent_straight_to_route_is_processed(env: RuntimeEnv) -> None:
    from functions.route.handler import handler
    from docmill_devtools.local_lambda import LocalContext

    key = "acme/handbook/Q3 report été (1).md"
    version = env.put(key, DOC_V1)
    event = json.loads((EVENTS / "eventbridge_s3_object_created.json").read_text())
    event["detail"]["bucket"]["name"] = env.names.raw
    event["detail"]["object"].update(key=key, size=len(DOC_V1), **{"version-id": version})

    result = handler(event, LocalContext(function_name="docmill-route", function_arn="arn:aws:lambda:us-east-1:123456789012:function:docmill-route"))

    assert [d["action"] for d in result["decisions"]] == ["lambda"]
    assert env.chunks("handbook", uri(env, key))


def test_large_object_goes_through_run_task_to_the_ecs_task_entry_point(tmp_path: Path) -> None:
    from docmill_devtools.dev import ECS_CLUSTER, ECS_TASK_FAMILY, bind_ecs_task

    with runtime_env(
        tmp_path / "home", large_file_bytes=64, ecs_cluster=ECS_CLUSTER, ecs_task_definition=ECS_TASK_FAMILY
    ) as env:
        tasks = bind_ecs_task(env.clients)  # as in docmill dev; tasks run inline here
        try:
            key = "acme/handbook/pumps.md"
            version = env.put(key, DOC_V1)  # 96 bytes: over the 64-byte threshold

            env.poller.drain()

            assert env.functions.invocations == []  # not the Lambda
            # moto's notifications carry no versionId (AWS's do): the task takes the current version.
            assert tasks.runs == [
                {"DOCMILL_OBJECT_BUCKET": env.names.raw, "DOCMILL_OBJECT_KEY": key, "DOCMILL_OBJECT_VERSION_ID": ""}
            ]
            ecs = env.clients["ecs"]
            (task,) = ecs.describe_tasks(cluster=ECS_CLUSTER, tasks=ecs.list_tasks(cluster=ECS_CLUSTER)["taskArns"])["tasks"]
            assert task["lastStatus"] == "STOPPED" and "exit code 0" in task["stoppedReason"]
            assert {c["source_version"] for c in env.chunks("handbook", uri(env, key))} == {version}
        finally:
            tasks.uninstall()


def test_ecs_task_entry_point_takes_the_object_from_arguments(env: RuntimeEnv, capsys: pytest.CaptureFixture) -> None:
    from docmill.runtime import ecs_task

    key = "acme/handbook/pumps.md"
    version = env.put(key, DOC_V1)

    code = ecs_task.main(["--bucket", env.names.raw, "--key", key, "--version-id", version], {})

    assert code == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["status"] == "ok"
    assert env.chunks("handbook", uri(env, key))


def test_run_task_request_carries_the_network_configuration_and_the_object() -> None:
    from docmill.runtime.events import parse_object_events
    from docmill.runtime.routing import Router, decide

    class RecordingEcs:
        def __init__(self) -> None:
            self.calls: list[dict] = []

        def run_task(self, **kwargs: object) -> dict:
            self.calls.append(kwargs)
            return {"tasks": [{"taskArn": "arn:aws:ecs:us-east-1:123456789012:task/docmill/abc"}], "failures": []}

    from docmill import aws
    from docmill.config import AwsSettings, Settings
    from docmill.runtime.context import Runtime

    ecs = RecordingEcs()
    aws.set_client("ecs", ecs)
    try:
        rt = Runtime(settings=Settings(aws=AwsSettings(
            large_file_bytes=10, ecs_cluster="arn:cluster", ecs_task_definition="arn:td", ecs_container="process",
            ecs_subnets="subnet-a,subnet-b", ecs_security_groups="sg-1",
        )))
        (event,) = parse_object_events(notification("raw", "acme/h/big.pdf", version_id="v9", size=1000))
        decision = Router(rt).route(event)
    finally:
        aws.reset_clients()

    assert decide(event, rt).action == "ecs" and decision.dispatched.endswith("/abc")
    (call,) = ecs.calls
    assert call["launchType"] == "FARGATE" and call["cluster"] == "arn:cluster" and call["taskDefinition"] == "arn:td"
    assert call["networkConfiguration"]["awsvpcConfiguration"] == {
        "subnets": ["subnet-a", "subnet-b"], "securityGroups": ["sg-1"], "assignPublicIp": "DISABLED"
    }
    (override,) = call["overrides"]["containerOverrides"]
    assert override["name"] == "process"
    assert {e["name"]: e["value"] for e in override["environment"]}["DOCMILL_OBJECT_VERSION_ID"] == "v9"


def test_ecs_task_entry_point_refuses_to_run_without_an_object() -> None:
    from docmill.runtime import ecs_task

    assert ecs_task.main([], {}) == 2
