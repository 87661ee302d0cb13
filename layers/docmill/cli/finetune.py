"""``docmill finetune``: LoRA fine-tune on a docmill dataset; ``docmill jobs``: the job records."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from docmill.cli.app import HomeOption, JsonOption, app
from docmill.errors import ConfigurationError, DocmillError

JobsOption = Annotated[
    str | None,
    typer.Option("--jobs", envvar="DOCMILL_JOBS", help="job records: folder or s3://bucket/prefix (default <home>/jobs)"),
]
TenantOption = Annotated[str | None, typer.Option("--tenant", help="tenant (env DOCMILL_TENANT)")]


def finetuner(settings: Any, jobs: str | None) -> Any:
    from docmill.finetune.service import workspace_finetuner
    from docmill.vectorstores.factory import open_vector_store

    # The vector store is opened only if a test record's source context has to be looked up.
    return workspace_finetuner(Path(settings.home), jobs=jobs, vector_store=lambda: open_vector_store(settings))


def _fail(exc: DocmillError | ValueError, json_out: bool) -> typer.Exit:
    message = exc.message if isinstance(exc, DocmillError) else str(exc)
    code = exc.code if isinstance(exc, DocmillError) else "ValueError"
    if json_out:
        typer.echo(json.dumps({"error": code, "message": message}, ensure_ascii=False))
    else:
        typer.echo(f"error: {message}", err=True)
    return typer.Exit(2 if code in ("DatasetInvalid", "ConfigurationError", "ValueError", "JobNotFound") else 1)


def _print_result(summary: dict[str, Any]) -> None:
    typer.echo(f"fine-tune {summary['job_id']}: {summary['status']}")
    metrics = summary.get("metrics") or {}
    for which in ("base", "tuned"):
        m = metrics.get(which)
        if m:
            support = "-" if m.get("support") is None else f"{m['support']:.3f}"
            loss = "-" if m.get("test_loss") is None else f"{m['test_loss']:.4f}"
            typer.echo(f"  {which:<6} test loss {loss}  support {support}")
    for name, uri in (summary.get("artefacts") or {}).items():
        typer.echo(f"  {name}: {uri}")


@app.command("finetune")
def finetune(
    dataset: Annotated[str | None, typer.Option("--dataset", "-d", help="dataset folder or s3://bucket/prefix")] = None,
    fmt: Annotated[
        str | None, typer.Option("--format", "-f", help="sft|completion|text|dpo|preference|rlhf (default: by method)")
    ] = None,
    base: Annotated[str, typer.Option("--base", help="local (embedded SmolLM2) or PATH (model folder or .gguf)")] = "local",
    method: Annotated[str | None, typer.Option("--method", "-m", help="sft | dpo (default: by format)")] = None,
    epochs: Annotated[float, typer.Option("--epochs", min=0.01, help="training epochs")] = 1.0,
    lora_r: Annotated[int, typer.Option("--lora-r", min=1, max=256, help="LoRA rank")] = 8,
    learning_rate: Annotated[float | None, typer.Option("--learning-rate", "--lr", min=0)] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1)] = 4,
    max_steps: Annotated[int | None, typer.Option("--max-steps", min=1, help="stop after this many steps")] = None,
    max_length: Annotated[int, typer.Option("--max-length", min=32, help="tokens per record")] = 512,
    eval_samples: Annotated[int, typer.Option("--eval-samples", min=0, help="test questions answered for support")] = 16,
    out: Annotated[str | None, typer.Option("--out", "-o", help="model folder or s3:// (default <home>/models/<tenant>/<job>)")] = None,
    on: Annotated[str, typer.Option("--on", help="local | sagemaker")] = "local",
    resume: Annotated[str | None, typer.Option("--resume", help="resume an unfinished local job from its checkpoint")] = None,
    instance_type: Annotated[str, typer.Option("--instance-type", help="SageMaker instance type")] = "ml.g5.xlarge",
    models_bucket: Annotated[
        str | None, typer.Option("--models-bucket", envvar="DOCMILL_MODELS_BUCKET", help="SageMaker: models bucket")
    ] = None,
    role_arn: Annotated[
        str | None, typer.Option("--role-arn", envvar="DOCMILL_SAGEMAKER_ROLE_ARN", help="SageMaker: training role")
    ] = None,
    image: Annotated[str | None, typer.Option("--image", help="SageMaker: training image URI")] = None,
    kms_key: Annotated[str | None, typer.Option("--kms-key", envvar="DOCMILL_MODELS_KMS_KEY", help="SageMaker: KMS key")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="SageMaker: print the cost estimate and request only")] = False,
    json_out: JsonOption = False,
    home: HomeOption = None,
    tenant: TenantOption = None,
    jobs: JobsOption = None,
) -> None:
    """LoRA fine-tune (TRL SFT or DPO) on a docmill dataset, evaluated on its test split before and after."""
    try:
        # The trainer writes its progress bar and log lines to stdout: keep stdout for the result.
        with contextlib.redirect_stdout(sys.stderr):
            result = _run(**locals())
    except (DocmillError, ValueError) as exc:
        raise _fail(exc, json_out) from None
    if isinstance(result, dict):  # a SageMaker dry run: the estimate
        if json_out:
            typer.echo(json.dumps(result))
        return
    summary = result.summary()
    if json_out:
        typer.echo(json.dumps(summary, ensure_ascii=False))
    else:
        _print_result(summary)


def _run(**a: Any) -> Any:
    from docmill.config import load_settings
    from docmill.finetune import FinetuneParams

    settings = load_settings(home=a["home"], tenant=a["tenant"])
    service = finetuner(settings, a["jobs"])
    say = lambda message: typer.echo(message, err=True)  # noqa: E731
    if a["resume"]:
        return service.resume(settings.tenant, a["resume"], show_progress=True, say=say)
    if not a["dataset"]:
        raise ConfigurationError("--dataset is required (a dataset folder or s3://bucket/prefix)")
    params = FinetuneParams(
        method=a["method"], format=a["fmt"], base=a["base"], epochs=a["epochs"], lora_r=a["lora_r"],
        learning_rate=a["learning_rate"], batch_size=a["batch_size"], max_steps=a["max_steps"],
        max_length=a["max_length"], eval_samples=a["eval_samples"],
    )
    if a["on"] == "sagemaker":
        return _start_sagemaker(service, settings, a["dataset"], params, instance_type=a["instance_type"],
                                models_bucket=a["models_bucket"], role_arn=a["role_arn"], image=a["image"],
                                kms_key=a["kms_key"], dry_run=a["dry_run"])
    if a["on"] != "local":
        raise ConfigurationError(f"--on {a['on']!r}: use local or sagemaker")
    return service.start(settings.tenant, a["dataset"], params, out=a["out"], show_progress=True, say=say)


def _start_sagemaker(service: Any, settings: Any, dataset: str, params: Any, *, instance_type: str,
                     models_bucket: str | None, role_arn: str | None, image: str | None, kms_key: str | None,
                     dry_run: bool) -> Any:
    from docmill import aws
    from docmill.finetune.model import resolve_base
    from docmill.finetune.sagemaker import estimate_cost, start_training_job
    from docmill.finetune.service import open_dataset
    from docmill.storage import is_s3_uri

    if not is_s3_uri(dataset):
        raise ConfigurationError("--on sagemaker reads the dataset from S3: pass --dataset s3://bucket/prefix")
    if not models_bucket or not role_arn:
        raise ConfigurationError("--on sagemaker needs --models-bucket and --role-arn (env DOCMILL_MODELS_BUCKET, DOCMILL_SAGEMAKER_ROLE_ARN)")
    data = open_dataset(dataset, params)
    cost = estimate_cost(len(data.splits["train"]), params.epochs, instance_type)
    typer.echo(cost.line(), err=True)  # before anything starts
    if dry_run:
        return {"dry_run": True, "cost": cost.to_dict(), "records": len(data.splits["train"])}
    base = resolve_base(params.base, cache_dir=service.cache_dir)
    if base.path.suffix != ".gguf":
        raise ConfigurationError("--on sagemaker uploads the base model as one file: use local or a .gguf --base")
    record, _data, _base = service.create(settings.tenant, dataset, params)
    region = settings.aws_region or aws.client("sagemaker").meta.region_name
    try:
        remote = start_training_job(
            sagemaker=aws.client("sagemaker"), s3=aws.client("s3"), record=record, dataset_uri=dataset,
            base_file=base.path, models_bucket=models_bucket, role_arn=role_arn, region=region,
            instance_type=instance_type, image_uri=image, kms_key_id=kms_key,
        )
    except Exception as error:
        service.jobs.update(record, status="failed", error=f"{type(error).__name__}: {error}")
        raise
    record.artefacts["out"] = remote["out"]
    typer.echo(f"started SageMaker training job {remote['training_job_name']} for fine-tune {record.job_id}", err=True)
    return service.jobs.update(record, on="sagemaker", status="running", remote={**remote, "cost": cost.to_dict()})


@app.command("jobs")
def jobs_command(
    job_id: Annotated[str | None, typer.Argument(help="one job's full record")] = None,
    json_out: JsonOption = False,
    home: HomeOption = None,
    tenant: TenantOption = None,
    jobs: JobsOption = None,
    refresh: Annotated[bool, typer.Option("--refresh", help="ask SageMaker about running remote jobs")] = False,
) -> None:
    """List the tenant's fine-tune jobs (status, parameters, dataset, metrics, artefacts)."""
    from docmill.config import load_settings

    try:
        settings = load_settings(home=home, tenant=tenant)
        service = finetuner(settings, jobs)
        records = [service.jobs.get(settings.tenant, job_id)] if job_id else service.jobs.list(settings.tenant)
        if refresh:
            from docmill import aws
            from docmill.finetune.sagemaker import refresh as refresh_remote

            for record in records:
                if record.on == "sagemaker" and record.status == "running":
                    service.jobs.save(refresh_remote(record, sagemaker=aws.client("sagemaker"), s3=aws.client("s3")))
    except (DocmillError, ValueError) as exc:
        raise _fail(exc, json_out) from None
    if json_out:
        payload: Any = records[0].summary() if job_id else {"jobs": [r.summary() for r in records]}
        typer.echo(json.dumps(payload, ensure_ascii=False))
        return
    if job_id:
        _print_result(records[0].summary())
        return
    if not records:
        typer.echo(f"no fine-tune jobs for tenant {settings.tenant}")
        return
    for r in records:
        tuned = (r.metrics or {}).get("tuned") or {}
        loss = tuned.get("test_loss")
        typer.echo(
            f"{r.job_id}  {r.status:<9} {r.on:<9} {r.dataset.get('format', '-'):<11} "
            f"tuned loss {'-' if loss is None else f'{loss:.4f}'}  {r.dataset.get('location', '')}"
        )


@app.command("deploy")
def deploy_command(
    job_id: Annotated[str, typer.Argument(help="a completed fine-tune job")],
    role_arn: Annotated[
        str | None, typer.Option("--role-arn", envvar="DOCMILL_SAGEMAKER_ROLE_ARN", help="endpoint execution role")
    ] = None,
    models_bucket: Annotated[
        str | None, typer.Option("--models-bucket", envvar="DOCMILL_MODELS_BUCKET", help="models bucket")
    ] = None,
    instance_type: Annotated[str, typer.Option("--instance-type")] = "ml.g5.xlarge",
    json_out: JsonOption = False,
    home: HomeOption = None,
    tenant: TenantOption = None,
    jobs: JobsOption = None,
) -> None:
    """Serve a tuned adapter on the tenant's SageMaker endpoint (LMI container, LoRA inference component)."""
    from docmill import aws
    from docmill.config import load_settings
    from docmill.finetune.endpoint import adapter_archive, deploy_adapter
    from docmill.finetune.model import load_base, resolve_base
    from docmill.finetune.sagemaker import ensure_uploaded

    try:
        settings = load_settings(home=home, tenant=tenant)
        if not role_arn or not models_bucket:
            raise ConfigurationError("deploy needs --role-arn and --models-bucket (env DOCMILL_SAGEMAKER_ROLE_ARN, DOCMILL_MODELS_BUCKET)")
        service = finetuner(settings, jobs)
        record = service.jobs.get(settings.tenant, job_id)
        s3 = aws.client("s3")
        adapter_uri = ensure_uploaded(s3, models_bucket, f"{settings.tenant}/{job_id}/adapter.tar.gz",
                                      adapter_archive(service.adapter_dir(settings.tenant, job_id)))
        base = resolve_base(str(record.params.get("base", "local")), cache_dir=service.cache_dir)
        if base.path.suffix == ".gguf":  # serving needs the converted weights folder
            load_base(base, cache_dir=service.cache_dir)
            base = resolve_base(str(record.params.get("base", "local")), cache_dir=service.cache_dir)
        prefix = f"base/hf/{base.path.name}"
        for path in sorted(p for p in base.path.rglob("*") if p.is_file()):
            ensure_uploaded(s3, models_bucket, f"{prefix}/{path.relative_to(base.path).as_posix()}", path)
        sagemaker = aws.client("sagemaker")
        names = deploy_adapter(sagemaker, tenant=settings.tenant, job_id=job_id, adapter_uri=adapter_uri,
                               base_model_uri=f"s3://{models_bucket}/{prefix}", role_arn=role_arn,
                               region=sagemaker.meta.region_name, instance_type=instance_type)
        service.jobs.update(record, remote={**record.remote, "serving": names})
    except (DocmillError, ValueError) as exc:
        raise _fail(exc, json_out) from None
    typer.echo(json.dumps(names) if json_out else f"{job_id} answers on {names['endpoint']} ({names['inference_component']})")


@app.command("undeploy")
def undeploy_command(
    job_id: Annotated[str | None, typer.Argument(help="the adapter to remove")] = None,
    everything: Annotated[bool, typer.Option("--all", help="delete the tenant's whole endpoint")] = False,
    json_out: JsonOption = False,
    home: HomeOption = None,
    tenant: TenantOption = None,
) -> None:
    """Tear down a tuned adapter's inference component, or with --all the tenant's endpoint."""
    from docmill import aws
    from docmill.config import load_settings
    from docmill.finetune.endpoint import undeploy

    try:
        settings = load_settings(home=home, tenant=tenant)
        if not job_id and not everything:
            raise ConfigurationError("name a JOB_ID or pass --all")
        deleted = undeploy(aws.client("sagemaker"), tenant=settings.tenant, job_id=job_id, everything=everything)
    except (DocmillError, ValueError) as exc:
        raise _fail(exc, json_out) from None
    typer.echo(json.dumps({"deleted": deleted}) if json_out else ("deleted: " + ", ".join(deleted) if deleted else "nothing to delete"))
