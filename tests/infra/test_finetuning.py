"""Fine-tuning infrastructure: models bucket (KMS, TLS only), least-privilege training role, and the
workflow generation -> createTrainingJob.sync -> evaluation."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.nag import render
from tests.infra.conftest import Synth


def _one(synth: Synth, type_: str, prefix: str) -> tuple[str, dict[str, Any]]:
    [(lid, res)] = [(lid, r) for lid, r in synth.resources(type_).items() if lid.startswith(prefix)]
    return lid, res


def _statements(synth: Synth, policy_prefix: str) -> list[dict[str, Any]]:
    out = []
    for lid, res in synth.resources("AWS::IAM::Policy").items():
        if lid.startswith(policy_prefix):
            out += res["Properties"]["PolicyDocument"]["Statement"]
    return out


def _actions(st: dict[str, Any]) -> list[str]:
    return st["Action"] if isinstance(st["Action"], list) else [st["Action"]]


def _resources(st: dict[str, Any]) -> list[str]:
    value = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
    return [render(v) for v in value]


@pytest.fixture(scope="module")
def asl(synth: Synth) -> dict[str, Any]:
    _lid, machine = _one(synth, "AWS::StepFunctions::StateMachine", "FineTuningStateMachine")
    definition = machine["Properties"]["DefinitionString"]
    text = "".join(p if isinstance(p, str) else render(p) for p in definition["Fn::Join"][1])
    return json.loads(text)


def test_models_bucket_is_kms_encrypted_tls_only_and_private(synth: Synth) -> None:
    lid, bucket = _one(synth, "AWS::S3::Bucket", "FineTuningModels")
    props = bucket["Properties"]
    [rule] = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert render(rule["ServerSideEncryptionByDefault"]["KMSMasterKeyID"]).startswith("<FineTuningModelsKey")
    assert all(props["PublicAccessBlockConfiguration"].values())
    assert props["LoggingConfiguration"]["LogFilePrefix"] == "models/"
    [(_, policy)] = [
        (k, r) for k, r in synth.resources("AWS::S3::BucketPolicy").items() if r["Properties"]["Bucket"] == {"Ref": lid}
    ]
    denies = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
    assert any(s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in denies)


def test_training_role_is_assumed_by_sagemaker_only_with_explicit_scoped_actions(synth: Synth) -> None:
    _lid, role = _one(synth, "AWS::IAM::Role", "FineTuningTrainingRole")
    [trust] = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    assert "ManagedPolicyArns" not in role["Properties"]  # no AmazonSageMakerFullAccess
    statements = _statements(synth, "FineTuningTrainingRole")
    for st in statements:
        assert not any("*" in a for a in _actions(st)), st
        if "*" in _resources(st):
            assert set(_actions(st)) <= {"ecr:GetAuthorizationToken", "cloudwatch:PutMetricData"}, st
        if any(a.startswith("s3:") for a in _actions(st)):
            assert all(r.startswith(("<StorageDatasets", "<FineTuningModels")) for r in _resources(st)), st
    writes = [st for st in statements if "s3:PutObject" in _actions(st)]
    assert writes and all(r.startswith("<FineTuningModels") for st in writes for r in _resources(st))
    metric = next(st for st in statements if _actions(st) == ["cloudwatch:PutMetricData"])
    assert metric["Condition"] == {"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/TrainingJobs"}}


def test_workflow_generates_then_trains_with_sync_then_evaluates(asl: dict[str, Any]) -> None:
    states = asl["States"]
    assert asl["StartAt"] == "Settings"
    assert states["Settings"]["Next"] == "GenerateDataset"
    assert states["GenerateDataset"]["Resource"].endswith(":states:::states:startExecution.sync:2")
    assert states["GenerateDataset"]["Next"] == "TrainAdapter"
    train = states["TrainAdapter"]
    assert train["Resource"].endswith(":states:::sagemaker:createTrainingJob.sync")
    assert train["Next"] == "RecordEvaluation" and states["RecordEvaluation"]["Next"] == "Done"
    params = train["Parameters"]
    assert params["TrainingJobName.$"] == "$.training.job_name"
    assert [c["ChannelName"] for c in params["InputDataConfig"]] == ["train", "base"]
    assert params["HyperParameters"]["sagemaker_program"] == '"docmill_finetune_entry.py"'
    assert params["OutputDataConfig"]["KmsKeyId"].startswith("<FineTuningModelsKey")
    assert params["ResourceConfig"]["VolumeKmsKeyId"].startswith("<FineTuningModelsKey")
    assert states["RecordEvaluation"]["Parameters"]["out.$"] == "$.training.out"


def test_state_machine_may_only_start_docmill_training_jobs_and_pass_the_training_role(synth: Synth) -> None:
    statements = _statements(synth, "FineTuningStateMachineRole")
    sagemaker = [st for st in statements if any(a.startswith("sagemaker:") for a in _actions(st))]
    assert sagemaker and all(r.endswith(":training-job/docmill-*") for st in sagemaker for r in _resources(st))
    [passrole] = [st for st in statements if "iam:PassRole" in _actions(st)]
    assert _resources(passrole) == [r for r in _resources(passrole) if r.startswith("<FineTuningTrainingRole")]
    assert passrole["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}
    assert not any(a.startswith("s3:") for st in statements for a in _actions(st))
