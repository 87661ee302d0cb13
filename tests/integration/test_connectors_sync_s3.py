"""Sync into and out of S3 (moto): metadata on objects, incremental re-sync, deletions, secrets."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from docmill import aws
from docmill.connectors import metadata as md
from docmill.connectors.config import parse_sync_config
from docmill.connectors.sync import run_sync
from docmill.connectors.task import main as task_main
from docmill.storage import S3Store


@pytest.fixture()
def s3(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        aws.reset_clients()
        client = boto3.client("s3", region_name="us-east-1")
        for bucket in ("raw", "upstream", "settings"):
            client.create_bucket(Bucket=bucket)
        yield client
    aws.reset_clients()


def _keys(client, bucket: str, prefix: str = "") -> list[str]:
    resp = client.list_objects_v2(Bucket=bucket, Prefix=prefix)
    return sorted(o["Key"] for o in resp.get("Contents", []))


def test_local_folder_to_raw_bucket_carries_metadata_and_deletes(s3, tmp_path: Path):
    # Given a local folder and the raw bucket as destination
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.md").write_text("# A\n", encoding="utf-8")
    (src / "Ünïcode title.txt").write_text("text\n", encoding="utf-8")
    config = parse_sync_config(f"source: {{type: local, path: '{src}', name: docs}}\ndestination: {{path: s3://raw/tenant-a}}")
    # When synced
    report = run_sync(config, environ={})
    # Then both objects are in the bucket with x-amz-meta-docmill-* metadata (ASCII-safe)
    assert report.ok and report.sources[0].added == 2
    assert _keys(s3, "raw", "tenant-a/") == ["tenant-a/.docmill-sync/docs.json", "tenant-a/a.md", "tenant-a/Ünïcode title.txt"]
    head = s3.head_object(Bucket="raw", Key="tenant-a/Ünïcode title.txt")
    assert head["Metadata"]["docmill-source-type"] == "local"
    meta = md.read_source_metadata(head)
    assert meta["title"] == "Ünïcode title.txt" and meta["source_name"] == "docs"
    assert md.read_source_metadata(S3Store("raw", "tenant-a").head("a.md"))["source_id"] == "a.md"

    # When the source loses a file and the sync runs again
    (src / "a.md").unlink()
    report = run_sync(config, environ={})
    # Then the object is deleted from the raw bucket (whose ObjectRemoved event drops its chunks)
    assert report.sources[0].deleted == 1 and report.sources[0].unchanged == 1
    assert "tenant-a/a.md" not in _keys(s3, "raw")


def test_s3_source_resyncs_only_what_changed(s3):
    # Given an upstream bucket with three objects synced once into the raw bucket
    for key, body in {"kb/one.md": b"# one", "kb/two.md": b"# two", "kb/sub/three.txt": b"three", "other/x.md": b"x"}.items():
        s3.put_object(Bucket="upstream", Key=key, Body=body)
    config = parse_sync_config(
        "sources:\n  - {name: kb, type: s3, uri: 's3://upstream/kb'}\n"
        "destination: {path: 's3://raw/t1'}\nstate: {path: 's3://settings/state'}\n"
    )
    first = run_sync(config, environ={}).sources[0]
    assert (first.added, first.error) == (3, None)
    assert _keys(s3, "raw", "t1/") == ["t1/one.md", "t1/sub/three.txt", "t1/two.md"]
    assert _keys(s3, "settings") == ["state/kb.json"]

    # When nothing changed upstream
    second = run_sync(config, environ={}).sources[0]
    # Then nothing moves
    assert (second.unchanged, second.added, second.updated, second.deleted) == (3, 0, 0, 0)

    # When one object is overwritten and one deleted upstream
    s3.put_object(Bucket="upstream", Key="kb/one.md", Body=b"# one, edited")
    s3.delete_object(Bucket="upstream", Key="kb/two.md")
    third = run_sync(config, environ={}).sources[0]
    # Then exactly those two move
    assert {d.key: d.status for d in third.documents} == {"one.md": "updated", "sub/three.txt": "unchanged",
                                                          "two.md": "deleted"}
    assert s3.get_object(Bucket="raw", Key="t1/one.md")["Body"].read() == b"# one, edited"
    assert "t1/two.md" not in _keys(s3, "raw")


def test_credentials_come_from_secrets_manager_and_env(s3):
    # Given a secret holding a JSON object and an environment variable for one field
    sm = boto3.client("secretsmanager", region_name="us-east-1")
    sm.create_secret(Name="docmill/wiki", SecretString=json.dumps({"token": "from-secret", "user": "bot"}))
    from docmill.connectors.config import CredentialsConfig, resolve_credentials

    spec = CredentialsConfig(secret_id="docmill/wiki", env={"token": "WIKI_TOKEN"})
    # When resolved with and without the variable
    with_env = resolve_credentials(spec, environ={"WIKI_TOKEN": "from-env"})
    without_env = resolve_credentials(spec, environ={})
    # Then the variable overrides the secret's field and the secret fills the rest
    assert with_env == {"token": "from-env", "user": "bot"}
    assert without_env == {"token": "from-secret", "user": "bot"}


def test_ecs_task_entry_reads_config_from_s3_and_syncs_one_source(s3, capsys):
    # Given a config in the config bucket with two sources, as the scheduled task sees it
    s3.put_object(Bucket="upstream", Key="a/doc.md", Body=b"# a")
    s3.put_object(Bucket="upstream", Key="b/doc.md", Body=b"# b")
    s3.put_object(Bucket="settings", Key="sync.yaml", Body=(
        b"destination: {path: 's3://raw/t'}\n"
        b"sources:\n  - {name: a, type: s3, uri: 's3://upstream/a', destination: {path: 's3://raw/t/a'}}\n"
        b"  - {name: b, type: s3, uri: 's3://upstream/b', destination: {path: 's3://raw/t/b'}}\n"))
    # When the task runs for source "a"
    code = task_main(["--config", "s3://settings/sync.yaml", "--source", "a"], environ={})
    # Then only source a was synced and the summary is one JSON log line
    assert code == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["added"] == 1 and [s["source"] for s in line["sources"]] == ["a"]
    assert "t/a/doc.md" in _keys(s3, "raw") and "t/b/doc.md" not in _keys(s3, "raw")


def test_ecs_task_reports_a_missing_config_with_exit_2(s3, capsys):
    # Given no such config object
    # When the task starts
    code = task_main(["--config", "s3://settings/missing.yaml"], environ={})
    # Then it exits 2 with a StorageError line
    assert code == 2
    assert json.loads(capsys.readouterr().out)["code"] == "StorageError"
