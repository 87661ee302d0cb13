"""Who is calling, from the credential only, and how often they may call.

* ``ApiKeyAuth`` (local): ``Authorization: Bearer <key>`` checked against the tenant registry.
* ``CognitoClaimsAuth`` (AWS): API Gateway's JWT authorizer has already verified the Cognito
  token (signature, issuer, audience, expiry) before the request reaches Lambda; the tenant
  is read from a claim of that verified token (default ``custom:tenant``), admins are the
  members of a Cognito group (default ``admin``). A request without verified claims is 401:
  the function never trusts a header or a body for identity.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from docmill.api.errors import RateLimited, Unauthenticated
from docmill.api.tenants import NAME, Principal, TenantRegistry
from docmill.llm.ratelimit import TokenBucket


class Authenticator(Protocol):
    def authenticate(self, headers: Mapping[str, str], scope: Mapping[str, Any]) -> Principal: ...

    def user_belongs(self, principal: Principal, user_id: str) -> bool: ...


def bearer_token(headers: Mapping[str, str]) -> str | None:
    value = headers.get("authorization") or ""
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


class ApiKeyAuth:
    def __init__(self, registry: TenantRegistry) -> None:
        self.registry = registry

    def authenticate(self, headers: Mapping[str, str], scope: Mapping[str, Any]) -> Principal:
        token = bearer_token(headers)
        if token is None:
            raise Unauthenticated("missing credential: send Authorization: Bearer <api key>")
        principal = self.registry.authenticate(token)
        if principal is None:
            raise Unauthenticated("invalid API key")
        return principal

    def user_belongs(self, principal: Principal, user_id: str) -> bool:
        return self.registry.has_user(principal.tenant, user_id)


class CognitoClaimsAuth:
    def __init__(self, *, tenant_claim: str = "custom:tenant", admin_group: str = "admin") -> None:
        self.tenant_claim = tenant_claim
        self.admin_group = admin_group

    @staticmethod
    def claims(scope: Mapping[str, Any]) -> dict[str, Any]:
        event = scope.get("aws.event") or {}  # Mangum puts the Lambda event here
        return dict(((event.get("requestContext") or {}).get("authorizer") or {}).get("jwt", {}).get("claims") or {})

    def authenticate(self, headers: Mapping[str, str], scope: Mapping[str, Any]) -> Principal:
        claims = self.claims(scope)
        tenant = str(claims.get(self.tenant_claim) or "")
        if not claims or not NAME.match(tenant):
            raise Unauthenticated(f"the token carries no valid {self.tenant_claim!r} claim")
        groups = claims.get("cognito:groups") or ""
        if isinstance(groups, str):  # HTTP API passes list claims as "[a b]"
            groups = groups.strip("[]").replace(",", " ").split()
        user = str(claims.get("cognito:username") or claims.get("username") or claims.get("sub") or "") or None
        return Principal(tenant=tenant, user=user, admin=self.admin_group in groups)

    def user_belongs(self, principal: Principal, user_id: str) -> bool:
        return user_id in (principal.tenant, principal.user)


class TenantRateLimiter:
    """A token bucket per tenant: ``per_minute`` requests, bursts up to a minute's worth."""

    def __init__(self, per_minute: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self.clock = clock
        self._buckets: dict[str, TokenBucket] = {}
        self._lock = threading.Lock()

    def check(self, principal: Principal) -> None:
        limit = principal.rate_limit_per_minute or self.per_minute
        if limit <= 0:
            return
        now = self.clock()
        with self._lock:
            bucket = self._buckets.get(principal.tenant)
            if bucket is None or bucket.capacity != limit:
                bucket = self._buckets[principal.tenant] = TokenBucket(limit / 60.0, limit, now)
            wait = bucket.wait_time(1, now)
            if wait > 0:
                raise RateLimited(f"rate limit of {limit} requests per minute reached", retry_after=max(1, math.ceil(wait)))
            bucket.take(1)
