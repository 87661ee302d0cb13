"""Events: only objects of the raw bucket are ingested; an event naming the processed bucket
(docmill's own outputs) or any other bucket is refused with a recorded reason, not indexed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from docmill.runtime.process import failure_key
from tests.support.runtime_env import RuntimeEnv, notification, runtime_env


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[RuntimeEnv]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with runtime_env(tmp_path / "home") as e:
        yield e


def test_an_event_for_the_processed_bucket_is_refused_and_recorded_not_indexed(env: RuntimeEnv) -> None:
    # Given an object in the processed bucket that looks like a document
    key = "acme/handbook/planted.md"
    body = b"# Planted\\n\\nThis text was put in the processed bucket by someone.\\n"
    version = env.s3.put_object(Bucket=env.names.processed, Key=key, Body=body).get("VersionId")
    # When an event naming it arrives
    env.send_event(notification(env.names.processed, key, version_id=version, size=len(body)))
    env.poller.drain()
    # Then nothing is indexed or processed, the refusal is recorded, and nothing is retried
    uri = f"s3://{env.names.processed}/{key}"
    assert env.chunks("handbook") == [] and env.functions.invocations == []
    record = json.loads(env.s3.get_object(Bucket=env.names.processed, Key=failure_key("handbook", uri, "acme"))["Body"].read())
    assert record["error_code"] == "ForeignBucket" and record["retryable"] is False
    assert env.names.raw in record["reason"]
    assert env.dlq_messages() == []


def test_an_event_for_the_raw_bucket_still_goes_through(env: RuntimeEnv) -> None:
    key = "acme/handbook/pumps.md"
    version = env.put(key, b"# Pumps\\n\\nThe pump unit is inspected every week.\\n")
    env.send_event(notification(env.names.raw, key, version_id=version, size=48))
    env.poller.drain()
    assert env.chunks("handbook")
