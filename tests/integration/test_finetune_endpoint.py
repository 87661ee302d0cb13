"""Serving a tuned adapter on a per-tenant SageMaker endpoint (inference components), request
shapes checked with botocore's Stubber; and tearing it down."""

from __future__ import annotations

import datetime
import io
import tarfile
from pathlib import Path

import boto3
import pytest
from botocore.stub import ANY, Stubber

from docmill.errors import FinetuneError
from docmill.finetune.endpoint import adapter_archive, deploy_adapter, undeploy

ROLE = "arn:aws:iam::123456789012:role/docmill-serving"
NOW = datetime.datetime(2026, 1, 1)
TAGS = [{"Key": "docmill:tenant", "Value": "acme"}]


@pytest.fixture
def sagemaker(aws_env):
    return boto3.client("sagemaker", region_name="us-east-1")


def _endpoint(status: str) -> dict:
    return {"EndpointName": "docmill-acme-tuned", "EndpointArn": "arn:aws:sagemaker:us-east-1:1:endpoint/x",
            "EndpointStatus": status, "CreationTime": NOW, "LastModifiedTime": NOW}


def _component(name: str, status: str) -> dict:
    return {"InferenceComponentName": name, "InferenceComponentArn": f"arn:aws:sagemaker:us-east-1:1:inference-component/{name}",
            "EndpointName": "docmill-acme-tuned", "EndpointArn": "arn:aws:sagemaker:us-east-1:1:endpoint/x",
            "InferenceComponentStatus": status, "CreationTime": NOW, "LastModifiedTime": NOW}


def test_given_no_endpoint_when_an_adapter_is_deployed_then_endpoint_base_and_adapter_are_created(sagemaker) -> None:
    adapter = "docmill-acme-20260101-120000-abcdef"
    with Stubber(sagemaker) as stub:
        stub.add_client_error("describe_endpoint", "ValidationException", "Could not find endpoint")
        stub.add_response("create_endpoint_config", {"EndpointConfigArn": "arn:aws:sagemaker:us-east-1:1:endpoint-config/x"}, {
            "EndpointConfigName": "docmill-acme-tuned", "ExecutionRoleArn": ROLE, "Tags": TAGS,
            "ProductionVariants": [{"VariantName": "AllTraffic", "InstanceType": "ml.g5.xlarge", "InitialInstanceCount": 1,
                                    "RoutingConfig": {"RoutingStrategy": "LEAST_OUTSTANDING_REQUESTS"}}],
        })
        stub.add_response("create_endpoint", {"EndpointArn": "arn:aws:sagemaker:us-east-1:1:endpoint/x"},
                          {"EndpointName": "docmill-acme-tuned", "EndpointConfigName": "docmill-acme-tuned", "Tags": TAGS})
        stub.add_response("describe_endpoint", _endpoint("Creating"), {"EndpointName": "docmill-acme-tuned"})
        stub.add_response("describe_endpoint", _endpoint("InService"), {"EndpointName": "docmill-acme-tuned"})
        stub.add_client_error("describe_inference_component", "ValidationException", "not found")
        stub.add_response("create_model", {"ModelArn": "arn:aws:sagemaker:us-east-1:1:model/x"}, {
            "ModelName": "docmill-acme-base", "ExecutionRoleArn": ROLE, "Tags": TAGS,
            "PrimaryContainer": {
                "Image": "763104351884.dkr.ecr.us-east-1.amazonaws.com/djl-inference:0.31.0-lmi13.0.0-cu124",
                "ModelDataSource": {"S3DataSource": {"S3Uri": "s3://models/base/hf/smollm2/", "S3DataType": "S3Prefix",
                                                     "CompressionType": "None"}},
                "Environment": ANY,
            },
        })
        stub.add_response("create_inference_component", {"InferenceComponentArn": "arn:aws:sagemaker:us-east-1:1:inference-component/x"}, {
            "InferenceComponentName": "docmill-acme-base", "EndpointName": "docmill-acme-tuned", "VariantName": "AllTraffic",
            "Specification": {"ModelName": "docmill-acme-base",
                              "ComputeResourceRequirements": {"NumberOfAcceleratorDevicesRequired": 1, "MinMemoryRequiredInMb": 2048}},
            "RuntimeConfig": {"CopyCount": 1}, "Tags": TAGS,
        })
        stub.add_response("describe_inference_component", _component("docmill-acme-base", "InService"),
                          {"InferenceComponentName": "docmill-acme-base"})
        stub.add_client_error("describe_inference_component", "ValidationException", "not found")
        stub.add_response("create_inference_component", {"InferenceComponentArn": "arn:aws:sagemaker:us-east-1:1:inference-component/x"}, {
            "InferenceComponentName": adapter, "EndpointName": "docmill-acme-tuned",
            "Specification": {"BaseInferenceComponentName": "docmill-acme-base",
                              "Container": {"ArtifactUrl": "s3://models/acme/ft-20260101-120000-abcdef/adapter.tar.gz"}},
            "Tags": [*TAGS, {"Key": "docmill:job", "Value": "ft-20260101-120000-abcdef"}],
        })
        stub.add_response("describe_inference_component", _component(adapter, "InService"), {"InferenceComponentName": adapter})
        slept: list[float] = []
        names = deploy_adapter(
            sagemaker, tenant="acme", job_id="ft-20260101-120000-abcdef",
            adapter_uri="s3://models/acme/ft-20260101-120000-abcdef/adapter.tar.gz",
            base_model_uri="s3://models/base/hf/smollm2", role_arn=ROLE, region="us-east-1", sleep=slept.append,
        )
        stub.assert_no_pending_responses()
    assert names == {"endpoint": "docmill-acme-tuned", "inference_component": adapter}
    assert slept == [15.0]


def test_given_a_failed_component_when_deploying_then_a_clear_error(sagemaker) -> None:
    with Stubber(sagemaker) as stub:
        stub.add_response("describe_endpoint", _endpoint("InService"), {"EndpointName": "docmill-acme-tuned"})
        stub.add_response("describe_endpoint", _endpoint("InService"), {"EndpointName": "docmill-acme-tuned"})
        stub.add_response("describe_inference_component", _component("docmill-acme-base", "InService"))
        stub.add_response("describe_inference_component", _component("docmill-acme-base", "InService"))
        stub.add_response("describe_inference_component", _component("docmill-acme-x", "Failed"))
        stub.add_response("describe_inference_component", _component("docmill-acme-x", "Failed"))
        stub.add_response("describe_inference_component", {**_component("docmill-acme-x", "Failed"), "FailureReason": "bad adapter"})
        with pytest.raises(FinetuneError, match="Failed"):
            deploy_adapter(sagemaker, tenant="acme", job_id="ft-x", adapter_uri="s3://m/a.tar.gz", base_model_uri="s3://m/b",
                           role_arn=ROLE, region="us-east-1", sleep=lambda _s: None)


def test_given_a_tenant_endpoint_when_torn_down_then_adapters_base_and_endpoint_are_deleted(sagemaker) -> None:
    with Stubber(sagemaker) as stub:
        stub.add_response("list_inference_components", {"InferenceComponents": [
            {"InferenceComponentName": n, "InferenceComponentArn": "arn:aws:sagemaker:us-east-1:1:inference-component/x", "EndpointName": "docmill-acme-tuned",
             "EndpointArn": "arn:aws:sagemaker:us-east-1:1:endpoint/x", "VariantName": "AllTraffic", "CreationTime": NOW, "LastModifiedTime": NOW}
            for n in ("docmill-acme-base", "docmill-acme-1", "docmill-acme-2")]}, {"EndpointNameEquals": "docmill-acme-tuned"})
        for name in ("docmill-acme-1", "docmill-acme-2", "docmill-acme-base"):
            stub.add_response("describe_inference_component", _component(name, "InService"), {"InferenceComponentName": name})
            stub.add_response("delete_inference_component", {}, {"InferenceComponentName": name})
        stub.add_response("delete_endpoint", {}, {"EndpointName": "docmill-acme-tuned"})
        stub.add_response("delete_endpoint_config", {}, {"EndpointConfigName": "docmill-acme-tuned"})
        stub.add_client_error("delete_model", "ValidationException", "Could not find model")
        deleted = undeploy(sagemaker, tenant="acme", everything=True)
        stub.assert_no_pending_responses()
    assert deleted == ["docmill-acme-1", "docmill-acme-2", "docmill-acme-base", "docmill-acme-tuned", "docmill-acme-tuned"]


def test_given_an_adapter_folder_then_the_archive_holds_its_files_at_the_root(tmp_path: Path) -> None:
    (tmp_path / "adapter_config.json").write_text("{}")
    (tmp_path / "adapter_model.safetensors").write_bytes(b"x")
    with tarfile.open(fileobj=io.BytesIO(adapter_archive(tmp_path))) as archive:
        names = archive.getnames()
    assert sorted(names) == ["adapter_config.json", "adapter_model.safetensors"]
