"""Rejected stage: the other side of a preference pair, written without the right evidence.

The model answers with no context (``no_context``) or with one unrelated distractor passage
(``distractor``; ``mixed`` picks per record from the seed). Its text is cut where it starts
repeating itself. How much the real context supports it is measured later (verification),
so a pair is kept only when chosen is clearly better supported than rejected.
"""

from __future__ import annotations

import hashlib
from typing import ClassVar

from docmill.generation.pipeline.stages.base import Drop, QuestionState, StageContext
from docmill.quality.text import trim_repetition


def pick_strategy(configured: str, seed: int, rid: str) -> str:
    if configured == "mixed":
        bit = int(hashlib.sha256(f"{seed}:{rid}".encode()).hexdigest(), 16) & 1
        return "distractor" if bit else "no_context"
    return configured


class RejectedStage:
    name: ClassVar[str] = "rejected"
    reads: ClassVar[tuple[str, ...]] = ("candidate", "context", "bc")
    writes: ClassVar[tuple[str, ...]] = ("rejected", "rejected_finish", "rejected_trimmed", "strategy", "distractor")

    def enabled(self, ctx: StageContext) -> bool:
        return True

    def run(self, ctx: StageContext, state: QuestionState) -> None:
        hit_ids = {h.chunk_id for h in state.context}
        state.strategy = pick_strategy(ctx.config.rejected_strategy, ctx.config.seed, state.rid)
        state.distractor = next(
            (d for d in state.bc.distractors if d.chunk_id not in hit_ids and d.chunk_id != state.chunk_id), None
        )
        if state.strategy == "distractor" and state.distractor is None:
            state.strategy = "no_context"
        if state.strategy != "distractor":
            state.distractor = None
        messages = ctx.prompts.rejected.render(
            question=state.question, distractor=state.distractor.text if state.distractor else ""
        )
        reply = ctx.caller.call(state.sink, "rejected", state.chunk_id, messages, ctx.params["rejected"])
        state.tokens += reply.usage.input_tokens + reply.usage.output_tokens
        state.rejected, state.rejected_trimmed = trim_repetition(reply.text)
        state.rejected_finish = reply.finish_reason
        if not state.rejected.strip():
            raise Drop("empty_rejected_answer")
