"""The stages of generation, in the order the engine runs them.

Chunk stages: ``QuestionStage`` (questions about a chunk), ``RetrievalStage`` (search each
question). Question stages: ``AnswerStage``, ``RejectedStage``, ``JudgeStage``,
``VerificationStage``. A new stage is one unit with ``name``/``reads``/``writes``/``enabled``/
``run`` added to ``default_stages``.
"""

from __future__ import annotations

from docmill.generation.pipeline.stages.answer import AnswerStage
from docmill.generation.pipeline.stages.base import (
    Candidate,
    Drop,
    Modes,
    QuestionState,
    StageContext,
)
from docmill.generation.pipeline.stages.base import (
    QuestionStage as QuestionStageProtocol,
)
from docmill.generation.pipeline.stages.judge import JudgeStage
from docmill.generation.pipeline.stages.question import QuestionStage
from docmill.generation.pipeline.stages.rejected import RejectedStage
from docmill.generation.pipeline.stages.retrieval import RetrievalStage, source_rank
from docmill.generation.pipeline.stages.verification import VerificationStage


def default_stages() -> list[QuestionStageProtocol]:
    return [AnswerStage(), RejectedStage(), JudgeStage(), VerificationStage()]


__all__ = [
    "AnswerStage",
    "Candidate",
    "Drop",
    "JudgeStage",
    "Modes",
    "QuestionStage",
    "QuestionState",
    "RejectedStage",
    "RetrievalStage",
    "StageContext",
    "VerificationStage",
    "default_stages",
    "source_rank",
]
