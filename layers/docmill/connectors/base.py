"""What every connector provides: a listing with versions, and the bytes of one document."""

from __future__ import annotations

import builtins
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict


class ConnectorOptions(BaseModel):
    """Base of every connector's typed options; unknown keys are a configuration error."""

    model_config = ConfigDict(extra="forbid")


@dataclass
class SourceDocument:
    """One document as the source describes it, before (or after) its bytes are fetched.

    ``version`` is the cheapest change marker the source offers (ETag, git blob sha, revision
    id, ``_version`` ...). When a connector has the content anyway while listing (Slack,
    MongoDB, Elasticsearch), it sets ``content`` and ``fetch`` just returns it.
    """

    id: str
    key: str  # relative destination key, '/'-separated, with a file extension
    version: str | None = None
    title: str | None = None
    author: str | None = None
    url: str | None = None
    modified: str | None = None  # ISO 8601 UTC
    content_type: str | None = None
    size: int | None = None
    content: bytes | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Connector(ABC):
    """A source of documents. ``list_documents`` must list everything in scope or raise."""

    type: ClassVar[str]
    options_model: ClassVar[builtins.type[ConnectorOptions]]  # ``type`` here is the attribute above

    @abstractmethod
    def __init__(self, options: Any, credentials: Mapping[str, str], runtime: Any = None) -> None:
        """How the registry builds every connector (see ``connectors.registry.build_connector``)."""

    @abstractmethod
    def list_documents(self) -> Iterator[SourceDocument]: ...

    @abstractmethod
    def fetch(self, doc: SourceDocument) -> bytes: ...

    def covers(self, doc_id: str, entry: dict[str, Any]) -> bool:
        """Whether this run's listing was meant to include a previously synced document.

        A document that was synced before and is not listed now is deleted at the
        destination only if the listing covered it (a Slack sync limited to recent days does
        not cover older days, for instance).
        """
        return True

    def close(self) -> None:  # pragma: no cover - overridden where a client holds resources
        return None


_UNSAFE = re.compile(r"[\x00-\x1f\\:*?\"<>|#%{}^~\[\]`]+")


def safe_segment(text: str, *, limit: int = 120) -> str:
    """A path segment that is safe as an S3 key part and a file name on any OS."""
    cleaned = _UNSAFE.sub("_", text.replace("/", "_")).strip(" .")
    return (cleaned or "_")[:limit]


def iso_utc(value: float | datetime | str | None) -> str | None:
    """Normalise an epoch, a datetime or an ISO string to ``YYYY-MM-DDTHH:MM:SSZ``."""
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)):
        value = datetime.fromtimestamp(float(value), tz=UTC)
    if isinstance(value, str):
        text = value
        try:
            value = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return text
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
