"""Fine-tunes as SageMaker training jobs, running docmill's own entry point.

The job runs :mod:`docmill.finetune.entry` (the code the local tests run) in a Hugging Face
PyTorch training image (script mode: ``sagemaker_program`` + ``sagemaker_submit_directory``)
or in docmill's own image. Channels: ``train`` = the dataset prefix in S3, ``base`` = the base
model (the packaged SmolLM2 GGUF, uploaded once to the models bucket: nothing comes from a hub).
The adapter, card, plot and ``metrics.json`` go to ``s3://<models>/<tenant>/<job_id>/``;
checkpoints sync to ``.../checkpoints/`` so a restarted job resumes.

Requests are plain ``boto3`` calls through docmill's client factory (the ``sagemaker`` SDK is not
needed for one ``CreateTrainingJob``); tests check their shape with botocore's Stubber.
"""

from __future__ import annotations

import io
import json
import math
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError
from pydantic import BaseModel, Field

from docmill.errors import ConfigurationError, FinetuneError, JobNotFound
from docmill.finetune.jobs import JobRecord, JobStore
from docmill.finetune.train import METRICS_FILE, FinetuneParams
from docmill.storage import is_s3_uri, parse_s3_uri

DEFAULT_INSTANCE = "ml.g5.xlarge"
# The Hugging Face PyTorch training DLC (GPU); any image with Python >= 3.10 and pip works, as the
# job installs requirements.txt from the submitted code. ``--image`` overrides it.
HF_TRAINING_IMAGE = "763104351884.dkr.ecr.{region}.amazonaws.com/huggingface-pytorch-training:2.1.0-transformers4.36.0-gpu-py310-cu121-ubuntu20.04"
ENTRY_SCRIPT = "docmill_finetune_entry.py"
CHECKPOINT_PATH = "/opt/ml/checkpoints"

# On-demand SageMaker training prices, USD per hour, us-east-1 list prices (2025). An estimate,
# not a quote: other regions differ, and Savings Plans/spot lower them.
PRICES_USD_PER_HOUR: dict[str, float] = {
    "ml.m5.xlarge": 0.23,
    "ml.m5.2xlarge": 0.461,
    "ml.c5.2xlarge": 0.408,
    "ml.g4dn.xlarge": 0.736,
    "ml.g5.xlarge": 1.408,
    "ml.g5.2xlarge": 1.515,
    "ml.p3.2xlarge": 3.825,
}
# Training throughput assumed for a ~135M-parameter LoRA at 512 tokens (records per second),
# and the fixed part of a job (provisioning, image pull, pip install, evaluation).
RECORDS_PER_SECOND: dict[str, float] = {"ml.m5": 0.5, "ml.c5": 0.6, "ml.g4dn": 6.0, "ml.g5": 12.0, "ml.p3": 14.0}
FIXED_SECONDS = 600.0

# What the job installs on top of the image (same pins as requirements/lock.d/finetune.txt).
JOB_REQUIREMENTS = """\
transformers==5.23.0
trl==1.16.0
peft==0.21.2
accelerate==1.15.0
datasets==5.2.0
gguf==0.19.0
matplotlib==3.11.2
pydantic>=2.7
pydantic-settings>=2.3
"""


@dataclass(frozen=True)
class CostEstimate:
    instance_type: str
    hours: float
    usd_per_hour: float
    usd: float
    records: int
    epochs: float

    def line(self) -> str:
        return (
            f"estimated cost: {self.instance_type}, ~{self.hours:.2f} h at ${self.usd_per_hour:.3f}/h "
            f"= ~${self.usd:.2f} ({self.records} records x {self.epochs:g} epochs; on-demand us-east-1 list price)"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "instance_type": self.instance_type,
            "hours": round(self.hours, 3),
            "usd_per_hour": self.usd_per_hour,
            "usd": round(self.usd, 2),
        }


def estimate_cost(records: int, epochs: float, instance_type: str = DEFAULT_INSTANCE) -> CostEstimate:
    if instance_type not in PRICES_USD_PER_HOUR:
        raise ConfigurationError(
            f"no price known for {instance_type}; choose one of {', '.join(sorted(PRICES_USD_PER_HOUR))}"
        )
    family = instance_type.rsplit(".", 1)[0]
    seconds = FIXED_SECONDS + records * epochs / RECORDS_PER_SECOND[family]
    hours = seconds / 3600
    price = PRICES_USD_PER_HOUR[instance_type]
    return CostEstimate(instance_type, hours, price, hours * price, records, epochs)


def training_job_name(tenant: str, job_id: str) -> str:
    """SageMaker names: [a-zA-Z0-9-], at most 63 characters, unique per account and region."""
    clean = re.sub(r"[^A-Za-z0-9-]", "-", f"docmill-{tenant}")[:40].rstrip("-")
    return f"{clean}-{job_id.removeprefix('ft-')}"[:63]


def code_archive(package_dir: Path) -> bytes:
    """``sourcedir.tar.gz``: the docmill package, the entry script and requirements.txt."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for path in sorted(package_dir.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                tar.add(str(path), arcname=f"docmill/{path.relative_to(package_dir).as_posix()}")
        for name, text in (
            (ENTRY_SCRIPT, "from docmill.finetune.entry import main\n\nif __name__ == '__main__':\n    main()\n"),
            ("requirements.txt", JOB_REQUIREMENTS),
        ):
            data = text.encode("utf-8")
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _s3_prefix_source(uri: str) -> dict[str, Any]:
    return {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": uri, "S3DataDistributionType": "FullyReplicated"}}


def training_job_request(
    *,
    record: JobRecord,
    dataset_uri: str,
    base_uri: str,
    code_uri: str,
    models_bucket: str,
    role_arn: str,
    region: str,
    instance_type: str = DEFAULT_INSTANCE,
    image_uri: str | None = None,
    kms_key_id: str | None = None,
    max_hours: float = 6.0,
) -> dict[str, Any]:
    """The ``CreateTrainingJob`` request for one job record."""
    for name, uri in (("dataset", dataset_uri), ("base model", base_uri), ("code", code_uri)):
        if not is_s3_uri(uri):
            raise ConfigurationError(f"a SageMaker job reads its {name} from S3, not {uri!r}")
    root = f"s3://{models_bucket}/{record.tenant}/{record.job_id}"
    params = FinetuneParams.from_dict(record.params)
    output: dict[str, Any] = {"S3OutputPath": f"{root}/sagemaker/"}
    if kms_key_id:
        output["KmsKeyId"] = kms_key_id
    request: dict[str, Any] = {
        "TrainingJobName": training_job_name(record.tenant, record.job_id),
        "AlgorithmSpecification": {
            "TrainingImage": image_uri or HF_TRAINING_IMAGE.format(region=region),
            "TrainingInputMode": "File",
            "MetricDefinitions": [
                {"Name": "train:loss", "Regex": r"'loss': '?([0-9.]+)"},
                {"Name": "eval:loss", "Regex": r"'eval_loss': '?([0-9.]+)"},
            ],
        },
        "RoleArn": role_arn,
        "InputDataConfig": [
            {"ChannelName": "train", "DataSource": _s3_prefix_source(dataset_uri.rstrip("/") + "/")},
            {"ChannelName": "base", "DataSource": _s3_prefix_source(base_uri)},
        ],
        "OutputDataConfig": output,
        "ResourceConfig": {"InstanceType": instance_type, "InstanceCount": 1, "VolumeSizeInGB": 30},
        "StoppingCondition": {"MaxRuntimeInSeconds": int(max_hours * 3600)},
        "CheckpointConfig": {"S3Uri": f"{root}/checkpoints/", "LocalPath": CHECKPOINT_PATH},
        # Script mode: the values are JSON strings, as the SageMaker SDK writes them.
        "HyperParameters": {
            "sagemaker_program": json.dumps(ENTRY_SCRIPT),
            "sagemaker_submit_directory": json.dumps(code_uri),
            "sagemaker_region": json.dumps(region),
            "params": json.dumps(json.dumps(params.to_dict())),
            "out": json.dumps(root),
            "job_id": json.dumps(record.job_id),
        },
        "EnableManagedSpotTraining": False,
        "Tags": [
            {"Key": "docmill:tenant", "Value": record.tenant},
            {"Key": "docmill:job", "Value": record.job_id},
        ],
    }
    if kms_key_id:
        request["ResourceConfig"]["VolumeKmsKeyId"] = kms_key_id
    return request


def ensure_uploaded(s3: Any, bucket: str, key: str, data: bytes | Path, *, kms_key_id: str | None = None) -> str:
    """Upload once (skipped when an object of the same size is there). Returns the S3 URI."""
    size = data.stat().st_size if isinstance(data, Path) else len(data)
    try:
        if s3.head_object(Bucket=bucket, Key=key).get("ContentLength") == size:
            return f"s3://{bucket}/{key}"
    except ClientError:
        pass
    extra: dict[str, Any] = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key_id} if kms_key_id else {}
    body = data.read_bytes() if isinstance(data, Path) else data
    s3.put_object(Bucket=bucket, Key=key, Body=body, **extra)
    return f"s3://{bucket}/{key}"


def start_training_job(
    *,
    sagemaker: Any,
    s3: Any,
    record: JobRecord,
    dataset_uri: str,
    base_file: Path,
    models_bucket: str,
    role_arn: str,
    region: str,
    instance_type: str = DEFAULT_INSTANCE,
    image_uri: str | None = None,
    kms_key_id: str | None = None,
) -> dict[str, Any]:
    """Upload the code and base model, create the training job; returns the record's ``remote``."""
    import docmill

    package_dir = Path(docmill.__file__).parent
    code_uri = ensure_uploaded(
        s3, models_bucket, f"code/{record.job_id}/sourcedir.tar.gz", code_archive(package_dir), kms_key_id=kms_key_id
    )
    base_uri = ensure_uploaded(s3, models_bucket, f"base/{base_file.name}", base_file, kms_key_id=kms_key_id)
    request = training_job_request(
        record=record,
        dataset_uri=dataset_uri,
        base_uri=base_uri,
        code_uri=code_uri,
        models_bucket=models_bucket,
        role_arn=role_arn,
        region=region,
        instance_type=instance_type,
        image_uri=image_uri,
        kms_key_id=kms_key_id,
    )
    response = sagemaker.create_training_job(**request)
    return {
        "training_job_name": request["TrainingJobName"],
        "training_job_arn": response["TrainingJobArn"],
        "instance_type": instance_type,
        "out": request["HyperParameters"]["out"].strip('"'),
    }


_STATUS = {"InProgress": "running", "Stopping": "running", "Completed": "completed", "Failed": "failed", "Stopped": "failed"}


def refresh(record: JobRecord, *, sagemaker: Any, s3: Any) -> JobRecord:
    """Bring a SageMaker job's record up to date (status; metrics and artefacts once done)."""
    name = record.remote.get("training_job_name")
    if not name or record.status in ("completed", "failed"):
        return record
    described = sagemaker.describe_training_job(TrainingJobName=name)
    status = _STATUS.get(described["TrainingJobStatus"], "running")
    if status == "failed":
        record.error = described.get("FailureReason") or described["TrainingJobStatus"]
    if status == "completed":
        bucket, prefix = parse_s3_uri(record.remote["out"])
        try:
            body = s3.get_object(Bucket=bucket, Key=f"{prefix}/{METRICS_FILE}")["Body"].read()
        except ClientError as error:
            raise FinetuneError(f"SageMaker job {name} completed without {METRICS_FILE}: {error}") from error
        record.metrics = json.loads(body)
        out = record.remote["out"]
        record.artefacts.update(
            {"adapter": f"{out}/adapter", "card": f"{out}/README.md", "plot": f"{out}/loss.png", "metrics": f"{out}/{METRICS_FILE}"}
        )
    record.status = status
    billable = described.get("BillableTimeInSeconds")
    if billable is not None:
        record.remote["billable_seconds"] = billable
        record.remote["hours"] = math.ceil(billable / 36) / 100
    return record


class EvaluateEvent(BaseModel):
    """What the Step Functions evaluation step hands over once ``createTrainingJob.sync`` is done."""

    tenant: str
    job_id: str
    out: str  # s3://<models>/<tenant>/<job_id>
    training_job_name: str | None = None
    dataset_uri: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)


def record_evaluation(jobs: JobStore, s3: Any, event: EvaluateEvent) -> dict[str, Any]:
    """Read the finished job's ``metrics.json`` (base vs tuned on the test split), mark its
    record completed, and report whether the tuned model beat the base on test loss."""
    bucket, prefix = parse_s3_uri(event.out)
    try:
        metrics = json.loads(s3.get_object(Bucket=bucket, Key=f"{prefix}/{METRICS_FILE}")["Body"].read())
    except ClientError as error:
        raise FinetuneError(f"training {event.job_id} left no {METRICS_FILE} at {event.out}: {error}") from error
    try:
        record = jobs.get(event.tenant, event.job_id)
    except JobNotFound:
        record = jobs.create(
            event.tenant, job_id=event.job_id, on="sagemaker",
            dataset={"location": event.dataset_uri}, params=event.params,
        )
    record.status = "completed"
    record.metrics = metrics
    record.artefacts.update(
        {"adapter": f"{event.out}/adapter", "card": f"{event.out}/README.md", "plot": f"{event.out}/loss.png",
         "metrics": f"{event.out}/{METRICS_FILE}"}
    )
    if event.training_job_name:
        record.remote["training_job_name"] = event.training_job_name
    jobs.save(record)
    base, tuned = metrics.get("base", {}).get("test_loss"), metrics.get("tuned", {}).get("test_loss")
    return {**record.summary(), "improved": base is not None and tuned is not None and tuned < base}
