"""Card: the dataset's statistics -> ``README.md`` (``docmill.datasets.card``) with the quality
report (``docmill.quality.report``: table and plots) appended, and ``quality.json``."""

from __future__ import annotations

import logging
import statistics
from collections import Counter
from collections.abc import Sequence
from typing import Any

from docmill.datasets.card import render_card
from docmill.generation.assemble.curate import CurationResult
from docmill.generation.models import GeneratedRecord, GenerationPlan
from docmill.quality.report import markdown_section, quality_metrics, render_plots
from docmill.storage import ObjectStore

log = logging.getLogger(__name__)


def dist(values: Sequence[float]) -> dict[str, float]:
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


def histogram(values: Sequence[float]) -> dict[str, int]:
    counts = Counter(str(round(v)) for v in values)
    return {str(k): counts.get(str(k), 0) for k in range(1, 6)}


def card_stats(
    p: GenerationPlan,
    curated: CurationResult,
    *,
    counts: dict[str, dict[str, int]],
    archives: dict[str, Any],
    language: Any,
    split_of: dict[str, str],
    per_source: Counter[str],
    records_generated: int,
    gen_drops: dict[str, int],
    answer_text: dict[str, str],
    rejected_text: dict[str, str],
    stopped: str | None,
    created_at: str,
) -> dict[str, Any]:
    cfg = p.config
    kept = curated.kept
    judged = [r for r in kept if r.judge_chosen is not None and r.judge_rejected is not None]

    def score(r: GeneratedRecord, side: str) -> float:
        verdict = getattr(r, f"judge_{side}")
        return float(verdict.score)

    return {
        "dataset": cfg.dataset,
        "collection": cfg.collection,
        "tenant": cfg.tenant,
        "run_id": p.run_id,
        "created_at": created_at,
        "model_id": p.model_id or (kept[0].model_id if kept else None),
        "prompts": p.prompts,
        "formats": list(cfg.formats),
        "counts": counts,
        "archives": archives,
        "language": language,
        "license": cfg.license,
        "records_generated": records_generated,
        "records_kept": len(kept),
        "preference_pairs": len(curated.pair_ids),
        "question_types": dict(Counter(r.question_type for r in kept)),
        "rejected_strategies": dict(Counter(r.rejected_strategy for r in kept)),
        "source_in_top_k_rate": round(sum(r.source_in_top_k for r in kept) / len(kept), 4) if kept else None,
        "lengths": {
            "question_chars": dist([len(r.question) for r in kept]),
            "chosen_chars": dist([len(answer_text[r.id]) for r in kept]),
            "rejected_chars": dist([len(rejected_text[r.id]) for r in kept]),
        },
        "scores": {
            "chosen_mean": dist([score(r, "chosen") for r in judged]),
            "rejected_mean": dist([score(r, "rejected") for r in judged]),
            "margin": dist([r.margin or 0.0 for r in judged]),
            "chosen_histogram": histogram([score(r, "chosen") for r in judged]),
            "rejected_histogram": histogram([score(r, "rejected") for r in judged]),
            "chosen_by_criterion": {
                c: dist([getattr(r.judge_chosen, c) for r in judged]) for c in ("relevance", "groundedness", "helpfulness")
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
        "sources": [
            {
                "source_uri": src,
                "source_versions": sorted({r.source.source_version or "" for r in kept if r.source.source_uri == src}),
                "split": split_of[src],
                "records": n,
                "pairs": sum(1 for r in kept if r.source.source_uri == src and r.id in curated.pair_ids),
            }
            for src, n in sorted(per_source.items())
        ],
        "curation": cfg.curation.model_dump(),
        "stopped": stopped,
    }


def write_card(out: ObjectStore, stats: dict[str, Any], provenance: list[dict[str, Any]], *, plots: bool = True) -> dict[str, Any]:
    """Writes README.md (card + quality section), quality.json and the plots; returns the metrics."""
    metrics = quality_metrics(provenance)
    plot_keys: list[str] = []
    if plots and provenance:
        try:
            plot_keys = render_plots(provenance, out)
        except ImportError:  # a runtime packaged without matplotlib still gets the table
            log.warning("matplotlib is not installed: the quality report has no plots")
    metrics["plots"] = plot_keys
    out.write_json("quality.json", metrics)
    card = render_card(stats).rstrip() + "\n\n" + markdown_section(metrics, plot_keys)
    out.write_text("README.md", card, content_type="text/markdown; charset=utf-8")
    return metrics
