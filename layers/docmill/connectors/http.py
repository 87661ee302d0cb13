"""One HTTP helper for the REST connectors: retries with the server's own back-off hints.

Rate limits look different per service, so the rules are explicit:
- 429 (every service): wait ``Retry-After`` seconds (or exponential back-off) and retry;
- 403 with ``x-ratelimit-remaining: 0`` (GitHub primary limit): wait until
  ``x-ratelimit-reset`` (epoch seconds); 403 with ``Retry-After`` (GitHub secondary limit)
  likewise; 403 whose JSON says ``rateLimitExceeded``/``userRateLimitExceeded`` (Google) too;
- 500/502/503/504 and connection errors: exponential back-off;
- 401 and any other 403: ``ConnectorAuthError`` at once (retrying bad credentials is useless);
- other 4xx: ``ConnectorError`` with the service's message.
The longest single wait is capped (``max_wait``) so a reset an hour away fails the run with
``ConnectorRateLimited`` instead of stalling a scheduled task.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from typing import Any

import requests

from docmill import __version__
from docmill.errors import ConnectorAuthError, ConnectorError, ConnectorRateLimited

USER_AGENT = f"docmill/{__version__} (source connector; +https://github.com/docmill)"
_RETRY_STATUS = {429, 500, 502, 503, 504}
_GOOGLE_RATE_REASONS = {"rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded"}


def _retry_after(headers: Any, now: float) -> float | None:
    value = headers.get("Retry-After")
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            try:
                return max(0.0, parsedate_to_datetime(value).timestamp() - now)
            except (TypeError, ValueError):
                return None
    if headers.get("x-ratelimit-remaining") == "0" and headers.get("x-ratelimit-reset"):
        try:
            return max(0.0, float(headers["x-ratelimit-reset"]) - now) + 1.0
        except ValueError:
            return None
    return None


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
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
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
        self.max_retries = max_retries
        self.max_wait = max_wait
        self.backoff = backoff
        self.sleep = sleep
        self.clock = clock
        self.waits: list[float] = []  # every back-off taken, for reports and tests

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", self.timeout)
        attempt = 0
        while True:
            try:
                resp = self.session.request(method, url, **kwargs)
            except (requests.ConnectionError, requests.Timeout) as exc:
                if attempt >= self.max_retries:
                    raise ConnectorError(f"{self.service}: cannot reach {url}: {exc}") from exc
                self._wait(self.backoff * 2**attempt, url, None)
                attempt += 1
                continue
            status = resp.status_code
            if status < 400:
                return resp
            if status == 401:
                raise ConnectorAuthError(f"{self.service}: authentication failed ({status}): {_message(resp)}")
            rate_limited = status in _RETRY_STATUS or (status == 403 and _is_rate_limited_403(resp))
            if status == 403 and not rate_limited:
                raise ConnectorAuthError(f"{self.service}: access denied ({status}): {_message(resp)}")
            if not rate_limited:
                raise ConnectorError(f"{self.service}: {method} {url} failed ({status}): {_message(resp)}")
            hint = _retry_after(resp.headers, self.clock())
            delay = hint if hint is not None else self.backoff * 2**attempt
            if attempt >= self.max_retries or delay > self.max_wait:
                kind = "rate limited" if status in (403, 429) else f"unavailable ({status})"
                raise ConnectorRateLimited(
                    f"{self.service}: {kind} after {attempt + 1} attempts"
                    f"{f'; next try allowed in {delay:.0f}s' if hint is not None else ''}: {_message(resp)}"
                )
            self._wait(delay, url, status)
            attempt += 1

    def _wait(self, seconds: float, url: str, status: int | None) -> None:
        self.waits.append(seconds)
        self.sleep(seconds)

    def get_json(self, url: str, **kwargs: Any) -> Any:
        return self.request("GET", url, **kwargs).json()

    def close(self) -> None:
        self.session.close()
