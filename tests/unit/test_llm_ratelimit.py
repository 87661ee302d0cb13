"""Token-bucket limits, backoff with full jitter, and retries of the shared CallGuard.

Rates are checked against a fake clock whose sleep advances time, so the tests are exact and
take no wall time.
"""

from __future__ import annotations

import random
import threading
import time

import pytest

from docmill.errors import LLMError, LLMThrottled, LLMTimeout, LLMUnavailable
from docmill.llm.base import ChatMessage, GenerationParams, LLMResponse, Usage
from docmill.llm.ratelimit import CallGuard, RateLimiter, retry_after_of
from docmill.retry import RetryPolicy
from docmill_devtools.scripted import ScriptedLLM

USER = [ChatMessage(role="user", content="hello")]


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def max_in_window(times: list[float], window: float) -> int:
    """Most events in any half-open window [t, t + window)."""
    times = sorted(times)
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while times[lo] <= t - window:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def test_requests_are_spaced_evenly_at_the_configured_rate():
    clock = FakeClock()
    limiter = RateLimiter(60, clock=clock, sleep=clock.sleep)

    admitted = [limiter.acquire().admitted_at for _ in range(5)]

    assert admitted == pytest.approx([0.0, 1.0, 2.0, 3.0, 4.0])


def test_no_sliding_minute_ever_exceeds_the_requests_per_minute_limit():
    # Given a limit of 120/min and far more demand than that
    clock = FakeClock()
    limiter = RateLimiter(120, clock=clock, sleep=clock.sleep)

    admitted = [limiter.acquire().admitted_at for _ in range(400)]

    # Then every minute (and every scaled 5 s window) stays within the limit, and the limit
    # is actually reached (the limiter does not simply go slow)
    assert max_in_window(admitted, 60.0) == 120
    assert max_in_window(admitted, 5.0) == 10
    assert admitted[-1] == pytest.approx(399 * 0.5)


def test_a_burst_allowance_admits_that_many_at_once_then_the_rate():
    clock = FakeClock()
    limiter = RateLimiter(60, request_burst=3, clock=clock, sleep=clock.sleep)

    admitted = [limiter.acquire().admitted_at for _ in range(5)]

    assert admitted == pytest.approx([0.0, 0.0, 0.0, 1.0, 2.0])


def test_tokens_per_minute_hold_back_large_calls():
    # 600 tokens/min = 10 tokens/s, bucket of 100
    clock = FakeClock()
    limiter = RateLimiter(None, 600, token_burst=100, clock=clock, sleep=clock.sleep)

    first = limiter.acquire(100)
    second = limiter.acquire(50)

    assert first.admitted_at == 0.0
    assert second.admitted_at == pytest.approx(5.0)


def test_reconciling_a_smaller_actual_usage_gives_tokens_back():
    clock = FakeClock()
    limiter = RateLimiter(None, 600, token_burst=100, clock=clock, sleep=clock.sleep)

    reservation = limiter.acquire(100)
    limiter.reconcile(reservation, actual_tokens=80)  # 20 tokens came back

    assert limiter.acquire(100).admitted_at == pytest.approx(8.0)


def test_reconciling_a_larger_actual_usage_puts_the_bucket_in_debt():
    clock = FakeClock()
    limiter = RateLimiter(None, 600, token_burst=100, clock=clock, sleep=clock.sleep)

    reservation = limiter.acquire(50)
    limiter.reconcile(reservation, actual_tokens=250)  # level 100 - 250 = -150

    assert limiter.acquire(10).admitted_at == pytest.approx(16.0)


def test_a_call_larger_than_the_bucket_waits_for_a_full_bucket_and_borrows():
    clock = FakeClock()
    limiter = RateLimiter(None, 600, token_burst=100, clock=clock, sleep=clock.sleep)

    limiter.acquire(100)
    big = limiter.acquire(300)   # waits for a full bucket (10 s), then owes 200
    after = limiter.acquire(10)  # 200 debt + 10 at 10 tokens/s

    assert big.admitted_at == pytest.approx(10.0)
    assert after.admitted_at == pytest.approx(31.0)


def test_the_limiter_is_thread_safe_under_real_time():
    # Given 20 threads racing for a 1200/min (20/s) limiter
    limiter = RateLimiter(1200)
    admitted: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        reservation = limiter.acquire()
        with lock:
            admitted.append(reservation.admitted_at)

    threads = [threading.Thread(target=worker) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    # Then no two admissions are closer than the spacing (small slack for float rounding)
    admitted.sort()
    gaps = [b - a for a, b in zip(admitted, admitted[1:], strict=False)]
    assert len(admitted) == 20
    assert min(gaps) >= 0.05 - 1e-6


@pytest.mark.parametrize("retry_index", range(8))
def test_jittered_backoff_stays_within_the_exponential_ceiling(retry_index):
    policy = RetryPolicy(base_delay=0.5, max_delay=8.0)
    rng = random.Random(retry_index)
    ceiling = min(8.0, 0.5 * 2**retry_index)

    delays = [policy.backoff(retry_index, rng) for _ in range(500)]

    assert all(ceiling / 2 <= d <= ceiling for d in delays)
    # equal jitter (docmill.retry): never zero, spread over the upper half, not a fixed delay
    assert min(delays) < 0.6 * ceiling and max(delays) > 0.9 * ceiling


def test_retry_after_is_a_lower_bound_on_the_delay():
    policy = RetryPolicy(base_delay=0.1, max_delay=1.0)

    delay = policy.delay(0, random.Random(1), retry_after_of(LLMThrottled("slow down", retry_after=7.0)))

    assert delay == 7.0


def _guard(clock: FakeClock, *, retries: int = 4, concurrency: int = 2, rpm: int | None = None) -> CallGuard:
    limiter = RateLimiter(rpm, clock=clock, sleep=clock.sleep) if rpm else None
    return CallGuard(limiter=limiter, retry=RetryPolicy(max_retries=retries, base_delay=1.0, max_delay=10.0),
                     concurrency=concurrency, sleep=clock.sleep, rng=random.Random(3))


@pytest.mark.parametrize("error", [LLMThrottled, LLMTimeout, LLMUnavailable])
def test_transient_errors_are_retried_until_success(error):
    clock = FakeClock()
    llm = ScriptedLLM(["done"], failures={0: error, 1: error, 2: error}, guard=_guard(clock))

    response = llm.chat(USER)

    assert response.text == "done"
    assert llm.attempts == 4
    assert len(clock.sleeps) == 3
    assert all(s <= c for s, c in zip(clock.sleeps, [1.0, 2.0, 4.0], strict=True))
    assert (llm.accounting.calls, llm.accounting.retries, llm.accounting.failures) == (1, 3, 0)


def test_retries_stop_at_max_retries_and_the_last_error_propagates():
    clock = FakeClock()
    llm = ScriptedLLM(["never"], failures=dict.fromkeys(range(10), LLMTimeout), guard=_guard(clock, retries=2))

    with pytest.raises(LLMTimeout) as raised:
        llm.chat(USER)

    assert llm.attempts == 3
    assert raised.value.retries == 2
    assert (llm.accounting.calls, llm.accounting.retries, llm.accounting.failures) == (1, 2, 1)


def test_non_transient_errors_are_not_retried():
    clock = FakeClock()
    llm = ScriptedLLM(["never"], failures={0: LLMError("bad request")}, guard=_guard(clock))

    with pytest.raises(LLMError, match="bad request"):
        llm.chat(USER)

    assert llm.attempts == 1 and clock.sleeps == []


def test_server_retry_after_is_honoured_by_the_guard():
    clock = FakeClock()
    llm = ScriptedLLM(["ok"], failures={0: LLMThrottled("429", retry_after=12.0)}, guard=_guard(clock))

    llm.chat(USER)

    assert clock.sleeps == [12.0]


def test_retried_attempts_each_take_a_rate_limit_slot():
    # 60/min: the first attempt at t=0 is throttled, backoff is < 1 s, so the retry must
    # still wait for the next request slot at t=1
    clock = FakeClock()
    llm = ScriptedLLM(["ok"], failures={0: LLMThrottled}, guard=_guard(clock, rpm=60))

    llm.chat(USER)

    assert clock.now == pytest.approx(1.0)


def test_reported_usage_is_reconciled_into_the_token_bucket():
    # Given a guard with a 600 tokens/min bucket of 100 and a reply that reports 100 tokens used
    clock = FakeClock()
    limiter = RateLimiter(None, 600, token_burst=100, clock=clock, sleep=clock.sleep)
    guard = CallGuard(limiter=limiter, sleep=clock.sleep)
    big = LLMResponse(text="x", usage=Usage(input_tokens=60, output_tokens=40), model_id="m")
    llm = ScriptedLLM([big, "y"], guard=guard)

    # When two calls are made, each estimated at about 17 tokens
    llm.chat(USER, GenerationParams(max_tokens=8))
    llm.chat(USER, GenerationParams(max_tokens=8))

    # Then the second waited for the real usage of the first (100 tokens), not the estimate
    assert clock.now == pytest.approx(1.7, abs=0.2)


def test_concurrency_is_bounded_by_the_semaphore():
    # Given a double that records how many attempts are in flight at once
    in_flight = 0
    peak = 0
    lock = threading.Lock()

    def reply(messages):
        nonlocal in_flight, peak
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
        time.sleep(0.02)
        with lock:
            in_flight -= 1
        return "ok"

    llm = ScriptedLLM(reply, guard=CallGuard(concurrency=3))

    threads = [threading.Thread(target=llm.chat, args=(USER,)) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert peak == 3
    assert llm.accounting.calls == 12


def test_headroom_runs_the_buckets_below_the_configured_rate():
    clock = FakeClock()
    limiter = RateLimiter(60, headroom=0.5, clock=clock, sleep=clock.sleep)

    admitted = [limiter.acquire().admitted_at for _ in range(3)]

    assert admitted == pytest.approx([0.0, 2.0, 4.0])
