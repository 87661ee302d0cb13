"""Choosing the next token of one reply: constraint mask, repetition control, sampling, stops.

A ``Sequence`` holds one request's decoding state and turns its row of logits into the next
token; the batcher (``docmill.llm.batching``) owns the model and calls ``Sequence.choose`` for
every active row after each forward pass. Nothing here knows about the model, so a batch of
sequences decodes exactly as each would alone (a per-request random generator, per-request
penalties and constraint).

Repetition control counts only the reply's own tokens: a grounded answer must be free to quote
its context, and what loops in a small model's output is the output itself.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence as Seq
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch


class TokenConstraint(Protocol):
    """Which tokens may come next (e.g. a JSON Schema grammar); advanced token by token."""

    def mask_logits(self, logits: torch.Tensor) -> None:
        """Set the logits of forbidden tokens to -inf, in place (``logits``: 1-D, the vocabulary)."""

    def advance(self, token: int) -> None:
        """The token was chosen."""

    def is_finished(self) -> bool:
        """Nothing but end-of-sequence may follow."""


@dataclass(frozen=True)
class DecodeParams:
    max_new_tokens: int = 256
    temperature: float = 0.0  # 0: greedy
    top_p: float = 1.0
    seed: int | None = None
    repetition_penalty: float = 1.0  # 1.0: off
    no_repeat_ngram_size: int = 0  # 0: off
    stop: tuple[str, ...] = ()


@dataclass
class Sequence:
    """One request being decoded. ``decode_text`` turns token ids into text (for stop strings)."""

    prompt_ids: list[int]
    params: DecodeParams
    eos_ids: frozenset[int]
    decode_text: Callable[[list[int]], str] | None = None
    constraint: TokenConstraint | None = None
    generated: list[int] = field(default_factory=list)
    finish_reason: str | None = None  # "stop" | "length" once finished
    _rng: torch.Generator = field(init=False, repr=False)
    _ngrams: dict[tuple[int, ...], set[int]] = field(init=False, default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        seed = self.params.seed if self.params.seed is not None else random.getrandbits(63)
        self._rng = torch.Generator().manual_seed(seed)
        if self.params.max_new_tokens <= 0:
            self.finish_reason = "length"

    @property
    def finished(self) -> bool:
        return self.finish_reason is not None

    def choose(self, logits: torch.Tensor) -> int:
        """Pick the next token from this row's logits (1-D float tensor), record it, and
        decide whether the reply is finished."""
        scores = logits.float().clone()
        if self.constraint is not None:
            self.constraint.mask_logits(scores)
        self._control_repetition(scores)
        token = self._sample(scores)
        self._append(token)
        return token

    # -- repetition control ---------------------------------------------------------------
    def _control_repetition(self, scores: torch.Tensor) -> None:
        p = self.params
        if not self.generated or (p.repetition_penalty == 1.0 and p.no_repeat_ngram_size <= 0):
            return
        allowed_before = torch.isfinite(scores)
        if p.repetition_penalty != 1.0:
            seen = torch.tensor(sorted(set(self.generated)), dtype=torch.long)
            values = scores[seen]
            scores[seen] = torch.where(values > 0, values / p.repetition_penalty, values * p.repetition_penalty)
        banned = self._banned_by_ngrams()
        if banned:
            index = torch.tensor(sorted(banned), dtype=torch.long)
            kept = scores[index].clone()
            scores[index] = float("-inf")
            if not torch.isfinite(scores).any():
                # The constraint leaves no other way forward: a repeat beats an invalid reply.
                scores[index] = torch.where(allowed_before[index], kept, scores[index])

    def _banned_by_ngrams(self) -> set[int]:
        n = self.params.no_repeat_ngram_size
        if n <= 0 or len(self.generated) < n - 1:
            return set()
        if n == 1:
            return set(self.generated)
        prefix = tuple(self.generated[len(self.generated) - (n - 1):])
        return self._ngrams.get(prefix, set())

    # -- sampling ---------------------------------------------------------------------------
    def _sample(self, scores: torch.Tensor) -> int:
        p = self.params
        if p.temperature <= 0:
            return int(torch.argmax(scores))
        probs = torch.softmax(scores / p.temperature, dim=-1)
        if p.top_p < 1.0:
            sorted_probs, order = torch.sort(probs, descending=True)
            cumulative = torch.cumsum(sorted_probs, dim=-1)
            # Keep the smallest head whose mass reaches top_p (always at least one token).
            drop = cumulative - sorted_probs > p.top_p
            sorted_probs[drop] = 0.0
            probs = torch.zeros_like(probs).scatter_(0, order, sorted_probs)
        return int(torch.multinomial(probs, 1, generator=self._rng))

    # -- bookkeeping ------------------------------------------------------------------------
    def _append(self, token: int) -> None:
        n = self.params.no_repeat_ngram_size
        self.generated.append(token)
        if n > 1 and len(self.generated) >= n:
            gram = self.generated[-n:]
            self._ngrams.setdefault(tuple(gram[:-1]), set()).add(gram[-1])
        if token in self.eos_ids:
            self.finish_reason = "stop"
            return
        if self.constraint is not None:
            self.constraint.advance(token)
            if self.constraint.is_finished():
                self.finish_reason = "stop"
                return
        if self.params.stop and self.decode_text is not None and self._hit_stop():
            self.finish_reason = "stop"
            return
        if len(self.generated) >= self.params.max_new_tokens:
            self.finish_reason = "length"

    def _hit_stop(self) -> bool:
        longest = max(len(s) for s in self.params.stop)
        # A stop string spans a few tokens at most; decoding the tail keeps this O(1) per step.
        tail = self.decode_text(self.generated[-(longest + 8):]) if self.decode_text else ""
        return any(s in tail for s in self.params.stop)


def reply_ids(sequence: Sequence) -> list[int]:
    """The reply's token ids without a trailing end-of-sequence token."""
    ids = sequence.generated
    return ids[:-1] if ids and ids[-1] in sequence.eos_ids else ids


def params_from(values: dict[str, Any], *, stop: Seq[str] | None = None) -> DecodeParams:
    """``DecodeParams`` from keyword values, ignoring None (the defaults apply)."""
    given = {k: v for k, v in values.items() if v is not None}
    if stop:
        given["stop"] = tuple(stop)
    return DecodeParams(**given)
