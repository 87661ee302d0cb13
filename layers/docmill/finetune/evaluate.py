"""Before/after evaluation on the test split (documents the training never saw).

- ``test_loss``: mean negative log-likelihood per answer token of the dataset's answers given
  their questions (for preference data: of the chosen answer), under the model's chat template;
  ``perplexity`` is its exponential. The same measure for SFT and DPO, base and tuned, so the
  numbers compare.
- ``support``: the model's own greedy answers to the test questions, scored against the source
  context the question was generated from with the dataset-quality signal
  (:func:`docmill.quality.signals.support`, the one generation curation keeps records by). It
  runs without an embedder here (the lexical part: answer sentences' content words and word
  pairs found in the context), the same for base and tuned, on the CPU and in a training job.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from docmill.finetune.data import EvalItem, Messages
from docmill.quality.signals import support


@dataclass
class Evaluation:
    test_loss: float | None
    perplexity: float | None
    support: float | None
    answered: int
    answers: list[dict[str, Any]] = field(default_factory=list)

    def metrics(self) -> dict[str, Any]:
        return {
            "test_loss": self.test_loss,
            "perplexity": self.perplexity,
            "support": self.support,
            "answered": self.answered,
        }


def answer_support(answer: str, context: Sequence[str]) -> float:
    """Support of ``answer`` by the ``context`` passages, in [0, 1] (0 for an empty answer)."""
    return support(answer, context).score


def _text(tokenizer: Any, messages: Messages, *, generation_prompt: bool) -> str:
    return str(tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt))


def _ids(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def scored_tokens(tokenizer: Any, row: dict[str, Any], max_length: int) -> tuple[list[int], int]:
    """(input ids, index of the first answer token) for one TRL-shaped row."""
    if "text" in row:
        ids = _ids(tokenizer, row["text"])
        eos = tokenizer.eos_token_id
        return (ids + ([eos] if eos is not None else []))[:max_length], 1
    answer = row.get("completion") or row["chosen"]
    prompt_ids = _ids(tokenizer, _text(tokenizer, row["prompt"], generation_prompt=True))
    full_ids = _ids(tokenizer, _text(tokenizer, row["prompt"] + answer, generation_prompt=False))
    start = len(prompt_ids) if full_ids[: len(prompt_ids)] == prompt_ids else _common_prefix(prompt_ids, full_ids)
    if start >= max_length:  # keep the answer: cut the prompt from the left instead
        drop = start - max_length // 2
        full_ids, start = full_ids[drop:], start - drop
    return full_ids[:max_length], start


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def test_loss(model: Any, tokenizer: Any, rows: Sequence[dict[str, Any]], *, max_length: int = 1024) -> float | None:
    """Token-weighted mean NLL of the answer tokens over ``rows`` (None when there are none)."""
    import torch

    total, count = 0.0, 0
    model.eval()
    with torch.inference_mode():
        for row in rows:
            ids, start = scored_tokens(tokenizer, row, max_length)
            if start >= len(ids):
                continue
            input_ids = torch.tensor([ids])
            logits = model(input_ids=input_ids).logits[0, :-1].float()
            targets = input_ids[0, 1:]
            nll = torch.nn.functional.cross_entropy(logits, targets, reduction="none")[max(start - 1, 0) :]
            total += float(nll.sum())
            count += int(nll.numel())
    return total / count if count else None


def generate_answers(
    model: Any, tokenizer: Any, items: Sequence[EvalItem], *, max_new_tokens: int = 128
) -> list[str]:
    import torch

    answers: list[str] = []
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    model.eval()
    with torch.inference_mode():
        for item in items:
            ids = _ids(tokenizer, _text(tokenizer, item.prompt, generation_prompt=True))
            input_ids = torch.tensor([ids])
            output = model.generate(
                input_ids=input_ids,
                attention_mask=torch.ones_like(input_ids),
                max_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=pad,
            )
            answers.append(tokenizer.decode(output[0, len(ids) :].tolist(), skip_special_tokens=True).strip())
    return answers


def evaluate(
    model: Any,
    tokenizer: Any,
    test_rows: Sequence[dict[str, Any]],
    items: Sequence[EvalItem],
    *,
    max_length: int = 1024,
    max_new_tokens: int = 128,
) -> Evaluation:
    loss = test_loss(model, tokenizer, test_rows, max_length=max_length)
    with_context = [i for i in items if i.context]
    answers = generate_answers(model, tokenizer, with_context, max_new_tokens=max_new_tokens) if with_context else []
    scores = [answer_support(a, i.context) for a, i in zip(answers, with_context, strict=False)]
    return Evaluation(
        test_loss=loss,
        perplexity=math.exp(min(loss, 50.0)) if loss is not None else None,
        support=sum(scores) / len(scores) if scores else None,
        answered=len(answers),
        answers=[
            {"id": i.id, "question": i.prompt[-1]["content"], "answer": a, "reference": i.reference, "support": s}
            for i, a, s in zip(with_context, answers, scores, strict=False)
        ],
    )
