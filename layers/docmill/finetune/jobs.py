"""Fine-tune job records, one JSON object per job, per tenant, in any ObjectStore.

Key: ``<tenant>/<job_id>.json`` under the jobs location (``<home>/jobs`` locally, an S3 prefix
on AWS). A record is rewritten whole at each status change (the store writes atomically), so a
reader sees the old state or the new one. Another tenant's job id is simply not found.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, UTC
from typing import Any

from docmill.errors import ConfigurationError, JobNotFound, StorageError
from docmill.storage import ObjectStore

STATUSES = ("queued", "running", "completed", "failed")
_TENANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_JOB_ID = re.compile(r"^ft-[0-9]{8}-[0-9]{6}-[0-9a-f]{6}$")


def new_job_id(now: float | None = None) -> str:
    stamp = datetime.fromtimestamp(now if now is not None else time.time(), tz=UTC)
    return f"ft-{stamp:%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def is_job_id(value: str) -> bool:
    return bool(_JOB_ID.match(value))


@dataclass
class JobRecord:
    job_id: str
    tenant: str
    status: str = "queued"
    on: str = "local"  # local | sagemaker
    created_at: float = 0.0
    updated_at: float = 0.0
    dataset: dict[str, Any] = field(default_factory=dict)  # location, format, counts
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)  # {"base": {...}, "tuned": {...}, ...}
    artefacts: dict[str, str] = field(default_factory=dict)  # adapter, card, plot, metrics URIs
    error: str | None = None
    remote: dict[str, Any] = field(default_factory=dict)  # SageMaker job name/ARN, cost estimate

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, value: dict[str, Any]) -> JobRecord:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in value.items() if k in known})

    def summary(self) -> dict[str, Any]:
        """What ``--json`` and the API answer: the issue's keys plus the record's context."""
        return {
            "job_id": self.job_id,
            "status": self.status,
            "adapter": self.artefacts.get("adapter"),
            "metrics": self.metrics,
            "tenant": self.tenant,
            "on": self.on,
            "dataset": self.dataset,
            "params": self.params,
            "artefacts": self.artefacts,
            "error": self.error,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            **({"remote": self.remote} if self.remote else {}),
        }


class JobStore:
    def __init__(self, store: ObjectStore, *, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock

    @staticmethod
    def _key(tenant: str, job_id: str) -> str:
        if not _TENANT.match(tenant):
            raise ConfigurationError(f"invalid tenant name {tenant!r}")
        return f"{tenant}/{job_id}.json"

    def create(self, tenant: str, *, job_id: str | None = None, **values: Any) -> JobRecord:
        now = self.clock()
        record = JobRecord(job_id=job_id or new_job_id(now), tenant=tenant, created_at=now, updated_at=now, **values)
        self.save(record)
        return record

    def save(self, record: JobRecord) -> JobRecord:
        if record.status not in STATUSES:
            raise ValueError(f"unknown job status {record.status!r}")
        record.updated_at = self.clock()
        self.store.write_json(self._key(record.tenant, record.job_id), record.to_dict())
        return record

    def update(self, record: JobRecord, **changes: Any) -> JobRecord:
        for key, value in changes.items():
            setattr(record, key, value)
        return self.save(record)

    def get(self, tenant: str, job_id: str) -> JobRecord:
        if not is_job_id(job_id):
            raise JobNotFound(f"no fine-tune job {job_id!r}")
        key = self._key(tenant, job_id)
        try:
            if not self.store.exists(key):
                raise JobNotFound(f"no fine-tune job {job_id!r}")
            return JobRecord.from_dict(self.store.read_json(key))
        except StorageError as error:
            raise JobNotFound(f"no fine-tune job {job_id!r}") from error

    def list(self, tenant: str) -> list[JobRecord]:
        prefix = self._key(tenant, "x").rsplit("/", 1)[0] + "/"
        records = [
            JobRecord.from_dict(self.store.read_json(info.key))
            for info in self.store.list(prefix)
            if info.key.endswith(".json")
        ]
        return sorted(records, key=lambda r: r.created_at, reverse=True)
