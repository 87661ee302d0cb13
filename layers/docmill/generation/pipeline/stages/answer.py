"""Answer stage: the chosen answer, from the retrieved context.

``generative``: the model answers from the numbered context passages (with citations), its
text cut where it starts repeating itself. ``extractive``: the answer is composed from the
context sentences that answer the question (``docmill.generation.extractive``), no model
call; ``auto`` picks it for models too small to write faithful text.
"""

from __future__ import annotations

from typing import ClassVar

from docmill.generation.extractive import extractive_answer
from docmill.generation.pipeline.planning import context_item
from docmill.generation.pipeline.stages.base import Drop, QuestionState, StageContext
from docmill.quality.text import trim_repetition


class AnswerStage:
    name: ClassVar[str] = "answer"
    reads: ClassVar[tuple[str, ...]] = ("candidate", "context")
    writes: ClassVar[tuple[str, ...]] = ("chosen", "chosen_finish", "chosen_trimmed")

    def enabled(self, ctx: StageContext) -> bool:
        return True

    def run(self, ctx: StageContext, state: QuestionState) -> None:
        if ctx.modes.answer_mode == "extractive":
            state.chosen = extractive_answer(
                state.question,
                [(h.chunk_id, h.text) for h in state.context],
                source_id=state.chunk_id,
                question_type=state.candidate.item.type,
                embed=ctx.embed,
            )
            state.chosen_finish = "extractive"
        else:
            messages = ctx.prompts.answer.render(context=[context_item(h) for h in state.context], question=state.question)
            reply = ctx.caller.call(state.sink, "answer", state.chunk_id, messages, ctx.params["answer"])
            state.tokens += reply.usage.input_tokens + reply.usage.output_tokens
            state.chosen, state.chosen_trimmed = trim_repetition(reply.text)
            state.chosen_finish = reply.finish_reason
        if not state.chosen.strip():
            raise Drop("empty_answer")
