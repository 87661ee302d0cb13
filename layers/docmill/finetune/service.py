"""Fine-tune jobs end to end, locally: validate, record, train, publish, record the outcome.

Used by ``docmill finetune`` and the HTTP API (``/api/v1/fine-tunes``). Bad input (no train
split, empty split, format/method mismatch, missing base model) is refused *before* a job record
or any output exists; a run that fails later is recorded as ``failed`` with its reason and
leaves no ``metrics.json`` at its destination.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Collection, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from docmill.errors import DocmillError, FinetuneError
from docmill.finetune.data import ChunkLookup, TrainingData, load_training_data
from docmill.finetune.jobs import JobRecord, JobStore
from docmill.finetune.model import BaseModel, resolve_base
from docmill.finetune.train import FinetuneParams, publish, run_training
from docmill.storage import ObjectStore, is_s3_uri, open_store


def open_dataset(location: str, params: FinetuneParams, chunks: ChunkLookup | None = None) -> TrainingData:
    store = open_store(location)
    parent: ObjectStore | None = None
    if not is_s3_uri(location):
        path = Path(location)
        if not path.is_dir():
            raise FinetuneError(f"dataset folder {location} does not exist")
        if (path / "train.jsonl").exists() or (path / "test.jsonl").exists():
            parent = open_store(str(path.parent))
    return load_training_data(store, fmt=params.format, method=params.method, parent=parent, chunks=chunks)


def collection_lookup(vector_store: Callable[[], Any] | None, home: Path | None) -> ChunkLookup:
    """Chunk texts from a workspace's collections: the vector store's chunks, then for ids it
    lacks ``<home>/<collection prefix>/sources/*/chunks.jsonl`` (what ingestion wrote). A
    collection that is gone or unreadable yields nothing: the fine-tune goes on, without a
    support score for the records it cannot place."""

    def lookup(collection: str, tenant: str | None, ids: Collection[str]) -> Mapping[str, str]:
        from docmill.generation.pipeline.planning import collection_chunks

        found: dict[str, str] = {}
        for from_index in (True, False):
            if (from_index and vector_store is None) or (not from_index and home is None):
                continue
            wanted = set(ids) - found.keys()
            if not wanted:
                break
            try:
                # collection_chunks reads the ingested files when given no store.
                store = vector_store() if from_index and vector_store is not None else None
                chunks = collection_chunks(store, collection, tenant=tenant, home=None if from_index else home)
                found.update({c.chunk_id: c.text for c in chunks if c.chunk_id in wanted})
            except DocmillError:
                continue
        return found

    return lookup


class LocalFinetuner:
    """Runs fine-tunes in this process and keeps their records in ``jobs``.

    ``models_root``: where a job's model goes when no ``out`` is given (``<root>/<tenant>/<job>``);
    ``work_root``: checkpoints while training (kept for ``resume`` until the job completes);
    ``cache_dir``: the base model converted from GGUF once;
    ``chunks``: where the test records' source contexts are looked up (for the support score).
    """

    def __init__(
        self,
        jobs: JobStore,
        *,
        models_root: str,
        work_root: Path,
        cache_dir: Path | None = None,
        trainer: Callable[..., Any] = run_training,
        chunks: ChunkLookup | None = None,
    ) -> None:
        self.jobs = jobs
        self.models_root = models_root.rstrip("/")
        self.work_root = work_root
        self.cache_dir = cache_dir
        self.trainer = trainer
        self.chunks = chunks

    def prepare(self, dataset: str, params: FinetuneParams) -> tuple[TrainingData, BaseModel, FinetuneParams]:
        """Everything that can be refused up front, before a job exists."""
        data = open_dataset(dataset, params, self.chunks)
        base = resolve_base(params.base, cache_dir=self.cache_dir)
        return data, base, replace(params, method=data.method, format=data.format)

    def create(self, tenant: str, dataset: str, params: FinetuneParams, *, out: str | None = None) -> tuple[JobRecord, TrainingData, BaseModel]:
        data, base, params = self.prepare(dataset, params)
        record = self.jobs.create(
            tenant,
            status="queued",
            dataset={"location": dataset, "resolved": data.location, "format": data.format, "counts": data.counts},
            params={**params.to_dict(), "base_model": base.name},
        )
        record.artefacts["out"] = out or f"{self.models_root}/{tenant}/{record.job_id}"
        self.jobs.save(record)
        return record, data, base

    def run(
        self,
        record: JobRecord,
        data: TrainingData,
        base: BaseModel,
        *,
        resume: bool = False,
        show_progress: bool = False,
        say: Callable[[str], None] = lambda _msg: None,
    ) -> JobRecord:
        params = FinetuneParams.from_dict(record.params)
        self.jobs.update(record, status="running", error=None)
        work_dir = self.work_root / record.tenant / record.job_id
        try:
            outcome = self.trainer(
                data, base, params, work_dir, cache_dir=self.cache_dir, resume=resume, show_progress=show_progress, say=say
            )
            artefacts = publish(work_dir, open_store(record.artefacts["out"]))
        except Exception as error:  # recorded whatever it was, then raised to the caller
            message = error.message if isinstance(error, FinetuneError) else f"{type(error).__name__}: {error}"
            self.jobs.update(record, status="failed", error=message)
            raise
        self.jobs.update(
            record,
            status="completed",
            metrics=outcome.metrics,
            artefacts={**record.artefacts, **artefacts},
        )
        shutil.rmtree(work_dir, ignore_errors=True)  # checkpoints are only needed to resume
        return record

    def start(self, tenant: str, dataset: str, params: FinetuneParams, *, out: str | None = None, **run: Any) -> JobRecord:
        record, data, base = self.create(tenant, dataset, params, out=out)
        return self.run(record, data, base, **run)

    def resume(self, tenant: str, job_id: str, **run: Any) -> JobRecord:
        record = self.jobs.get(tenant, job_id)
        if record.status == "completed":
            return record
        params = FinetuneParams.from_dict(record.params)
        data = open_dataset(record.dataset["location"], params, self.chunks)
        base = resolve_base(params.base, cache_dir=self.cache_dir)
        return self.run(record, data, base, resume=True, **run)

    def adapter_dir(self, tenant: str, job_id: str) -> Path:
        """A local folder holding the job's adapter (downloaded from S3 into the work root)."""
        record = self.jobs.get(tenant, job_id)
        if record.status != "completed" or "adapter" not in record.artefacts:
            raise FinetuneError(f"fine-tune {job_id} is {record.status}: no adapter to serve")
        location = record.artefacts["adapter"]
        if not is_s3_uri(location):
            return Path(location)
        target = self.work_root / tenant / "adapters" / job_id
        if not (target / "adapter_config.json").is_file():
            store = open_store(location)
            partial = target.with_name(target.name + ".partial")
            shutil.rmtree(partial, ignore_errors=True)
            for info in store.list(""):
                path = partial / info.key
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(store.read_bytes(info.key))
            partial.replace(target)
        return target


def workspace_finetuner(
    home: Path, *, jobs: str | None = None, vector_store: Callable[[], Any] | None = None
) -> LocalFinetuner:
    """The fine-tune service of a docmill workspace (CLI and local API share it): job records in
    ``<home>/jobs`` (or ``jobs``: a folder or S3 prefix), models in ``<home>/models/<tenant>/<job>``,
    checkpoints in ``<home>/finetune``, the converted base model in ``<home>/models/base``, source
    contexts from the workspace's collections (``vector_store`` opens its index)."""
    from docmill.finetune.jobs import JobStore

    return LocalFinetuner(
        JobStore(open_store(jobs or str(home / "jobs"))),
        models_root=str(home / "models"),
        work_root=home / "finetune",
        cache_dir=home / "models" / "base",
        chunks=collection_lookup(vector_store, home),
    )
