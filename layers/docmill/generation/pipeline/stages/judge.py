"""Judge stage: the LLM grades chosen and rejected against the context (two JSON calls).

One signal among others, and only when it can be trusted: ``--judge llm`` always runs it,
``none`` never, ``auto`` runs it unless the model says it is too small to judge
(``LLMClient.too_small_to_judge``; a 135M model echoes its few-shot scores).
"""

from __future__ import annotations

from typing import Any, ClassVar

from docmill.errors import LLMError
from docmill.generation.models import JudgeScores
from docmill.generation.parsing import OutputParseError, parse_judge
from docmill.generation.pipeline.planning import context_item
from docmill.generation.schemas import judge_schema
from docmill.generation.pipeline.stages.base import Drop, QuestionState, StageContext


def judge_scores(verdict: Any) -> JudgeScores:
    return JudgeScores(
        relevance=verdict.relevance,
        groundedness=verdict.groundedness,
        helpfulness=verdict.helpfulness,
        answerable=verdict.answerable,
        reason=verdict.reason[:500],
        score=verdict.score,
    )


class JudgeStage:
    name: ClassVar[str] = "judge"
    reads: ClassVar[tuple[str, ...]] = ("candidate", "context", "chosen", "rejected")
    writes: ClassVar[tuple[str, ...]] = ("judge_chosen", "judge_rejected")

    def enabled(self, ctx: StageContext) -> bool:
        return ctx.modes.judge

    def run(self, ctx: StageContext, state: QuestionState) -> None:
        context = [context_item(h) for h in state.context]
        prefill = ctx.prompts.judge.render_prefill()
        params = ctx.params["judge"]
        if ctx.llm.supports_json_schema:
            params = params.model_copy(update={"json_schema": judge_schema()})
        for side in ("chosen", "rejected"):
            stage = f"judge_{side}"
            try:
                verdict, tokens = ctx.caller.call_json(
                    state.sink,
                    stage,
                    state.chunk_id,
                    ctx.prompts.judge.render(context=context, question=state.question, answer=getattr(state, side)),
                    params,
                    parse_judge,
                    prefill=prefill,
                )
            except OutputParseError as exc:
                raise Drop(f"{stage}_json_invalid") from exc
            except LLMError as exc:
                raise Drop(f"llm_error:{stage}:{exc.code}") from exc
            state.tokens += tokens
            setattr(state, stage, judge_scores(verdict.verdict))
