"""The embedded vector store: one LanceDB table on disk, exact search, no server.

Layout: ``<vectors_dir>/chunks.lance``, one row per chunk (all lineage fields, the vector, and
the connector metadata as JSON). Data persists between processes; each operation re-reads the
latest table version, so a search in one process sees an ingest finished in another.

Exact search. LanceDB's own flat scan costs ~60-100 ms for 100k x 384-d on one core (it
decodes the vector column for every query), well over the 20 ms target. So by default the
store keeps an in-memory snapshot of the current table version (the vectors as a float32
matrix plus a float16 copy, the other columns as an Arrow table) and scans every vector:
float16 scores for all rows (the scan is memory-bound, so half the bytes is nearly half the
time), then exact float32 scores for the few rows within the float16 error bound of the k-th
best. The result is the exact float32 top-k (recall 1.0 by construction, see
``_search_cached``), with no per-query I/O beyond a stat of the manifest folder. The snapshot
is rebuilt when the table version changes (one columnar scan, ~0.5-1 s per 100k rows); memory
is ~2.3 KB per 384-d chunk plus its text. Without torch the scan is float32 only.
``cache_vectors=False`` uses LanceDB's flat search instead (same results, slower, no extra
memory).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from docmill.errors import VectorStoreError
from docmill.models import ChunkRecord
from docmill.vectorstores.base import SearchFilter, SearchHit, UpsertResult, VectorStore, record_from_payload

TABLE = "chunks"
# A chunk id is derived from source URI, content and position only, so the same file ingested
# into two collections (or by two tenants) gives the same ids: the row key includes both.
KEY_COLUMNS = ("tenant", "collection", "chunk_id")
VECTOR = "vector"
# Compact small fragments once a table has this many (each upsert/delete adds one or more);
# many fragments make every scan, and so cache rebuilds and FTS, slower.
COMPACT_AFTER_FRAGMENTS = 64
MAX_STAMP_TRUST_S = 1.0
# float16 stage-1 scan: error per score <= ~2 * 2**-11 * |q| * |v| (both inputs rounded to
# float16, float32 accumulation in torch's CPU kernels, checked when the snapshot is built);
# the margin is 4x that.
HALF_MARGIN = 2.0**-8
HALF_SCAN_MIN_ROWS = 20_000  # below this, one float32 product is already a fraction of a millisecond

_PAYLOAD_COLUMNS = [
    "chunk_id",
    "collection",
    "tenant",
    "text",
    "source_uri",
    "source_version",
    "source_sha256",
    "file_type",
    "page_numbers",
    "section_title",
    "element_ids",
    "chunk_index",
    "char_count",
    "embedding_model",
    "docmill_version",
    "metadata_json",
]


def schema_for(dimension: int) -> pa.Schema:
    return pa.schema(
        [
            pa.field("chunk_id", pa.string(), nullable=False),
            pa.field("collection", pa.string(), nullable=False),
            pa.field("tenant", pa.string(), nullable=False),
            pa.field("text", pa.string(), nullable=False),
            pa.field(VECTOR, pa.list_(pa.float32(), dimension), nullable=False),
            pa.field("source_uri", pa.string(), nullable=False),
            pa.field("source_version", pa.string()),
            pa.field("source_sha256", pa.string()),
            pa.field("file_type", pa.string()),
            pa.field("page_numbers", pa.list_(pa.int32())),
            pa.field("section_title", pa.string()),
            pa.field("element_ids", pa.list_(pa.string())),
            pa.field("chunk_index", pa.int32()),
            pa.field("char_count", pa.int32()),
            pa.field("embedding_model", pa.string()),
            pa.field("docmill_version", pa.string()),
            pa.field("metadata_json", pa.string()),
        ]
    )


def sql_quote(value: str) -> str:
    """A SQL string literal: the value can never end the literal (quotes are doubled)."""
    if "\x00" in value:
        raise VectorStoreError("filter values must not contain NUL characters")
    return "'" + value.replace("'", "''") + "'"


def where_clause(
    *,
    collection: str | None = None,
    tenant: str | None = None,
    source_uris: Sequence[str] | None = None,
    not_version: tuple[str | None] | None = None,
) -> str | None:
    parts: list[str] = []
    if collection is not None:
        parts.append(f"collection = {sql_quote(collection)}")
    if tenant is not None:
        parts.append(f"tenant = {sql_quote(tenant)}")
    if source_uris is not None:
        if not source_uris:
            parts.append("false")
        else:
            parts.append("source_uri IN (" + ", ".join(sql_quote(s) for s in source_uris) + ")")
    if not_version is not None:
        keep = not_version[0]
        if keep is None:
            parts.append("source_version IS NOT NULL")
        else:
            parts.append(f"(source_version IS NULL OR source_version != {sql_quote(keep)})")
    return " AND ".join(parts) if parts else None


@dataclass
class _Codes:
    """A dictionary-encoded string column: cheap equality / membership masks."""

    codes: np.ndarray
    lookup: dict[str, int]

    @classmethod
    def of(cls, column: pa.ChunkedArray) -> _Codes:
        encoded = pc.dictionary_encode(column).combine_chunks()
        codes = encoded.indices.to_numpy(zero_copy_only=False)
        return cls(codes=codes, lookup={v: i for i, v in enumerate(encoded.dictionary.to_pylist())})

    def mask(self, values: Sequence[str]) -> np.ndarray:
        wanted = [self.lookup[v] for v in values if v in self.lookup]
        if not wanted:
            return np.zeros(len(self.codes), dtype=bool)
        if len(wanted) == 1:
            return self.codes == wanted[0]
        return np.isin(self.codes, wanted)


@dataclass
class _VectorCache:
    stamp: int | None
    checked_at: float
    version: int
    matrix: np.ndarray  # (n, d) float32, row i = row i of ``payload``
    half: Any  # the same as a float16 torch tensor (stage-1 scan), or None without torch
    norm_max: float  # largest row norm, for the float16 error bound
    payload: pa.Table
    collection: _Codes
    tenant: _Codes
    source_uri: _Codes


def _hit_from_row(row: dict[str, Any], score: float) -> SearchHit:
    return SearchHit(
        chunk_id=row["chunk_id"],
        score=float(score),
        text=row["text"],
        source_uri=row["source_uri"],
        source_version=row.get("source_version"),
        page_numbers=list(row.get("page_numbers") or []),
        section_title=row.get("section_title"),
        collection=row["collection"],
        tenant=row.get("tenant") or "default",
        chunk_index=row.get("chunk_index"),
        metadata=json.loads(row.get("metadata_json") or "{}"),
    )


def _record_from_row(row: dict[str, Any]) -> ChunkRecord:
    embedding = row.get(VECTOR)
    return record_from_payload(
        row,
        embedding=[float(x) for x in embedding] if embedding is not None else None,
        metadata=json.loads(row.get("metadata_json") or "{}"),
    )


class LanceDBStore(VectorStore):
    """Embedded store under ``path`` (``Settings.vectors_dir``)."""

    def __init__(self, path: str | Path, *, cache_vectors: bool = True, half_precision_scan: bool = True) -> None:
        import lancedb

        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.cache_vectors = cache_vectors
        self.half_precision_scan = half_precision_scan
        # interval 0: every read checks for a newer version written by another process.
        self._db = lancedb.connect(str(self.path), read_consistency_interval=timedelta(0))
        self._table: Any = None
        self._cache: _VectorCache | None = None
        self._lock = threading.RLock()

    # -- table management -------------------------------------------------------------
    def _open(self) -> Any:
        if self._table is None and TABLE in self._db.list_tables().tables:
            self._table = self._db.open_table(TABLE)
        return self._table

    @property
    def dimension(self) -> int | None:
        table = self._open()
        if table is None:
            return None
        return table.schema.field(VECTOR).type.list_size

    def ensure_index(self, dimension: int) -> None:
        if dimension <= 0:
            raise VectorStoreError(f"invalid vector dimension {dimension}")
        with self._lock:
            table = self._open()
            if table is None:
                self._table = self._db.create_table(TABLE, schema=schema_for(dimension), exist_ok=True)
                table = self._table
            existing = table.schema.field(VECTOR).type.list_size
            if existing != dimension:
                raise VectorStoreError(
                    f"the vector store at {self.path} holds {existing}-d vectors, not {dimension}-d: "
                    "use a new --home (or delete its vectors folder) when changing the embedding model"
                )

    # -- writes -------------------------------------------------------------------------
    def upsert(self, chunks: Sequence[ChunkRecord]) -> UpsertResult:
        result = UpsertResult()
        if not chunks:
            return result
        good: dict[tuple[str, str, str], ChunkRecord] = {}  # last one wins for a key repeated in one call
        for chunk in chunks:
            if not chunk.embedding:
                result.errors.append({"chunk_id": chunk.chunk_id, "error": "chunk has no embedding"})
                continue
            good[(chunk.tenant, chunk.collection, chunk.chunk_id)] = chunk
        if not good:
            return result
        dims = {len(c.embedding or []) for c in good.values()}
        with self._lock:
            if self._open() is None:
                self.ensure_index(next(iter(dims)))
            dimension = self.dimension
            rows: list[ChunkRecord] = []
            for chunk in good.values():
                if len(chunk.embedding or []) != dimension:
                    result.errors.append(
                        {
                            "chunk_id": chunk.chunk_id,
                            "error": f"vector has {len(chunk.embedding or [])} dimensions, the index {dimension}",
                        }
                    )
                else:
                    rows.append(chunk)
            if rows:
                data = self._arrow(rows, dimension or 0)
                try:
                    self._table.merge_insert(list(KEY_COLUMNS)).when_matched_update_all().when_not_matched_insert_all().execute(
                        data
                    )
                except Exception as exc:  # lance raises plain RuntimeError/OSError
                    raise VectorStoreError(f"upsert into {self.path} failed: {exc}") from exc
                result.upserted = len(rows)
                self._maybe_compact()
        return result

    @staticmethod
    def _arrow(chunks: Sequence[ChunkRecord], dimension: int) -> pa.Table:
        flat = np.asarray([c.embedding for c in chunks], dtype=np.float32).reshape(-1)
        vectors = pa.FixedSizeListArray.from_arrays(pa.array(flat, type=pa.float32()), dimension)
        columns: dict[str, Any] = {
            "chunk_id": [c.chunk_id for c in chunks],
            "collection": [c.collection for c in chunks],
            "tenant": [c.tenant for c in chunks],
            "text": [c.text for c in chunks],
            VECTOR: vectors,
            "source_uri": [c.source_uri for c in chunks],
            "source_version": [c.source_version for c in chunks],
            "source_sha256": [c.source_sha256 for c in chunks],
            "file_type": [c.file_type for c in chunks],
            "page_numbers": [c.page_numbers for c in chunks],
            "section_title": [c.section_title for c in chunks],
            "element_ids": [c.element_ids for c in chunks],
            "chunk_index": [c.chunk_index for c in chunks],
            "char_count": [c.char_count for c in chunks],
            "embedding_model": [c.embedding_model for c in chunks],
            "docmill_version": [c.docmill_version for c in chunks],
            "metadata_json": [json.dumps(c.metadata, sort_keys=True, default=str) for c in chunks],
        }
        return pa.table(columns, schema=schema_for(dimension))

    def _delete(self, where: str) -> int:
        with self._lock:
            table = self._open()
            if table is None:
                return 0
            try:
                outcome = table.delete(where)
            except Exception as exc:
                raise VectorStoreError(f"deleting rows of {self.path} failed: {exc}") from exc
            deleted = int(getattr(outcome, "num_deleted_rows", 0) or 0)
            if deleted:
                self._maybe_compact()
            return deleted

    def delete_source(
        self, collection: str, source_uri: str, *, keep_version: str | None = None, tenant: str | None = None
    ) -> int:
        where = where_clause(
            collection=collection,
            tenant=tenant,
            source_uris=[source_uri],
            not_version=(keep_version,) if keep_version is not None else None,
        )
        return self._delete(where or "false")

    def delete_source_except(
        self, collection: str, source_uri: str, keep_chunk_ids: Sequence[str], *, tenant: str | None = None
    ) -> int:
        where = where_clause(collection=collection, tenant=tenant, source_uris=[source_uri]) or "false"
        keep = sorted(set(keep_chunk_ids))
        if keep:
            where += " AND chunk_id NOT IN (" + ", ".join(sql_quote(c) for c in keep) + ")"
        return self._delete(where)

    def delete_collection(self, collection: str) -> int:
        return self._delete(where_clause(collection=collection) or "false")

    def _maybe_compact(self) -> None:
        try:
            fragments = self._table.stats()["fragment_stats"]["num_fragments"]
        except Exception:  # noqa: BLE001 - stats are an optimisation hint only
            return
        if fragments >= COMPACT_AFTER_FRAGMENTS:
            self.optimize()

    def optimize(self) -> None:
        """Merge small fragments and bring the FTS index (if any) up to date."""
        with self._lock:
            table = self._open()
            if table is not None:
                table.optimize()

    # -- reads --------------------------------------------------------------------------
    def count(self, collection: str | None = None, source_uri: str | None = None) -> int:
        table = self._open()
        if table is None:
            return 0
        where = where_clause(collection=collection, source_uris=[source_uri] if source_uri is not None else None)
        return int(table.count_rows(where) if where else table.count_rows())

    def health(self) -> dict[str, Any]:
        try:
            table = self._open()
            return {
                "backend": "lancedb",
                "ok": True,
                "path": str(self.path),
                "exists": table is not None,
                "chunks": self.count(),
                "dimension": self.dimension,
                "version": int(table.version) if table is not None else None,
            }
        except Exception as exc:  # noqa: BLE001 - health reports, it never raises
            return {"backend": "lancedb", "ok": False, "path": str(self.path), "error": str(exc)}

    def _versions_stamp(self) -> int | None:
        """mtime of the table's manifest folder: every commit (here or in another process) adds
        a manifest there, so an unchanged stamp means an unchanged table. A stat costs
        microseconds; asking LanceDB for the latest version costs a round trip through its
        background event loop, a large share of a query on a busy core."""
        try:
            return (self.path / f"{TABLE}.lance" / "_versions").stat().st_mtime_ns
        except OSError:
            return None

    def _vector_cache(self) -> _VectorCache:
        table = self._table
        cache = self._cache
        now = time.monotonic()
        stamp = self._versions_stamp()
        if (
            cache is not None
            and stamp is not None
            and stamp == cache.stamp
            # coarse-mtime file systems: confirm with LanceDB at least once a second
            and now - cache.checked_at < MAX_STAMP_TRUST_S
        ):
            return cache
        version = int(table.version)
        if cache is not None and cache.version == version:
            cache.stamp, cache.checked_at = stamp, now
            return cache
        data = table.search().select([*_PAYLOAD_COLUMNS, VECTOR]).limit(None).to_arrow()
        dimension = table.schema.field(VECTOR).type.list_size
        vectors = data.column(VECTOR).combine_chunks()
        # an owned, writable copy: Arrow's buffers are read-only and torch wants writable memory
        matrix = np.array(vectors.values.to_numpy(zero_copy_only=False), dtype=np.float32).reshape(-1, dimension)
        half = self._half_copy(matrix) if self.half_precision_scan and matrix.shape[0] >= HALF_SCAN_MIN_ROWS else None
        cache = _VectorCache(
            stamp=stamp,
            checked_at=now,
            version=version,
            matrix=matrix,
            half=half,
            norm_max=float(np.sqrt((matrix * matrix).sum(axis=1).max())) if matrix.shape[0] else 0.0,
            payload=data.drop_columns([VECTOR]).combine_chunks(),
            collection=_Codes.of(data.column("collection")),
            tenant=_Codes.of(data.column("tenant")),
            source_uri=_Codes.of(data.column("source_uri")),
        )
        self._cache = cache
        return cache

    @staticmethod
    def _half_copy(matrix: np.ndarray) -> Any:
        """A float16 copy for the stage-1 scan, or None where it could not keep its error bound."""
        try:
            import torch
        except ImportError:  # torch is an optional extra: float32 only
            return None
        if not np.isfinite(matrix).all() or float(np.abs(matrix).max()) > 1e4:
            return None  # outside float16's comfortable range
        half = torch.from_numpy(matrix).to(torch.float16)
        # Verify the bound on this machine's kernels with a random query over a sample of rows.
        rng = np.random.default_rng(0)
        sample = rng.choice(matrix.shape[0], size=min(2000, matrix.shape[0]), replace=False)
        q = rng.standard_normal(size=(int(matrix.shape[1]),), dtype=np.float32)
        q /= np.linalg.norm(q)
        exact = matrix[sample] @ q
        approx = (half[torch.from_numpy(sample)] @ torch.from_numpy(q).to(torch.float16)).float().numpy()
        norm_max = float(np.sqrt((matrix[sample] ** 2).sum(axis=1).max()))
        if float(np.abs(exact - approx).max()) > HALF_MARGIN * norm_max / 4:
            return None
        return half

    def _query_vector(self, vector: Sequence[float], dimension: int | None) -> np.ndarray:
        q = np.asarray(vector, dtype=np.float32).reshape(-1)
        if q.shape[0] != dimension:
            raise VectorStoreError(f"query vector has {q.shape[0]} dimensions, the index {dimension}")
        return q

    def search(self, vector: Sequence[float], k: int = 5, filters: SearchFilter | None = None) -> list[SearchHit]:
        if k <= 0:
            return []
        with self._lock:
            if self._open() is None:
                return []
            if not self.cache_vectors:
                return self._search_lance(self._query_vector(vector, self.dimension), k, filters)
            cache = self._vector_cache()
            q = self._query_vector(vector, cache.matrix.shape[1])
            return self._search_cached(cache, q, k, filters)

    def _approximate_scores(self, cache: _VectorCache, q: np.ndarray) -> tuple[np.ndarray, float]:
        """Scores of every row, and a bound on their error (0.0: they are exact)."""
        if cache.half is None:
            return cache.matrix @ q, 0.0
        import torch

        approx = (cache.half @ torch.from_numpy(q).to(torch.float16)).float().numpy()
        return approx, HALF_MARGIN * float(np.linalg.norm(q)) * cache.norm_max

    def _search_cached(self, cache: _VectorCache, q: np.ndarray, k: int, filters: SearchFilter | None) -> list[SearchHit]:
        """Exact top-k. Stage 1 scores every row in float16 (half the memory traffic of float32,
        which bounds this scan); stage 2 rescores in float32 every row whose float16 score is
        within twice the error bound of the k-th best, so the result is the float32 top-k:
        a true top-k row has s >= (k-th approx) - eps, hence approx >= (k-th approx) - 2 eps."""
        if cache.matrix.shape[0] == 0:
            return []
        scores, eps = self._approximate_scores(cache, q)
        f = filters or SearchFilter()
        mask: np.ndarray | None = None
        for codes, values in (
            (cache.collection, [f.collection] if f.collection is not None else None),
            (cache.tenant, [f.tenant] if f.tenant is not None else None),
            (cache.source_uri, f.source_uris),
        ):
            if values is not None:
                m = codes.mask(values)
                mask = m if mask is None else (mask & m)
        rows_idx = np.flatnonzero(mask) if mask is not None else np.arange(scores.shape[0])
        if rows_idx.size == 0:
            return []
        sub = scores[rows_idx] if mask is not None else scores
        n = min(k, sub.shape[0])
        if eps > 0.0:
            kth = np.partition(sub, sub.shape[0] - n)[sub.shape[0] - n]
            rows_idx = rows_idx[sub >= kth - 2.0 * eps]
            sub = cache.matrix[rows_idx] @ q  # exact float32 scores of the candidates
        top = np.argpartition(-sub, n - 1)[:n] if n < sub.shape[0] else np.arange(sub.shape[0])
        top = top[np.lexsort((rows_idx[top], -sub[top]))]  # by score, ties by position: deterministic
        offsets = rows_idx[top]
        rows = cache.payload.take(pa.array(offsets, type=pa.int64())).to_pylist()
        return [_hit_from_row(row, float(sub[t])) for row, t in zip(rows, top, strict=True)]

    def _search_lance(self, q: np.ndarray, k: int, filters: SearchFilter | None) -> list[SearchHit]:
        f = filters or SearchFilter()
        query = self._table.search(q, vector_column_name=VECTOR).distance_type("cosine").limit(k)
        where = where_clause(collection=f.collection, tenant=f.tenant, source_uris=f.source_uris)
        if where:
            query = query.where(where, prefilter=True)
        rows = query.select([*_PAYLOAD_COLUMNS, "_distance"]).to_arrow().to_pylist()
        # cosine distance = 1 - cosine similarity
        return [_hit_from_row(row, 1.0 - float(row["_distance"])) for row in rows]

    def search_text(self, text: str, k: int = 5, filters: SearchFilter | None = None) -> list[SearchHit]:
        """BM25 full-text search over chunk text (LanceDB's native FTS index, built on demand)."""
        with self._lock:
            table = self._open()
            if table is None or not text.strip():
                return []
            if not any(idx.index_type == "FTS" for idx in table.list_indices()):
                from lancedb.index import FTS

                table.create_index("text", config=FTS(), replace=True)
            f = filters or SearchFilter()
            query = table.search(text, query_type="fts", fts_columns="text").limit(k)
            where = where_clause(collection=f.collection, tenant=f.tenant, source_uris=f.source_uris)
            if where:
                query = query.where(where, prefilter=True)
            rows = query.select([*_PAYLOAD_COLUMNS, "_score"]).to_arrow().to_pylist()
            return [_hit_from_row(row, float(row["_score"])) for row in rows]

    def iter_chunks(
        self,
        collection: str,
        tenant: str | None = None,
        batch_size: int = 500,
        *,
        with_embeddings: bool = False,
    ) -> Iterator[ChunkRecord]:
        table = self._open()
        if table is None:
            return
        where = where_clause(collection=collection, tenant=tenant)
        # The key columns first (small), then the rows batch by batch in a stable order.
        keys = table.search().where(where).select(["chunk_id", "source_uri", "chunk_index", "tenant"]).limit(None)
        keys = keys.with_row_id(True).to_arrow()
        if keys.num_rows == 0:
            return
        order = pc.sort_indices(
            keys,
            sort_keys=[
                ("source_uri", "ascending"),
                ("chunk_index", "ascending"),
                ("chunk_id", "ascending"),
                ("tenant", "ascending"),
            ],
        )
        row_ids = pc.take(keys.column("_rowid"), order).to_pylist()
        columns = [*_PAYLOAD_COLUMNS, VECTOR] if with_embeddings else _PAYLOAD_COLUMNS
        for start in range(0, len(row_ids), max(1, batch_size)):
            ids = row_ids[start : start + batch_size]
            rows = table.take_row_ids(ids).select(columns).with_row_id().to_arrow().to_pylist()
            by_row = {row["_rowid"]: row for row in rows}
            for rid in ids:
                row = by_row.get(rid)
                if row is not None:  # deleted meanwhile: skip
                    yield _record_from_row(row)

    def close(self) -> None:
        self._cache = None
        self._table = None
