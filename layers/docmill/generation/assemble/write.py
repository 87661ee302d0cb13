"""Write: kept records -> dataset files in every format (``docmill.datasets.writer``) and
``provenance.jsonl`` (one line per kept record, keyed by the id every format record carries)."""

from __future__ import annotations

from typing import Any

from docmill import __version__
from docmill.datasets.formats import PREFERENCE_FORMATS, Example
from docmill.datasets.writer import SplitExample, write_datasets
from docmill.generation.assemble.curate import CurationResult
from docmill.generation.models import GenerationConfig, GenerationPlan
from docmill.storage import ObjectStore


def write_examples(
    out: ObjectStore,
    cfg: GenerationConfig,
    curated: CurationResult,
    split_of: dict[str, str],
    answer_text: dict[str, str],
    rejected_text: dict[str, str],
) -> Any:
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
    return write_datasets(out, cfg.dataset, cfg.formats, examples, with_system=bool(cfg.system_prompt))


def provenance_rows(p: GenerationPlan, curated: CurationResult, split_of: dict[str, str]) -> list[dict[str, Any]]:
    cfg = p.config
    rows = []
    for r in curated.kept:
        is_pair = r.id in curated.pair_ids
        rows.append(
            {
                "id": r.id,
                "run_id": p.run_id,
                "dataset": cfg.dataset,
                "split": split_of[r.source.source_uri],
                "formats": [f for f in cfg.formats if f not in PREFERENCE_FORMATS or is_pair],
                "pair": is_pair,
                "collection": r.collection,
                "tenant": r.tenant,
                "question_type": r.question_type,
                "question_source": r.question_source,
                "answer_mode": r.answer_mode,
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
                "judge": {
                    "chosen": r.judge_chosen.model_dump() if r.judge_chosen else None,
                    "rejected": r.judge_rejected.model_dump() if r.judge_rejected else None,
                },
                "margin": r.margin,
                "quality": r.quality,
                "reference_output": r.reference_output,
                "answer_raw": r.chosen,
                "docmill_version": __version__,
            }
        )
    return rows


def write_provenance(out: ObjectStore, rows: list[dict[str, Any]]) -> None:
    out.write_jsonl("provenance.jsonl", rows)
