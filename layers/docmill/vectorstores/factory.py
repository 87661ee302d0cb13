"""Pick the vector store the settings ask for."""

from __future__ import annotations

from docmill.config import Settings
from docmill.errors import ConfigurationError
from docmill.vectorstores.base import VectorStore


def open_vector_store(settings: Settings, *, refresh_writes: bool = False) -> VectorStore | None:
    """``local``: the embedded LanceDB store under ``settings.vectors_dir``; ``opensearch``:
    ``settings.opensearch``; ``none``: no index (returns ``None``).

    ``refresh_writes`` (OpenSearch only) makes every write searchable at once; otherwise call
    ``store.refresh()`` after a batch of writes.
    """
    if settings.store == "none":
        return None
    if settings.store == "local":
        from docmill.vectorstores.lancedb_store import LanceDBStore

        return LanceDBStore(settings.vectors_dir)
    if settings.store == "opensearch":
        from docmill.vectorstores.opensearch import OpenSearchStore

        return OpenSearchStore(settings.opensearch, refresh_writes=refresh_writes)
    raise ConfigurationError(f"unknown store {settings.store!r}: use local, opensearch or none")
