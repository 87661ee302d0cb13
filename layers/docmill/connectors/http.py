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

Every URL goes through the connector ``UrlPolicy`` (``connectors/urlpolicy.py``): the client is
pinned to its service's origins (``base_urls``), redirects are followed by hand and only
within those origins, and each connection's resolved addresses are checked before dialling.
"""

from __future__ import annotations

import json
import random
import socket
import time
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urljoin

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NameResolutionError, NewConnectionError

from docmill import __version__
from docmill.connectors.urlpolicy import Origin, UrlPolicy, origin_of
from docmill.errors import ConnectorAuthError, ConnectorError, ConnectorRateLimited, ConnectorUrlRefused
from docmill.retry import RetryPolicy, parse_retry_after

USER_AGENT = f"docmill/{__version__} (source connector; +https://github.com/docmill)"
_RETRY_STATUS = {429, 500, 502, 503, 504}
_GOOGLE_RATE_REASONS = {"rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded"}
_REDIRECTS = {301, 302, 303, 307, 308}
MAX_REDIRECTS = 5


def _guarded(base: type[HTTPConnection], policy: UrlPolicy) -> type[HTTPConnection]:
    """A urllib3 connection class that dials only addresses the policy allows.

    The name is resolved once here, every address checked, and the socket opened to a checked
    address (TLS still verifies the certificate against the host name), so a DNS answer that
    changes between a check and the connect cannot slip an internal address through.
    """

    class Guarded(base):  # type: ignore[valid-type,misc]
        def _new_conn(self) -> socket.socket:
            host: str = self._dns_host  # type: ignore[has-type]
            try:
                addresses = policy.resolve(host, self.port)
            except socket.gaierror as exc:
                raise NameResolutionError(self.host, self, exc) from exc
            last: NewConnectionError | None = None
            try:
                for address in addresses:
                    self._dns_host = address
                    try:
                        return super()._new_conn()
                    except NewConnectionError as exc:
                        last = exc
            finally:
                self._dns_host = host
            raise last or NewConnectionError(self, f"{host} resolved to no address")

    return Guarded


class PolicyAdapter(HTTPAdapter):
    """``requests`` transport whose connections go through ``_guarded`` (direct connections;
    a proxy configured in the environment is dialled as the operator set it up)."""

    def __init__(self, policy: UrlPolicy, **kwargs: Any) -> None:
        self.url_policy = policy  # set before HTTPAdapter.__init__, which builds the pool manager
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        http_pool = type("GuardedHTTPPool", (HTTPConnectionPool,),
                         {"ConnectionCls": _guarded(HTTPConnection, self.url_policy)})
        https_pool = type("GuardedHTTPSPool", (HTTPSConnectionPool,),
                          {"ConnectionCls": _guarded(HTTPSConnection, self.url_policy)})
        self.poolmanager.pool_classes_by_scheme = {"http": http_pool, "https": https_pool}


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
        base_urls: Sequence[str] = (),
        url_policy: UrlPolicy | None = None,
    ) -> None:
        self.service = service
        self.url_policy = url_policy or UrlPolicy()
        # The service's origins; with none given, the first URL called pins the client to its own.
        self.origins: set[Origin] = {self._checked(u) for u in base_urls}
        self.session = session or requests.Session()
        adapter = PolicyAdapter(self.url_policy)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self.session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json"})
        if headers:
            self.session.headers.update(headers)
        if auth is not None:
            self.session.auth = auth
        self.timeout = timeout
        self.max_wait = max_wait
        # The one retry policy; a server's wait (Retry-After, a rate-limit reset) is honoured up
        # to ``max_wait``, and a longer one fails the run at once (see ``request``).
        self.retry = RetryPolicy(
            max_retries=max_retries, base_delay=backoff, max_delay=max_wait, max_retry_after=max_wait, deadline=deadline
        )
        self.sleep = sleep
        self.clock = clock  # epoch seconds: Retry-After dates and rate-limit resets are epoch times
        self.rng = rng or random.Random()
        self.waits: list[float] = []  # every back-off taken, for reports and tests

    def _checked(self, url: str) -> Origin:
        try:
            return self.url_policy.check_url(url)
        except ConnectorUrlRefused as exc:
            raise ConnectorUrlRefused(f"{self.service}: {exc}") from None

    def _check_origin(self, url: str) -> None:
        origin = self._checked(url)
        if not self.origins:
            self.origins.add(origin)
        elif origin not in self.origins:
            allowed = ", ".join(sorted(f"{s}://{h}:{p}" for s, h, p in self.origins))
            raise ConnectorUrlRefused(f"{self.service}: {url} is outside the configured service ({allowed})")

    def send(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """One request, redirects followed by hand and only within the configured origins.

        ``requests`` would follow a redirect anywhere (dropping Authorization, but not cookies,
        basic auth set by an auth hook, or the request itself); refusing keeps every byte at the
        configured service.
        """
        kwargs = {"timeout": self.timeout, **kwargs}  # a copy: a retry starts from the caller's request
        kwargs["allow_redirects"] = False
        for _ in range(MAX_REDIRECTS + 1):
            self._check_origin(url)
            resp = self.session.request(method, url, **kwargs)
            location = resp.headers.get("Location")
            if resp.status_code not in _REDIRECTS or not location:
                return resp
            target = urljoin(url, location)
            if origin_of(target) not in self.origins:
                resp.close()
                raise ConnectorUrlRefused(
                    f"{self.service}: {method} {url} redirected to another host ({origin_of(target)[1]}); not followed"
                )
            resp.close()
            if resp.status_code == 303 or (resp.status_code in (301, 302) and method != "HEAD"):
                method = "GET" if method != "HEAD" else method
                kwargs.pop("data", None)
                kwargs.pop("json", None)
            # Query parameters are part of the redirect target, not to be appended again.
            kwargs.pop("params", None)
            url = target
        raise ConnectorError(f"{self.service}: more than {MAX_REDIRECTS} redirects from {url}")

    def request(
        self, method: str, url: str, *, throttled: Callable[[requests.Response], bool] | None = None, **kwargs: Any
    ) -> requests.Response:
        """``throttled``: a successful answer that the service marks as "try again later" in its
        body (MediaWiki's ``maxlag``); it is retried like a 429."""
        attempts = 0

        def attempt() -> requests.Response:
            nonlocal attempts
            attempts += 1
            resp = self.send(method, url, **kwargs)
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
            return self.retry.call(attempt, retry_after=retryable, sleep=self.sleep, clock=self.clock,
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
