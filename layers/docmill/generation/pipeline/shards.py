"""Shard I/O in the work store: one finished batch -> ``shards/<batch_id>.jsonl`` (records) +
``shards/<batch_id>.report.json`` (BatchReport); and reading them back for assembly."""

from __future__ import annotations

from collections.abc import Sequence

from docmill.generation.models import BatchReport, GeneratedRecord
from docmill.generation.pipeline.calls import Sink
from docmill.storage import ObjectStore


def shard_key(batch_id: str) -> str:
    return f"shards/{batch_id}"


def write_shard(work: ObjectStore, sink: Sink) -> None:
    key = shard_key(sink.spec.batch_id)
    work.write_jsonl(f"{key}.jsonl", [r.model_dump(mode="json") for r in sorted(sink.records, key=lambda r: r.order)])
    work.write_json(f"{key}.report.json", sink.report.model_dump(mode="json"))


def read_report(work: ObjectStore, batch_id: str) -> BatchReport | None:
    key = f"{shard_key(batch_id)}.report.json"
    return BatchReport.model_validate(work.read_json(key)) if work.exists(key) else None


def resumable(work: ObjectStore, batch_id: str) -> BatchReport | None:
    """The report of a batch a resumed run may keep as it is, else None.

    Kept: a complete shard (records file and its report, which is written second) none of whose
    LLM calls failed. A batch that met LLM errors (an outage, throttling) is generated again,
    so re-running after a failed run retries what failed instead of keeping empty shards."""
    if not work.exists(f"{shard_key(batch_id)}.jsonl"):
        return None
    report = read_report(work, batch_id)
    if report is None or not report.complete or any(k.startswith("llm_error:") for k in report.drops):
        return None
    return report


def read_shards(work: ObjectStore, batch_ids: Sequence[str]) -> tuple[list[GeneratedRecord], list[BatchReport], list[str]]:
    """Records and reports of the given batches; batches without a shard are returned as missing."""
    records: list[GeneratedRecord] = []
    reports: list[BatchReport] = []
    missing: list[str] = []
    for batch_id in batch_ids:
        key = shard_key(batch_id)
        if not work.exists(f"{key}.jsonl"):
            missing.append(batch_id)
            continue
        records.extend(GeneratedRecord.model_validate(r) for r in work.read_jsonl(f"{key}.jsonl"))
        report = read_report(work, batch_id)
        if report is not None:
            reports.append(report)
    return records, reports, missing
