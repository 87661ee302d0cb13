"""Per-reply decoding: repetition control over the reply's own tokens, sampling, stops."""

from __future__ import annotations

import torch

from docmill.llm.decoding import DecodeParams, Sequence, reply_ids

VOCAB = 10


def seq(**params) -> Sequence:
    return Sequence([1, 2], DecodeParams(**params), frozenset({0}))


def peaked(*order: int) -> torch.Tensor:
    """Logits preferring ``order[0]``, then ``order[1]``, ... (others far below)."""
    logits = torch.full((VOCAB,), -10.0)
    for rank, token in enumerate(order):
        logits[token] = 5.0 - rank
    return logits


def test_a_looping_model_is_cut_by_no_repeat_ngram_size():
    # Given a model that always wants to continue the cycle 3 4 5 3 4 5 ...
    s = seq(max_new_tokens=12, no_repeat_ngram_size=3)
    cycle = [3, 4, 5]

    # When it decodes greedily
    while not s.finished:
        want = cycle[len(s.generated) % 3]
        s.choose(peaked(want, 7, 8, 9, 6))

    # Then no 3-gram appears twice in the reply
    grams = [tuple(s.generated[i:i + 3]) for i in range(len(s.generated) - 2)]
    assert len(grams) == len(set(grams))
    assert s.generated[:3] == [3, 4, 5]  # the first occurrence is untouched


def test_without_repetition_control_the_loop_goes_on():
    s = seq(max_new_tokens=9)
    while not s.finished:
        s.choose(peaked([3, 4, 5][len(s.generated) % 3], 7))
    assert s.generated == [3, 4, 5] * 3


def test_repetition_penalty_only_touches_tokens_the_reply_used():
    # Given a reply that already produced token 3, whose logit barely beats token 6
    s = seq(max_new_tokens=5, repetition_penalty=1.5)
    s.choose(peaked(3))
    logits = torch.full((VOCAB,), -10.0)
    logits[3], logits[6] = 4.0, 3.0

    # Then the penalty (4.0 / 1.5 < 3.0) hands the step to token 6; the prompt's tokens 1, 2 are not penalised
    assert s.choose(logits) == 6
    s2 = seq(max_new_tokens=5, repetition_penalty=1.5)
    assert s2.choose(peaked(1, 6)) == 1


def test_a_constraint_that_only_allows_a_banned_token_still_gets_it():
    # Given a constraint that allows only token 4, and 4 would repeat a bigram
    class OnlyFour:
        def mask_logits(self, logits):
            keep = logits[4].item()
            logits.fill_(float("-inf"))
            logits[4] = keep

        def advance(self, token):
            pass

        def is_finished(self):
            return False

    s = Sequence([1], DecodeParams(max_new_tokens=6, no_repeat_ngram_size=2), frozenset({0}), constraint=OnlyFour())

    # Then the reply follows the constraint (a repeat beats an invalid reply)
    while not s.finished:
        s.choose(peaked(7, 4))
    assert s.generated == [4] * 6


def test_top_p_samples_only_from_the_nucleus_and_a_seed_reproduces():
    logits = torch.tensor([-10.0, 5.0, 4.9, -10.0, -10.0, -10.0, -10.0, -10.0, -10.0, 0.0])
    picks = set()
    for seed in range(40):
        s = seq(max_new_tokens=1, temperature=1.0, top_p=0.9, seed=seed)
        picks.add(s.choose(logits))
    assert picks == {1, 2}
    a, b = seq(max_new_tokens=1, temperature=1.0, seed=3), seq(max_new_tokens=1, temperature=1.0, seed=3)
    uniform = torch.zeros(VOCAB)
    assert a.choose(uniform) == b.choose(uniform)


def test_eos_and_stop_strings_finish_the_reply():
    s = seq(max_new_tokens=10)
    s.choose(peaked(5))
    s.choose(peaked(0))
    assert s.finish_reason == "stop" and reply_ids(s) == [5]

    words = {4: "foo", 5: " END", 6: " bar"}
    s = Sequence([1], DecodeParams(max_new_tokens=10, stop=("END",)), frozenset({0}),
                 decode_text=lambda ids: "".join(words[i] for i in ids))
    s.choose(peaked(4))
    assert not s.finished
    s.choose(peaked(5))
    assert s.finish_reason == "stop"
