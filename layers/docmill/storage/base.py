from __future__ import annotations

import builtins
import json
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from docmill.errors import ConfigurationError


def is_s3_uri(value: str) -> bool:
    return value.startswith("s3://")


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` -> ("bucket", "some/prefix")."""
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise ConfigurationError(f"not an S3 URI: {uri!r} (expected s3://bucket/prefix)")
    return parsed.netloc, parsed.path.lstrip("/")


@dataclass(frozen=True)
class ObjectInfo:
    key: str  # relative to the store's root
    uri: str
    size: int
    etag: str | None = None
    version_id: str | None = None
    last_modified: float | None = None  # epoch seconds
    metadata: dict[str, str] | None = None

    @property
    def version(self) -> str | None:
        """The most specific version marker available: S3 VersionId, else ETag, else mtime."""
        if self.version_id and self.version_id != "null":
            return self.version_id
        if self.etag:
            return self.etag.strip('"')
        if self.last_modified is not None:
            return f"mtime:{self.last_modified:.6f}:{self.size}"
        return None


class ObjectStore(ABC):
    """Keys are '/'-separated and relative to the store's root (a folder or an S3 prefix)."""

    @abstractmethod
    def uri(self, key: str = "") -> str: ...

    @abstractmethod
    def read_bytes(self, key: str) -> bytes: ...

    @abstractmethod
    def write_bytes(
        self, key: str, data: bytes, *, content_type: str | None = None, metadata: dict[str, str] | None = None
    ) -> None:
        """Write atomically: readers see the old object or the new one, never a part."""

    @abstractmethod
    def head(self, key: str) -> ObjectInfo | None: ...

    @abstractmethod
    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every object under ``prefix``, recursively."""

    @abstractmethod
    def delete(self, key: str) -> None: ...

    def exists(self, key: str) -> bool:
        return self.head(key) is not None

    def delete_prefix(self, prefix: str) -> int:
        keys = [info.key for info in self.list(prefix)]
        for key in keys:
            self.delete(key)
        return len(keys)

    def read_text(self, key: str) -> str:
        return self.read_bytes(key).decode("utf-8")

    def write_text(self, key: str, text: str, *, content_type: str = "text/plain; charset=utf-8") -> None:
        self.write_bytes(key, text.encode("utf-8"), content_type=content_type)

    def read_json(self, key: str) -> Any:
        return json.loads(self.read_bytes(key))

    def write_json(self, key: str, value: Any) -> None:
        data = json.dumps(value, ensure_ascii=False, indent=2, default=str).encode("utf-8")
        self.write_bytes(key, data, content_type="application/json")

    def write_jsonl(self, key: str, records: Iterable[Any]) -> None:
        lines = (json.dumps(r, ensure_ascii=False, default=str) for r in records)
        data = ("\n".join(lines) + "\n").encode("utf-8")
        self.write_bytes(key, data if data != b"\n" else b"", content_type="application/x-ndjson")

    def read_jsonl(self, key: str) -> builtins.list[Any]:  # ``list`` here is the method above
        return [json.loads(line) for line in self.read_text(key).splitlines() if line.strip()]

    def child(self, prefix: str) -> ObjectStore:
        """A store rooted at ``prefix`` inside this one."""
        raise NotImplementedError
