"""What a stage is, and the state it works on.

Generation is two kinds of stage (a declaration in the spirit of a task in a data-generation
framework: what it reads, what it writes, how it runs), each small and testable alone:

- a ``ChunkStage`` turns one chunk into question candidates (``question``) or enriches all
  candidates of a chunk at once (``retrieval``: one embedding batch, one search each);
- a ``QuestionStage`` reads some fields of a ``QuestionState`` and fills others (``answer``,
  ``rejected``, ``judge``, ``verification``). It raises ``Drop`` to give a question up, with
  the reason that ends up in the run report.

The engine runs the chunk stages, then each question's stages in order. Adding a stage means
writing one unit and listing it in ``docmill.generation.pipeline.stages.default_stages``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from docmill.embeddings.base import Embedder
from docmill.generation.models import GenerationConfig, JudgeScores
from docmill.generation.parsing import QuestionItem
from docmill.generation.pipeline.calls import LLMCaller, Sink
from docmill.generation.pipeline.planning import BatchChunk, Distractor
from docmill.generation.prompts import PromptSet
from docmill.llm.base import GenerationParams, LLMClient
from docmill.quality.signals import EmbeddingCache
from docmill.vectorstores.base import SearchHit, VectorStore


class Drop(Exception):
    """Give this question (or chunk) up; ``reason`` is counted in the batch report."""

    def __init__(self, reason: str, n: int = 1) -> None:
        super().__init__(reason)
        self.reason = reason
        self.n = n


@dataclass
class Modes:
    """How this run behaves, resolved once from the config and the model."""

    judge: bool  # the LLM judge runs
    answer_mode: str  # "generative" | "extractive"


@dataclass
class StageContext:
    """Everything a stage may use; shared by all threads (stages keep no per-question state)."""

    config: GenerationConfig
    prompts: PromptSet
    params: dict[str, GenerationParams]
    llm: LLMClient
    caller: LLMCaller
    store: VectorStore
    embedder: Embedder
    embed: EmbeddingCache
    modes: Modes
    lock: threading.Lock


@dataclass
class Candidate:
    """A question about a chunk, before retrieval."""

    item: QuestionItem
    source: str = "model"  # "model" | "template"
    problems: list[str] = field(default_factory=list)  # why the model's own question was replaced


@dataclass
class QuestionState:
    """One question on its way to a record. Stages fill it in order."""

    sink: Sink
    batch_index: int
    chunk_index: int
    q_index: int
    bc: BatchChunk
    candidate: Candidate
    hits: list[SearchHit]  # the search for the question, ``verify_k`` deep
    context: list[SearchHit] = field(default_factory=list)  # the first ``top_k`` hits: the answer's context
    source_rank: int | None = None
    rid: str = ""
    strategy: str = "no_context"
    distractor: Distractor | None = None
    chosen: str = ""
    chosen_finish: str | None = None
    chosen_trimmed: bool = False
    rejected: str = ""
    rejected_finish: str | None = None
    rejected_trimmed: bool = False
    judge_chosen: JudgeScores | None = None
    judge_rejected: JudgeScores | None = None
    quality: dict[str, Any] = field(default_factory=dict)
    tokens: int = 0

    @property
    def chunk_id(self) -> str:
        return self.bc.chunk.chunk_id

    @property
    def question(self) -> str:
        return self.candidate.item.question


class ChunkStage(Protocol):
    name: ClassVar[str]


class QuestionStage(Protocol):
    name: ClassVar[str]
    reads: ClassVar[tuple[str, ...]]
    writes: ClassVar[tuple[str, ...]]

    def enabled(self, ctx: StageContext) -> bool: ...

    def run(self, ctx: StageContext, state: QuestionState) -> None: ...


__all__ = ["Candidate", "ChunkStage", "Drop", "Modes", "QuestionStage", "QuestionState", "StageContext"]
