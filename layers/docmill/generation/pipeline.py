"""The generation pipeline: plan -> generate batches (shards) -> assemble datasets.

The three steps are separate functions so the AWS workflow can run them as separate tasks
(plan; a Distributed Map of generate-batch over ``plan.batches``; assemble), exchanging only
object keys in a *work store* (``ObjectStore``)::

    plan.json                       GenerationPlan (config, batches, estimate)
    prompts.json                    the exact prompt templates every batch uses
    batches/<batch_id>.jsonl        input chunks of a batch (no embeddings) + distractors
    shards/<batch_id>.jsonl         GeneratedRecord lines of a finished batch
    shards/<batch_id>.report.json   BatchReport (calls, tokens, drops) of that batch

``run_generation`` does all three in-process with one thread pool across batches. Per
question: retrieve context (filtered to collection/tenant), answer with it (chosen), answer
without it or with a distractor (rejected), judge both. Model output is parsed strictly with
repair and one corrective retry; what still fails is counted and dropped. A token budget stops
the run cleanly: no new calls start, finished work is written.
"""

from __future__ import annotations

import hashlib
import logging
import random
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from docmill.embeddings.base import Embedder
from docmill.clock import utc_iso
from docmill.errors import (
    BudgetExhausted,
    ConfigurationError,
    DocmillError,
    LLMError,
    StorageError,
    VectorStoreError,
)
from docmill.generation.models import (
    BatchReport,
    BatchSpec,
    CallLog,
    ContextRef,
    GeneratedRecord,
    GenerationConfig,
    GenerationPlan,
    JudgeScores,
    PlanEstimate,
    SourceRef,
    merge_counts,
)
from docmill.generation.parsing import (
    QUESTION_TYPES,
    OutputParseError,
    QuestionItem,
    cited_numbers,
    parse_judge,
    parse_questions,
)
from docmill.generation.prompts import PROMPT_KINDS, PromptSet, PromptTemplate, load_prompts
from docmill.llm.tokens import estimate_messages_tokens, estimate_tokens
from docmill.llm.base import ChatMessage, GenerationParams, LLMClient, LLMResponse
from docmill.models import ChunkRecord
from docmill.names import collection_prefix
from docmill.storage import ObjectStore
from docmill.vectorstores.base import SearchFilter, SearchHit, VectorStore

log = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int, int], None]  # (chunks_done, chunks_total, records)

_CORRECTIVE = (
    "Your previous reply could not be used: {error}. Reply again with ONLY the JSON the "
    "instructions ask for: no explanation, no code fence, double-quoted keys and strings."
)


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


def _pick_distractors(chunk: ChunkRecord, pool: Sequence[ChunkRecord], rng: random.Random, n: int = 2) -> list[Distractor]:
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


def _question_types(config: GenerationConfig, chunk_id: str) -> list[str]:
    """A mix of types per chunk, rotating where it starts so every type is used."""
    start = int(hashlib.sha256(f"{config.seed}:{chunk_id}".encode()).hexdigest(), 16) % len(QUESTION_TYPES)
    return [QUESTION_TYPES[(start + i) % len(QUESTION_TYPES)] for i in range(config.questions_per_chunk)]


def _stage_params(config: GenerationConfig, stage: str, template: PromptTemplate) -> GenerationParams:
    override = config.stage_params.get(stage)
    extra = override.model_dump() if override else {}
    return template.generation_params(GenerationParams(seed=config.seed), **extra)


def _chunk_title(chunk: ChunkRecord) -> str:
    meta_title = chunk.metadata.get("title") if isinstance(chunk.metadata, dict) else None
    return str(meta_title or chunk.section_title or Path(chunk.source_uri).name or "")


def context_item(hit: SearchHit) -> dict[str, Any]:
    """What prompt templates see of one retrieved chunk: text, title, pages and a ready label."""
    title = str(hit.metadata.get("title") or hit.section_title or Path(hit.source_uri).name or "")
    pages = list(hit.page_numbers)
    label = title + (f", p. {', '.join(map(str, pages))}" if pages else "")
    return {"text": hit.text, "title": title, "pages": pages, "label": label, "chunk_id": hit.chunk_id}


def question_messages(prompts: PromptSet, config: GenerationConfig, chunk: ChunkRecord) -> list[ChatMessage]:
    types = _question_types(config, chunk.chunk_id)
    return prompts.question.render(
        chunk=chunk.text, n=len(types), types=types, title=_chunk_title(chunk), pages=chunk.page_numbers
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
    p = {k: _stage_params(config, k, prompts.get(k)) for k in PROMPT_KINDS}
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
) -> GenerationPlan:
    """Sample chunks and cut them into batches; with ``work``, write plan, prompts and batch
    inputs there (replacing an earlier plan's batches and shards). Without ``work`` it only
    computes (dry run)."""
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
        batch_inputs[batch_id] = [BatchChunk(chunk=c, distractors=_pick_distractors(c, usable, rng)) for c in members]
        batches.append(
            BatchSpec(
                batch_id=batch_id,
                index=len(batches),
                key=f"batches/{batch_id}.jsonl",
                chunk_ids=[c.chunk_id for c in members],
            )
        )
    budget = config.budget_tokens
    result = GenerationPlan(
        run_id=run_id or datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6],
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
    )
    if work is not None:
        work.delete_prefix("batches")
        work.delete_prefix("shards")
        for spec in batches:
            work.write_jsonl(spec.key, [bc.model_dump(mode="json") for bc in batch_inputs[spec.batch_id]])
        work.write_json("prompts.json", prompts.model_dump(mode="json"))
        work.write_json("plan.json", result.model_dump(mode="json"))
    return result


def load_plan(work: ObjectStore) -> GenerationPlan:
    try:
        return GenerationPlan.model_validate(work.read_json("plan.json"))
    except StorageError as exc:
        raise ConfigurationError(f"no generation plan at {work.uri('plan.json')}: run plan first") from exc


def load_batch(work: ObjectStore, spec: BatchSpec) -> list[BatchChunk]:
    return [BatchChunk.model_validate(r) for r in work.read_jsonl(spec.key)]


def load_work_prompts(work: ObjectStore) -> PromptSet:
    return PromptSet.model_validate(work.read_json("prompts.json"))


# --- accounting and budget ------------------------------------------------------------------


class TokenBudget:
    """A token budget shared by all threads. Each call reserves its worst case (prompt estimate
    + max_tokens) before it starts and settles to the real usage after, so the total never
    passes the limit by more than the estimate's error."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.used = 0
        self._reserved = 0
        self._lock = threading.Lock()
        self.exhausted = False

    def reserve(self, tokens: int) -> int:
        with self._lock:
            if self.limit is not None and (self.exhausted or self.used + self._reserved + tokens > self.limit):
                self.exhausted = True
                raise BudgetExhausted(f"token budget of {self.limit} reached ({self.used} used)")
            self._reserved += tokens
            return tokens

    def settle(self, reserved: int, actual: int) -> None:
        with self._lock:
            self._reserved -= reserved
            self.used += actual


@dataclass
class _Sink:
    """Per-batch results and stats; the engine updates it under one lock."""

    spec: BatchSpec
    report: BatchReport
    records: list[GeneratedRecord] = field(default_factory=list)
    chunks_left: int = 0
    written: bool = False


class _Caller:
    def __init__(self, llm: LLMClient, budget: TokenBudget, lock: threading.Lock, keep_calls: int) -> None:
        self.llm = llm
        self.budget = budget
        self.lock = lock
        self.keep_calls = keep_calls

    def call(self, sink: _Sink, stage: str, chunk_id: str, messages: list[ChatMessage], params: GenerationParams) -> LLMResponse:
        reserved = self.budget.reserve(estimate_messages_tokens(messages) + params.max_tokens)
        started = time.perf_counter()
        try:
            response = self.llm.chat(messages, params)
        except LLMError as exc:
            self.budget.settle(reserved, 0)
            with self.lock:
                st = sink.report.stage(stage)
                st.calls += 1
                st.failures += 1
                st.latency_s += time.perf_counter() - started
                self._log(sink, CallLog(stage=stage, chunk_id=chunk_id, ok=False, error=f"{exc.code}: {exc.message}"[:300]))
            raise
        except BaseException:
            self.budget.settle(reserved, 0)
            raise
        used = response.usage.input_tokens + response.usage.output_tokens
        if used == 0:  # an endpoint that reports no usage still spends budget
            used = estimate_messages_tokens(messages) + estimate_tokens(response.text)
        self.budget.settle(reserved, used)
        latency = response.latency_s or (time.perf_counter() - started)
        with self.lock:
            st = sink.report.stage(stage)
            st.calls += 1
            st.input_tokens += response.usage.input_tokens
            st.output_tokens += response.usage.output_tokens
            st.latency_s += latency
            sink.report.tokens_used += used
            self._log(
                sink,
                CallLog(
                    stage=stage,
                    chunk_id=chunk_id,
                    ok=True,
                    input_tokens=response.usage.input_tokens,
                    output_tokens=response.usage.output_tokens,
                    latency_s=round(latency, 4),
                ),
            )
        return response

    @staticmethod
    def _sample(sink: _Sink, stage: str, chunk_id: str, exc: OutputParseError, text: str) -> None:
        if len(sink.report.parse_failure_samples) < 10:
            sink.report.parse_failure_samples.append(
                {"stage": stage, "chunk_id": chunk_id, "error": exc.message[:200], "reply": text[:400]}
            )

    def _log(self, sink: _Sink, entry: CallLog) -> None:
        if len(sink.report.calls) < self.keep_calls:
            sink.report.calls.append(entry)

    def call_json(
        self,
        sink: _Sink,
        stage: str,
        chunk_id: str,
        messages: list[ChatMessage],
        params: GenerationParams,
        parser: Callable[[str], Any],
        prefill: str | None = None,
    ) -> tuple[Any, int]:
        """Call, parse (with repair); on failure retry once with a corrective message. Returns
        (parsed, tokens used). Raises ``OutputParseError`` when the retry fails too.

        With ``prefill`` (for clients that continue an assistant message) the reply is primed
        with it and the parser reads prefill + continuation."""
        primer = [ChatMessage(role="assistant", content=prefill)] if prefill and self.llm.supports_prefill else []
        head = prefill if primer and prefill else ""
        response = self.call(sink, stage, chunk_id, [*messages, *primer], params)
        tokens = response.usage.input_tokens + response.usage.output_tokens
        try:
            parsed = parser(head + response.text)
        except OutputParseError as exc:
            with self.lock:
                st = sink.report.stage(stage)
                st.parse_failures += 1
                st.corrective_retries += 1
                self._sample(sink, stage, chunk_id, exc, response.text)
            retry = [
                *messages,
                ChatMessage(role="assistant", content=(head + response.text)[:4000] or "(empty)"),
                ChatMessage(role="user", content=_CORRECTIVE.format(error=exc.message)),
                *primer,
            ]
            response = self.call(sink, stage, chunk_id, retry, params)
            tokens += response.usage.input_tokens + response.usage.output_tokens
            try:
                parsed = parser(head + response.text)
            except OutputParseError as exc:
                with self.lock:
                    st = sink.report.stage(stage)
                    st.parse_failures += 1
                    st.dropped += 1
                    self._sample(sink, stage, chunk_id, exc, response.text)
                raise
        if getattr(parsed, "repairs", None):
            with self.lock:
                sink.report.stage(stage).repaired += 1
        return parsed, tokens


# --- per-chunk and per-question work --------------------------------------------------------


@dataclass
class _QuestionTask:
    sink: _Sink
    batch_index: int
    chunk_index: int
    q_index: int
    bc: BatchChunk
    item: QuestionItem
    hits: list[SearchHit]


def record_id(collection: str, chunk_id: str, q_index: int, question: str) -> str:
    key = f"{collection}\n{chunk_id}\n{q_index}\n{' '.join(question.split()).casefold()}"
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:24]


def _judge_scores(verdict: Any) -> JudgeScores:
    return JudgeScores(
        relevance=verdict.relevance,
        groundedness=verdict.groundedness,
        helpfulness=verdict.helpfulness,
        answerable=verdict.answerable,
        reason=verdict.reason[:500],
        score=verdict.score,
    )


class GenerationEngine:
    """Runs chunk tasks (question generation + retrieval) and question tasks (answer, rejected
    answer, two judge calls) on one thread pool, with a bounded number in flight."""

    def __init__(
        self,
        *,
        config: GenerationConfig,
        prompts: PromptSet,
        llm: LLMClient,
        store: VectorStore,
        embedder: Embedder,
        budget: TokenBudget,
        progress: ProgressCallback | None = None,
        on_batch_done: Callable[[_Sink], None] | None = None,
    ) -> None:
        self.config = config
        self.prompts = prompts
        self.llm = llm
        self.store = store
        self.embedder = embedder
        self.budget = budget
        self.progress = progress
        self.on_batch_done = on_batch_done
        self.lock = threading.Lock()
        self.caller = _Caller(llm, budget, self.lock, config.keep_call_log)
        self.params = {k: _stage_params(config, k, prompts.get(k)) for k in PROMPT_KINDS}
        self.stop = threading.Event()
        self.stopped_reason: str | None = None
        self.chunks_done = 0
        self.records_done = 0
        self.chunks_total = 0

    # chunk -> questions + retrieval
    def _chunk_task(self, sink: _Sink, bc: BatchChunk) -> list[tuple[QuestionItem, list[SearchHit]]] | None:
        chunk = bc.chunk
        if self.stop.is_set():
            self._drop(sink, "chunk_not_started_budget")
            return None
        messages = question_messages(self.prompts, self.config, chunk)
        types = _question_types(self.config, chunk.chunk_id)
        try:
            parsed, _ = self.caller.call_json(
                sink, "question", chunk.chunk_id, messages, self.params["question"],
                lambda text: parse_questions(text, expected_types=types),
                prefill=self.prompts.question.render_prefill(types=types, n=len(types)),
            )
        except BudgetExhausted:
            self._budget_hit(sink, "chunk_budget_exhausted")
            return None
        except OutputParseError:
            self._drop(sink, "question_json_invalid")
            return None
        except LLMError as exc:
            self._drop(sink, f"llm_error:question:{exc.code}")
            return None
        items: list[QuestionItem] = parsed.items[: self.config.questions_per_chunk]
        with self.lock:
            if parsed.invalid_items:
                sink.report.drop("question_item_invalid", parsed.invalid_items)
            sink.report.questions += len(items)
        try:
            vectors = self.embedder.embed_documents([it.question for it in items])
            filters = SearchFilter(collection=self.config.collection, tenant=self.config.tenant)
            hits = [self.store.search(v, k=self.config.top_k, filters=filters) for v in vectors]
        except DocmillError as exc:
            self._drop(sink, f"retrieval_error:{exc.code}", len(items))
            return None
        return list(zip(items, hits, strict=True))

    def _drop(self, sink: _Sink, reason: str, n: int = 1) -> None:
        with self.lock:
            sink.report.drop(reason, n)

    def _budget_hit(self, sink: _Sink, reason: str) -> None:
        with self.lock:
            sink.report.drop(reason)
            sink.report.stopped = "budget"
            self.stopped_reason = "budget"
        self.stop.set()

    def _rejected_strategy(self, rid: str) -> str:
        strategy = self.config.rejected_strategy
        if strategy == "mixed":
            bit = int(hashlib.sha256(f"{self.config.seed}:{rid}".encode()).hexdigest(), 16) & 1
            return "distractor" if bit else "no_context"
        return strategy

    def _question_task(self, t: _QuestionTask) -> GeneratedRecord | None:
        sink, chunk, item = t.sink, t.bc.chunk, t.item
        cid = chunk.chunk_id
        if self.stop.is_set():
            self._drop(sink, "question_budget_exhausted")
            return None
        if not t.hits:
            self._drop(sink, "no_context_retrieved")
            return None
        question = item.question
        rid = record_id(self.config.collection, cid, t.q_index, question)
        context = [context_item(h) for h in t.hits]
        hit_ids = [h.chunk_id for h in t.hits]
        strategy = self._rejected_strategy(rid)
        distractor = next((d for d in t.bc.distractors if d.chunk_id not in hit_ids and d.chunk_id != cid), None)
        if strategy == "distractor" and distractor is None:
            strategy = "no_context"
        tokens = 0
        stage = "answer"
        try:
            answer = self.caller.call(sink, "answer", cid, self.prompts.answer.render(context=context, question=question), self.params["answer"])
            tokens += answer.usage.input_tokens + answer.usage.output_tokens
            chosen = answer.text.strip()
            if not chosen:
                self._drop(sink, "empty_answer")
                return None
            stage = "rejected"
            rej_msgs = self.prompts.rejected.render(
                question=question, distractor=distractor.text if strategy == "distractor" and distractor else ""
            )
            rej = self.caller.call(sink, "rejected", cid, rej_msgs, self.params["rejected"])
            tokens += rej.usage.input_tokens + rej.usage.output_tokens
            rejected = rej.text.strip()
            if not rejected:
                self._drop(sink, "empty_rejected_answer")
                return None
            stage = "judge_chosen"
            jc, n1 = self.caller.call_json(
                sink, "judge_chosen", cid,
                self.prompts.judge.render(context=context, question=question, answer=chosen),
                self.params["judge"], parse_judge, prefill=self.prompts.judge.render_prefill(),
            )
            stage = "judge_rejected"
            jr, n2 = self.caller.call_json(
                sink, "judge_rejected", cid,
                self.prompts.judge.render(context=context, question=question, answer=rejected),
                self.params["judge"], parse_judge, prefill=self.prompts.judge.render_prefill(),
            )
            tokens += n1 + n2
        except BudgetExhausted:
            self._budget_hit(sink, "question_budget_exhausted")
            return None
        except OutputParseError:
            self._drop(sink, f"{stage}_json_invalid")
            return None
        except LLMError as exc:
            self._drop(sink, f"llm_error:{stage}:{exc.code}")
            return None
        cited = cited_numbers(chosen)
        source_rank = next((i + 1 for i, h in enumerate(t.hits) if h.chunk_id == cid), None)
        return GeneratedRecord(
            id=rid,
            collection=self.config.collection,
            tenant=chunk.tenant,
            question_type=item.type,
            instruction=item.instruction,
            input=item.input,
            reference_output=item.output,
            chosen=chosen,
            rejected=rejected,
            rejected_strategy=strategy,
            distractor_chunk_id=distractor.chunk_id if strategy == "distractor" and distractor else None,
            source=SourceRef(
                chunk_id=cid,
                source_uri=chunk.source_uri,
                source_version=chunk.source_version,
                source_sha256=chunk.source_sha256,
                page_numbers=chunk.page_numbers,
                section_title=chunk.section_title,
                chunk_index=chunk.chunk_index,
                file_type=chunk.file_type,
            ),
            context=[
                ContextRef(
                    rank=i + 1,
                    chunk_id=h.chunk_id,
                    score=round(float(h.score), 6),
                    source_uri=h.source_uri,
                    source_version=h.source_version,
                    page_numbers=h.page_numbers,
                )
                for i, h in enumerate(t.hits)
            ],
            source_in_top_k=source_rank is not None,
            source_rank=source_rank,
            cited_chunk_ids=[hit_ids[n - 1] for n in cited if 1 <= n <= len(hit_ids)],
            judge_chosen=_judge_scores(jc.verdict),
            judge_rejected=_judge_scores(jr.verdict),
            model_id=self.llm.model_id,
            prompts=self.prompts.refs(),
            params={k: v.model_dump(exclude_none=True) for k, v in self.params.items()},
            usage={"tokens": tokens},  # this question's own calls (answer, rejected, judges)
            order=[t.batch_index, t.chunk_index, t.q_index],
        )

    def _finish_chunk(self, sink: _Sink) -> None:
        with self.lock:
            sink.chunks_left -= 1
            sink.report.chunks_done += 1
            self.chunks_done += 1
            done_batch = sink.chunks_left == 0 and not sink.written
            if done_batch:
                sink.written = True
            done, total, records = self.chunks_done, self.chunks_total, self.records_done
        if self.progress:
            self.progress(done, total, records)
        if done_batch and self.on_batch_done:
            self.on_batch_done(sink)

    def run(self, batches: Sequence[tuple[BatchSpec, list[BatchChunk]]]) -> list[_Sink]:
        sinks = [
            _Sink(spec=spec, report=BatchReport(batch_id=spec.batch_id, chunks=len(chunks)), chunks_left=len(chunks))
            for spec, chunks in batches
        ]
        work: list[tuple[int, int, _Sink, BatchChunk]] = [
            (spec.index, ci, sinks[pos], bc)
            for pos, (spec, chunks) in enumerate(batches)
            for ci, bc in enumerate(chunks)
        ]
        self.chunks_total = len(work)
        for sink in sinks:
            if sink.chunks_left == 0 and self.on_batch_done:
                sink.written = True
                self.on_batch_done(sink)
        started = time.perf_counter()
        pending_chunks = iter(work)
        ready: list[_QuestionTask] = []
        outstanding: dict[tuple[int, int], int] = {}
        in_flight: dict[Future[Any], tuple[str, Any]] = {}
        limit = self.config.concurrency * 2
        exhausted = False
        with ThreadPoolExecutor(max_workers=self.config.concurrency, thread_name_prefix="docmill-gen") as pool:
            while True:
                while len(in_flight) < limit and not self.stop.is_set():
                    if ready:  # finish started chunks before opening new ones
                        task = ready.pop(0)
                        in_flight[pool.submit(self._question_task, task)] = ("question", task)
                        continue
                    if exhausted:
                        break
                    nxt = next(pending_chunks, None)
                    if nxt is None:
                        exhausted = True
                        break
                    bi, ci, sink, bc = nxt
                    in_flight[pool.submit(self._chunk_task, sink, bc)] = ("chunk", nxt)
                if not in_flight:
                    break
                done, _ = wait(list(in_flight), return_when=FIRST_COMPLETED)
                for fut in done:
                    kind, payload = in_flight.pop(fut)
                    try:
                        result = fut.result()
                    except Exception as exc:  # a bug must not lose the finished work of the run
                        log.exception("generation task failed")
                        sink = payload[2] if kind == "chunk" else payload.sink
                        with self.lock:
                            sink.report.errors.append(f"{type(exc).__name__}: {exc}"[:500])
                            sink.report.drop("internal_error")
                        result = None
                    if kind == "chunk":
                        bi, ci, sink, bc = payload
                        items = result or []
                        if not items:
                            self._finish_chunk(sink)
                            continue
                        outstanding[(bi, ci)] = len(items)
                        for qi, (item, hits) in enumerate(items):
                            ready.append(_QuestionTask(sink, bi, ci, qi, bc, item, hits))
                    else:
                        task = payload
                        if result is not None:
                            with self.lock:
                                task.sink.records.append(result)
                                task.sink.report.records += 1
                                self.records_done += 1
                        key = (task.batch_index, task.chunk_index)
                        outstanding[key] -= 1
                        if outstanding[key] == 0:
                            del outstanding[key]
                            self._finish_chunk(task.sink)
            # Stopped early: questions queued but never started are dropped and counted.
            for task in ready:
                task.sink.report.drop("question_budget_exhausted")
        not_started = list(pending_chunks)
        for _, _, sink, _ in not_started:
            sink.report.drop("chunk_not_started_budget")
        seconds = time.perf_counter() - started
        for sink in sinks:
            sink.records.sort(key=lambda r: r.order)
            sink.report.complete = sink.report.chunks_done == sink.report.chunks
            sink.report.seconds = round(seconds, 3)
            if self.stopped_reason and not sink.report.complete:
                sink.report.stopped = "budget"
        # Batches cut short by the budget are written with what they have.
        for sink in sinks:
            if not sink.written and self.on_batch_done:
                sink.written = True
                self.on_batch_done(sink)
        return sinks


def _write_shard(work: ObjectStore, sink: _Sink) -> None:
    key = f"shards/{sink.spec.batch_id}"
    work.write_jsonl(f"{key}.jsonl", [r.model_dump(mode="json") for r in sorted(sink.records, key=lambda r: r.order)])
    work.write_json(f"{key}.report.json", sink.report.model_dump(mode="json"))


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
    report_key = f"shards/{batch_id}.report.json"
    if not overwrite and work.exists(report_key) and work.exists(f"shards/{batch_id}.jsonl"):
        done = BatchReport.model_validate(work.read_json(report_key))
        if done.complete:
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
        on_batch_done=lambda sink: _write_shard(work, sink),
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
) -> GenerationResult:
    """Plan, generate every batch on one shared thread pool and budget, assemble. The work
    store defaults to ``<out>/_work``."""
    from docmill.generation.assemble import assemble

    prompts = prompts or load_prompts()
    work = work if work is not None else out.child("_work")
    started = time.perf_counter()
    the_plan = plan(chunks, config, prompts=prompts, work=work, model_id=llm.model_id)
    if on_plan:
        on_plan(the_plan)
    batches = [(spec, load_batch(work, spec)) for spec in the_plan.batches]
    engine = GenerationEngine(
        config=config,
        prompts=prompts,
        llm=llm,
        store=store,
        embedder=embedder,
        budget=TokenBudget(config.budget_tokens),
        progress=progress,
        on_batch_done=lambda sink: _write_shard(work, sink),
    )
    engine.run(batches)
    assembled = assemble(
        work,
        out,
        llm_accounting=llm.accounting.model_dump(),
        generation_seconds=time.perf_counter() - started,
    )
    return GenerationResult(plan=the_plan.summary(), assembled=assembled.model_dump(), stopped=engine.stopped_reason)


__all__ = [
    "BatchChunk",
    "BatchResult",
    "GenerationEngine",
    "GenerationResult",
    "TokenBudget",
    "collection_chunks",
    "estimate_plan",
    "generate_batch",
    "load_plan",
    "merge_counts",
    "plan",
    "record_id",
    "run_generation",
    "sample_chunks",
]
