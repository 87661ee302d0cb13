"""Fine-tunes on SageMaker: the CreateTrainingJob request (botocore Stubber, S3 on moto), the
cost estimate, status refresh, and the submitted code archive running the entry point locally."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from docmill.errors import ConfigurationError
from docmill.finetune.jobs import JobStore
from docmill.finetune.sagemaker import (
    ENTRY_SCRIPT,
    code_archive,
    estimate_cost,
    refresh,
    start_training_job,
    training_job_name,
)
from docmill.finetune.train import FinetuneParams
from docmill.storage import open_store
from tests.support.finetune_data import write_docmill_dataset
from tests.support.tiny_lm import build_tiny_llama

REPO = Path(__file__).resolve().parents[2]
ROLE = "arn:aws:iam::123456789012:role/docmill-training"
ARN = "arn:aws:sagemaker:us-east-1:123456789012:training-job/x"


def test_given_records_and_an_instance_when_estimated_then_hours_and_price_are_printed() -> None:
    cost = estimate_cost(1200, 2, "ml.g5.xlarge")
    # 600 s fixed + 1200 records x 2 epochs / 12 per s = 800 s -> 0.222 h at $1.408
    assert cost.hours == pytest.approx(800 / 3600)
    assert cost.usd == pytest.approx(800 / 3600 * 1.408)
    assert cost.line().startswith("estimated cost: ml.g5.xlarge, ~0.22 h at $1.408/h = ~$0.31")
    with pytest.raises(ConfigurationError, match="no price known"):
        estimate_cost(10, 1, "ml.x99.huge")


def test_given_a_job_when_started_then_the_training_job_request_has_the_expected_shape(aws_env, tmp_path: Path) -> None:
    gguf = tmp_path / "base.gguf"
    gguf.write_bytes(b"GGUF" + b"\0" * 60)
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="models")
        jobs = JobStore(open_store(str(tmp_path / "jobs")))
        record = jobs.create("acme", job_id="ft-20260101-120000-abcdef",
                             params=FinetuneParams(method="sft", format="sft", lora_r=16).to_dict())
        sagemaker = boto3.client("sagemaker", region_name="us-east-1")
        root = "s3://models/acme/ft-20260101-120000-abcdef"
        expected = {
            "TrainingJobName": "docmill-acme-20260101-120000-abcdef",
            "AlgorithmSpecification": {
                "TrainingImage": "img:1",
                "TrainingInputMode": "File",
                "MetricDefinitions": [
                    {"Name": "train:loss", "Regex": r"'loss': '?([0-9.]+)"},
                    {"Name": "eval:loss", "Regex": r"'eval_loss': '?([0-9.]+)"},
                ],
            },
            "RoleArn": ROLE,
            "InputDataConfig": [
                {"ChannelName": "train", "DataSource": {"S3DataSource": {
                    "S3DataType": "S3Prefix", "S3Uri": "s3://data/acme/ds/", "S3DataDistributionType": "FullyReplicated"}}},
                {"ChannelName": "base", "DataSource": {"S3DataSource": {
                    "S3DataType": "S3Prefix", "S3Uri": "s3://models/base/base.gguf", "S3DataDistributionType": "FullyReplicated"}}},
            ],
            "OutputDataConfig": {"S3OutputPath": f"{root}/sagemaker/", "KmsKeyId": "alias/models"},
            "ResourceConfig": {"InstanceType": "ml.g5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30,
                               "VolumeKmsKeyId": "alias/models"},
            "StoppingCondition": {"MaxRuntimeInSeconds": 21600},
            "CheckpointConfig": {"S3Uri": f"{root}/checkpoints/", "LocalPath": "/opt/ml/checkpoints"},
            "HyperParameters": {
                "sagemaker_program": json.dumps(ENTRY_SCRIPT),
                "sagemaker_submit_directory": json.dumps("s3://models/code/ft-20260101-120000-abcdef/sourcedir.tar.gz"),
                "sagemaker_region": '"us-east-1"',
                "params": json.dumps(json.dumps(FinetuneParams(method="sft", format="sft", lora_r=16).to_dict())),
                "out": json.dumps(root),
                "job_id": '"ft-20260101-120000-abcdef"',
            },
            "EnableManagedSpotTraining": False,
            "Tags": [{"Key": "docmill:tenant", "Value": "acme"}, {"Key": "docmill:job", "Value": "ft-20260101-120000-abcdef"}],
        }
        with Stubber(sagemaker) as stub:
            stub.add_response("create_training_job", {"TrainingJobArn": ARN}, expected)
            remote = start_training_job(
                sagemaker=sagemaker, s3=s3, record=record, dataset_uri="s3://data/acme/ds", base_file=gguf,
                models_bucket="models", role_arn=ROLE, region="us-east-1", image_uri="img:1", kms_key_id="alias/models",
            )
            stub.assert_no_pending_responses()
        assert remote == {"training_job_name": expected["TrainingJobName"], "training_job_arn": ARN,
                          "instance_type": "ml.g5.xlarge", "out": root}
        # Then the code and the base model were uploaded, the code holding docmill and the entry script
        with tarfile.open(fileobj=io.BytesIO(s3.get_object(
                Bucket="models", Key="code/ft-20260101-120000-abcdef/sourcedir.tar.gz")["Body"].read())) as tar:
            names = tar.getnames()
        assert {ENTRY_SCRIPT, "requirements.txt", "docmill/finetune/entry.py", "docmill/storage/s3.py"} <= set(names)
        assert s3.head_object(Bucket="models", Key="base/base.gguf")["ContentLength"] == gguf.stat().st_size


def test_given_a_completed_sagemaker_job_when_refreshed_then_metrics_and_artefacts_are_recorded(aws_env, tmp_path: Path) -> None:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="models")
        metrics = {"base": {"test_loss": 2.0, "support": 0.4}, "tuned": {"test_loss": 1.5, "support": 0.6}}
        s3.put_object(Bucket="models", Key="acme/ft-1/metrics.json", Body=json.dumps(metrics).encode())
        jobs = JobStore(open_store(str(tmp_path / "jobs")))
        record = jobs.create("acme", status="running", on="sagemaker",
                             remote={"training_job_name": "docmill-acme-1", "out": "s3://models/acme/ft-1"})
        sagemaker = boto3.client("sagemaker", region_name="us-east-1")
        with Stubber(sagemaker) as stub:
            stub.add_response("describe_training_job", _described("InProgress"), {"TrainingJobName": "docmill-acme-1"})
            stub.add_response("describe_training_job", _described("Completed", billable=540), {"TrainingJobName": "docmill-acme-1"})
            assert refresh(record, sagemaker=sagemaker, s3=s3).status == "running"
            refreshed = refresh(record, sagemaker=sagemaker, s3=s3)
        assert refreshed.status == "completed" and refreshed.metrics == metrics
        assert refreshed.artefacts["adapter"] == "s3://models/acme/ft-1/adapter"
        assert refreshed.remote["hours"] == 0.15


def _described(status: str, billable: int | None = None) -> dict:
    import datetime

    value = {
        "TrainingJobName": "docmill-acme-1", "TrainingJobArn": ARN, "TrainingJobStatus": status,
        "SecondaryStatus": "Completed" if status == "Completed" else "Training",
        "AlgorithmSpecification": {"TrainingInputMode": "File", "TrainingImage": "img:1"},
        "ModelArtifacts": {"S3ModelArtifacts": "s3://models/acme/ft-1/sagemaker/model.tar.gz"},
        "ResourceConfig": {"InstanceType": "ml.g5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        "CreationTime": datetime.datetime(2026, 1, 1),
    }
    if billable is not None:
        value["BillableTimeInSeconds"] = billable
    return value


def test_given_long_tenant_names_then_job_names_fit_sagemaker_rules() -> None:
    name = training_job_name("a" * 80 + "_x", "ft-20260101-120000-abcdef")
    assert len(name) <= 63 and name.endswith("20260101-120000-abcdef") and "_" not in name


def test_given_the_code_archive_when_run_as_sagemaker_would_then_it_trains_and_publishes(tmp_path: Path) -> None:
    # Given the submitted code extracted on its own (no repository on the path) and SM_* folders
    code = tmp_path / "code"
    with tarfile.open(fileobj=io.BytesIO(code_archive(REPO / "layers" / "docmill"))) as tar:
        tar.extractall(code, filter="data")
    dataset = write_docmill_dataset(tmp_path / "train")
    tiny = build_tiny_llama(tmp_path / "base")
    params = FinetuneParams(format="completion", method="sft", max_steps=2, batch_size=2, eval_samples=1,
                            max_new_tokens=4, max_length=128)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(SM_CHANNEL_TRAIN=str(dataset), SM_CHANNEL_BASE=str(tiny), SM_MODEL_DIR=str(tmp_path / "model"),
               DOCMILL_CHECKPOINT_DIR=str(tmp_path / "checkpoints"))
    # When the entry script runs with the hyperparameters as script mode passes them
    run = subprocess.run(
        [sys.executable, ENTRY_SCRIPT, "--params", json.dumps(params.to_dict()), "--out", str(tmp_path / "out"),
         "--job_id", "ft-1"], cwd=code, env=env, capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    # Then the adapter and metrics are in the model dir and at --out, metrics last
    for folder in (tmp_path / "model", tmp_path / "out"):
        metrics = json.loads((folder / "metrics.json").read_text())
        assert metrics["dataset"]["format"] == "completion" and metrics["train"]["steps"] == 2
        assert (folder / "adapter" / "adapter_config.json").is_file()
    assert (tmp_path / "checkpoints" / "checkpoints").is_dir()  # what SageMaker syncs for a restart
    assert json.loads(run.stdout.strip().splitlines()[-1])["job_id"] == "ft-1"
