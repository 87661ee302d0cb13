"""Local directory source: every file under a folder (recursively), versioned by mtime and size."""

from __future__ import annotations

import fnmatch
import mimetypes
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

from pydantic import Field

from docmill.connectors.base import Connector, ConnectorOptions, SourceDocument, iso_utc
from docmill.errors import ConfigurationError, ConnectorError


class LocalOptions(ConnectorOptions):
    path: str
    include: list[str] = Field(default_factory=list, description="glob patterns on the relative path; empty = all")
    exclude: list[str] = Field(default_factory=list)
    include_hidden: bool = False
    follow_symlinks: bool = False


class LocalDirectoryConnector(Connector):
    type = "local"
    options_model = LocalOptions

    def __init__(self, options: LocalOptions, credentials: Mapping[str, str], runtime: object = None) -> None:
        self.options = options
        self.root = Path(options.path).expanduser().resolve()

    def _wanted(self, rel: str) -> bool:
        parts = rel.split("/")
        if not self.options.include_hidden and any(p.startswith(".") for p in parts):
            return False
        if rel.endswith(".meta.json"):
            return False  # sidecars of a folder that is itself a docmill destination
        if self.options.include and not any(fnmatch.fnmatch(rel, pat) for pat in self.options.include):
            return False
        return not any(fnmatch.fnmatch(rel, pat) for pat in self.options.exclude)

    def list_documents(self) -> Iterator[SourceDocument]:
        if not self.root.is_dir():
            raise ConfigurationError(f"local source folder does not exist: {self.root}")
        for dirpath, dirnames, filenames in os.walk(self.root, followlinks=self.options.follow_symlinks):
            dirnames.sort()
            for name in sorted(filenames):
                path = Path(dirpath) / name
                rel = path.relative_to(self.root).as_posix()
                if not self._wanted(rel) or not path.is_file():
                    continue
                st = path.stat()
                yield SourceDocument(
                    id=rel,
                    key=rel,
                    # mtime in ns + size: a changed file almost always moves one of them; the
                    # engine's sha256 check catches a touch that changed nothing.
                    version=f"{st.st_mtime_ns}:{st.st_size}",
                    title=path.name,
                    url=path.as_uri(),
                    modified=iso_utc(st.st_mtime),
                    content_type=mimetypes.guess_type(name)[0],
                    size=st.st_size,
                    extra={"path": str(path)},
                )

    def fetch(self, doc: SourceDocument) -> bytes:
        try:
            return Path(doc.extra["path"]).read_bytes()
        except OSError as exc:
            raise ConnectorError(f"cannot read {doc.extra['path']}: {exc.strerror or exc}") from exc
