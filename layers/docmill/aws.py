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
def _cached(service: str, region: str | None, endpoint_url: str | None) -> Any:
    session = boto3.session.Session()
    return session.client(service, region_name=region, endpoint_url=endpoint_url, config=_BOTO_CONFIG)


def client(service: str, *, region: str | None = None, endpoint_url: str | None = None) -> Any:
    """Return a (cached) boto3 client for ``service``; an injected client wins."""
    with _lock:
        injected = _overrides.get((service, region)) or _overrides.get((service, None))
    if injected is not None:
        return injected
    return _cached(service, region, endpoint_url)


def set_client(service: str, value: Any, *, region: str | None = None) -> None:
    """Inject a client (a moto-backed one or a test double) for ``service``."""
    with _lock:
        _overrides[(service, region)] = value


def reset_clients() -> None:
    """Forget injected and cached clients (tests call this between environments)."""
    with _lock:
        _overrides.clear()
    _cached.cache_clear()
