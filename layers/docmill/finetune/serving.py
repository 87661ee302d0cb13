"""Fine-tunes behind the HTTP API: the ``FinetuneService`` of ``docmill.api`` and the chat
model resolver that answers ``"model": "<job_id>"`` with the tenant's tuned adapter, locally.

- ``POST /api/v1/fine-tunes`` (and the brief's ``POST /api/fine-tune``) validate the request and
  the tenant's dataset *before* answering 202, then train in one background thread (training
  keeps the CPU busy; jobs queue). ``GET`` lists / reads the tenant's job records.
- A dataset is named, never given as a path: it must be one of the caller's own datasets
  (``<home>/tenants/<tenant>/datasets/<name>``, what ``POST /api/v1/datasets`` writes).
- The resolver loads base + adapter once per job (LoRA merged into the weights) and serves it
  through the same local LLM code as the base model. Another tenant's job id is "not found".
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from docmill.api.errors import InvalidRequest, NotFound
from docmill.api.tenants import Principal
from docmill.errors import DatasetInvalid, FinetuneError, JobNotFound
from docmill.finetune.jobs import is_job_id
from docmill.finetune.model import BaseModel as BaseModelRef
from docmill.finetune.model import load_base, resolve_base
from docmill.finetune.service import LocalFinetuner
from docmill.finetune.train import FinetuneParams
from docmill.llm.base import LLMClient
from docmill.llm.local import LocalLLM, _Loaded

_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"


class FinetuneRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")  # the brief's route also sends user_id

    dataset: str = Field(pattern=_NAME, description="one of the tenant's datasets, by name")
    format: str | None = None
    method: str | None = Field(None, pattern="^(sft|dpo)$")
    epochs: float = Field(1.0, gt=0, le=20)
    lora_r: int = Field(8, ge=1, le=256)
    max_steps: int | None = Field(None, ge=1)
    eval_samples: int = Field(16, ge=0, le=256)


class LocalFinetuneService:
    """Implements ``docmill.api.finetune.FinetuneService`` over a :class:`LocalFinetuner`."""

    def __init__(self, finetuner: LocalFinetuner, *, datasets_root: Callable[[str], Path], base: str = "local") -> None:
        self.finetuner = finetuner
        self.datasets_root = datasets_root
        self.base = base
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="docmill-finetune")

    def start(self, principal: Principal, request: dict[str, Any]) -> dict[str, Any]:
        try:
            req = FinetuneRequest.model_validate(request)
        except ValidationError as error:
            raise InvalidRequest(f"invalid fine-tune request: {error.errors()[0]['loc']}: {error.errors()[0]['msg']}") from None
        folder = self.datasets_root(principal.tenant) / req.dataset
        if not folder.is_dir():
            raise NotFound(f"no dataset {req.dataset!r}")
        params = FinetuneParams(method=req.method, format=req.format, base=self.base, epochs=req.epochs,
                                lora_r=req.lora_r, max_steps=req.max_steps, eval_samples=req.eval_samples)
        try:
            record, data, base = self.finetuner.create(principal.tenant, str(folder), params)
        except (DatasetInvalid, FinetuneError) as error:
            raise InvalidRequest(error.message) from None
        answer = {"id": record.job_id, **record.summary()}  # before the worker starts changing it
        self._pool.submit(self._run, record, data, base)
        return answer

    def _run(self, record: Any, data: Any, base: Any) -> None:
        # The job record says failed and why; the server goes on.
        with contextlib.suppress(Exception):
            self.finetuner.run(record, data, base)

    def get(self, principal: Principal, job_id: str) -> dict[str, Any]:
        try:
            record = self.finetuner.jobs.get(principal.tenant, job_id)
        except JobNotFound:
            raise NotFound(f"no fine-tune {job_id!r}") from None
        return {"id": record.job_id, **record.summary()}

    def list(self, principal: Principal) -> list[dict[str, Any]]:
        return [{"id": r.job_id, **r.summary()} for r in self.finetuner.jobs.list(principal.tenant)]

    def drain(self, timeout: float = 600.0) -> None:
        self._pool.submit(lambda: None).result(timeout=timeout)

    def resolver(self, fallback: Callable[[str, str | None], LLMClient]) -> Callable[[str, str | None], LLMClient]:
        """Chat's model resolver: a job id of the caller's tenant -> its adapter; else ``fallback``."""
        return adapter_resolver(self.finetuner, fallback)


class AdapterLLM(LocalLLM):
    """The local LLM with a LoRA adapter merged into its base weights (loaded once per adapter)."""

    _adapters: dict[str, _Loaded] = {}
    _adapters_lock = threading.Lock()

    def __init__(self, *, base: BaseModelRef, adapter_dir: Path, cache_dir: Path | None, model_id: str) -> None:
        super().__init__(cache_dir=cache_dir, model_id=model_id, batching=False)
        self.base = base
        self.adapter_dir = adapter_dir

    def loaded(self) -> _Loaded:
        key = str(self.adapter_dir.resolve())
        with self._adapters_lock:
            loaded = self._adapters.get(key)
            if loaded is None:
                from peft import PeftModel

                model, tokenizer = load_base(self.base, cache_dir=self.cache_dir)
                merged = PeftModel.from_pretrained(model, str(self.adapter_dir)).merge_and_unload()
                merged.eval()
                loaded = self._adapters[key] = _Loaded(merged, tokenizer)
            return loaded


def adapter_resolver(
    finetuner: LocalFinetuner, fallback: Callable[[str, str | None], LLMClient]
) -> Callable[[str, str | None], LLMClient]:
    def resolve(tenant: str, model: str | None) -> LLMClient:
        if not model or not is_job_id(model):
            return fallback(tenant, model)
        try:
            record = finetuner.jobs.get(tenant, model)
            adapter = finetuner.adapter_dir(tenant, model)
        except (JobNotFound, FinetuneError):
            raise NotFound(f"no model {model!r} for this tenant") from None
        base = resolve_base(str(record.params.get("base", "local")), cache_dir=finetuner.cache_dir)
        return AdapterLLM(base=base, adapter_dir=adapter, cache_dir=finetuner.cache_dir, model_id=model)

    return resolve


def tenant_datasets(home: Path) -> Callable[[str], Path]:
    """Where the API writes a tenant's datasets (``docmill.api.datasets.LocalDatasetRunner``)."""

    def root(tenant: str) -> Path:
        if not re.match(_NAME, tenant):
            raise NotFound("no such tenant")
        return Path(home) / "tenants" / tenant / "datasets"

    return root
