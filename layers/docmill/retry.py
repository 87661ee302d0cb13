"""The one retry policy: exponential back-off with jitter, a server's Retry-After, a deadline.

Every caller that retries runs its attempts through ``RetryPolicy.call`` (the LLM call guard, the
OpenSearch adapter's requests and rejected bulk items, index provisioning with its deadline, the
connectors' HTTP client): none keeps a sleep-and-count loop of its own. What is retryable stays the caller's decision: only it
knows its errors. Sleep, clock and randomness are the caller's, so tests are deterministic.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import TypeVar

from docmill.clock import utc_now

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    #: retries after the first attempt
    max_retries: int = 6
    #: back-off ceiling of the first retry, doubled on each one, capped at ``max_delay``
    base_delay: float = 0.5
    max_delay: float = 30.0
    #: upper bound on a server's Retry-After we are willing to honour
    max_retry_after: float = 120.0
    #: seconds from the first attempt after which no retry starts (None: attempts only)
    deadline: float | None = None

    def backoff(self, retry_index: int, rng: random.Random) -> float:
        """"Equal jitter": half the ceiling plus a random half, so a wait is never zero and
        callers that failed together do not retry together."""
        ceiling = min(self.max_delay, self.base_delay * (2**retry_index))
        return float(ceiling / 2 + rng.uniform(0, ceiling / 2))

    def delay(self, retry_index: int, rng: random.Random, retry_after: float | None = None) -> float:
        """The wait before retry number ``retry_index`` (0 = the first retry)."""
        wait = self.backoff(retry_index, rng)
        if retry_after is not None and retry_after > 0:
            wait = max(wait, min(float(retry_after), self.max_retry_after))
        return wait

    @property
    def max_attempts(self) -> int:
        return self.max_retries + 1

    def allows(self, retries_done: int, elapsed: float, wait: float) -> bool:
        """May retry number ``retries_done + 1`` start after ``wait`` more seconds?"""
        if retries_done >= self.max_retries:
            return False
        return self.deadline is None or elapsed + wait <= self.deadline

    def call(
        self,
        attempt: Callable[[], T],
        *,
        retry_after: Callable[[BaseException], float | None | bool],
        sleep: Callable[[float], None],
        clock: Callable[[], float],
        rng: random.Random,
        on_retry: Callable[[BaseException, int, float], None] | None = None,
    ) -> T:
        """Run ``attempt`` until it succeeds or the policy gives up (the last error is raised).

        ``retry_after(error)`` classifies a failure: False = not retryable (raised at once),
        True = retryable, a number = retryable after at least that many seconds (Retry-After)."""
        started = clock()
        retries = 0
        while True:
            try:
                return attempt()
            except Exception as error:
                verdict = retry_after(error)
                if verdict is False:
                    raise
                hint = None if verdict is True else verdict
                wait = self.delay(retries, rng, hint)
                if not self.allows(retries, clock() - started, wait):
                    raise
                if on_retry is not None:
                    on_retry(error, retries, wait)
                sleep(wait)
                retries += 1


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """An HTTP Retry-After header (delay-seconds or an HTTP date, RFC 9110 section 10.2.3) as
    seconds from ``now`` (epoch seconds; the clock's current time when not given)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (utc_now().timestamp() if now is None else now))
