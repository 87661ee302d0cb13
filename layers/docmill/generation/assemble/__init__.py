"""Assemble: every shard of a plan -> curated, split datasets + card + provenance + run report.

The workflow's last task, in four units: ``curate`` (signals, judge, lengths, duplicates,
pairs: global across shards), ``split`` (by source document), ``write`` (dataset formats and
provenance, through ``docmill.datasets.writer``) and ``card`` (README.md with the quality
report and plots, quality.json). ``run_report.json`` holds the run's accounting.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from docmill import __version__
from docmill.errors import EmptyDataset
from docmill.generation.assemble.card import card_stats, write_card
from docmill.generation.assemble.curate import CurationResult, curate
from docmill.generation.assemble.split import split_by_source
from docmill.generation.assemble.write import provenance_rows, write_examples, write_provenance
from docmill.generation.models import STAGES, BatchReport, StageStats, merge_counts
from docmill.generation.parsing import strip_citations
from docmill.clock import utc_iso
from docmill.generation.pipeline.planning import load_plan
from docmill.generation.pipeline.shards import read_shards
from docmill.storage import ObjectStore


class AssembleResult(BaseModel):
    run_id: str
    dataset: str
    out: str
    records_generated: int
    records_kept: int
    preference_pairs: int
    counts: dict[str, dict[str, int]] = Field(default_factory=dict)
    paths: dict[str, dict[str, str]] = Field(default_factory=dict)
    archives: dict[str, dict[str, str | None]] = Field(default_factory=dict)
    drops: dict[str, int] = Field(default_factory=dict)
    dataset_info: str | None = None
    card: str
    provenance: str
    report: str
    quality: dict[str, Any] = Field(default_factory=dict)
    stopped: str | None = None
    missing_shards: list[str] = Field(default_factory=list)


def _merge_reports(reports: list[BatchReport]) -> dict[str, Any]:
    drops: dict[str, int] = {}
    stages: dict[str, StageStats] = {s: StageStats() for s in STAGES}
    merged: dict[str, Any] = {"tokens_used": 0, "calls": [], "errors": [], "samples": [], "stopped": None}
    for rep in reports:
        drops = merge_counts(drops, rep.drops)
        for name, st in rep.stages.items():
            stages.setdefault(name, StageStats()).merge(st)
        merged["tokens_used"] += rep.tokens_used
        merged["calls"].extend(c.model_dump() for c in rep.calls)
        merged["errors"].extend(rep.errors)
        merged["samples"].extend(rep.parse_failure_samples)
        merged["stopped"] = merged["stopped"] or rep.stopped
    merged["drops"] = drops
    merged["stages"] = stages
    return merged


def assemble(
    work: ObjectStore,
    out: ObjectStore,
    *,
    llm_accounting: dict[str, Any] | None = None,
    generation_seconds: float | None = None,
    plots: bool = True,
) -> AssembleResult:
    """Curate every shard of the plan in ``work`` and write the datasets to ``out``.
    Missing shards (a batch that failed for good) are reported, not fatal."""
    p = load_plan(work)
    cfg = p.config
    records, reports, missing = read_shards(work, [b.batch_id for b in p.batches])
    records.sort(key=lambda r: (r.order, r.id))

    answer_text = {r.id: strip_citations(r.chosen) if cfg.strip_citations else r.chosen for r in records}
    rejected_text = {r.id: strip_citations(r.rejected) if cfg.strip_citations else r.rejected for r in records}
    curated: CurationResult = curate(records, cfg.curation, answer_text=answer_text)
    split_of, per_source = split_by_source(curated.kept, cfg)
    written = write_examples(out, cfg, curated, split_of, answer_text, rejected_text)
    provenance = provenance_rows(p, curated, split_of)
    write_provenance(out, provenance)

    run = _merge_reports(reports)
    stats = card_stats(
        p,
        curated,
        counts=written.counts,
        archives={f: a.__dict__ for f, a in written.archives.items()},
        language=written.language,
        split_of=split_of,
        per_source=per_source,
        records_generated=len(records),
        gen_drops=run["drops"],
        answer_text=answer_text,
        rejected_text=rejected_text,
        stopped=run["stopped"],
        created_at=utc_iso(),
    )
    metrics = write_card(out, stats, provenance, plots=plots)
    all_drops = merge_counts(run["drops"], curated.drops)
    pair_count = len(curated.pair_ids)
    report = {
        "run_id": p.run_id,
        "dataset": cfg.dataset,
        "collection": cfg.collection,
        "tenant": cfg.tenant,
        "docmill_version": __version__,
        "plan_created_at": p.created_at,
        "assembled_at": utc_iso(),
        "model_id": stats["model_id"],
        "prompts": p.prompts,
        "config": cfg.model_dump(mode="json"),
        "plan": p.summary(),
        "stopped": run["stopped"],
        "budget_tokens": cfg.budget_tokens,
        "tokens_used": run["tokens_used"],
        "batches": {
            "planned": len(p.batches),
            "written": len(reports),
            "complete": sum(1 for r in reports if r.complete),
            "missing": missing,
        },
        "totals": {
            "chunks_planned": p.chunks_sampled,
            "chunks_done": sum(r.chunks_done for r in reports),
            "questions": sum(r.questions for r in reports),
            "records_generated": len(records),
            "records_kept": len(curated.kept),
            "preference_pairs": pair_count,
        },
        "quality": metrics,
        "stages": {k: v.model_dump() for k, v in run["stages"].items()},
        "llm_client": llm_accounting,
        "drops": all_drops,
        "not_a_pair": curated.pair_drops,
        "counts": written.counts,
        "paths": written.paths,
        "generation_seconds": round(generation_seconds, 3) if generation_seconds is not None else None,
        "batch_seconds": [r.seconds for r in reports],
        "errors": run["errors"][:100],
        "parse_failure_samples": run["samples"][:20],
        "calls": run["calls"][: cfg.keep_call_log],
        "calls_truncated": len(run["calls"]) > cfg.keep_call_log,
    }
    out.write_json("run_report.json", report)
    if not written.archives:
        # No trainer file was written; the card and the report say why, the exit code too.
        raise EmptyDataset(
            f"dataset {cfg.dataset!r}: no record for any of the formats {', '.join(cfg.formats)} "
            f"(generated {len(records)}, kept {len(curated.kept)}, {len(run['errors'])} errors, {len(missing)} missing "
            f"shards; drops {all_drops or 'none'}); see {out.uri('run_report.json')}"
        )

    return AssembleResult(
        run_id=p.run_id,
        dataset=cfg.dataset,
        out=out.uri(),
        records_generated=len(records),
        records_kept=len(curated.kept),
        preference_pairs=pair_count,
        counts=written.counts,
        paths=written.paths,
        archives={f: a.__dict__ for f, a in written.archives.items()},
        drops=merge_counts(all_drops, curated.pair_drops),
        dataset_info=written.dataset_info,
        card=out.uri("README.md"),
        provenance=out.uri("provenance.jsonl"),
        report=out.uri("run_report.json"),
        quality=metrics,
        stopped=run["stopped"],
        missing_shards=missing,
    )


__all__ = ["AssembleResult", "assemble", "read_shards"]
