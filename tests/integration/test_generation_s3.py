"""Datasets, shards and work files written to an S3 prefix (moto), then read back."""

from __future__ import annotations

import io
import json
import tarfile

import boto3
import pytest
from moto import mock_aws

from docmill.generation import GenerationConfig, assemble, generate_batch, plan
from docmill_devtools.scripted import ScriptedLLM
from docmill.storage import S3Store
from tests.support.generation_doubles import FakeModel, HashingEmbedder, MemoryVectorStore, make_chunks


@pytest.fixture()
def s3(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="datasets")
        yield client


def test_workflow_steps_write_shards_and_datasets_to_s3(s3, tmp_path):
    # Given an indexed collection and work/output locations in one bucket
    embedder = HashingEmbedder()
    chunks = make_chunks(3, 2, embedder=embedder)
    store = MemoryVectorStore()
    store.upsert(chunks)
    work = S3Store("datasets", "runs/r1/_work", client=s3)
    out = S3Store("datasets", "hb", client=s3)
    cfg = GenerationConfig(collection="handbook", dataset="hb", questions_per_chunk=1, batch_size=4, formats=["sft", "dpo"])
    # When the three workflow steps run against S3
    p = plan(chunks, cfg, work=work)
    for spec in p.batches:
        generate_batch(work, spec.batch_id, llm=ScriptedLLM(FakeModel()), store=store, embedder=embedder)
    result = assemble(work, out)
    # Then the layout is under the prefix and the tarball is where a consumer looks for it
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket="datasets")["Contents"]}
    assert {"runs/r1/_work/plan.json", "runs/r1/_work/shards/b00000.jsonl", "runs/r1/_work/shards/b00001.jsonl"} <= keys
    for fmt in ("sft", "dpo"):
        for name in ("train.jsonl", "val.jsonl", "test.jsonl"):
            assert f"hb/hb-{fmt}/{name}" in keys
        assert f"hb/hb-{fmt}.tar.gz" in keys
    assert {"hb/dataset_info.json", "hb/README.md", "hb/provenance.jsonl", "hb/run_report.json"} <= keys
    assert result.paths["sft"]["tar.gz"] == "s3://datasets/hb/hb-sft.tar.gz"
    assert result.archives["sft"]["loader_name"] == "datasets/hb/hb-sft"
    body = s3.get_object(Bucket="datasets", Key="hb/hb-sft.tar.gz")["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        tar.extractall(tmp_path, filter="data")
    from datasets import load_from_disk

    dd = load_from_disk(str(tmp_path / "hb" / "hb-sft"))  # inner path = key without .tar.gz
    assert sum(dd[s].num_rows for s in ("train", "val", "test")) == result.records_kept == 6
    info = json.loads(s3.get_object(Bucket="datasets", Key="hb/dataset_info.json")["Body"].read())
    assert info["hb-dpo"]["file_name"] == "hb-dpo/train.jsonl"
