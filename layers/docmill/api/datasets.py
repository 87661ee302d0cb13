"""Dataset generation for a tenant's collection, started from the API.

Locally a background worker runs ``docmill.generation.run_generation`` (what
``docmill generate`` runs); on AWS the generation Step Functions workflow is started with the
tenant taken from the credential, and the status is read back from the execution.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from docmill.api.errors import InvalidRequest, NotFound
from docmill.api.ids import is_id, new_id
from docmill.api.state import StateStore, now_iso
from docmill.api.tenants import Principal, check_name

KIND = "dataset"


class DatasetRequest(BaseModel):
    collection: str = "default"
    name: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
    questions_per_chunk: int = Field(3, ge=1, le=20)
    max_chunks: int | None = Field(None, ge=1, le=100_000)
    formats: list[str] | None = None
    budget_tokens: int | None = Field(None, ge=1)


class DatasetRunner(ABC):
    @abstractmethod
    def start(self, tenant: str, record: dict[str, Any], request: DatasetRequest) -> dict[str, Any]:
        """Start the job; return fields to store on the record."""

    def refresh(self, tenant: str, record: dict[str, Any]) -> dict[str, Any] | None:
        """Fields that changed since the record was written (None: nothing to ask)."""
        return None


class LocalDatasetRunner(DatasetRunner):
    """One background generation at a time (it keeps the model and the CPU busy)."""

    def __init__(self, home: Path, state: StateStore, *, generate: Callable[..., Any]) -> None:
        self.home = Path(home)
        self.state = state
        self.generate = generate  # (tenant, config, out_dir) -> GenerationResult
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="docmill-datasets")

    def start(self, tenant: str, record: dict[str, Any], request: DatasetRequest) -> dict[str, Any]:
        out = self.home / "tenants" / tenant / "datasets" / record["name"]
        self._pool.submit(self._run, tenant, record["id"], request, out)
        return {"out": str(out)}

    def _run(self, tenant: str, dataset_id: str, request: DatasetRequest, out: Path) -> None:
        from docmill.generation import GenerationConfig

        record = self.state.update(tenant, KIND, dataset_id, status="running", updated=now_iso())
        if record is None:
            return
        try:
            extra = {"formats": request.formats} if request.formats else {}
            config = GenerationConfig(collection=request.collection, dataset=record["name"], tenant=tenant,
                                      questions_per_chunk=request.questions_per_chunk, max_chunks=request.max_chunks,
                                      budget_tokens=request.budget_tokens, **extra)
            result = self.generate(tenant, config, out)
            a = result.assembled
            fields = {"status": "succeeded", "reason": result.stopped,
                      "result": {"records_kept": a.get("records_kept"), "counts": a.get("counts"),
                                 "preference_pairs": a.get("preference_pairs"), "out": a.get("out")}}
        except Exception as exc:  # noqa: BLE001 - the job reports its failure; the server goes on
            fields = {"status": "failed", "reason": str(getattr(exc, "message", exc))}
        self.state.update(tenant, KIND, dataset_id, updated=now_iso(), **fields)

    def drain(self, timeout: float = 120.0) -> None:
        self._pool.submit(lambda: None).result(timeout=timeout)


class StepFunctionsDatasetRunner(DatasetRunner):
    """AWS: one execution of the generation workflow per request (input = ``PlanEvent``)."""

    _STATUS = {"RUNNING": "running", "SUCCEEDED": "succeeded", "FAILED": "failed", "TIMED_OUT": "failed",
               "ABORTED": "failed", "PENDING_REDRIVE": "failed"}

    def __init__(self, state_machine_arn: str, *, sfn_client: Any) -> None:
        self.arn = state_machine_arn
        self.sfn = sfn_client

    def start(self, tenant: str, record: dict[str, Any], request: DatasetRequest) -> dict[str, Any]:
        payload = {"collection": request.collection, "dataset": record["name"], "tenant": tenant,
                   "run_id": record["id"], "out_prefix": f"{tenant}/",
                   **request.model_dump(exclude={"collection", "name"}, exclude_none=True)}
        out = self.sfn.start_execution(stateMachineArn=self.arn, name=record["id"], input=json.dumps(payload))
        return {"execution_arn": out["executionArn"], "status": "running"}

    def refresh(self, tenant: str, record: dict[str, Any]) -> dict[str, Any] | None:
        if record.get("status") in ("succeeded", "failed") or not record.get("execution_arn"):
            return None
        out = self.sfn.describe_execution(executionArn=record["execution_arn"])
        status = self._STATUS.get(out["status"], "running")
        if status == record.get("status"):
            return None
        fields: dict[str, Any] = {"status": status, "updated": now_iso()}
        if status == "failed":
            fields["reason"] = out.get("cause") or out.get("error") or out["status"].lower()
        elif status == "succeeded" and out.get("output"):
            fields["result"] = json.loads(out["output"])
        return fields


class DatasetService:
    def __init__(self, state: StateStore, runner: DatasetRunner) -> None:
        self.state = state
        self.runner = runner

    def start(self, principal: Principal, request: DatasetRequest) -> dict[str, Any]:
        check_name(request.collection, "collection")
        if request.formats:
            from docmill.datasets.formats import ALL_FORMATS

            unknown = sorted(set(request.formats) - set(ALL_FORMATS))
            if unknown:
                raise InvalidRequest(f"unknown formats {unknown}; use {list(ALL_FORMATS)}")
        did = new_id("ds")
        record = {"id": did, "name": request.name or f"{request.collection}-{did[3:]}", "collection": request.collection,
                  "status": "queued", "reason": None, "result": None, "created": now_iso(), "updated": now_iso()}
        self.state.put(principal.tenant, KIND, did, record)
        try:
            fields = self.runner.start(principal.tenant, record, request)
        except Exception:
            self.state.delete(principal.tenant, KIND, did)
            raise
        return self.state.update(principal.tenant, KIND, did, **fields) or record

    def get(self, principal: Principal, dataset_id: str) -> dict[str, Any]:
        record = self.state.get(principal.tenant, KIND, dataset_id) if is_id(dataset_id, "ds") else None
        if record is None:
            raise NotFound(f"no dataset {dataset_id!r}")
        changed = self.runner.refresh(principal.tenant, record)
        if changed:
            record = self.state.update(principal.tenant, KIND, dataset_id, **changed) or record
        return record

    def list(self, principal: Principal) -> list[dict[str, Any]]:
        return self.state.list(principal.tenant, KIND, newest_first=True)
