"""Serve tuned adapters on SageMaker: one endpoint per tenant, LoRA adapters as inference components.

Layout per tenant ``T``:

- endpoint ``docmill-T-tuned`` (endpoint config of the same name, one variant, instance-based);
- base inference component ``docmill-T-base``: the LMI container (vLLM, LoRA on) with the base
  model's weights (the converted SmolLM2 folder, uploaded once to ``s3://<models>/base/hf/``);
- one adapter inference component per job ``docmill-T-<job>``: ``BaseInferenceComponentName`` plus
  the adapter's ``adapter.tar.gz`` (``Container.ArtifactUrl``). Chat calls pass
  ``InferenceComponentName`` to ``InvokeEndpoint``.

:func:`deploy_adapter` creates what is missing (endpoint, base, adapter) and waits for each to be
in service; :func:`undeploy` removes one adapter, or with ``everything`` the tenant's whole
endpoint. The request shapes are tested with botocore's Stubber.
"""

from __future__ import annotations

import io
import re
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from docmill.errors import FinetuneError

LMI_IMAGE = "763104351884.dkr.ecr.{region}.amazonaws.com/djl-inference:0.31.0-lmi13.0.0-cu124"
DEFAULT_SERVING_INSTANCE = "ml.g5.xlarge"
VARIANT = "AllTraffic"


def _clean(value: str) -> str:
    return re.sub(r"[^A-Za-z0-9-]", "-", value).strip("-")


@dataclass(frozen=True)
class TenantEndpoint:
    tenant: str

    @property
    def endpoint(self) -> str:
        return f"docmill-{_clean(self.tenant)[:40]}-tuned"

    @property
    def base_component(self) -> str:
        return f"docmill-{_clean(self.tenant)[:40]}-base"

    def adapter_component(self, job_id: str) -> str:
        return f"docmill-{_clean(self.tenant)[:30]}-{job_id.removeprefix('ft-')}"[:63]


def adapter_archive(adapter_dir: Path) -> bytes:
    """The adapter files at the archive root, as an inference component's ArtifactUrl expects."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for path in sorted(adapter_dir.iterdir()):
            if path.is_file():
                tar.add(str(path), arcname=path.name)
    return buf.getvalue()


def _exists(call: Callable[..., Any], **kwargs: Any) -> dict[str, Any] | None:
    try:
        return call(**kwargs)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("ValidationException", "ResourceNotFound"):
            return None
        raise


def _wait(describe: Callable[[], dict[str, Any]], key: str, *, sleep: Callable[[float], None], timeout_s: float) -> None:
    waited = 0.0
    while True:
        status = describe()[key]
        if status == "InService":
            return
        if status in ("Failed", "OutOfService"):
            raise FinetuneError(f"SageMaker reports {status}: {describe().get('FailureReason', '')}".strip())
        if waited >= timeout_s:
            raise FinetuneError(f"still {status} after {timeout_s:.0f} s")
        sleep(15.0)
        waited += 15.0


def deploy_adapter(
    sagemaker: Any,
    *,
    tenant: str,
    job_id: str,
    adapter_uri: str,
    base_model_uri: str,
    role_arn: str,
    region: str,
    instance_type: str = DEFAULT_SERVING_INSTANCE,
    image_uri: str | None = None,
    sleep: Callable[[float], None] = time.sleep,
    timeout_s: float = 3600.0,
) -> dict[str, str]:
    """Make ``job_id``'s adapter answer on the tenant's endpoint; returns the names to invoke."""
    names = TenantEndpoint(tenant)
    tags = [{"Key": "docmill:tenant", "Value": tenant}]
    if _exists(sagemaker.describe_endpoint, EndpointName=names.endpoint) is None:
        sagemaker.create_endpoint_config(
            EndpointConfigName=names.endpoint,
            ExecutionRoleArn=role_arn,
            ProductionVariants=[
                {
                    "VariantName": VARIANT,
                    "InstanceType": instance_type,
                    "InitialInstanceCount": 1,
                    "RoutingConfig": {"RoutingStrategy": "LEAST_OUTSTANDING_REQUESTS"},
                }
            ],
            Tags=tags,
        )
        sagemaker.create_endpoint(EndpointName=names.endpoint, EndpointConfigName=names.endpoint, Tags=tags)
    _wait(lambda: sagemaker.describe_endpoint(EndpointName=names.endpoint), "EndpointStatus", sleep=sleep, timeout_s=timeout_s)

    if _exists(sagemaker.describe_inference_component, InferenceComponentName=names.base_component) is None:
        sagemaker.create_model(
            ModelName=names.base_component,
            ExecutionRoleArn=role_arn,
            PrimaryContainer={
                "Image": image_uri or LMI_IMAGE.format(region=region),
                "ModelDataSource": {
                    "S3DataSource": {"S3Uri": base_model_uri.rstrip("/") + "/", "S3DataType": "S3Prefix",
                                     "CompressionType": "None"}
                },
                "Environment": {
                    "OPTION_ROLLING_BATCH": "vllm",
                    "OPTION_ENABLE_LORA": "true",
                    "OPTION_MAX_LORAS": "8",
                    "OPTION_MAX_LORA_RANK": "64",
                    "OPTION_MAX_MODEL_LEN": "2048",
                },
            },
            Tags=tags,
        )
        sagemaker.create_inference_component(
            InferenceComponentName=names.base_component,
            EndpointName=names.endpoint,
            VariantName=VARIANT,
            Specification={
                "ModelName": names.base_component,
                "ComputeResourceRequirements": {"NumberOfAcceleratorDevicesRequired": 1, "MinMemoryRequiredInMb": 2048},
            },
            RuntimeConfig={"CopyCount": 1},
            Tags=tags,
        )
    _wait(lambda: sagemaker.describe_inference_component(InferenceComponentName=names.base_component),
          "InferenceComponentStatus", sleep=sleep, timeout_s=timeout_s)

    adapter = names.adapter_component(job_id)
    if _exists(sagemaker.describe_inference_component, InferenceComponentName=adapter) is None:
        sagemaker.create_inference_component(
            InferenceComponentName=adapter,
            EndpointName=names.endpoint,
            Specification={"BaseInferenceComponentName": names.base_component, "Container": {"ArtifactUrl": adapter_uri}},
            Tags=[*tags, {"Key": "docmill:job", "Value": job_id}],
        )
    _wait(lambda: sagemaker.describe_inference_component(InferenceComponentName=adapter),
          "InferenceComponentStatus", sleep=sleep, timeout_s=timeout_s)
    return {"endpoint": names.endpoint, "inference_component": adapter}


def undeploy(sagemaker: Any, *, tenant: str, job_id: str | None = None, everything: bool = False) -> list[str]:
    """Delete one adapter's inference component; with ``everything`` the tenant's endpoint,
    its base component, model and endpoint config as well. Returns what was deleted."""
    names = TenantEndpoint(tenant)
    deleted: list[str] = []
    components = [names.adapter_component(job_id)] if job_id else []
    if everything:
        listed = sagemaker.list_inference_components(EndpointNameEquals=names.endpoint)
        others = [c["InferenceComponentName"] for c in listed.get("InferenceComponents", [])]
        components += [c for c in others if c not in components and c != names.base_component]
        components.append(names.base_component)
    for component in components:
        if _exists(sagemaker.describe_inference_component, InferenceComponentName=component) is not None:
            sagemaker.delete_inference_component(InferenceComponentName=component)
            deleted.append(component)
    if everything:
        for call, kwargs in (
            (sagemaker.delete_endpoint, {"EndpointName": names.endpoint}),
            (sagemaker.delete_endpoint_config, {"EndpointConfigName": names.endpoint}),
            (sagemaker.delete_model, {"ModelName": names.base_component}),
        ):
            try:
                call(**kwargs)
                deleted.append(next(iter(kwargs.values())))
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") != "ValidationException":
                    raise
    return deleted
