"""Assemble: every shard of a plan -> curated, split datasets + card + provenance + run report.

The workflow's last task. Reads ``plan.json`` and ``shards/*`` from the work store, curates
across the whole dataset (dedup is global), splits by source document and writes the layout
described in ``docmill.datasets.writer`` to ``out``.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, Field

from docmill import __version__
from docmill.datasets.card import render_card
from docmill.datasets.formats import PREFERENCE_FORMATS, Example
from docmill.datasets.splits import assign_splits
from docmill.datasets.writer import SplitExample, write_datasets
from docmill.errors import EmptyDataset
from docmill.generation.curation import curate
from docmill.generation.models import STAGES, BatchReport, GeneratedRecord, StageStats, merge_counts
from docmill.generation.parsing import strip_citations
from docmill.clock import utc_iso
from docmill.generation.pipeline import load_plan
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
    stopped: str | None = None
    missing_shards: list[str] = Field(default_factory=list)


def _dist(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {"n": 0}
    vals = sorted(values)
    return {
        "n": len(vals),
        "min": round(vals[0], 2),
        "p50": round(statistics.median(vals), 2),
        "mean": round(statistics.fmean(vals), 2),
        "p90": round(vals[min(len(vals) - 1, int(0.9 * len(vals)))], 2),
        "max": round(vals[-1], 2),
    }


def _histogram(values: Sequence[float]) -> dict[str, int]:
    counts = Counter(str(round(v)) for v in values)
    return {str(k): counts.get(str(k), 0) for k in range(1, 6)}


def read_shards(work: ObjectStore, batch_ids: Sequence[str]) -> tuple[list[GeneratedRecord], list[BatchReport], list[str]]:
    records: list[GeneratedRecord] = []
    reports: list[BatchReport] = []
    missing: list[str] = []
    for batch_id in batch_ids:
        key = f"shards/{batch_id}"
        if not work.exists(f"{key}.jsonl"):
            missing.append(batch_id)
            continue
        records.extend(GeneratedRecord.model_validate(r) for r in work.read_jsonl(f"{key}.jsonl"))
        if work.exists(f"{key}.report.json"):
            reports.append(BatchReport.model_validate(work.read_json(f"{key}.report.json")))
    return records, reports, missing


def assemble(
    work: ObjectStore,
    out: ObjectStore,
    *,
    llm_accounting: dict[str, Any] | None = None,
    generation_seconds: float | None = None,
) -> AssembleResult:
    """Curate every shard of the plan in ``work`` and write the datasets to ``out``.
    Missing shards (a batch that failed for good) are reported, not fatal."""
    p = load_plan(work)
    cfg = p.config
    records, reports, missing = read_shards(work, [b.batch_id for b in p.batches])
    records.sort(key=lambda r: (r.order, r.id))

    answer_text = {r.id: strip_citations(r.chosen) if cfg.strip_citations else r.chosen for r in records}
    rejected_text = {r.id: strip_citations(r.rejected) if cfg.strip_citations else r.rejected for r in records}
    curated = curate(records, cfg.curation, answer_text=answer_text)

    per_source = Counter(r.source.source_uri for r in curated.kept)
    split_of = assign_splits(per_source, cfg.split.model_dump(), seed=cfg.seed)
    examples = [
        SplitExample(
            example=Example(
                id=r.id,
                instruction=r.instruction,
                input=r.input,
                chosen=answer_text[r.id],
                rejected=rejected_text[r.id],
                system=cfg.system_prompt,
            ),
            split=split_of[r.source.source_uri],
            is_pair=r.id in curated.pair_ids,
        )
        for r in curated.kept
    ]
    written = write_datasets(out, cfg.dataset, cfg.formats, examples, with_system=bool(cfg.system_prompt))

    # Provenance: one line per kept record, keyed by the id every format record carries.
    formats_of = {
        r.id: [f for f in cfg.formats if f not in PREFERENCE_FORMATS or r.id in curated.pair_ids] for r in curated.kept
    }
    provenance = [
        {
            "id": r.id,
            "run_id": p.run_id,
            "dataset": cfg.dataset,
            "split": split_of[r.source.source_uri],
            "formats": formats_of[r.id],
            "collection": r.collection,
            "tenant": r.tenant,
            "question_type": r.question_type,
            "source": r.source.model_dump(),
            "context": [c.model_dump() for c in r.context],
            "context_chunk_ids": [c.chunk_id for c in r.context],
            "context_pages": sorted({pg for c in r.context for pg in c.page_numbers}),
            "cited_chunk_ids": r.cited_chunk_ids,
            "source_in_top_k": r.source_in_top_k,
            "source_rank": r.source_rank,
            "rejected_strategy": r.rejected_strategy,
            "distractor_chunk_id": r.distractor_chunk_id,
            "model_id": r.model_id,
            "prompts": r.prompts,
            "params": r.params,
            "judge": {"chosen": r.judge_chosen.model_dump(), "rejected": r.judge_rejected.model_dump()},
            "margin": r.margin,
            "reference_output": r.reference_output,
            "answer_raw": r.chosen,
            "docmill_version": __version__,
        }
        for r in curated.kept
    ]
    out.write_jsonl("provenance.jsonl", provenance)

    gen_drops: dict[str, int] = {}
    stages: dict[str, StageStats] = {s: StageStats() for s in STAGES}
    tokens_used = 0
    calls: list[dict[str, Any]] = []
    errors: list[str] = []
    samples: list[dict[str, str]] = []
    stopped = None
    for rep in reports:
        gen_drops = merge_counts(gen_drops, rep.drops)
        for name, st in rep.stages.items():
            stages.setdefault(name, StageStats()).merge(st)
        tokens_used += rep.tokens_used
        calls.extend(c.model_dump() for c in rep.calls)
        errors.extend(rep.errors)
        samples.extend(rep.parse_failure_samples)
        stopped = stopped or rep.stopped
    all_drops = merge_counts(gen_drops, curated.drops)
    pair_count = len(curated.pair_ids)
    kept = curated.kept

    sources = [
        {
            "source_uri": src,
            "source_versions": sorted({r.source.source_version or "" for r in kept if r.source.source_uri == src}),
            "split": split_of[src],
            "records": n,
            "pairs": sum(1 for r in kept if r.source.source_uri == src and r.id in curated.pair_ids),
        }
        for src, n in sorted(per_source.items())
    ]
    stats = {
        "dataset": cfg.dataset,
        "collection": cfg.collection,
        "tenant": cfg.tenant,
        "run_id": p.run_id,
        "created_at": utc_iso(),
        "model_id": p.model_id or (kept[0].model_id if kept else None),
        "prompts": p.prompts,
        "formats": list(cfg.formats),
        "counts": written.counts,
        "archives": {f: a.__dict__ for f, a in written.archives.items()},
        "language": written.language,
        "license": cfg.license,
        "records_generated": len(records),
        "records_kept": len(kept),
        "preference_pairs": pair_count,
        "question_types": dict(Counter(r.question_type for r in kept)),
        "rejected_strategies": dict(Counter(r.rejected_strategy for r in kept)),
        "source_in_top_k_rate": round(sum(r.source_in_top_k for r in kept) / len(kept), 4) if kept else None,
        "lengths": {
            "question_chars": _dist([len(r.question) for r in kept]),
            "chosen_chars": _dist([len(answer_text[r.id]) for r in kept]),
            "rejected_chars": _dist([len(rejected_text[r.id]) for r in kept]),
        },
        "scores": {
            "chosen_mean": _dist([r.judge_chosen.score for r in kept]),
            "rejected_mean": _dist([r.judge_rejected.score for r in kept]),
            "margin": _dist([r.margin for r in kept]),
            "chosen_histogram": _histogram([r.judge_chosen.score for r in kept]),
            "rejected_histogram": _histogram([r.judge_rejected.score for r in kept]),
            "chosen_by_criterion": {
                c: _dist([getattr(r.judge_chosen, c) for r in kept]) for c in ("relevance", "groundedness", "helpfulness")
            },
        },
        "dedup": {
            "exact": curated.drops.get("duplicate_exact", 0),
            "near": curated.drops.get("duplicate_near", 0),
            "method": cfg.curation.dedup,
            "threshold": cfg.curation.near_duplicate_threshold,
        },
        "drops": {"generation": gen_drops, "curation": curated.drops, "not_a_pair": curated.pair_drops},
        "split_ratios": cfg.split.model_dump(),
        "seed": cfg.seed,
        "sources": sources,
        "curation": cfg.curation.model_dump(),
        "stopped": stopped,
    }
    out.write_text("README.md", render_card(stats), content_type="text/markdown; charset=utf-8")

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
        "stopped": stopped,
        "budget_tokens": cfg.budget_tokens,
        "tokens_used": tokens_used,
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
            "records_kept": len(kept),
            "preference_pairs": pair_count,
        },
        "stages": {k: v.model_dump() for k, v in stages.items()},
        "llm_client": llm_accounting,
        "drops": all_drops,
        "not_a_pair": curated.pair_drops,
        "counts": written.counts,
        "paths": written.paths,
        "generation_seconds": round(generation_seconds, 3) if generation_seconds is not None else None,
        "batch_seconds": [r.seconds for r in reports],
        "errors": errors[:100],
        "parse_failure_samples": samples[:20],
        "calls": calls[: cfg.keep_call_log],
        "calls_truncated": len(calls) > cfg.keep_call_log,
    }
    out.write_json("run_report.json", report)
    if not written.archives:
        # No trainer file was written; the card and the report say why, the exit code too.
        raise EmptyDataset(
            f"dataset {cfg.dataset!r}: no record for any of the formats {', '.join(cfg.formats)} "
            f"(generated {len(records)}, kept {len(kept)}, {len(errors)} errors, {len(missing)} missing "
            f"shards; drops {all_drops or 'none'}); see {out.uri('run_report.json')}"
        )

    return AssembleResult(
        run_id=p.run_id,
        dataset=cfg.dataset,
        out=out.uri(),
        records_generated=len(records),
        records_kept=len(kept),
        preference_pairs=pair_count,
        counts=written.counts,
        paths=written.paths,
        archives={f: a.__dict__ for f, a in written.archives.items()},
        drops=merge_counts(all_drops, curated.pair_drops),
        dataset_info=written.dataset_info,
        card=out.uri("README.md"),
        provenance=out.uri("provenance.jsonl"),
        report=out.uri("run_report.json"),
        stopped=stopped,
        missing_shards=missing,
    )


__all__ = ["AssembleResult", "assemble", "read_shards"]
