"""Tenants and their API keys (local deployments; on AWS identity comes from Cognito).

A key is ``dmk_<key id>_<secret>``. Only ``sha256(key)`` is stored, under the key id, so a
leaked registry file does not leak credentials; keys are 256-bit random, so a fast hash is
enough (a password hash exists to slow down guessing *low-entropy* secrets). The registry is
a JSON file written atomically; a running server re-reads it when it changes, so
``docmill tenants create`` takes effect without a restart.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import threading
from pathlib import Path

from pydantic import BaseModel, Field

from docmill.api.errors import Conflict, InvalidRequest, NotFound
from docmill.clock import utc_iso

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
_KEY = re.compile(r"^dmk_([0-9a-f]{16})_([A-Za-z0-9_-]{20,})$")


class Principal(BaseModel):
    """Who is calling: always derived from the credential, never from the request body."""

    tenant: str
    user: str | None = None
    admin: bool = False
    rate_limit_per_minute: int | None = None


class KeyRecord(BaseModel):
    key_id: str
    sha256: str
    tenant: str
    user: str | None = None
    admin: bool = True
    created: str


class TenantRecord(BaseModel):
    name: str
    created: str
    users: list[str] = Field(default_factory=list)
    rate_limit_per_minute: int | None = None  # None: the server's default


class RegistryFile(BaseModel):
    tenants: dict[str, TenantRecord] = Field(default_factory=dict)
    keys: dict[str, KeyRecord] = Field(default_factory=dict)


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def check_name(name: str, what: str = "tenant") -> str:
    if not NAME.match(name):
        raise InvalidRequest(f"{what} name {name!r}: use 1-63 letters, digits, '.', '_' or '-'")
    return name


class TenantRegistry:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._data = RegistryFile()
        self._stamp: tuple[int, int] | None = None

    # -- reading ----------------------------------------------------------------------------

    def _load(self) -> RegistryFile:
        """The current contents; re-read when the file changed (another process added a tenant)."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            self._data, self._stamp = RegistryFile(), None
            return self._data
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp != self._stamp:
            self._data = RegistryFile.model_validate_json(self.path.read_text(encoding="utf-8"))
            self._stamp = stamp
        return self._data

    def _save(self, data: RegistryFile) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(data.model_dump_json(indent=1), encoding="utf-8")
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.path)
        self._stamp = None

    def authenticate(self, key: str) -> Principal | None:
        match = _KEY.match(key.strip())
        if not match:
            return None
        with self._lock:
            data = self._load()
            record = data.keys.get(match.group(1))
            if record is None or not hmac.compare_digest(record.sha256, _digest(key.strip())):
                return None
            tenant = data.tenants.get(record.tenant)
            if tenant is None:
                return None
            return Principal(tenant=record.tenant, user=record.user, admin=record.admin,
                             rate_limit_per_minute=tenant.rate_limit_per_minute)

    def tenant(self, name: str) -> TenantRecord:
        with self._lock:
            record = self._load().tenants.get(name)
        if record is None:
            raise NotFound(f"no tenant {name!r}")
        return record

    def tenants(self) -> list[TenantRecord]:
        with self._lock:
            return list(self._load().tenants.values())

    # -- writing ----------------------------------------------------------------------------

    def create(self, name: str, *, rate_limit_per_minute: int | None = None) -> tuple[TenantRecord, str]:
        """A new tenant and its first key (an admin key: it may post notices)."""
        check_name(name)
        with self._lock:
            data = self._load().model_copy(deep=True)
            if name in data.tenants:
                raise Conflict(f"tenant {name!r} exists; use `docmill tenants key {name}` for another key")
            record = TenantRecord(name=name, created=utc_iso(), rate_limit_per_minute=rate_limit_per_minute)
            data.tenants[name] = record
            key = self._add_key(data, name, user=None, admin=True)
            self._save(data)
        return record, key

    def issue_key(self, tenant: str, *, user: str | None = None, admin: bool = False) -> str:
        with self._lock:
            data = self._load().model_copy(deep=True)
            if tenant not in data.tenants:
                raise NotFound(f"no tenant {tenant!r}")
            if user is not None and user not in data.tenants[tenant].users:
                data.tenants[tenant].users.append(check_name(user, "user"))
            key = self._add_key(data, tenant, user=user, admin=admin)
            self._save(data)
        return key

    def add_user(self, tenant: str, user: str) -> None:
        with self._lock:
            data = self._load().model_copy(deep=True)
            if tenant not in data.tenants:
                raise NotFound(f"no tenant {tenant!r}")
            if user not in data.tenants[tenant].users:
                data.tenants[tenant].users.append(check_name(user, "user"))
                self._save(data)

    @staticmethod
    def _add_key(data: RegistryFile, tenant: str, *, user: str | None, admin: bool) -> str:
        key_id = secrets.token_hex(8)
        key = f"dmk_{key_id}_{secrets.token_urlsafe(32)}"
        data.keys[key_id] = KeyRecord(key_id=key_id, sha256=_digest(key), tenant=tenant, user=user,
                                      admin=admin, created=utc_iso())
        return key

    def has_user(self, tenant: str, user: str) -> bool:
        with self._lock:
            record = self._load().tenants.get(tenant)
        return record is not None and (user == tenant or user in record.users)
