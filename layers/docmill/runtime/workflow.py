"""The generation workflow's task steps (plan, generate one batch, assemble) on S3.

The state machine (infra/constructs/generation.py) passes each step its Lambda event; these
functions take the typed events and a ``Runtime``. The work store of a run is
``s3://<datasets>/<work_prefix>generation/<run_id>/`` (plan.json, prompts.json, batches/,
shards/ as in ``docmill.generation.pipeline``) plus ``manifest.json`` (or ``.jsonl``), the
Distributed Map's item list. Datasets go to ``s3://<datasets>/<out_prefix>``.

Errors the state machine's Retry rules match by name are raised with exactly those names:
``LLMThrottled``, ``LLMTimeout``, ``TransientError``. A batch whose LLM calls were refused for
rate or failed transiently is *not* accepted with holes: its shard is removed and the step
raises, so Step Functions retries it with backoff; when the retries are spent, the Catch
records the batch as failed and assemble reports it.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

from pydantic import BaseModel, Field

from docmill import clock
from docmill.errors import ConfigurationError, LLMThrottled, LLMTimeout, TransientError
from docmill.generation.models import GenerationConfig
from docmill.models import ChunkRecord
from docmill.names import collection_prefix
from docmill.runtime.context import Runtime
from docmill.storage import ObjectStore

logger = logging.getLogger(__name__)

TRANSIENT_LLM_CODES = ("LLMThrottled", "LLMTimeout", "LLMUnavailable")


class WorkflowSettings(BaseModel):
    """``$.settings`` of the state machine (the stage config baked into the definition)."""

    batch_size: int = 16
    manifest_format: str = "json"
    tolerated_failure_percentage: int = 20
    results_prefix: str = "_work/generation-results/"


class PlanEvent(BaseModel):
    """The execution input (plus ``settings``): what to generate."""

    model_config = {"extra": "allow"}

    collection: str
    dataset: str
    tenant: str | None = None
    run_id: str | None = None
    out_prefix: str = ""
    settings: WorkflowSettings = Field(default_factory=WorkflowSettings)

    def generation_config(self) -> GenerationConfig:
        fields = {k: v for k, v in (self.model_extra or {}).items() if k in GenerationConfig.model_fields}
        fields.setdefault("batch_size", self.settings.batch_size)
        return GenerationConfig(collection=self.collection, dataset=self.dataset, tenant=self.tenant, **fields)


class BatchEvent(BaseModel):
    batch: dict[str, Any]
    index: int = 0
    run_id: str


class AssembleEvent(BaseModel):
    request: dict[str, Any]
    plan: dict[str, Any]
    results: dict[str, Any] | None = None


def work_prefix(runtime: Runtime, run_id: str) -> str:
    return f"{runtime.settings.aws.work_prefix.strip('/')}/generation/{run_id}"


def work_store(runtime: Runtime, run_id: str) -> ObjectStore:
    return runtime.datasets_store(work_prefix(runtime, run_id))


def processed_chunks(store: ObjectStore, collection: str, tenant: str | None = None) -> Iterator[ChunkRecord]:
    """Every committed chunk of a collection from the processed outputs
    (``collections/<c>/sources/*/chunks.jsonl``), without embeddings (the plan does not need
    them, and a Lambda's memory should not hold a collection's vectors)."""
    prefix = f"{collection_prefix(collection, tenant)}/sources/"
    for info in store.list(prefix):
        if not info.key.endswith("/chunks.jsonl"):
            continue
        for line in store.read_text(info.key).splitlines():
            if not line.strip():
                continue
            record = json.loads(line)
            record["embedding"] = None
            chunk = ChunkRecord.model_validate(record)
            if tenant is None or chunk.tenant == tenant:
                yield chunk


def plan_step(runtime: Runtime, event: PlanEvent) -> dict[str, Any]:
    from docmill.generation.pipeline import collection_chunks, plan

    run_id = event.run_id or clock.utc_now().strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]
    config = event.generation_config()
    work = work_store(runtime, run_id)
    if runtime.settings.aws.processed_bucket:
        # On AWS the plan function reads the processed bucket (it is not in the vector store's VPC).
        chunks: Iterable[ChunkRecord] = processed_chunks(runtime.processed_store(), config.collection, config.tenant)
    else:
        chunks = collection_chunks(
            runtime.vector_store(), config.collection, tenant=config.tenant, home=runtime.settings.home
        )
    llm = runtime.settings.llm
    the_plan = plan(chunks, config, work=work, model_id=llm.model or llm.spec, run_id=run_id)
    if not the_plan.batches:
        raise ConfigurationError(
            f"collection {config.collection!r} has no usable chunks to generate from"
        )
    items = [{"batch_id": b.batch_id, "chunks": len(b.chunk_ids)} for b in the_plan.batches]
    if event.settings.manifest_format == "jsonl":
        name = "manifest.jsonl"
        work.write_text(name, "".join(json.dumps(i) + "\n" for i in items), content_type="application/x-ndjson")
    else:
        name = "manifest.json"
        work.write_json(name, items)
    return {
        "run_id": run_id,
        "manifest_key": f"{work_prefix(runtime, run_id)}/{name}",
        "work": work.uri(),
        "batches": len(items),
        "summary": the_plan.summary(),
    }


def _raise_workflow_error(exc: BaseException) -> None:
    """Re-raise under the names the state machine's Retry rules match (Lambda's errorType is
    the exception class name, so a subclass name would not match ``TransientError``)."""
    if isinstance(exc, LLMThrottled):
        raise LLMThrottled(str(exc)) from exc
    if isinstance(exc, LLMTimeout):
        raise LLMTimeout(str(exc)) from exc
    if isinstance(exc, TransientError):
        raise TransientError(str(exc)) from exc
    raise exc


def generate_batch_step(runtime: Runtime, event: BatchEvent) -> dict[str, Any]:
    from docmill.generation.pipeline import generate_batch

    batch_id = event.batch.get("batch_id")
    if not batch_id:
        raise ConfigurationError(f"manifest item {event.index} has no batch_id")
    work = work_store(runtime, event.run_id)
    store = runtime.vector_store()
    if store is None:
        raise ConfigurationError("generation needs a vector store (DOCMILL_STORE is 'none')")
    try:
        result = generate_batch(work, batch_id, llm=runtime.llm(), store=store, embedder=runtime.embedder())
    except Exception as exc:
        _raise_workflow_error(exc)
        raise
    transient = {
        reason: n for reason, n in result.drops.items() if reason.startswith("llm_error:") and reason.endswith(TRANSIENT_LLM_CODES)
    }
    if transient and not result.reused:
        # Keep no shard with holes: a retry must generate the batch again, not reuse it.
        work.delete(f"shards/{batch_id}.jsonl")
        work.delete(f"shards/{batch_id}.report.json")
        summary = ", ".join(f"{k}={v}" for k, v in sorted(transient.items()))
        if any(k.endswith("LLMThrottled") for k in transient):
            raise LLMThrottled(f"batch {batch_id}: the LLM endpoint throttled ({summary})")
        raise TransientError(f"batch {batch_id}: transient LLM failures ({summary})")
    return {"status": "ok", **result.model_dump(mode="json")}


def assemble_step(runtime: Runtime, event: AssembleEvent) -> dict[str, Any]:
    from docmill.generation.assemble import assemble

    request = PlanEvent.model_validate(event.request)
    run_id = event.plan["run_id"]
    work = work_store(runtime, run_id)
    out = runtime.datasets_store(request.out_prefix.strip("/"))
    result = assemble(work, out)
    failed = _failed_batches(runtime, event.results) or [
        {"batch": {"batch_id": b}, "error": "no shard written"} for b in result.missing_shards
    ]
    return {
        "run_id": run_id,
        "dataset": result.dataset,
        "out": result.out,
        "records_kept": result.records_kept,
        "counts": result.counts,
        "missing_shards": result.missing_shards,
        "failed_batches": failed,
        "card": result.card,
        "report": result.report,
    }


def _failed_batches(runtime: Runtime, results: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Failed items from the Distributed Map's ResultWriter files, where the emulator writes them."""
    if not results or not results.get("Bucket") or not results.get("Key"):
        return []
    from docmill.storage import S3Store

    store = S3Store(results["Bucket"], "")
    try:
        manifest = store.read_json(results["Key"])
    except Exception:  # noqa: BLE001 - the result files are informative only
        return []
    out: list[dict[str, Any]] = []
    for entry in (manifest.get("ResultFiles") or {}).get("SUCCEEDED", []) or []:
        try:
            items = store.read_json(entry["Key"])
        except Exception:  # the result files are informative only
            logger.warning("unreadable Map result file %s", entry.get("Key"), exc_info=True)
            continue
        for item in items if isinstance(items, list) else []:
            output = item.get("Output")
            try:
                output = json.loads(output) if isinstance(output, str) else output
            except ValueError:
                continue
            if isinstance(output, dict) and output.get("status") == "failed":
                out.append({"batch": output.get("batch"), "error": output.get("error"), "cause": output.get("cause")})
    return out


class ExecutionResult(BaseModel):
    execution_arn: str
    status: str
    output: dict[str, Any] | None = None
    error: str | None = None
    cause: str | None = None


def start_generation(
    state_machine_arn: str,
    request: dict[str, Any],
    *,
    name: str | None = None,
    wait: bool = True,
    timeout_s: float = 3600.0,
    poll_s: float = 2.0,
) -> ExecutionResult:
    """Start the generation state machine (AWS or ``docmill dev``) and, with ``wait``, poll
    until the execution ends or ``timeout_s`` passes (then the status is still RUNNING)."""
    import time

    from docmill import aws

    PlanEvent.model_validate(request)  # refuse a request the plan step would reject
    sfn = aws.client("stepfunctions")
    name = name or clock.utc_now().strftime("gen-%Y%m%dT%H%M%SZ-") + uuid.uuid4().hex[:6]
    arn = sfn.start_execution(stateMachineArn=state_machine_arn, name=name, input=json.dumps(request))["executionArn"]
    deadline = time.monotonic() + timeout_s
    while True:
        described = sfn.describe_execution(executionArn=arn)
        if described["status"] != "RUNNING" or not wait or time.monotonic() >= deadline:
            break
        time.sleep(poll_s)
    output = described.get("output")
    return ExecutionResult(
        execution_arn=arn,
        status=described["status"],
        output=json.loads(output) if output else None,
        error=described.get("error"),
        cause=described.get("cause"),
    )
