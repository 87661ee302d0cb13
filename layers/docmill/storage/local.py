from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from docmill.errors import StorageError
from docmill.storage.base import ObjectInfo, ObjectStore


class LocalStore(ObjectStore):
    """A folder on disk; object metadata lives in a ``.meta.json`` sidecar when given."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser().resolve()

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if path != self.root and self.root not in path.parents:
            raise StorageError(f"key escapes the store root: {key!r}")
        return path

    def uri(self, key: str = "") -> str:
        return str(self._path(key)) if key else str(self.root)

    def read_bytes(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError as exc:
            raise StorageError(f"no such object: {self.uri(key)}") from exc

    def write_bytes(
        self, key: str, data: bytes, *, content_type: str | None = None, metadata: dict[str, str] | None = None
    ) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        if metadata:
            self._meta_path(path).write_text(json.dumps(metadata, ensure_ascii=False), encoding="utf-8")

    @staticmethod
    def _meta_path(path: Path) -> Path:
        return path.with_name(path.name + ".meta.json")

    def _info(self, path: Path) -> ObjectInfo:
        st = path.stat()
        meta_path = self._meta_path(path)
        try:
            metadata = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.exists() else None
        except OSError:  # a name too long to carry a sidecar has none
            metadata = None
        return ObjectInfo(
            key=path.relative_to(self.root).as_posix(),
            uri=str(path),
            size=st.st_size,
            last_modified=st.st_mtime,
            metadata=metadata,
        )

    def head(self, key: str) -> ObjectInfo | None:
        path = self._path(key)
        return self._info(path) if path.is_file() else None

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        base = self._path(prefix) if prefix else self.root
        if base.is_file():
            yield self._info(base)
            return
        if not base.is_dir():
            return
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames.sort()
            for name in sorted(filenames):
                if name.endswith(".meta.json") or (name.startswith(".") and name.endswith(".tmp")):
                    continue
                yield self._info(Path(dirpath) / name)

    def delete(self, key: str) -> None:
        path = self._path(key)
        path.unlink(missing_ok=True)
        self._meta_path(path).unlink(missing_ok=True)
        # Like S3, a "folder" exists only while something is in it.
        parent = path.parent
        while parent != self.root and self.root in parent.parents:
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent

    def child(self, prefix: str) -> LocalStore:
        return LocalStore(self._path(prefix))
