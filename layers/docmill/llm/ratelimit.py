"""Rate limits, bounded concurrency and retries shared by every LLM client.

A ``CallGuard`` wraps one attempt function of a client:

* a **semaphore** bounds how many calls are in flight at once (``concurrency``);
* a **token-bucket limiter** spaces requests to ``requests_per_minute`` and tokens to
  ``tokens_per_minute``. Tokens are *estimated* before the call (prompt estimate +
  ``max_tokens``) and *reconciled* with the usage the endpoint reports afterwards, so the
  bucket ends up charged with what was really used;
* **retries** by the one retry policy (``docmill.retry``: exponential backoff, jitter) on
  ``TransientError`` (throttling, timeouts, 5xx, connection errors); an HTTP ``Retry-After``
  carried by ``LLMThrottled`` is honoured as a lower bound.

Clock, sleep and the random source are injectable so tests are deterministic.

Guarantee of the request bucket: with ``request_burst`` = b, at most ``b + rate * W``
requests start in any window of W seconds. The default b = 1 spaces requests evenly
(``60 / requests_per_minute`` apart), so no sliding window (a minute, or a scaled one) sees
more than the configured rate; ``CallGuard.from_settings`` also keeps a small headroom
(``DEFAULT_HEADROOM``) so that jitter between us and the endpoint's clock cannot push a
window over the limit as the endpoint measures it.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from docmill.errors import LLMThrottled, TransientError
from docmill.retry import RetryPolicy

if TYPE_CHECKING:
    from docmill.config import LLMSettings
    from docmill.llm.base import LLMClient, LLMResponse

Clock = Callable[[], float]
Sleep = Callable[[float], None]


class TokenBucket:
    """A bucket of ``capacity`` that refills at ``rate_per_s``; not locked (the limiter locks).

    ``take`` may drive the level negative (a debt): a call larger than the capacity waits for a
    full bucket and then borrows, so the long-run rate still holds.
    """

    def __init__(self, rate_per_s: float, capacity: float, now: float) -> None:
        if rate_per_s <= 0 or capacity <= 0:
            raise ValueError("rate and capacity must be positive")
        self.rate_per_s = rate_per_s
        self.capacity = float(capacity)
        self.level = float(capacity)
        self._last = now

    def refill(self, now: float) -> None:
        if now > self._last:
            self.level = min(self.capacity, self.level + (now - self._last) * self.rate_per_s)
            self._last = now

    def wait_time(self, amount: float, now: float) -> float:
        """Seconds until ``amount`` (capped at the capacity) is available; 0 when it is."""
        self.refill(now)
        need = min(amount, self.capacity)
        if self.level >= need:
            return 0.0
        return (need - self.level) / self.rate_per_s

    def take(self, amount: float) -> None:
        self.level -= amount

    def give(self, amount: float) -> None:
        self.level = min(self.capacity, self.level + amount)


@dataclass
class Reservation:
    """What one admitted call was charged; handed back to ``reconcile``."""

    tokens: int
    admitted_at: float
    waited_s: float


#: Fraction of a configured rate the production limiter leaves unused. The endpoint measures
#: our rate with its own clock, after network and scheduling jitter; aiming at exactly 100%
#: of a quota gets the odd request throttled, 2% below absorbs ~1% of a window in jitter.
DEFAULT_HEADROOM = 0.02


class RateLimiter:
    """Thread-safe requests/minute + tokens/minute limiter (two token buckets).

    ``headroom`` runs both buckets that fraction below the configured rates.
    """

    def __init__(
        self,
        requests_per_minute: float | None,
        tokens_per_minute: float | None = None,
        *,
        request_burst: float = 1,
        token_burst: float | None = None,
        headroom: float = 0.0,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
    ) -> None:
        if not 0.0 <= headroom < 1.0:
            raise ValueError("headroom must be in [0, 1)")
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        now = clock()
        scale = (1.0 - headroom) / 60.0
        self.requests = (
            TokenBucket(requests_per_minute * scale, max(1.0, request_burst), now) if requests_per_minute else None
        )
        if tokens_per_minute:
            # Five seconds' worth of tokens by default: smooth, yet roomy enough that ordinary
            # calls never have to borrow.
            burst = token_burst if token_burst is not None else max(1.0, tokens_per_minute / 12.0)
            self.tokens: TokenBucket | None = TokenBucket(tokens_per_minute * scale, burst, now)
        else:
            self.tokens = None

    def acquire(self, estimated_tokens: int = 0) -> Reservation:
        """Block until one request of ``estimated_tokens`` may start, then charge it."""
        start = self._clock()
        while True:
            with self._lock:
                now = self._clock()
                wait = 0.0
                if self.requests is not None:
                    wait = max(wait, self.requests.wait_time(1, now))
                if self.tokens is not None and estimated_tokens > 0:
                    wait = max(wait, self.tokens.wait_time(estimated_tokens, now))
                if wait <= 0.0:
                    if self.requests is not None:
                        self.requests.take(1)
                    if self.tokens is not None:
                        self.tokens.take(estimated_tokens)
                    return Reservation(tokens=estimated_tokens, admitted_at=now, waited_s=now - start)
            # Sleep outside the lock; another thread may win the slot, then we loop and wait again.
            self._sleep(wait)

    def reconcile(self, reservation: Reservation, actual_tokens: int) -> None:
        """Charge the difference between the estimate and what the endpoint reported."""
        if self.tokens is None:
            return
        with self._lock:
            self.tokens.refill(self._clock())
            delta = reservation.tokens - actual_tokens
            if delta >= 0:
                self.tokens.give(delta)
            else:
                self.tokens.take(-delta)


def retry_after_of(error: BaseException) -> float | None:
    """A throttling server's Retry-After, carried by ``LLMThrottled``."""
    value = getattr(error, "retry_after", None) if isinstance(error, LLMThrottled) else None
    return float(value) if value is not None else None


def is_retryable(error: BaseException) -> bool:
    return isinstance(error, TransientError)


@dataclass
class CallGuard:
    """Limiter + semaphore + retries around one attempt function (shared by all clients)."""

    limiter: RateLimiter | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    concurrency: int = 4
    sleep: Sleep = time.sleep
    rng: random.Random = field(default_factory=random.Random)
    clock: Clock = time.monotonic  # for the retry policy's deadline

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self._slots = threading.BoundedSemaphore(self.concurrency)

    @classmethod
    def from_settings(
        cls,
        settings: LLMSettings,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
        rng: random.Random | None = None,
    ) -> CallGuard:
        limiter = RateLimiter(
            settings.requests_per_minute or None,
            settings.tokens_per_minute or None,
            headroom=DEFAULT_HEADROOM,
            clock=clock,
            sleep=sleep,
        )
        retry = RetryPolicy(max_retries=settings.max_retries)
        return cls(limiter=limiter, retry=retry, concurrency=settings.concurrency, sleep=sleep,
                   rng=rng or random.Random(), clock=clock)

    def call(self, attempt: Callable[[], LLMResponse], *, estimated_tokens: int = 0,
             on_retry: Callable[[BaseException, float], None] | None = None) -> tuple[LLMResponse, int]:
        """Run ``attempt`` until it succeeds or a non-retryable error / the retry limit.

        Returns the response and the number of retries it took. The error of the last attempt
        propagates (with ``retries`` set on it) when the call fails for good.
        """
        retries = 0

        def guarded() -> LLMResponse:
            with self._slots:
                reservation = self.limiter.acquire(estimated_tokens) if self.limiter else None
                try:
                    response = attempt()
                except BaseException:
                    if reservation is not None and self.limiter is not None:
                        # A refused/failed attempt produced no tokens; its request slot stays spent.
                        self.limiter.reconcile(reservation, 0)
                    raise
                if reservation is not None and self.limiter is not None:
                    used = response.usage.input_tokens + response.usage.output_tokens
                    self.limiter.reconcile(reservation, used)
                return response

        def classify(error: BaseException) -> float | bool:
            if not is_retryable(error):
                return False
            hint = retry_after_of(error)
            return True if hint is None else hint

        def retrying(error: BaseException, _index: int, delay: float) -> None:
            nonlocal retries
            retries += 1
            if on_retry is not None:
                on_retry(error, delay)

        # The back-off sleeps happen outside ``guarded``, so waiting calls do not hold a slot.
        try:
            return self.retry.call(guarded, retry_after=classify, sleep=self.sleep, clock=self.clock,
                                   rng=self.rng, on_retry=retrying), retries
        except BaseException as error:
            error.retries = retries  # type: ignore[attr-defined]
            raise

    def chat(self, client: LLMClient, attempt: Callable[[], LLMResponse], *, estimated_tokens: int = 0) -> LLMResponse:
        """``call`` + the client's per-call accounting (one logical call, its retries)."""
        try:
            response, retries = self.call(attempt, estimated_tokens=estimated_tokens)
        except BaseException as error:
            client._record(None, retries=getattr(error, "retries", 0))
            raise
        client._record(response, retries=retries)
        return response
