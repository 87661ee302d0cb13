"""``docmill dev`` as a user runs it: a subprocess on a free port, a file uploaded with boto3 to
the raw bucket, chunks in the processed bucket, then Ctrl+C. (Real embedder, real handlers.)"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest

from docmill.runtime.dev import free_port

REPO = Path(__file__).resolve().parents[2]
DOC = b"# Safety handbook\n\nForklifts are inspected every Monday by the depot team.\n\nHelmets are mandatory in the harbor.\n"
# Over the large-file threshold set below: routed to the (in-process) ECS Fargate task.
BIG_DOC = b"# Boiler room\n\n" + b"The boiler pressure is logged every hour by the night shift. " * 8 + b"\n"
LARGE_FILE_BYTES = 300


@pytest.fixture
def dev_server(tmp_path: Path):
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO / "layers"), str(REPO)]),
        "OMP_NUM_THREADS": "1",
        "DOCMILL_HOME": str(tmp_path / "home"),
        "DOCMILL_AWS__LARGE_FILE_BYTES": str(LARGE_FILE_BYTES),
    }
    env.pop("AWS_ENDPOINT_URL", None)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "docmill", "dev", "--port", str(port), "--json"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=open(tmp_path / "dev.err", "wb"),  # noqa: SIM115 - closed with the process
        text=True,
    )
    try:
        line = proc.stdout.readline()  # the first line is the JSON description
        assert line, (tmp_path / "dev.err").read_text()[-3000:]
        yield json.loads(line), proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.mark.slow  # a subprocess that loads the real embedder
def test_dev_processes_an_uploaded_file_and_stops_on_interrupt(dev_server) -> None:
    info, proc = dev_server
    assert info["endpoint"].startswith("http://127.0.0.1:")
    assert set(info["buckets"]) == {"raw", "processed", "datasets"}
    assert info["state_machine_arn"].startswith("arn:aws:states:")
    session = boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1")
    s3 = session.client("s3", endpoint_url=info["endpoint"])

    assert len(DOC) < LARGE_FILE_BYTES <= len(BIG_DOC)

    s3.put_object(Bucket=info["buckets"]["raw"], Key="acme/safety/handbook.md", Body=DOC)  # container Lambda
    s3.put_object(Bucket=info["buckets"]["raw"], Key="acme/safety/boiler.md", Body=BIG_DOC)  # ECS task

    deadline = time.monotonic() + 120
    keys: list[str] = []
    while time.monotonic() < deadline and sum(k.endswith("/source.json") for k in keys) < 2:
        time.sleep(0.5)
        listed = s3.list_objects_v2(Bucket=info["buckets"]["processed"], Prefix="tenants/acme/collections/safety/sources/")
        keys = [o["Key"] for o in listed.get("Contents", [])]
    chunk_files = [k for k in keys if k.endswith("/chunks.jsonl")]
    assert len(chunk_files) == 2, f"not both processed within 120 s: {keys}"
    for key in chunk_files:
        body = s3.get_object(Bucket=info["buckets"]["processed"], Key=key)["Body"].read()
        chunks = [json.loads(x) for x in body.splitlines()]
        assert chunks and chunks[0]["tenant"] == "acme" and len(chunks[0]["embedding"]) == 384
    ecs = session.client("ecs", endpoint_url=info["endpoint"])
    (task_arn,) = ecs.list_tasks(cluster="docmill-dev")["taskArns"]  # only the big file went to ECS
    sfn = session.client("stepfunctions", endpoint_url=info["endpoint"])
    assert sfn.describe_state_machine(stateMachineArn=info["state_machine_arn"])["status"] == "ACTIVE"

    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 0
