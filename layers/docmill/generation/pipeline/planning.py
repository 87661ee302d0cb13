"""Planning: sample chunks, pick distractors, cut batches, estimate calls and tokens.

``plan`` writes to the work store (``ObjectStore``) what every later step reads::

    plan.json                       GenerationPlan (config, batches, estimate)
    prompts.json                    the exact prompt templates every batch uses
    batches/<batch_id>.jsonl        input chunks of a batch (no embeddings) + distractors

``plan.json`` is removed first and written last, so a plan killed half-way is never taken for
complete. With ``resume=True`` an existing plan for exactly the same work (config, model,
prompts, batch inputs) is kept with its shards, so a killed run picks up where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import random
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from docmill.errors import ConfigurationError, StorageError, VectorStoreError
from docmill.generation.models import BatchSpec, GenerationConfig, GenerationPlan, PlanEstimate
from docmill.generation.parsing import QUESTION_TYPES
from docmill.generation.prompts import PROMPT_KINDS, PromptSet, PromptTemplate, load_prompts
from docmill.clock import utc_iso, utc_now
from docmill.llm.base import ChatMessage, GenerationParams
from docmill.llm.tokens import estimate_messages_tokens
from docmill.models import ChunkRecord
from docmill.names import collection_prefix
from docmill.storage import ObjectStore
from docmill.vectorstores.base import SearchHit, VectorStore



# --- chunks in ------------------------------------------------------------------------------


class Distractor(BaseModel):
    chunk_id: str
    source_uri: str
    text: str


class BatchChunk(BaseModel):
    chunk: ChunkRecord
    distractors: list[Distractor] = Field(default_factory=list)


def collection_chunks(
    store: VectorStore | None,
    collection: str,
    *,
    tenant: str | None = None,
    home: Path | None = None,
) -> Iterable[ChunkRecord]:
    """Every chunk of a collection: from the vector store (``iter_chunks``) when it offers it,
    else from the ingested ``<home>/collections/<collection>/sources/*/chunks.jsonl`` files."""
    iter_chunks = getattr(store, "iter_chunks", None) if store is not None else None
    if callable(iter_chunks):
        try:
            it = iter(iter_chunks(collection, tenant=tenant))
            first = next(it, None)
        except VectorStoreError:
            if home is None:
                raise
        else:
            if first is not None:
                yield first
                yield from it
            return
    if home is None:
        raise ConfigurationError("the vector store cannot list chunks and no home folder was given")
    root = Path(home) / collection_prefix(collection, tenant) / "sources"
    if not root.is_dir():
        raise ConfigurationError(f"collection {collection!r} has no ingested sources under {root}")
    for path in sorted(root.glob("*/chunks.jsonl")):
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    rec = ChunkRecord.model_validate_json(line)
                    if tenant is None or rec.tenant == tenant:
                        yield rec


def sample_chunks(chunks: Sequence[ChunkRecord], max_chunks: int | None, seed: int) -> list[ChunkRecord]:
    """Seeded sample that spreads over sources: shuffle each source's chunks, then take them
    round-robin across sources (in a shuffled source order)."""
    by_source: dict[str, list[ChunkRecord]] = defaultdict(list)
    for c in sorted(chunks, key=lambda c: (c.source_uri, c.chunk_index, c.chunk_id)):
        by_source[c.source_uri].append(c)
    rng = random.Random(seed)
    sources = sorted(by_source)
    rng.shuffle(sources)
    for src in sources:
        rng.shuffle(by_source[src])
    limit = len(chunks) if max_chunks is None else min(max_chunks, len(chunks))
    picked: list[ChunkRecord] = []
    depth = 0
    while len(picked) < limit:
        progressed = False
        for src in sources:
            if depth < len(by_source[src]):
                picked.append(by_source[src][depth])
                progressed = True
                if len(picked) >= limit:
                    break
        if not progressed:
            break
        depth += 1
    return picked


def pick_distractors(chunk: ChunkRecord, pool: Sequence[ChunkRecord], rng: random.Random, n: int = 2) -> list[Distractor]:
    """Up to ``n`` random chunks, preferably from other documents. Random probing keeps this
    O(n) per chunk, so planning stays fast on large collections."""
    chosen: list[ChunkRecord] = []
    if len(pool) > 1:
        for attempt in range(40 * n):
            if len(chosen) >= n:
                break
            cand = pool[rng.randrange(len(pool))]
            if cand.chunk_id == chunk.chunk_id or any(c.chunk_id == cand.chunk_id for c in chosen):
                continue
            # Same-document chunks only once other documents were given a fair chance.
            if cand.source_uri == chunk.source_uri and attempt < 20 * n:
                continue
            chosen.append(cand)
    return [Distractor(chunk_id=c.chunk_id, source_uri=c.source_uri, text=c.text) for c in chosen]


# --- planning -------------------------------------------------------------------------------


def question_types(config: GenerationConfig, chunk_id: str) -> list[str]:
    """A mix of types per chunk, rotating where it starts so every type is used."""
    start = int(hashlib.sha256(f"{config.seed}:{chunk_id}".encode()).hexdigest(), 16) % len(QUESTION_TYPES)
    return [QUESTION_TYPES[(start + i) % len(QUESTION_TYPES)] for i in range(config.questions_per_chunk)]


def stage_params(config: GenerationConfig, stage: str, template: PromptTemplate) -> GenerationParams:
    override = config.stage_params.get(stage)
    extra = override.model_dump() if override else {}
    return template.generation_params(GenerationParams(seed=config.seed), **extra)


def chunk_title(chunk: ChunkRecord) -> str:
    meta_title = chunk.metadata.get("title") if isinstance(chunk.metadata, dict) else None
    return str(meta_title or chunk.section_title or Path(chunk.source_uri).name or "")


def context_item(hit: SearchHit) -> dict[str, Any]:
    """What prompt templates see of one retrieved chunk: text, title, pages and a ready label."""
    title = str(hit.metadata.get("title") or hit.section_title or Path(hit.source_uri).name or "")
    pages = list(hit.page_numbers)
    label = title + (f", p. {', '.join(map(str, pages))}" if pages else "")
    return {"text": hit.text, "title": title, "pages": pages, "label": label, "chunk_id": hit.chunk_id}


def question_messages(prompts: PromptSet, config: GenerationConfig, chunk: ChunkRecord) -> list[ChatMessage]:
    types = question_types(config, chunk.chunk_id)
    return prompts.question.render(
        chunk=chunk.text, n=len(types), types=types, title=chunk_title(chunk), pages=chunk.page_numbers
    )


def estimate_plan(prompts: PromptSet, config: GenerationConfig, chunks: Sequence[ChunkRecord]) -> PlanEstimate:
    """Calls and tokens if every call succeeds once (corrective retries not included)."""
    q = config.questions_per_chunk
    n = len(chunks)
    calls = {
        "question": n,
        "answer": n * q,
        "rejected": n * q,
        "judge": 2 * n * q,
    }
    est = PlanEstimate(calls=calls, total_calls=sum(calls.values()))
    if not chunks:
        return est
    p = {k: stage_params(config, k, prompts.get(k)) for k in PROMPT_KINDS}
    avg_chars = sum(len(c.text) for c in chunks) / n
    question_in = sum(estimate_messages_tokens(question_messages(prompts, config, c)) for c in chunks)
    ctx = [{"text": "x" * int(avg_chars), "title": "t", "pages": [], "label": "t", "chunk_id": ""}] * config.top_k
    qtext = "x" * 120  # a typical question
    answer_in = estimate_messages_tokens(prompts.answer.render(context=ctx, question=qtext))
    distractor = "x" * int(avg_chars) if config.rejected_strategy != "no_context" else ""
    rejected_in = estimate_messages_tokens(prompts.rejected.render(question=qtext, distractor=distractor))
    judge_in = estimate_messages_tokens(prompts.judge.render(context=ctx, question=qtext, answer="x" * 2 * p["answer"].max_tokens))
    est.input_tokens = question_in + n * q * (answer_in + rejected_in + 2 * judge_in)
    est.output_tokens = n * p["question"].max_tokens + n * q * (
        p["answer"].max_tokens + p["rejected"].max_tokens + 2 * p["judge"].max_tokens
    )
    return est


def plan(
    chunks: Iterable[ChunkRecord],
    config: GenerationConfig,
    *,
    prompts: PromptSet | None = None,
    work: ObjectStore | None = None,
    model_id: str | None = None,
    run_id: str | None = None,
    resume: bool = False,
) -> GenerationPlan:
    """Sample chunks and cut them into batches; with ``work``, write plan, prompts and batch
    inputs there (replacing an earlier plan's batches and shards, unless ``resume`` finds that
    plan is for the same work: then it is returned as it is, shards kept). Without ``work`` it
    only computes (dry run)."""
    prompts = prompts or load_prompts()
    all_chunks = [c.model_copy(update={"embedding": None}) for c in chunks]
    usable = [c for c in all_chunks if len(c.text.strip()) >= config.min_chunk_chars]
    sampled = sample_chunks(usable, config.max_chunks, config.seed)
    rng = random.Random(config.seed + 1)
    batches: list[BatchSpec] = []
    batch_inputs: dict[str, list[BatchChunk]] = {}
    for start in range(0, len(sampled), config.batch_size):
        batch_id = f"b{start // config.batch_size:05d}"
        members = sampled[start : start + config.batch_size]
        batch_inputs[batch_id] = [BatchChunk(chunk=c, distractors=pick_distractors(c, usable, rng)) for c in members]
        batches.append(
            BatchSpec(
                batch_id=batch_id,
                index=len(batches),
                key=f"batches/{batch_id}.jsonl",
                chunk_ids=[c.chunk_id for c in members],
            )
        )
    budget = config.budget_tokens
    digest = hashlib.sha256()
    for batch_id, inputs in batch_inputs.items():
        digest.update(batch_id.encode())
        for bc in inputs:
            digest.update(json.dumps(bc.model_dump(mode="json"), sort_keys=True).encode())
    result = GenerationPlan(
        run_id=run_id or utc_now().strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6],
        created_at=utc_iso(),
        config=config,
        chunks_available=len(all_chunks),
        chunks_skipped_short=len(all_chunks) - len(usable),
        chunks_sampled=len(sampled),
        sources=len({c.source_uri for c in sampled}),
        batches=batches,
        estimate=estimate_plan(prompts, config, sampled),
        per_batch_budget=(max(1, budget // len(batches)) if budget and batches else budget),
        model_id=model_id,
        prompts=prompts.refs(),
        inputs_sha256=digest.hexdigest(),
    )
    if work is not None and resume:
        previous = _same_work(work, result)
        if previous is not None:
            return previous
    if work is not None:
        work.delete("plan.json")  # first: a plan half-replaced must not look complete
        work.delete_prefix("batches")
        work.delete_prefix("shards")
        for spec in batches:
            work.write_jsonl(spec.key, [bc.model_dump(mode="json") for bc in batch_inputs[spec.batch_id]])
        work.write_json("prompts.json", prompts.model_dump(mode="json"))
        work.write_json("plan.json", result.model_dump(mode="json"))
    return result


def _same_work(work: ObjectStore, fresh: GenerationPlan) -> GenerationPlan | None:
    """The stored plan when it describes exactly ``fresh``'s work (its run id kept), else None."""
    if not work.exists("plan.json"):
        return None
    try:
        old = GenerationPlan.model_validate(work.read_json("plan.json"))
    except (StorageError, ValueError):
        return None
    same = (
        old.inputs_sha256 is not None
        and old.inputs_sha256 == fresh.inputs_sha256
        and old.config == fresh.config
        and old.model_id == fresh.model_id
        and old.prompts == fresh.prompts
        and [b.model_dump() for b in old.batches] == [b.model_dump() for b in fresh.batches]
    )
    return old if same else None


def load_plan(work: ObjectStore) -> GenerationPlan:
    try:
        return GenerationPlan.model_validate(work.read_json("plan.json"))
    except StorageError as exc:
        raise ConfigurationError(f"no generation plan at {work.uri('plan.json')}: run plan first") from exc


def load_batch(work: ObjectStore, spec: BatchSpec) -> list[BatchChunk]:
    return [BatchChunk.model_validate(r) for r in work.read_jsonl(spec.key)]


def load_work_prompts(work: ObjectStore) -> PromptSet:
    return PromptSet.model_validate(work.read_json("prompts.json"))
