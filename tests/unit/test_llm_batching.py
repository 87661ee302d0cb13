"""The continuous batcher with a fake step model: same tokens batched or alone, rows join and
leave between steps, errors reach every waiting caller."""

from __future__ import annotations

import threading
import time

import pytest
import torch

from docmill.llm.batching import ContinuousBatcher, decode_all
from docmill.llm.decoding import DecodeParams, Sequence

VOCAB = 32
EOS = 0


class FakeModel:
    """A deterministic 'language model': the next-token logits depend on a row's whole history,
    so a batcher that mixed up rows, lost a token or fed one twice would change the outputs.
    State: one token list per row."""

    def __init__(self, *, step_delay: float = 0.0, fail_on_step: int | None = None) -> None:
        self.step_delay = step_delay
        self.fail_on_step = fail_on_step
        self.steps = 0
        self.batch_sizes: list[int] = []
        self.stepped = threading.Event()

    @staticmethod
    def logits(history: list[int]) -> torch.Tensor:
        target = (sum(history) * 7 + len(history) * 3) % VOCAB
        if len(history) > 12 and history[-1] % 5 == 0:
            target = EOS  # some rows end early, at different lengths
        return -torch.abs(torch.arange(VOCAB, dtype=torch.float32) - target)

    def prefill(self, prompt_ids: list[int]) -> tuple[torch.Tensor, list[list[int]]]:
        return self.logits(prompt_ids), [list(prompt_ids)]

    def step(self, state: list[list[int]], tokens: list[int]) -> tuple[torch.Tensor, list[list[int]]]:
        self.steps += 1
        self.batch_sizes.append(len(tokens))
        if self.fail_on_step is not None and self.steps == self.fail_on_step:
            raise RuntimeError("out of memory (fake)")
        time.sleep(self.step_delay)
        self.stepped.set()
        rows = [history + [token] for history, token in zip(state, tokens, strict=True)]
        return torch.stack([self.logits(h) for h in rows]), rows

    def join(self, state: list[list[int]] | None, other: list[list[int]]) -> list[list[int]]:
        return (state or []) + other

    def keep(self, state: list[list[int]], rows: list[int]) -> list[list[int]] | None:
        return [state[i] for i in rows] or None


def sequence(prompt: list[int], max_new_tokens: int = 20, **kwargs) -> Sequence:
    return Sequence(prompt, DecodeParams(max_new_tokens=max_new_tokens, **kwargs), frozenset({EOS}))


PROMPTS = [[1, 2, 3], [4, 5], [6], [7, 8, 9, 10], [11, 3, 2]]


def alone(prompt: list[int], **kwargs) -> list[int]:
    """Reference: the same decoding with no batcher at all, one token at a time."""
    seq = sequence(prompt, **kwargs)
    model = FakeModel()
    logits, state = model.prefill(prompt)
    while True:
        token = seq.choose(logits)
        if seq.finished:
            return seq.generated
        logits, state = model.step(state, [token])
        logits = logits[0]


def test_greedy_batched_outputs_equal_single_stream_outputs():
    # Given five prompts of different lengths submitted at once
    model = FakeModel()
    batcher = ContinuousBatcher(model, max_batch=8)

    # When they are decoded together
    done = decode_all(batcher, [sequence(p) for p in PROMPTS])

    # Then each reply is the one it gets alone, and the steps were shared
    assert [s.generated for s in done] == [alone(p) for p in PROMPTS]
    assert max(model.batch_sizes) == len(PROMPTS)
    assert model.steps < sum(len(s.generated) for s in done)
    batcher.close()


def test_rows_leave_when_finished_and_finish_reasons_are_kept():
    # Given replies of very different lengths
    model = FakeModel()
    batcher = ContinuousBatcher(model, max_batch=8)
    seqs = [sequence([1, 2, 3], max_new_tokens=2), sequence([4, 5], max_new_tokens=30), sequence([6], max_new_tokens=5)]

    done = decode_all(batcher, seqs)

    # Then the short ones stop at their limit and the batch shrinks as they leave
    assert [len(s.generated) for s in done][0] == 2 and done[0].finish_reason == "length"
    assert all(s.finish_reason in ("length", "stop") for s in done)
    assert model.batch_sizes == sorted(model.batch_sizes, reverse=True)
    assert model.batch_sizes[-1] == 1
    batcher.close()


class SlowPrefillModel(FakeModel):
    """Prefill takes a while, as a long prompt does: time for the loop to start stepping the
    first request before the rest are queued, if they are queued one by one."""

    def prefill(self, prompt_ids: list[int]) -> tuple[torch.Tensor, list[list[int]]]:
        time.sleep(0.05)
        return super().prefill(prompt_ids)


def test_requests_submitted_together_share_the_first_step():
    # Given a model whose prefill is slow
    model = SlowPrefillModel()
    batcher = ContinuousBatcher(model, max_batch=8)

    # When five requests are submitted together
    done = decode_all(batcher, [sequence(p) for p in PROMPTS])

    # Then every one of them is in the first decoding step, and the batch only shrinks after
    assert model.batch_sizes[0] == len(PROMPTS)
    assert model.batch_sizes == sorted(model.batch_sizes, reverse=True)
    assert [s.generated for s in done] == [alone(p) for p in PROMPTS]
    batcher.close()


def test_a_request_arriving_mid_batch_joins_at_the_next_step():
    # Given a long reply being decoded (slow steps)
    model = FakeModel(step_delay=0.01)
    batcher = ContinuousBatcher(model, max_batch=4)
    long = batcher.submit(sequence([4, 5], max_new_tokens=40))
    assert model.stepped.wait(5)

    # When a short request arrives while it runs
    short = batcher.submit(sequence([1, 2, 3], max_new_tokens=3)).result(timeout=5)

    # Then the short one finishes first (it did not wait for the batch) and both are exact
    assert not long.done()
    assert short.generated == alone([1, 2, 3], max_new_tokens=3)
    assert long.result(timeout=10).generated == alone([4, 5], max_new_tokens=40)
    assert 2 in model.batch_sizes
    batcher.close()


def test_max_batch_bounds_the_rows_and_the_rest_wait_their_turn():
    model = FakeModel()
    batcher = ContinuousBatcher(model, max_batch=2)

    done = decode_all(batcher, [sequence(p) for p in PROMPTS])

    assert max(model.batch_sizes) <= 2 and batcher.max_rows_seen == 2
    assert [s.generated for s in done] == [alone(p) for p in PROMPTS]
    batcher.close()


def test_a_model_failure_reaches_every_caller_and_the_batcher_recovers():
    # Given a model whose third step fails
    model = FakeModel(fail_on_step=3)
    batcher = ContinuousBatcher(model, max_batch=8)
    futures = batcher.submit_many([sequence(p, max_new_tokens=30) for p in PROMPTS[:3]])

    # Then every waiting caller gets the error
    for future in futures:
        with pytest.raises(RuntimeError, match="out of memory"):
            future.result(timeout=5)

    # And later requests are served normally
    assert batcher.generate(sequence([6], max_new_tokens=4)).generated == alone([6], max_new_tokens=4)
    batcher.close()


def test_seeded_sampling_does_not_depend_on_the_batch_it_runs_in():
    # Given the same seeded sampled request alone and inside a batch of others
    batcher = ContinuousBatcher(FakeModel(), max_batch=8)
    params = {"temperature": 1.5, "top_p": 0.95, "seed": 7}
    solo = batcher.generate(sequence([7, 8, 9, 10], **params)).generated

    crowd = decode_all(batcher, [sequence(p, temperature=1.0, seed=i) for i, p in enumerate(PROMPTS)]
                       + [sequence([7, 8, 9, 10], **params)])

    assert crowd[-1].generated == solo
    batcher.close()


def test_zero_max_tokens_returns_at_once_without_touching_the_model():
    model = FakeModel()
    batcher = ContinuousBatcher(model)

    done = batcher.generate(sequence([1], max_new_tokens=0))

    assert done.generated == [] and done.finish_reason == "length" and model.steps == 0


def test_one_request_failing_in_its_own_decoding_does_not_end_the_others():
    # Given a request whose constraint fails on its third token, decoded among others
    class Breaks:
        def __init__(self):
            self.seen = 0

        def mask_logits(self, logits):
            pass

        def advance(self, token):
            self.seen += 1
            if self.seen == 3:
                raise ValueError("constraint broke")

        def is_finished(self):
            return False

    batcher = ContinuousBatcher(FakeModel(), max_batch=8)
    bad = Sequence([4, 5], DecodeParams(max_new_tokens=20), frozenset({EOS}), constraint=Breaks())
    futures = [batcher.submit(sequence(p)) for p in PROMPTS[:2]] + [batcher.submit(bad)]

    # Then only that caller gets the error; the others get their exact replies
    with pytest.raises(ValueError, match="constraint broke"):
        futures[2].result(timeout=5)
    assert [f.result(timeout=5).generated for f in futures[:2]] == [alone(p) for p in PROMPTS[:2]]
    batcher.close()
