"""Source type -> connector class, and how a configured source becomes a connector."""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from docmill.connectors.urlpolicy import UrlPolicy
from docmill.errors import ConfigurationError

if TYPE_CHECKING:
    from docmill.connectors.base import Connector
    from docmill.connectors.config import SourceConfig

# Imported lazily so a Lambda that only reads metadata does not import pymongo or requests.
_CONNECTORS: dict[str, tuple[str, str]] = {
    "local": ("docmill.connectors.local", "LocalDirectoryConnector"),
    "s3": ("docmill.connectors.s3", "S3Connector"),
    "github": ("docmill.connectors.github", "GitHubConnector"),
    "gdrive": ("docmill.connectors.gdrive", "GoogleDriveConnector"),
    "mongodb": ("docmill.connectors.mongodb", "MongoDBConnector"),
    "slack": ("docmill.connectors.slack", "SlackConnector"),
    "wikipedia": ("docmill.connectors.wikipedia", "WikipediaConnector"),
    "elasticsearch": ("docmill.connectors.elasticsearch", "ElasticsearchConnector"),
}
_ALIASES = {"google_drive": "gdrive", "google-drive": "gdrive", "opensearch": "elasticsearch", "mongo": "mongodb",
            "mediawiki": "wikipedia", "directory": "local"}

SOURCE_TYPES = tuple(_CONNECTORS)


@dataclass
class ConnectorRuntime:
    """How connectors wait, retry and which URLs they may call; tests pass a recording ``sleep``
    instead of real waiting, and ``UrlPolicy(allow_loopback=True)`` to reach a local test server."""

    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.time
    max_retries: int = 6
    max_wait: float = 300.0
    timeout: float = 60.0
    url_policy: UrlPolicy = field(default_factory=UrlPolicy)
    extra: dict[str, object] = field(default_factory=dict)


def canonical_type(source_type: str) -> str:
    name = source_type.strip().lower()
    name = _ALIASES.get(name, name)
    if name not in _CONNECTORS:
        raise ConfigurationError(f"unknown source type {source_type!r}; known: {', '.join(SOURCE_TYPES)}")
    return name


def connector_class(source_type: str) -> type[Connector]:
    module, attr = _CONNECTORS[canonical_type(source_type)]
    return getattr(importlib.import_module(module), attr)


def build_connector(source: SourceConfig, credentials: Mapping[str, str], runtime: ConnectorRuntime) -> Connector:
    cls = connector_class(source.type)
    options = cls.options_model.model_validate(source.options)
    return cls(options, dict(credentials), runtime)
