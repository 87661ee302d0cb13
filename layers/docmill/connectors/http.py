"""One HTTP helper for the REST connectors: retries on the one retry policy (``docmill.retry``)
with the server's own back-off hints.

Rate limits look different per service, so the rules are explicit:
- 429 (every service): wait at least ``Retry-After`` seconds (else jittered exponential back-off);
- 403 with ``x-ratelimit-remaining: 0`` (GitHub primary limit): wait until
  ``x-ratelimit-reset`` (epoch seconds); 403 with ``Retry-After`` (GitHub secondary limit)
  likewise; 403 whose JSON says ``rateLimitExceeded``/``userRateLimitExceeded`` (Google) too;
- 500/502/503/504 and connection errors: jittered exponential back-off;
- 401 and any other 403: ``ConnectorAuthError`` at once (retrying bad credentials is useless);
- other 4xx: ``ConnectorError`` with the service's message.
The longest single wait is capped (``max_wait``) so a reset an hour away fails the run with
``ConnectorRateLimited`` instead of stalling a scheduled task.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from typing import Any

import requests

from docmill import __version__
from docmill.errors import ConnectorAuthError, ConnectorError, ConnectorRateLimited
from docmill.retry import RetryPolicy, parse_retry_after

USER_AGENT = f"docmill/{__version__} (source connector; +https://github.com/docmill)"
_RETRY_STATUS = {429, 500, 502, 503, 504}
_GOOGLE_RATE_REASONS = {"rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded"}


def _retry_after(headers: Any, now: float) -> float | None:
    hint = parse_retry_after(headers.get("Retry-After"), now)
    if hint is not None:
        return hint
    if headers.get("x-ratelimit-remaining") == "0" and headers.get("x-ratelimit-reset"):
        try:
            return max(0.0, float(headers["x-ratelimit-reset"]) - now) + 1.0
        except ValueError:
            return None
    return None


class _Retryable(Exception):
    """A throttled or unavailable answer: the policy decides whether and when to try again."""

    def __init__(self, resp: requests.Response, hint: float | None) -> None:
        super().__init__(resp.status_code)
        self.resp = resp
        self.hint = hint


def _message(resp: requests.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return resp.text[:300]
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict):
            return str(err.get("message") or err.get("reason") or err.get("info") or err)[:300]
        if isinstance(err, str):
            return err[:300]
        if body.get("message"):
            return str(body["message"])[:300]
    return json.dumps(body)[:300]


def _is_rate_limited_403(resp: requests.Response) -> bool:
    if resp.headers.get("x-ratelimit-remaining") == "0" or resp.headers.get("Retry-After"):
        return True
    try:
        body = resp.json()
    except ValueError:
        return "rate limit" in resp.text.lower()
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict):
            reasons = {e.get("reason") for e in err.get("errors", []) if isinstance(e, dict)}
            if reasons & _GOOGLE_RATE_REASONS:
                return True
        if "rate limit" in str(body.get("message", "")).lower():
            return True
    return False


class HttpClient:
    """A ``requests`` session with auth headers, timeouts and rate-limit aware retries."""

    def __init__(
        self,
        *,
        service: str,
        headers: dict[str, str] | None = None,
        auth: Any = None,
        timeout: float = 60.0,
        max_retries: int = 6,
        max_wait: float = 300.0,
        backoff: float = 1.0,
        deadline: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        session: requests.Session | None = None,
    ) -> None:
        self.service = service
        self.session = session or requests.Session()
        self.session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json"})
        if headers:
            self.session.headers.update(headers)
        if auth is not None:
            self.session.auth = auth
        self.timeout = timeout
        self.max_wait = max_wait
        # The one retry policy; a server's wait (Retry-After, a rate-limit reset) is honoured up
        # to ``max_wait``, and a longer one fails the run at once (see ``request``).
        self.policy = RetryPolicy(
            max_retries=max_retries, base_delay=backoff, max_delay=max_wait, max_retry_after=max_wait, deadline=deadline
        )
        self.sleep = sleep
        self.clock = clock  # epoch seconds: Retry-After dates and rate-limit resets are epoch times
        self.rng = rng or random.Random()
        self.waits: list[float] = []  # every back-off taken, for reports and tests

    def request(
        self, method: str, url: str, *, throttled: Callable[[requests.Response], bool] | None = None, **kwargs: Any
    ) -> requests.Response:
        """``throttled``: a successful answer that the service marks as "try again later" in its
        body (MediaWiki's ``maxlag``); it is retried like a 429."""
        kwargs.setdefault("timeout", self.timeout)
        attempts = 0

        def attempt() -> requests.Response:
            nonlocal attempts
            attempts += 1
            resp = self.session.request(method, url, **kwargs)
            status = resp.status_code
            if status < 400:
                if throttled is None or not throttled(resp):
                    return resp
                raise _Retryable(resp, _retry_after(resp.headers, self.clock()))
            if status == 401:
                raise ConnectorAuthError(f"{self.service}: authentication failed ({status}): {_message(resp)}")
            rate_limited = status in _RETRY_STATUS or (status == 403 and _is_rate_limited_403(resp))
            if status == 403 and not rate_limited:
                raise ConnectorAuthError(f"{self.service}: access denied ({status}): {_message(resp)}")
            if not rate_limited:
                raise ConnectorError(f"{self.service}: {method} {url} failed ({status}): {_message(resp)}")
            raise _Retryable(resp, _retry_after(resp.headers, self.clock()))

        def retryable(error: BaseException) -> float | bool:
            if isinstance(error, (requests.ConnectionError, requests.Timeout)):
                return True
            if isinstance(error, _Retryable):
                # a reset further away than we are willing to wait fails now, not after the wait
                if error.hint is not None and error.hint > self.max_wait:
                    return False
                return True if error.hint is None else error.hint
            return False

        try:
            return self.policy.call(attempt, retry_after=retryable, sleep=self.sleep, clock=self.clock,
                                    rng=self.rng, on_retry=lambda _e, _n, wait: self.waits.append(wait))
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise ConnectorError(f"{self.service}: cannot reach {url}: {exc}") from exc
        except _Retryable as exc:
            status = exc.resp.status_code
            kind = "rate limited" if status < 500 else f"unavailable ({status})"
            later = f"; next try allowed in {exc.hint:.0f}s" if exc.hint is not None else ""
            raise ConnectorRateLimited(
                f"{self.service}: {kind} after {attempts} attempts{later}: {_message(exc.resp)}"
            ) from exc

    def get_json(self, url: str, **kwargs: Any) -> Any:
        return self.request("GET", url, **kwargs).json()

    def close(self) -> None:
        self.session.close()
