"""Verification stage: the LLM-free quality signals of one record (``docmill.quality``).

Kept in the record's ``quality`` (and in ``provenance.jsonl``), used by curation:

- ``source_rank`` / ``retrieval_k``: where the question's own source chunk ranks when the
  question is searched (hit@k, MRR over a dataset);
- ``support_chosen`` / ``support_rejected`` / ``support_gap``: how much of each answer the
  answer's context backs, sentence by sentence; ``support_*_lexical`` / ``_semantic`` parts;
- ``source_share``: share of the chosen answer's content words found in the source chunk;
- ``relevance``: the chosen answer is about what the question asks;
- ``degenerate_*``, ``repeated_ngram_share_*``, ``truncated_*``: looping or cut-off text
  (after trimming repeats; ``trimmed_*`` says a trim happened).
"""

from __future__ import annotations

from typing import ClassVar

from docmill.generation.pipeline.stages.base import QuestionState, StageContext
from docmill.quality.signals import content_share, degeneration, relevance, support


class VerificationStage:
    name: ClassVar[str] = "verification"
    reads: ClassVar[tuple[str, ...]] = ("candidate", "context", "hits", "chosen", "rejected", "source_rank")
    writes: ClassVar[tuple[str, ...]] = ("quality",)

    def enabled(self, ctx: StageContext) -> bool:
        return True

    def run(self, ctx: StageContext, state: QuestionState) -> None:
        context = [h.text for h in state.context]
        chosen = support(state.chosen, context, embed=ctx.embed)
        rejected = support(state.rejected, context, embed=ctx.embed)
        deg_c = degeneration(state.chosen, finish_reason=state.chosen_finish)
        deg_r = degeneration(state.rejected, finish_reason=state.rejected_finish)
        state.quality = {
            "question_source": state.candidate.source,
            "question_problems": state.candidate.problems,
            "answer_mode": ctx.modes.answer_mode,
            "judge": ctx.modes.judge,
            "source_rank": state.source_rank,
            "retrieval_k": len(state.hits),
            "support_chosen": chosen.score,
            "support_chosen_lexical": chosen.lexical,
            "support_chosen_semantic": chosen.semantic,
            "unsupported_sentences_chosen": chosen.unsupported_sentences,
            "support_rejected": rejected.score,
            "support_rejected_lexical": rejected.lexical,
            "support_rejected_semantic": rejected.semantic,
            "support_gap": round(chosen.score - rejected.score, 4),
            "source_share": content_share(state.chosen, state.bc.chunk.text),
            "relevance": relevance(state.question, state.chosen, embed=ctx.embed),
            "degenerate_chosen": deg_c.degenerate,
            "degenerate_rejected": deg_r.degenerate,
            "repeated_ngram_share_chosen": deg_c.repeated_ngram_share,
            "repeated_ngram_share_rejected": deg_r.repeated_ngram_share,
            "truncated_chosen": deg_c.truncated,
            "truncated_rejected": deg_r.truncated,
            "trimmed_chosen": state.chosen_trimmed,
            "trimmed_rejected": state.rejected_trimmed,
            "answer_chars": len(state.chosen),
            "rejected_chars": len(state.rejected),
        }
