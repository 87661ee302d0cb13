"""``docmill dev`` as a user runs it from an installed package: the wheel installed into a fresh
virtualenv (no repository on ``sys.path``, no PYTHONPATH), started from an empty temporary folder
with a minimal environment; a file uploaded over the S3 API is chunked, a large one goes to the
(in-process) ECS task, deleting a file removes its chunks, and Ctrl+C stops it cleanly."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

REPO = Path(__file__).resolve().parents[2]
DOC = b"# Safety handbook\n\nForklifts are inspected every Monday by the depot team.\n\nHelmets are mandatory in the harbor.\n"
# Over the large-file threshold set below: routed to the (in-process) ECS Fargate task.
BIG_DOC = b"# Boiler room\n\n" + b"The boiler pressure is logged every hour by the night shift. " * 8 + b"\n"
LARGE_FILE_BYTES = 300
PREFIX = "tenants/acme/collections/safety/sources/"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def installed_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtualenv holding the docmill wheel built from this checkout; its dependencies come from
    the test interpreter's site-packages through a plain path entry (not its .pth files, so an
    editable checkout of docmill there stays invisible)."""
    root = tmp_path_factory.mktemp("installed")
    venv = root / "venv"
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True, capture_output=True, text=True,
        ).stdout.strip()
    )
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target", str(site),
         str(REPO)],
        check=True, cwd=root, timeout=600,
    )
    (site / "zz_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


def test_given_the_installed_package_then_it_holds_library_devtools_and_handlers(installed_python: Path) -> None:
    probe = "import docmill, docmill_devtools, functions.route.handler; print(docmill.__file__)"
    out = subprocess.run(
        [str(installed_python), "-c", probe], check=True, capture_output=True, text=True,
        cwd=installed_python.parent, env={"PATH": os.environ["PATH"]},
    ).stdout
    assert str(installed_python.parents[1]) in out and str(REPO) not in out


@pytest.fixture
def dev_server(installed_python: Path, tmp_path: Path) -> Iterator[tuple[dict[str, Any], subprocess.Popen[str]]]:
    workdir = tmp_path / "anywhere"
    workdir.mkdir()
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        "OMP_NUM_THREADS": "1",
        "DOCMILL_HOME": str(tmp_path / "home"),
        "DOCMILL_AWS__LARGE_FILE_BYTES": str(LARGE_FILE_BYTES),
    }
    port = _free_port()
    with (tmp_path / "dev.err").open("wb") as err:
        proc = subprocess.Popen(
            [str(installed_python), "-m", "docmill", "dev", "--port", str(port), "--json"],
            cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=err, text=True,
        )
        try:
            assert proc.stdout is not None
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


def _keys(s3: Any, bucket: str) -> list[str]:
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=PREFIX)
    return [o["Key"] for o in listed.get("Contents", [])]


def _wait(condition: Any, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.5)
    return False


@pytest.mark.slow  # a subprocess that loads the real embedder
def test_given_dev_from_an_installed_package_when_files_come_and_go_then_chunks_follow(dev_server) -> None:
    info, proc = dev_server
    assert info["endpoint"].startswith("http://127.0.0.1:")
    assert set(info["buckets"]) == {"raw", "processed", "datasets"}
    assert info["state_machine_arn"].startswith("arn:aws:states:")
    session = boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1")
    s3 = session.client("s3", endpoint_url=info["endpoint"])
    raw, processed = info["buckets"]["raw"], info["buckets"]["processed"]
    assert len(DOC) < LARGE_FILE_BYTES <= len(BIG_DOC)

    # When a small file (container Lambda) and a large one (ECS task) are dropped over the S3 API
    s3.put_object(Bucket=raw, Key="acme/safety/handbook.md", Body=DOC)
    s3.put_object(Bucket=raw, Key="acme/safety/boiler.md", Body=BIG_DOC)
    # Then both are chunked and embedded
    assert _wait(lambda: sum(k.endswith("/source.json") for k in _keys(s3, processed)) >= 2, 180), _keys(s3, processed)
    chunk_files = [k for k in _keys(s3, processed) if k.endswith("/chunks.jsonl")]
    assert len(chunk_files) == 2
    for key in chunk_files:
        chunks = [json.loads(x) for x in s3.get_object(Bucket=processed, Key=key)["Body"].read().splitlines()]
        assert chunks and chunks[0]["tenant"] == "acme" and len(chunks[0]["embedding"]) == 384
    ecs = session.client("ecs", endpoint_url=info["endpoint"])
    assert len(ecs.list_tasks(cluster="docmill-dev")["taskArns"]) == 1  # only the big file went to ECS
    sfn = session.client("stepfunctions", endpoint_url=info["endpoint"])
    assert sfn.describe_state_machine(stateMachineArn=info["state_machine_arn"])["status"] == "ACTIVE"

    # When the small file is deleted; Then its chunks go and the other file's stay
    s3.delete_object(Bucket=raw, Key="acme/safety/handbook.md")
    assert _wait(lambda: len([k for k in _keys(s3, processed) if k.endswith("/chunks.jsonl")]) == 1, 120)
    (left,) = [k for k in _keys(s3, processed) if k.endswith("/chunks.jsonl")]
    assert "boiler" in left

    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 0
