"""Running the generation steps: one batch (the workflow's map task) or a whole run in-process."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from pydantic import BaseModel, Field

from docmill.embeddings.base import Embedder
from docmill.errors import ConfigurationError
from docmill.generation.models import GenerationConfig, GenerationPlan
from docmill.generation.pipeline.calls import TokenBudget
from docmill.generation.pipeline.engine import GenerationEngine, ProgressCallback
from docmill.generation.pipeline.planning import load_batch, load_plan, load_work_prompts, plan
from docmill.generation.pipeline.shards import read_report, resumable, write_shard
from docmill.generation.prompts import PromptSet, load_prompts
from docmill.llm.base import LLMClient
from docmill.models import ChunkRecord
from docmill.storage import ObjectStore
from docmill.vectorstores.base import VectorStore


class BatchResult(BaseModel):
    batch_id: str
    shard: str
    records: int
    complete: bool
    stopped: str | None = None
    drops: dict[str, int] = Field(default_factory=dict)
    tokens_used: int = 0
    reused: bool = False  # an existing complete shard was kept


def generate_batch(
    work: ObjectStore,
    batch_id: str,
    *,
    llm: LLMClient,
    store: VectorStore,
    embedder: Embedder,
    prompts: PromptSet | None = None,
    progress: ProgressCallback | None = None,
    budget_tokens: int | None = None,
    overwrite: bool = False,
) -> BatchResult:
    """One batch of the plan -> ``shards/<batch_id>.jsonl`` (+ report). The workflow's map task.

    Uses the plan's config and prompts, so every batch of a run behaves the same; the token
    budget is the plan's per-batch share unless ``budget_tokens`` is given. A batch whose
    complete shard already exists is not generated again (a retried task costs no tokens)
    unless ``overwrite``."""
    p = load_plan(work)
    spec = next((b for b in p.batches if b.batch_id == batch_id), None)
    if spec is None:
        raise ConfigurationError(f"batch {batch_id!r} is not in the plan at {work.uri('plan.json')}")
    done = read_report(work, batch_id) if not overwrite and work.exists(f"shards/{batch_id}.jsonl") else None
    if done is not None and done.complete:
        return BatchResult(
            batch_id=batch_id,
            shard=work.uri(f"shards/{batch_id}.jsonl"),
            records=done.records,
            complete=True,
            stopped=done.stopped,
            drops=done.drops,
            tokens_used=done.tokens_used,
            reused=True,
        )
    chunks = load_batch(work, spec)
    engine = GenerationEngine(
        config=p.config,
        prompts=prompts or load_work_prompts(work),
        llm=llm,
        store=store,
        embedder=embedder,
        budget=TokenBudget(budget_tokens if budget_tokens is not None else p.per_batch_budget),
        progress=progress,
        on_batch_done=lambda sink: write_shard(work, sink),
    )
    (sink,) = engine.run([(spec, chunks)])
    return BatchResult(
        batch_id=batch_id,
        shard=work.uri(f"shards/{batch_id}.jsonl"),
        records=len(sink.records),
        complete=sink.report.complete,
        stopped=sink.report.stopped,
        drops=sink.report.drops,
        tokens_used=sink.report.tokens_used,
    )


# --- in-process full run --------------------------------------------------------------------


class GenerationResult(BaseModel):
    plan: dict[str, Any]
    assembled: dict[str, Any]
    stopped: str | None = None


def run_generation(
    chunks: Iterable[ChunkRecord],
    config: GenerationConfig,
    *,
    llm: LLMClient,
    store: VectorStore,
    embedder: Embedder,
    out: ObjectStore,
    prompts: PromptSet | None = None,
    work: ObjectStore | None = None,
    progress: ProgressCallback | None = None,
    on_plan: Callable[[GenerationPlan], None] | None = None,
    resume: bool = True,
) -> GenerationResult:
    """Plan, generate every batch on one shared thread pool and budget, assemble. The work
    store defaults to ``<out>/_work``.

    With ``resume`` (the default), a run over the same work as the one stored there (a run that
    was killed, or failed before assembling) keeps that plan and its run id, skips every batch
    whose complete shard is written (``shards.resumable``), and spends only what is left of the token budget; shards
    are whole files keyed by batch, so a batch is counted once whether it was generated before
    or after the interruption."""
    # Imported here: assembly reads what this module writes, not the other way round.
    from docmill.generation.assemble import assemble

    prompts = prompts or load_prompts()
    work = work if work is not None else out.child("_work")
    started = time.perf_counter()
    the_plan = plan(chunks, config, prompts=prompts, work=work, model_id=llm.model_id, resume=resume)
    if on_plan:
        on_plan(the_plan)
    kept = {spec.batch_id: resumable(work, spec.batch_id) for spec in the_plan.batches} if resume else {}
    reused = {b for b, report in kept.items() if report is not None}
    spent = sum(report.tokens_used for report in kept.values() if report is not None)
    batches = [(spec, load_batch(work, spec)) for spec in the_plan.batches if spec.batch_id not in reused]
    budget = None if config.budget_tokens is None else max(0, config.budget_tokens - spent)
    engine = GenerationEngine(
        config=config,
        prompts=prompts,
        llm=llm,
        store=store,
        embedder=embedder,
        budget=TokenBudget(budget),
        progress=progress,
        on_batch_done=lambda sink: write_shard(work, sink),
    )
    engine.run(batches)
    assembled = assemble(
        work,
        out,
        llm_accounting=llm.accounting.model_dump(),
        generation_seconds=time.perf_counter() - started,
    )
    return GenerationResult(plan=the_plan.summary(), assembled=assembled.model_dump(), stopped=engine.stopped_reason)
