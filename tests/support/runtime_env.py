"""A moto-backed AWS for the runtime tests: the same provisioning and Lambda binding as
``docmill dev``, in moto's in-process mock (no server), with a tiny deterministic embedder."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moto import mock_aws

from docmill import aws
from docmill.config import AwsSettings, Settings
from docmill.runtime import context as runtime_context
from docmill.runtime.context import Runtime
from docmill_devtools.dev import PROCESS_FUNCTION, DevNames, Provisioned, SqsPoller, bind_functions, make_clients, provision
from docmill_devtools.local_lambda import LocalFunctions
from tests.support.generation_doubles import HashingEmbedder

EVENTS = Path(__file__).resolve().parents[1] / "events"


@dataclass
class RuntimeEnv:
    clients: dict[str, Any]
    provisioned: Provisioned
    runtime: Runtime
    functions: LocalFunctions
    poller: SqsPoller

    @property
    def names(self) -> DevNames:
        return self.provisioned.names

    @property
    def s3(self) -> Any:
        return self.clients["s3"]

    @property
    def sqs(self) -> Any:
        return self.clients["sqs"]

    def put(self, key: str, body: bytes) -> str:
        return self.s3.put_object(Bucket=self.names.raw, Key=key, Body=body)["VersionId"]

    def processed_keys(self, prefix: str = "collections/") -> list[str]:
        resp = self.s3.list_objects_v2(Bucket=self.names.processed, Prefix=prefix)
        return sorted(o["Key"] for o in resp.get("Contents", []))

    def dlq_messages(self) -> list[dict[str, Any]]:
        resp = self.sqs.receive_message(QueueUrl=self.provisioned.dlq_url, MaxNumberOfMessages=10)
        return resp.get("Messages", [])

    def send_event(self, event: dict[str, Any]) -> None:
        self.sqs.send_message(QueueUrl=self.provisioned.queue_url, MessageBody=json.dumps(event))

    def chunks(self, collection: str, source_uri: str | None = None) -> list[dict[str, Any]]:
        store = self.runtime.vector_store()
        return [
            c.model_dump()
            for c in store.iter_chunks(collection)
            if source_uri is None or c.source_uri == source_uri
        ]


def notification(bucket: str, key: str, *, version_id: str | None, size: int | None, name: str = "ObjectCreated:Put") -> dict[str, Any]:
    """tests/events/s3_notification_created.json re-aimed at another object (key URL-encoded)."""
    from urllib.parse import quote_plus

    event = json.loads((EVENTS / "s3_notification_created.json").read_text())
    record = event["Records"][0]
    record["eventName"] = name
    record["s3"]["bucket"]["name"] = bucket
    obj = record["s3"]["object"]
    obj["key"] = quote_plus(key, safe="/")
    obj["versionId"] = version_id
    obj["size"] = size
    return event


@contextmanager
def runtime_env(
    home: Path,
    *,
    prefix: str = "docmill-test",
    max_receive_count: int = 2,
    generation: bool = False,
    llm_factory: Any = None,
    **aws_settings: Any,
) -> Iterator[RuntimeEnv]:
    from docmill_devtools import moto_gaps

    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        moto_gaps.emit_delete_marker_events()
        aws.reset_clients()
        clients = make_clients(None)
        for service, client in clients.items():
            aws.set_client(service, client)
        names = DevNames(prefix)
        provisioned = provision(clients, names, max_receive_count=max_receive_count, visibility_timeout=30)
        settings = Settings(
            home=home,
            store="local",
            aws=AwsSettings(
                raw_bucket=names.raw,
                processed_bucket=names.processed,
                datasets_bucket=names.datasets,
                process_function=PROCESS_FUNCTION,
                **aws_settings,
            ),
        )
        runtime = Runtime(settings=settings, embedder_factory=lambda: HashingEmbedder(64), llm_factory=llm_factory)
        previous = runtime_context.install(runtime)
        functions = LocalFunctions().install()  # async invocations run inline: deterministic
        try:
            bind_functions(functions, clients, provisioned, generation=generation)
            from functions.route.handler import handler as route_handler

            poller = SqsPoller(
                clients["sqs"], provisioned.queue_url, provisioned.queue_arn, route_handler,
                wait_seconds=0, retry_after_seconds=0,
            )
            yield RuntimeEnv(clients=clients, provisioned=provisioned, runtime=runtime, functions=functions, poller=poller)
        finally:
            functions.uninstall()
            moto_gaps.restore()
            runtime_context.install(previous)
            runtime.close()
            aws.reset_clients()
