"""Question stage: one chunk -> its question candidates.

The model writes the questions (one JSON call per chunk, primed with the start of the list for
models that continue a prefill). Each question is then checked without the model
(``docmill.quality.signals.question_problems``: is it a question, self-contained, about this
chunk, not looping); unusable ones are counted under ``question_rejected:<problem>`` and, with
``question_fallback``, replaced by template questions about key sentences of the chunk
(``question_source: template``), so a weak model still yields honest records.
"""

from __future__ import annotations

from typing import ClassVar

from docmill.errors import BudgetExhausted, LLMError
from docmill.generation.parsing import OutputParseError, QuestionItem, parse_questions
from docmill.generation.pipeline.calls import Sink
from docmill.generation.pipeline.planning import BatchChunk, chunk_title, question_messages, question_types
from docmill.generation.pipeline.stages.base import Candidate, Drop, StageContext
from docmill.generation.schemas import question_schema
from docmill.generation.templates import key_phrase, template_questions
from docmill.quality.signals import question_problems


class QuestionStage:
    name: ClassVar[str] = "question"

    def run(self, ctx: StageContext, sink: Sink, bc: BatchChunk) -> list[Candidate]:
        """Candidates for ``bc``; raises ``BudgetExhausted`` (the engine stops) or ``Drop``."""
        chunk = bc.chunk
        types = question_types(ctx.config, chunk.chunk_id)
        items: list[QuestionItem] = []
        failure: str | None = None
        params = ctx.params["question"]
        if ctx.llm.supports_json_schema:
            params = params.model_copy(update={"json_schema": question_schema(types)})
        try:
            parsed, _ = ctx.caller.call_json(
                sink,
                self.name,
                chunk.chunk_id,
                question_messages(ctx.prompts, ctx.config, chunk),
                params,
                lambda text: parse_questions(text, expected_types=types),
                prefill=ctx.prompts.question.render_prefill(types=types, n=len(types)),
            )
            items = parsed.items[: len(types)]
            if parsed.invalid_items:
                with ctx.lock:
                    sink.report.drop("question_item_invalid", parsed.invalid_items)
        except BudgetExhausted:
            raise
        except OutputParseError:
            failure = "question_json_invalid"
        except LLMError as exc:
            failure = f"llm_error:question:{exc.code}"

        candidates: list[Candidate] = []
        rejected: list[list[str]] = []
        for item in items:
            problems = question_problems(item.question, chunk.text)
            if problems:
                rejected.append(problems)
                continue
            candidates.append(Candidate(item=item, source="model"))
        with ctx.lock:
            for problems in rejected:
                sink.report.drop(f"question_rejected:{problems[0]}")
        missing = len(types) - len(candidates)
        if missing and ctx.config.question_fallback:
            asked = {key_phrase(c.item.question) for c in candidates}
            reasons = list(rejected) + [[failure or "question_missing"]] * (missing - len(rejected))
            for item, why in zip(
                template_questions(chunk.text, types[len(candidates):], title=chunk_title(chunk), avoid=asked),
                reasons,
                strict=False,
            ):
                candidates.append(Candidate(item=item, source="template", problems=why))
        if failure:
            with ctx.lock:
                sink.report.drop(failure)
        if not candidates:
            if failure:
                return []
            raise Drop("question_none_usable")
        with ctx.lock:
            sink.report.questions += len(candidates)
        return candidates
