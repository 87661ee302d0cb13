"""The one retry policy (docmill.retry): back-off with jitter, Retry-After, attempts, deadline."""

from __future__ import annotations

import random

import pytest

from docmill.retry import RetryPolicy, parse_retry_after


class Flaky:
    def __init__(self, failures: int) -> None:
        self.failures, self.calls = failures, 0

    def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise ConnectionError(f"failure {self.calls}")
        return "ok"


def _run(policy: RetryPolicy, attempt: Flaky, verdict: object = True) -> tuple[list[float], object]:
    slept: list[float] = []
    now = [0.0]

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    result = policy.call(attempt, retry_after=lambda _e: verdict, sleep=sleep, clock=lambda: now[0],
                         rng=random.Random(0))
    return slept, result


def test_given_transient_failures_when_called_then_it_retries_with_growing_jittered_waits() -> None:
    slept, result = _run(RetryPolicy(max_retries=5, base_delay=1.0, max_delay=100.0), Flaky(3))
    assert result == "ok" and len(slept) == 3
    for index, wait in enumerate(slept):
        ceiling = 2.0**index
        assert ceiling / 2 <= wait <= ceiling


def test_given_more_failures_than_retries_then_the_last_error_is_raised() -> None:
    attempt = Flaky(10)
    with pytest.raises(ConnectionError, match="failure 3"):
        _run(RetryPolicy(max_retries=2, base_delay=0.01), attempt)
    assert attempt.calls == 3


def test_given_a_non_retryable_error_then_it_is_raised_at_once() -> None:
    attempt = Flaky(1)
    with pytest.raises(ConnectionError):
        _run(RetryPolicy(), attempt, verdict=False)
    assert attempt.calls == 1


def test_given_a_retry_after_then_the_wait_is_at_least_that_but_capped() -> None:
    slept, _ = _run(RetryPolicy(base_delay=0.01, max_retry_after=5.0), Flaky(1), verdict=3.0)
    assert slept == [3.0]
    slept, _ = _run(RetryPolicy(base_delay=0.01, max_retry_after=5.0), Flaky(1), verdict=60.0)
    assert slept == [5.0]


def test_given_a_deadline_then_no_retry_starts_past_it() -> None:
    attempt = Flaky(10)
    with pytest.raises(ConnectionError):
        _run(RetryPolicy(max_retries=100, base_delay=4.0, max_delay=4.0, deadline=10.0), attempt)
    # waits of 2-4 s each within 10 s: three to five attempts, never the hundred retries allowed
    assert 3 <= attempt.calls <= 5


def test_retry_after_headers_in_seconds_or_as_an_http_date() -> None:
    assert parse_retry_after("7", now=0.0) == 7.0
    assert parse_retry_after("Thu, 01 Jan 1970 00:01:40 GMT", now=40.0) == 60.0
    assert parse_retry_after("soon", now=0.0) is None and parse_retry_after(None, now=0.0) is None
