"""``docmill dev`` against an endpoint it did not start (``AWS_ENDPOINT_URL``, e.g. LocalStack):
buckets, queue and notification are created there, and documents are processed in-process.
A separate moto server plays the external emulator."""

from __future__ import annotations

import time
from pathlib import Path

import boto3
from moto.server import ThreadedMotoServer

from docmill.config import Settings
from docmill_devtools.dev import DevEnvironment, DevNames, free_port
from tests.support.generation_doubles import HashingEmbedder


def test_external_endpoint_gets_the_resources_and_uploads_are_processed(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    dev = DevEnvironment(
        settings=Settings(home=tmp_path / "home"),
        names=DevNames("ext"),
        endpoint_url=endpoint,
        runtime_overrides={"embedder_factory": lambda: HashingEmbedder(64)},
    )
    try:
        info = dev.start()
        assert info["endpoint"] == endpoint and info["state_machine_arn"] is None
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        assert s3.get_bucket_versioning(Bucket="ext-raw")["Status"] == "Enabled"

        s3.put_object(Bucket="ext-raw", Key="acme/notes/todo.md", Body=b"# Todo\n\nService the boiler in the harbor depot.\n")

        deadline = time.monotonic() + 60
        keys: list[str] = []
        while time.monotonic() < deadline and not any(k.endswith("source.json") for k in keys):
            time.sleep(0.3)
            keys = [o["Key"] for o in s3.list_objects_v2(Bucket="ext-processed").get("Contents", [])]
        assert any(k.startswith("tenants/acme/collections/notes/sources/") and k.endswith("chunks.jsonl") for k in keys), keys
    finally:
        dev.stop()
        server.stop()
