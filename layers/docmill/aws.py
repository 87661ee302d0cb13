"""One cached factory for boto3 clients.

Every AWS call in docmill gets its client here, so tests can inject moto or a double with
``set_client`` and everything honours ``AWS_ENDPOINT_URL`` (boto3 reads it natively), which is
how LocalStack, MinIO and ``docmill dev`` slot in.
"""

from __future__ import annotations

import threading
from functools import lru_cache
from typing import Any

import boto3
from botocore.config import Config

_overrides: dict[tuple[str, str | None], Any] = {}
_lock = threading.Lock()

_BOTO_CONFIG = Config(retries={"max_attempts": 8, "mode": "adaptive"}, connect_timeout=10, read_timeout=120)


@lru_cache(maxsize=64)
def _cached(
    service: str, region: str | None, endpoint_url: str | None, max_attempts: int | None, read_timeout: float | None
) -> Any:
    config = _BOTO_CONFIG
    if max_attempts is not None or read_timeout is not None:
        config = config.merge(
            Config(
                retries={"max_attempts": max_attempts or 8, "mode": "standard" if max_attempts == 1 else "adaptive"},
                read_timeout=read_timeout or 120,
            )
        )
    session = boto3.session.Session()
    return session.client(service, region_name=region, endpoint_url=endpoint_url, config=config)


def client(
    service: str,
    *,
    region: str | None = None,
    endpoint_url: str | None = None,
    max_attempts: int | None = None,
    read_timeout: float | None = None,
) -> Any:
    """Return a (cached) boto3 client for ``service``; an injected client wins.

    ``max_attempts=1`` turns botocore's own retries off, for callers (the LLM clients) that
    retry with their own backoff and rate limits; ``read_timeout`` overrides the 120 s default.
    """
    with _lock:
        injected = _overrides.get((service, region)) or _overrides.get((service, None))
    if injected is not None:
        return injected
    return _cached(service, region, endpoint_url, max_attempts, read_timeout)


def set_client(service: str, value: Any, *, region: str | None = None) -> None:
    """Inject a client (a moto-backed one or a test double) for ``service``."""
    with _lock:
        _overrides[(service, region)] = value


def reset_clients() -> None:
    """Forget injected and cached clients (tests call this between environments)."""
    with _lock:
        _overrides.clear()
    _cached.cache_clear()
