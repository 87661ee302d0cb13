"""The one vector-index interface used by ingestion, generation and the chat API."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, Field

from docmill.errors import VectorStoreError
from docmill.models import ChunkRecord


class SearchFilter(BaseModel):
    collection: str | None = None
    tenant: str | None = None
    source_uris: list[str] | None = None


class SearchHit(BaseModel):
    chunk_id: str
    # Both back ends report cosine similarity for unit vectors (higher is closer); hybrid
    # search reports the combined min-max normalised score in [0, 1].
    score: float
    text: str
    source_uri: str
    source_version: str | None = None
    page_numbers: list[int] = Field(default_factory=list)
    section_title: str | None = None
    collection: str
    tenant: str = "default"
    chunk_index: int | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class UpsertResult(BaseModel):
    upserted: int = 0
    errors: list[dict[str, Any]] = Field(default_factory=list)


def record_from_payload(payload: Mapping[str, Any], *, embedding: Any, metadata: dict[str, Any]) -> ChunkRecord:
    """A ChunkRecord from what a back end stored (a LanceDB row, an OpenSearch ``_source``),
    with the defaults both apply to fields an older writer may have left out."""
    return ChunkRecord(
        chunk_id=payload["chunk_id"],
        collection=payload["collection"],
        tenant=payload.get("tenant") or "default",
        text=payload.get("text") or "",
        embedding=embedding,
        source_uri=payload["source_uri"],
        source_version=payload.get("source_version"),
        source_sha256=payload.get("source_sha256") or "",
        file_type=payload.get("file_type") or "",
        page_numbers=list(payload.get("page_numbers") or []),
        section_title=payload.get("section_title"),
        element_ids=list(payload.get("element_ids") or []),
        chunk_index=int(payload.get("chunk_index") or 0),
        char_count=int(payload.get("char_count") or 0),
        embedding_model=payload.get("embedding_model"),
        docmill_version=payload.get("docmill_version") or "",
        metadata=metadata,
    )


class VectorStore(ABC):
    @abstractmethod
    def ensure_index(self, dimension: int) -> None:
        """Create the index (or table) if missing; verify the dimension if present."""

    @abstractmethod
    def upsert(self, chunks: Sequence[ChunkRecord]) -> UpsertResult:
        """Insert or overwrite by ``chunk_id``: a re-run never duplicates."""

    @abstractmethod
    def delete_source(
        self, collection: str, source_uri: str, *, keep_version: str | None = None, tenant: str | None = None
    ) -> int:
        """Delete a source's chunks; with ``keep_version``, only those of other versions; with
        ``tenant``, only that tenant's (two tenants may ingest the same path)."""

    @abstractmethod
    def delete_collection(self, collection: str) -> int: ...

    @abstractmethod
    def search(self, vector: Sequence[float], k: int = 5, filters: SearchFilter | None = None) -> list[SearchHit]: ...

    @abstractmethod
    def count(self, collection: str | None = None, source_uri: str | None = None) -> int: ...

    @abstractmethod
    def health(self) -> dict[str, Any]: ...

    # Additive, non-abstract so that existing implementations (and test doubles elsewhere)
    # keep working; both docmill back ends override them.
    def delete_source_except(
        self, collection: str, source_uri: str, keep_chunk_ids: Sequence[str], *, tenant: str | None = None
    ) -> int:
        """Delete a source's chunks (of ``tenant`` when given) whose id is not in ``keep_chunk_ids``."""
        raise VectorStoreError(f"{type(self).__name__} cannot delete by chunk id set")

    def replace_source(
        self, collection: str, source_uri: str, chunks: Sequence[ChunkRecord], *, tenant: str | None = None
    ) -> UpsertResult:
        """Index one source's current chunks and drop every other chunk of that source: what
        ingestion calls per (re-)ingested source. Works whatever ``source_version`` holds
        (even None), because what survives is decided by chunk id. If some chunks fail to
        index, the stale ones are kept (nothing is deleted) and the errors are returned, so the
        caller can mark the source failed and a retry completes the swap. Only ``tenant``'s
        chunks are touched (the chunks' tenant when not given)."""
        if tenant is None and chunks:
            tenant = chunks[0].tenant
        for chunk in chunks:
            if chunk.collection != collection or chunk.source_uri != source_uri or chunk.tenant != tenant:
                raise VectorStoreError(
                    f"replace_source({collection!r}, {source_uri!r}, tenant={tenant!r}) got a chunk of "
                    f"({chunk.collection!r}, {chunk.source_uri!r}, tenant={chunk.tenant!r})"
                )
        result = self.upsert(chunks) if chunks else UpsertResult()
        if not result.errors:
            self.delete_source_except(collection, source_uri, [c.chunk_id for c in chunks], tenant=tenant)
        return result

    def search_hybrid(
        self,
        text: str,
        vector: Sequence[float],
        k: int = 5,
        filters: SearchFilter | None = None,
        *,
        vector_weight: float = 0.5,
    ) -> list[SearchHit]:
        """BM25 + k-NN, each min-max normalised to [0, 1], combined as a weighted mean.

        Combined client-side (see docmill.vectorstores.hybrid for why not a search pipeline)."""
        from docmill.vectorstores.hybrid import combine  # here: hybrid imports this module

        # Candidates from each side, deeper than k, so a chunk good on both sides is seen twice.
        depth = max(k * 4, 20)
        return combine(self.search(vector, depth, filters), self.search_text(text, depth, filters), k, vector_weight)

    def search_text(self, text: str, k: int = 5, filters: SearchFilter | None = None) -> list[SearchHit]:
        """BM25 over the chunk text."""
        raise VectorStoreError(f"{type(self).__name__} does not support text search")

    def iter_chunks(
        self,
        collection: str,
        tenant: str | None = None,
        batch_size: int = 500,
        *,
        with_embeddings: bool = False,
    ) -> Iterator[ChunkRecord]:
        """Every chunk of a collection, ordered by (source_uri, chunk_index, chunk_id)."""
        raise VectorStoreError(f"{type(self).__name__} cannot list chunks")

    def refresh(self) -> None:  # noqa: B027 - optional hook
        """Make every write so far visible to searches (OpenSearch); a no-op where writes are."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections or file handles."""

    def __enter__(self) -> VectorStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
