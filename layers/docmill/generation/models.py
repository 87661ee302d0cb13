"""Typed configuration, records and reports of a generation run.

A run is three steps that the AWS workflow runs as separate tasks and the local runtime runs
in-process: ``plan`` (sample chunks, cut them into batches), ``generate_batch`` (questions,
retrieval, answers, judge for one batch -> one shard of ``GeneratedRecord``) and ``assemble``
(curate all shards, split by source, write datasets).
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from docmill.datasets.formats import ALL_FORMATS, DatasetFormat

RejectedStrategy = Literal["no_context", "distractor", "mixed"]
JudgeMode = Literal["auto", "llm", "none"]
AnswerMode = Literal["auto", "generative", "extractive"]
QuestionSource = Literal["model", "template"]
Stage = Literal["question", "answer", "rejected", "judge_chosen", "judge_rejected"]
STAGES: tuple[str, ...] = ("question", "answer", "rejected", "judge_chosen", "judge_rejected")


class CurationConfig(BaseModel):
    # LLM-free signals (docmill.quality): they apply to every record, judged or not.
    min_support: float = Field(0.5, ge=0, le=1, description="support of the chosen answer by its context")
    min_relevance: float = Field(0.2, ge=0, le=1, description="relevance of the chosen answer to the question")
    drop_degenerate: bool = Field(True, description="drop records whose chosen answer loops")
    max_source_rank: int | None = Field(
        None, ge=1, description="drop questions whose search does not rank their source chunk this high"
    )
    min_support_gap: float = Field(
        0.25, ge=0, le=1, description="chosen - rejected support a preference pair needs"
    )
    # The LLM judge's scores: used only when the judge ran (--judge llm, or auto with a capable model).
    require_answerable: bool = True
    min_chosen_score: float = Field(3.0, ge=0, le=5, description="mean judge score the chosen answer needs")
    min_margin: float = Field(1.0, ge=0, le=4, description="chosen - rejected judge score for a preference pair")
    dedup: Literal["minhash", "none"] = "minhash"
    near_duplicate_threshold: float = Field(0.8, gt=0, le=1, description="MinHash Jaccard of question shingles")
    num_perm: int = Field(128, ge=16)
    min_question_chars: int = Field(10, ge=0)
    max_question_chars: int = Field(2000, ge=1)
    min_answer_chars: int = Field(20, ge=0)
    max_answer_chars: int = Field(6000, ge=1)


class SplitConfig(BaseModel):
    train: float = Field(0.8, ge=0)
    val: float = Field(0.1, ge=0)
    test: float = Field(0.1, ge=0)

    @model_validator(mode="after")
    def _positive(self) -> SplitConfig:
        if self.train + self.val + self.test <= 0:
            raise ValueError("split ratios must not all be 0")
        return self


class StageParams(BaseModel):
    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None


class GenerationConfig(BaseModel):
    """Everything that decides what a run produces; stored in the plan so that every batch of a
    distributed run uses the same settings."""

    collection: str
    dataset: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
    tenant: str | None = None
    questions_per_chunk: int = Field(3, ge=1, le=20)
    max_chunks: int | None = Field(None, ge=1)
    min_chunk_chars: int = Field(120, ge=0, description="shorter chunks are not used as question sources")
    seed: int = 0
    top_k: int = Field(4, ge=1, le=50)
    verify_k: int = Field(10, ge=1, le=100, description="search depth for the source chunk's rank (hit@k, MRR)")
    judge: JudgeMode = Field("auto", description="auto: the LLM judge unless the model is too small to judge")
    answer_mode: AnswerMode = Field(
        "auto", description="extractive: answers built from context sentences; auto: extractive for small models"
    )
    question_fallback: bool = Field(
        True, description="fill unusable model questions with template questions (labelled question_source=template)"
    )
    rejected_strategy: RejectedStrategy = "mixed"
    concurrency: int = Field(4, ge=1, le=256)
    batch_size: int = Field(25, ge=1, description="chunks per batch (one shard, one workflow map item)")
    budget_tokens: int | None = Field(None, ge=1)
    formats: list[DatasetFormat] = Field(default_factory=lambda: list(ALL_FORMATS))
    strip_citations: bool = Field(True, description="remove [n] markers from answers written to datasets")
    system_prompt: str | None = Field(None, description="optional system turn for sft/dpo/preference records")
    license: str = Field("other", description="license identifier written to the dataset card (hub style)")
    stage_params: dict[str, StageParams] = Field(default_factory=dict)
    curation: CurationConfig = Field(default_factory=CurationConfig)
    split: SplitConfig = Field(default_factory=SplitConfig)
    keep_call_log: int = Field(5000, ge=0, description="per-call entries kept in the run report")


class JudgeScores(BaseModel):
    relevance: int
    groundedness: int
    helpfulness: int
    answerable: bool
    reason: str = ""
    score: float


class ContextRef(BaseModel):
    rank: int
    chunk_id: str
    score: float
    source_uri: str
    source_version: str | None = None
    page_numbers: list[int] = Field(default_factory=list)


class SourceRef(BaseModel):
    chunk_id: str
    source_uri: str
    source_version: str | None = None
    source_sha256: str | None = None
    page_numbers: list[int] = Field(default_factory=list)
    section_title: str | None = None
    chunk_index: int | None = None
    file_type: str | None = None


class GeneratedRecord(BaseModel):
    """One question with its chosen and rejected answers and judge verdicts: a shard line."""

    id: str
    collection: str
    tenant: str | None = None
    question_type: str
    instruction: str
    input: str = ""
    reference_output: str | None = None
    chosen: str
    rejected: str
    rejected_strategy: Literal["no_context", "distractor"]
    distractor_chunk_id: str | None = None
    source: SourceRef
    context: list[ContextRef] = Field(default_factory=list)
    source_in_top_k: bool = False
    source_rank: int | None = None
    cited_chunk_ids: list[str] = Field(default_factory=list)
    judge_chosen: JudgeScores | None = None  # None: the judge did not run (judge none / auto with a small model)
    judge_rejected: JudgeScores | None = None
    question_source: QuestionSource = "model"
    answer_mode: Literal["generative", "extractive"] = "generative"
    quality: dict[str, Any] = Field(default_factory=dict, description="LLM-free signals (docmill.quality)")
    model_id: str
    prompts: dict[str, dict[str, str]] = Field(default_factory=dict)
    params: dict[str, dict[str, Any]] = Field(default_factory=dict)
    usage: dict[str, int] = Field(default_factory=dict)
    order: list[int] = Field(default_factory=list, description="(batch, chunk, question) position, for stable order")

    @property
    def question(self) -> str:
        return f"{self.instruction}\n\n{self.input}" if self.input else self.instruction

    @property
    def margin(self) -> float | None:
        if self.judge_chosen is None or self.judge_rejected is None:
            return None
        return round(self.judge_chosen.score - self.judge_rejected.score, 4)

    @property
    def support_chosen(self) -> float:
        return float(self.quality.get("support_chosen", 0.0))

    @property
    def support_gap(self) -> float:
        return float(self.quality.get("support_gap", 0.0))


class StageStats(BaseModel):
    calls: int = 0  # logical calls (a corrective retry is a second call)
    failures: int = 0  # LLM errors after the client's own retries
    parse_failures: int = 0  # replies that were not usable JSON (before the corrective retry)
    repaired: int = 0  # replies made usable by repair
    corrective_retries: int = 0
    dropped: int = 0  # items given up on at this stage
    input_tokens: int = 0
    output_tokens: int = 0
    latency_s: float = 0.0

    def merge(self, other: StageStats) -> None:
        for name in type(self).model_fields:
            setattr(self, name, getattr(self, name) + getattr(other, name))


class CallLog(BaseModel):
    stage: str
    chunk_id: str
    ok: bool
    input_tokens: int = 0
    output_tokens: int = 0
    latency_s: float = 0.0
    error: str | None = None


class BatchReport(BaseModel):
    batch_id: str
    chunks: int = 0
    chunks_done: int = 0
    questions: int = 0
    records: int = 0
    complete: bool = True
    stopped: Literal["budget"] | None = None
    drops: dict[str, int] = Field(default_factory=dict)
    stages: dict[str, StageStats] = Field(default_factory=dict)
    calls: list[CallLog] = Field(default_factory=list)
    errors: list[str] = Field(default_factory=list)
    parse_failure_samples: list[dict[str, str]] = Field(default_factory=list)  # first few unusable replies
    tokens_used: int = 0
    seconds: float = 0.0

    def drop(self, reason: str, n: int = 1) -> None:
        self.drops[reason] = self.drops.get(reason, 0) + n

    def stage(self, name: str) -> StageStats:
        return self.stages.setdefault(name, StageStats())


class BatchSpec(BaseModel):
    batch_id: str
    index: int = 0  # position in the plan: records sort by (batch, chunk, question)
    key: str  # object key of the batch input (chunks JSONL) in the work store
    chunk_ids: list[str]


class PlanEstimate(BaseModel):
    calls: dict[str, int] = Field(default_factory=dict)
    total_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


class GenerationPlan(BaseModel):
    run_id: str
    created_at: str
    config: GenerationConfig
    chunks_available: int
    chunks_skipped_short: int = 0
    chunks_sampled: int
    sources: int
    batches: list[BatchSpec]
    estimate: PlanEstimate
    per_batch_budget: int | None = None
    model_id: str | None = None
    prompts: dict[str, dict[str, str]] = Field(default_factory=dict)
    # sha256 of every batch's input (chunks + distractors): a rerun resumes only the same work.
    inputs_sha256: str | None = None

    def summary(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "collection": self.config.collection,
            "dataset": self.config.dataset,
            "chunks_available": self.chunks_available,
            "chunks_skipped_short": self.chunks_skipped_short,
            "chunks_sampled": self.chunks_sampled,
            "sources": self.sources,
            "batches": len(self.batches),
            "questions_per_chunk": self.config.questions_per_chunk,
            "planned_calls": {**self.estimate.calls, "total": self.estimate.total_calls},
            "estimated_tokens": {
                "input": self.estimate.input_tokens,
                "output": self.estimate.output_tokens,
                "total": self.estimate.total_tokens,
            },
            "budget_tokens": self.config.budget_tokens,
        }


def merge_counts(target: dict[str, int], extra: dict[str, int]) -> dict[str, int]:
    counter = Counter(target)
    counter.update(extra)
    return dict(sorted(counter.items()))
