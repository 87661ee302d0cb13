"""The sync configuration file, typed.

Smallest form::

    source: {type: local, path: ./docs}
    destination: {path: s3://raw-bucket/tenant-a}

Full form::

    destination: {path: s3://raw-bucket/tenant-a}
    state: {path: s3://config-bucket/sync-state}      # default: <destination>/.docmill-sync
    sources:
      - name: handbook
        type: github
        options: {repo: acme/handbook, branch: main, paths: [docs/]}
        credentials: {env: {token: GITHUB_TOKEN}}
        schedule: rate(1 hour)                         # used by the AWS scheduled task
      - name: wiki
        type: wikipedia
        titles: [Retrieval-augmented generation]        # options may also sit inline
        destination: {path: s3://raw-bucket/tenant-a/wiki}

Credentials name where secrets come from, never the secrets themselves: ``env`` maps a
credential field to an environment variable name, ``secret_id`` names an AWS Secrets Manager
secret whose SecretString is a JSON object of fields (or a plain string, given as ``value``
unless ``secret_field`` names the field). They are resolved at the edge (CLI, ECS task) by
``resolve_credentials`` and handed to connectors as a plain dict.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from docmill import aws
from docmill.errors import ConfigurationError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_RESERVED = {"type", "name", "options", "credentials", "destination", "schedule"}


class CredentialsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    env: dict[str, str] = Field(default_factory=dict, description="credential field -> environment variable name")
    secret_id: str | None = Field(None, description="AWS Secrets Manager secret id or ARN")
    secret_field: str | None = Field(None, description="field name for a secret that is a plain string")


class DestinationConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = Field(..., description="local folder or s3://bucket/prefix (the raw bucket)")


class StateConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str | None = Field(None, description="folder or s3:// URI for sync state; default under the destination")


class SourceConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: str
    name: str = ""
    options: dict[str, Any] = Field(default_factory=dict)
    credentials: CredentialsConfig = Field(default_factory=CredentialsConfig)
    destination: DestinationConfig | None = None
    schedule: str | None = Field(None, description="EventBridge Scheduler expression, e.g. rate(1 hour)")

    @model_validator(mode="before")
    @classmethod
    def _inline_options(cls, data: Any) -> Any:
        # `source: {type: local, path: DIR}`: keys that are not the block's own are options.
        if isinstance(data, Mapping):
            data = dict(data)
            inline = {k: data.pop(k) for k in list(data) if k not in _RESERVED}
            if inline:
                data["options"] = {**inline, **dict(data.get("options") or {})}
            for optional in ("credentials", "options"):
                if optional in data and data[optional] is None:
                    data.pop(optional)
        return data

    @model_validator(mode="after")
    def _typed(self) -> SourceConfig:
        from docmill.connectors.registry import canonical_type, connector_class

        try:
            self.type = canonical_type(self.type)
        except ConfigurationError as exc:
            raise ValueError(exc.message) from exc
        cls_ = connector_class(self.type)
        try:
            typed = cls_.options_model.model_validate(self.options)
        except ValidationError as exc:
            raise ValueError(f"options of source type {self.type!r}: {exc}") from exc
        self.options = typed.model_dump()
        if not self.name:
            self.name = self.type
        if not _NAME.match(self.name):
            raise ValueError(f"source name {self.name!r}: use letters, digits, '.', '_' or '-' (max 64)")
        return self


class SyncConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sources: list[SourceConfig]
    destination: DestinationConfig | None = None
    state: StateConfig = Field(default_factory=StateConfig)
    workers: int = Field(4, ge=1, le=64, description="documents fetched and written in parallel per source")

    @model_validator(mode="before")
    @classmethod
    def _single_source(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and "source" in data:
            data = dict(data)
            if "sources" in data:
                raise ValueError("give either 'source' or 'sources', not both")
            data["sources"] = [data.pop("source")]
        return data

    @field_validator("sources")
    @classmethod
    def _unique(cls, value: list[SourceConfig]) -> list[SourceConfig]:
        if not value:
            raise ValueError("at least one source is needed")
        names = [s.name for s in value]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"source names must be unique (give each a 'name'): {', '.join(dupes)}")
        return value

    @model_validator(mode="after")
    def _destinations(self) -> SyncConfig:
        for source in self.sources:
            if source.destination is None and self.destination is None:
                raise ValueError(f"source {source.name!r} has no destination (set 'destination: {{path: ...}}')")
        # Two sources landing in one folder could overwrite (and, on deletion, remove) each
        # other's documents: each needs its own destination path.
        by_dest: dict[str, list[str]] = {}
        for source in self.sources:
            by_dest.setdefault(self.destination_for(source).rstrip("/"), []).append(source.name)
        shared = {d: names for d, names in by_dest.items() if len(names) > 1}
        if shared:
            dest, names = next(iter(shared.items()))
            raise ValueError(
                f"sources {', '.join(names)} would land in the same destination {dest}; give each its own "
                f"'destination: {{path: {dest}/<name>}}'"
            )
        return self

    def destination_for(self, source: SourceConfig) -> str:
        dest = source.destination or self.destination
        if dest is None:  # the validator checks it first
            raise ConfigurationError(f"source {source.name!r} has no destination")
        return dest.path

    def source(self, name: str) -> SourceConfig:
        for source in self.sources:
            if source.name == name:
                return source
        raise ConfigurationError(f"no source named {name!r} in the config (have: {[s.name for s in self.sources]})")


def parse_sync_config(text: str | bytes, *, origin: str = "config") -> SyncConfig:
    """Parse YAML (or JSON) text into a validated ``SyncConfig``; errors name the problem."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"{origin}: not valid YAML: {exc}") from exc
    if not isinstance(data, Mapping):
        raise ConfigurationError(f"{origin}: expected a mapping with 'source' (or 'sources') and 'destination'")
    try:
        return SyncConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'config'}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigurationError(f"{origin}: {problems}") from exc


def resolve_credentials(
    spec: CredentialsConfig, *, environ: Mapping[str, str], secrets_client: Any | None = None
) -> dict[str, str]:
    """Turn a credentials spec into values. Called at the edge; ``environ`` is passed in.

    Secrets Manager values come first and named environment variables override them, so a
    developer can replace one field locally without touching the shared secret.
    """
    values: dict[str, str] = {}
    if spec.secret_id:
        client = secrets_client or aws.client("secretsmanager")
        try:
            resp = client.get_secret_value(SecretId=spec.secret_id)
        except Exception as exc:  # botocore ClientError and friends, reported as configuration
            raise ConfigurationError(f"cannot read secret {spec.secret_id!r}: {exc}") from exc
        secret = resp.get("SecretString")
        if secret is None:
            raise ConfigurationError(f"secret {spec.secret_id!r} has no SecretString (binary secrets are not supported)")
        try:
            parsed = json.loads(secret)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            values.update({str(k): str(v) for k, v in parsed.items() if v is not None})
        else:
            values[spec.secret_field or "value"] = secret
    missing = []
    for field, var in spec.env.items():
        if var in environ and environ[var] != "":
            values[field] = environ[var]
        elif field not in values:
            missing.append(var)
    if missing:
        raise ConfigurationError(f"credential environment variable(s) not set: {', '.join(missing)}")
    return values


def load_sync_config(location: str) -> SyncConfig:
    """Read and validate a config file from a local path or an ``s3://bucket/key`` URI."""
    from pathlib import Path

    from docmill.storage import S3Store, is_s3_uri, parse_s3_uri

    if is_s3_uri(location):
        bucket, key = parse_s3_uri(location)
        text: str | bytes = S3Store(bucket).read_bytes(key)
    else:
        path = Path(location).expanduser()
        if not path.is_file():
            raise ConfigurationError(f"config file not found: {path}")
        text = path.read_text(encoding="utf-8")
    return parse_sync_config(text, origin=location)
