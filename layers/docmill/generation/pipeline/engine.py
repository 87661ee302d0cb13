"""The engine: runs the stages of every chunk and question on one thread pool, under one token
budget, and hands each finished batch to ``on_batch_done`` (the shard writer).

Chunk tasks (question + retrieval stages) and question tasks (answer, rejected, judge,
verification) share a bounded pool; started chunks are finished before new ones open, so a
budget stop leaves whole chunks behind. A stage gives a question up with ``Drop`` (counted
by reason); an LLM error or unparseable reply is counted per stage; ``BudgetExhausted`` stops
new work, and what is finished is still written.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

from docmill.embeddings.base import Embedder
from docmill.errors import BudgetExhausted, LLMError
from docmill.generation.models import (
    BatchReport,
    BatchSpec,
    ContextRef,
    GeneratedRecord,
    GenerationConfig,
    SourceRef,
)
from docmill.generation.parsing import OutputParseError, cited_numbers
from docmill.generation.pipeline.calls import LLMCaller, Sink, TokenBudget
from docmill.generation.pipeline.planning import BatchChunk, stage_params
from docmill.generation.pipeline.stages import (
    Drop,
    Modes,
    QuestionStage,
    QuestionState,
    RetrievalStage,
    StageContext,
    default_stages,
    source_rank,
)
from docmill.generation.pipeline.stages.base import QuestionStage as QuestionStageProtocol
from docmill.generation.prompts import PROMPT_KINDS, PromptSet
from docmill.llm.base import GenerationParams, LLMClient
from docmill.quality.signals import EmbeddingCache
from docmill.vectorstores.base import VectorStore

log = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int, int], None]  # (chunks_done, chunks_total, records)


def record_id(collection: str, chunk_id: str, q_index: int, question: str) -> str:
    key = f"{collection}\n{chunk_id}\n{q_index}\n{' '.join(question.split()).casefold()}"
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:24]


def resolve_modes(config: GenerationConfig, llm: LLMClient) -> Modes:
    """``auto`` trusts neither the judge nor the free text of a model too small for them."""
    small = bool(getattr(llm, "too_small_to_judge", False))
    judge = config.judge == "llm" or (config.judge == "auto" and not small)
    answer = config.answer_mode if config.answer_mode != "auto" else ("extractive" if small else "generative")
    return Modes(judge=judge, answer_mode=answer)


def build_record(ctx: StageContext, state: QuestionState, params: dict[str, Any]) -> GeneratedRecord:
    chunk = state.bc.chunk
    item = state.candidate.item
    hit_ids = [h.chunk_id for h in state.context]
    return GeneratedRecord(
        id=state.rid,
        collection=ctx.config.collection,
        tenant=chunk.tenant,
        question_type=item.type,
        instruction=item.instruction,
        input=item.input,
        reference_output=item.output,
        chosen=state.chosen,
        rejected=state.rejected,
        rejected_strategy=state.strategy,
        distractor_chunk_id=state.distractor.chunk_id if state.distractor else None,
        source=SourceRef(
            chunk_id=chunk.chunk_id,
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
            for i, h in enumerate(state.context)
        ],
        source_in_top_k=state.source_rank is not None and state.source_rank <= len(state.context),
        source_rank=state.source_rank,
        cited_chunk_ids=[hit_ids[n - 1] for n in cited_numbers(state.chosen) if 1 <= n <= len(hit_ids)],
        judge_chosen=state.judge_chosen,
        judge_rejected=state.judge_rejected,
        question_source=state.candidate.source,
        answer_mode=ctx.modes.answer_mode,
        quality=state.quality,
        model_id=ctx.llm.model_id,
        prompts=ctx.prompts.refs(),
        params=params,
        usage={"tokens": state.tokens},  # this question's own calls
        order=[state.batch_index, state.chunk_index, state.q_index],
    )


class GenerationEngine:
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
        on_batch_done: Callable[[Sink], None] | None = None,
        stages: Sequence[QuestionStageProtocol] | None = None,
    ) -> None:
        self.config = config
        self.llm = llm
        self.progress = progress
        self.on_batch_done = on_batch_done
        self.lock = threading.Lock()
        params: dict[str, GenerationParams] = {k: stage_params(config, k, prompts.get(k)) for k in PROMPT_KINDS}
        self.ctx = StageContext(
            config=config,
            prompts=prompts,
            params=params,
            llm=llm,
            caller=LLMCaller(llm, budget, self.lock, config.keep_call_log),
            store=store,
            embedder=embedder,
            embed=EmbeddingCache(embedder),
            modes=resolve_modes(config, llm),
            lock=self.lock,
        )
        self.question_stage = QuestionStage()
        self.retrieval_stage = RetrievalStage()
        self.stages = [s for s in (stages if stages is not None else default_stages()) if s.enabled(self.ctx)]
        called = {"question"} | {s.name for s in self.stages}
        called |= {"answer"} if self.ctx.modes.answer_mode == "generative" else set()
        self.record_params: dict[str, dict[str, Any]] = {
            k: v.model_dump(exclude_none=True)
            for k, v in params.items()
            if k in called and (k != "answer" or self.ctx.modes.answer_mode == "generative")
        }
        self.stop = threading.Event()
        self.stopped_reason: str | None = None
        self.chunks_done = 0
        self.records_done = 0
        self.chunks_total = 0

    @property
    def modes(self) -> Modes:
        return self.ctx.modes

    # chunk -> question states
    def _chunk_task(self, sink: Sink, bc: BatchChunk, batch_index: int, chunk_index: int) -> list[QuestionState] | None:
        if self.stop.is_set():
            self._drop(sink, "chunk_not_started_budget")
            return None
        try:
            candidates = self.question_stage.run(self.ctx, sink, bc)
            if not candidates:
                return None
            hits = self.retrieval_stage.run(self.ctx, sink, bc, candidates)
        except BudgetExhausted:
            self._budget_hit(sink, "chunk_budget_exhausted")
            return None
        except Drop as drop:
            self._drop(sink, drop.reason, drop.n)
            return None
        states = []
        for qi, (cand, found) in enumerate(zip(candidates, hits, strict=True)):
            states.append(
                QuestionState(
                    sink=sink,
                    batch_index=batch_index,
                    chunk_index=chunk_index,
                    q_index=qi,
                    bc=bc,
                    candidate=cand,
                    hits=found,
                    context=found[: self.config.top_k],
                    source_rank=source_rank(found, bc.chunk.chunk_id),
                    rid=record_id(self.config.collection, bc.chunk.chunk_id, qi, cand.item.question),
                )
            )
        return states

    def _drop(self, sink: Sink, reason: str, n: int = 1) -> None:
        with self.lock:
            sink.report.drop(reason, n)

    def _budget_hit(self, sink: Sink, reason: str) -> None:
        with self.lock:
            sink.report.drop(reason)
            sink.report.stopped = "budget"
            self.stopped_reason = "budget"
        self.stop.set()

    def _question_task(self, state: QuestionState) -> GeneratedRecord | None:
        sink = state.sink
        if self.stop.is_set():
            self._drop(sink, "question_budget_exhausted")
            return None
        if not state.context:
            self._drop(sink, "no_context_retrieved")
            return None
        stage = ""
        try:
            for unit in self.stages:
                stage = unit.name
                unit.run(self.ctx, state)
        except BudgetExhausted:
            self._budget_hit(sink, "question_budget_exhausted")
            return None
        except Drop as drop:
            self._drop(sink, drop.reason, drop.n)
            return None
        except OutputParseError:
            self._drop(sink, f"{stage}_json_invalid")
            return None
        except LLMError as exc:
            self._drop(sink, f"llm_error:{stage}:{exc.code}")
            return None
        return build_record(self.ctx, state, self.record_params)

    def _finish_chunk(self, sink: Sink) -> None:
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

    def run(self, batches: Sequence[tuple[BatchSpec, list[BatchChunk]]]) -> list[Sink]:
        sinks = [
            Sink(spec=spec, report=BatchReport(batch_id=spec.batch_id, chunks=len(chunks)), chunks_left=len(chunks))
            for spec, chunks in batches
        ]
        work: list[tuple[int, int, Sink, BatchChunk]] = [
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
        ready: list[QuestionState] = []
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
                    in_flight[pool.submit(self._chunk_task, sink, bc, bi, ci)] = ("chunk", nxt)
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
                        states = result or []
                        if not states:
                            self._finish_chunk(sink)
                            continue
                        outstanding[(bi, ci)] = len(states)
                        ready.extend(states)
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
