"""OpenSearch k-NN back end (self-managed, Amazon OpenSearch Service ``es``, Serverless ``aoss``).

One index holds every collection and tenant; queries always filter on them. Documents carry all
lineage fields, the chunk text (BM25) and the vector (``knn_vector``, HNSW).

Scores: OpenSearch turns the engine's distance into a positive score that depends on the space
type. ``search`` maps it back to cosine similarity (exact for unit vectors), so the numbers are
comparable with the embedded store's.

Serverless (``aoss``) differences handled here: vector collections refuse a custom ``_id`` on
index operations and support neither ``_refresh`` nor ``_delete_by_query``. There, an upsert
first deletes the documents that carry the same ``chunk_id`` (found by a search, deleted by
their generated ``_id`` in ``_bulk``), and deletes by query become search + bulk delete. Serverless
search is eventually consistent (new documents appear after about a second or more), so
re-indexing the same chunk twice within that window can briefly leave a duplicate that the
next upsert or delete of that source removes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any
from urllib.parse import urlparse

from docmill.config import OpenSearchSettings
from docmill.errors import ConfigurationError, TransientError, VectorStoreError, VectorStoreRequestError
from docmill.models import ChunkRecord
from docmill.retry import RetryPolicy
from docmill.vectorstores.base import SearchFilter, SearchHit, UpsertResult, VectorStore, record_from_payload

log = logging.getLogger(__name__)

VECTOR_FIELD = "embedding"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_TERMS = 65_000  # OpenSearch's default index.max_terms_count is 65536
SOURCE_EXCLUDES = [VECTOR_FIELD]
_KEYWORD = {"type": "keyword"}


def index_body(settings: OpenSearchSettings, dimension: int) -> dict[str, Any]:
    """The index settings and mapping (``dynamic: strict``: an unknown field is a bug, not data)."""
    method: dict[str, Any] = {"name": "hnsw", "engine": settings.engine, "space_type": settings.space_type}
    parameters: dict[str, Any] = {"ef_construction": settings.ef_construction, "m": settings.m}
    index_settings: dict[str, Any] = {"knn": True}
    if settings.engine == "faiss":
        parameters["ef_search"] = settings.ef_search
    elif settings.engine == "nmslib" and settings.service != "aoss":
        index_settings["knn.algo_param.ef_search"] = settings.ef_search
    # lucene takes ef_search only per query (k bounds it), so nothing to set here.
    if settings.service != "aoss":  # Serverless manages shards and replicas itself
        if settings.shards is not None:
            index_settings["number_of_shards"] = settings.shards
        if settings.replicas is not None:
            index_settings["number_of_replicas"] = settings.replicas
    method["parameters"] = parameters
    return {
        "settings": {"index": index_settings},
        "mappings": {
            "dynamic": "strict",
            "properties": {
                "chunk_id": _KEYWORD,
                "collection": _KEYWORD,
                "tenant": _KEYWORD,
                "source_uri": _KEYWORD,
                "source_version": _KEYWORD,
                "source_sha256": _KEYWORD,
                "file_type": _KEYWORD,
                "page_numbers": {"type": "integer"},
                "section_title": _KEYWORD,
                "element_ids": {"type": "keyword", "index": False},
                "chunk_index": {"type": "integer"},
                "char_count": {"type": "integer"},
                "embedding_model": _KEYWORD,
                "docmill_version": _KEYWORD,
                "text": {"type": "text"},
                # connector metadata is stored and returned, never indexed (no mapping explosion)
                "metadata": {"type": "object", "enabled": False},
                VECTOR_FIELD: {"type": "knn_vector", "dimension": dimension, "method": method},
            },
        },
    }


def app_role_body(index: str) -> dict[str, Any]:
    """A security-plugin role limited to ``index``: CRUD, search and what the adapter reads of it."""
    return {
        "cluster_permissions": ["cluster_composite_ops", "cluster_monitor"],
        "index_permissions": [
            {
                "index_patterns": [index],
                "allowed_actions": [
                    "crud",
                    "search",
                    "indices:admin/mapping/get",
                    "indices:admin/get",
                    "indices:monitor/stats",
                    "indices:admin/refresh*",
                ],
            }
        ],
    }


def cosine_from_score(score: float, space_type: str) -> float:
    """Invert OpenSearch's score transform for unit vectors."""
    if space_type == "innerproduct":  # score = 1 + dot (dot >= 0), 1 / (1 - dot) otherwise
        return score - 1.0 if score >= 1.0 else 1.0 - 1.0 / score
    if space_type == "cosinesimil":  # score = (1 + cos) / 2
        return 2.0 * score - 1.0
    if space_type == "l2":  # score = 1 / (1 + d^2), and d^2 = 2 - 2 cos for unit vectors
        return 1.0 - (1.0 / score - 1.0) / 2.0
    return score


def build_client(settings: OpenSearchSettings) -> Any:
    """An ``opensearch-py`` client for ``settings`` (auth none, basic, or SigV4 es/aoss)."""
    from opensearchpy import AWSV4SignerAuth, OpenSearch, RequestsHttpConnection

    if not settings.url:
        raise ConfigurationError("store 'opensearch' needs opensearch.url (env DOCMILL_OPENSEARCH__URL)")
    parsed = urlparse(settings.url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ConfigurationError(f"opensearch.url must be http(s)://host[:port], not {settings.url!r}")
    auth: Any = None
    if settings.auth == "basic":
        if not settings.username or settings.password is None:
            raise ConfigurationError("opensearch auth 'basic' needs opensearch.username and opensearch.password")
        auth = (settings.username, settings.password)
    elif settings.auth == "sigv4":
        import boto3

        session = boto3.session.Session()
        credentials = session.get_credentials()
        if credentials is None:
            raise ConfigurationError("opensearch auth 'sigv4' found no AWS credentials in the default chain")
        region = settings.region or session.region_name
        if not region:
            raise ConfigurationError("opensearch auth 'sigv4' needs opensearch.region (or AWS_REGION)")
        auth = AWSV4SignerAuth(credentials, region, settings.service)
    return OpenSearch(
        hosts=[settings.url],
        http_auth=auth,
        use_ssl=parsed.scheme == "https",
        verify_certs=settings.verify_certs,
        connection_class=RequestsHttpConnection,
        timeout=settings.timeout,
        # Retries are ours (exponential backoff with jitter, also for per-item 429s).
        max_retries=0,
        retry_on_timeout=False,
        http_compress=False,
    )


def _filter_clauses(filters: SearchFilter | None) -> list[dict[str, Any]]:
    f = filters or SearchFilter()
    clauses: list[dict[str, Any]] = []
    if f.collection is not None:
        clauses.append({"term": {"collection": f.collection}})
    if f.tenant is not None:
        clauses.append({"term": {"tenant": f.tenant}})
    if f.source_uris is not None:
        clauses.append({"terms": {"source_uri": list(f.source_uris)}})
    return clauses


def _source_terms(collection: str, source_uri: str, tenant: str | None) -> list[dict[str, Any]]:
    terms: list[dict[str, Any]] = [{"term": {"collection": collection}}, {"term": {"source_uri": source_uri}}]
    if tenant is not None:
        terms.append({"term": {"tenant": tenant}})
    return terms


def document_id(chunk: ChunkRecord) -> str:
    """Deterministic ``_id``: chunk ids repeat across collections and tenants (same file
    ingested twice), so the id covers all three; hashed to stay well under 512 bytes."""
    key = f"{chunk.tenant}\n{chunk.collection}\n{chunk.chunk_id}"
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:40]


def _document(chunk: ChunkRecord) -> dict[str, Any]:
    return {
        "chunk_id": chunk.chunk_id,
        "collection": chunk.collection,
        "tenant": chunk.tenant,
        "source_uri": chunk.source_uri,
        "source_version": chunk.source_version,
        "source_sha256": chunk.source_sha256,
        "file_type": chunk.file_type,
        "page_numbers": list(chunk.page_numbers),
        "section_title": chunk.section_title,
        "element_ids": list(chunk.element_ids),
        "chunk_index": chunk.chunk_index,
        "char_count": chunk.char_count,
        "embedding_model": chunk.embedding_model,
        "docmill_version": chunk.docmill_version,
        "text": chunk.text,
        "metadata": chunk.metadata,
        VECTOR_FIELD: list(chunk.embedding or []),
    }


def _hit(source: dict[str, Any], score: float) -> SearchHit:
    return SearchHit(
        chunk_id=source["chunk_id"],
        score=score,
        text=source.get("text", ""),
        source_uri=source["source_uri"],
        source_version=source.get("source_version"),
        page_numbers=list(source.get("page_numbers") or []),
        section_title=source.get("section_title"),
        collection=source["collection"],
        tenant=source.get("tenant") or "default",
        chunk_index=source.get("chunk_index"),
        metadata=source.get("metadata") or {},
    )


def _record(source: dict[str, Any]) -> ChunkRecord:
    return record_from_payload(source, embedding=source.get(VECTOR_FIELD), metadata=source.get("metadata") or {})


class _ItemsRejected(Exception):
    """Some items of a bulk request were refused with a retryable status (a full write queue)."""

    def __init__(self, status: int | None) -> None:
        super().__init__(f"status {status}")
        self.status = status


class OpenSearchStore(VectorStore):
    def __init__(
        self,
        settings: OpenSearchSettings,
        *,
        client: Any = None,
        max_retries: int = 6,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        refresh_writes: bool = False,
        retry: RetryPolicy | None = None,
        retry_statuses: frozenset[int] = RETRY_STATUSES,
    ) -> None:
        self.settings = settings
        self.index = settings.index
        self.client = client if client is not None else build_client(settings)
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self._sleep = sleep
        self._clock = clock
        self._rng = random.Random()
        # A whole policy (with a deadline) and more retryable statuses: provisioning a fresh
        # domain, whose security answers 401/403 until it has settled (docmill.vectorstores.provision).
        self._retry = retry
        self.retry_statuses = retry_statuses
        # True: every write is followed by a refresh (tests, small local runs). False: call
        # ``refresh()`` once after a batch of writes.
        self.refresh_writes = refresh_writes
        self.serverless = settings.service == "aoss"

    # -- plumbing -----------------------------------------------------------------------
    @property
    def retry_policy(self) -> RetryPolicy:
        if self._retry is not None:
            return self._retry
        return RetryPolicy(max_retries=self.max_retries, base_delay=self.backoff_base, max_delay=self.backoff_cap)

    def _call(self, what: str, fn: Callable[..., Any], **kwargs: Any) -> Any:
        """Call the client, retrying throttling, 5xx and connection failures (the one retry policy)."""
        from opensearchpy.exceptions import ConnectionError as OSConnectionError
        from opensearchpy.exceptions import TransportError

        def status_of(exc: TransportError) -> int | None:
            return exc.status_code if isinstance(exc.status_code, int) else None

        def transient(exc: BaseException) -> bool:
            return isinstance(exc, TransportError) and (
                status_of(exc) in self.retry_statuses or isinstance(exc, OSConnectionError)
            )

        def on_retry(exc: BaseException, _retry: int, delay: float) -> None:
            log.warning("OpenSearch %s: %s, retrying in %.2fs", what, exc, delay)

        policy = self.retry_policy
        attempts = 0

        def attempt() -> Any:
            nonlocal attempts
            attempts += 1
            return fn(**kwargs)

        try:
            return policy.call(attempt, retry_after=transient, sleep=self._sleep, clock=self._clock,
                               rng=self._rng, on_retry=on_retry)
        except TransportError as exc:
            status = status_of(exc)
            if transient(exc):
                raise TransientError(f"OpenSearch {what} still failing after {attempts} attempts: {exc}") from exc
            if status == 404:
                raise  # callers decide what a missing index means
            error_type = exc.error if isinstance(exc.error, str) else None
            raise VectorStoreRequestError(
                f"OpenSearch {what} refused ({status} {error_type}): {str(exc.info)[:500]}",
                status=status,
                error_type=error_type,
            ) from exc

    def _not_found(self, exc: Exception) -> bool:
        from opensearchpy.exceptions import NotFoundError

        return isinstance(exc, NotFoundError)

    # -- index --------------------------------------------------------------------------
    def index_dimension(self) -> int | None:
        try:
            mapping = self._call("get mapping", self.client.indices.get_mapping, index=self.index)
        except Exception as exc:
            if self._not_found(exc):
                return None
            raise
        props = next(iter(mapping.values()))["mappings"].get("properties", {})
        field = props.get(VECTOR_FIELD)
        if not field or field.get("type") != "knn_vector":
            raise VectorStoreError(f"index {self.index!r} exists but {VECTOR_FIELD!r} is not a knn_vector field")
        return int(field["dimension"])

    def ensure_index(self, dimension: int) -> None:
        existing = self.index_dimension()
        if existing is None:
            try:
                self._call(
                    "create index",
                    self.client.indices.create,
                    index=self.index,
                    body=index_body(self.settings, dimension),
                )
                return
            except VectorStoreRequestError as exc:
                if exc.error_type != "resource_already_exists_exception":  # lost a creation race: fine
                    raise
            existing = self.index_dimension()
        if existing != dimension:
            raise VectorStoreError(
                f"index {self.index!r} holds {existing}-d vectors, not {dimension}-d: "
                "use another index name when changing the embedding model"
            )

    def drop_index(self) -> None:
        """Delete the whole index (all collections). Used by tests and `docmill` resets."""
        try:
            self._call("delete index", self.client.indices.delete, index=self.index)
        except Exception as exc:
            if not self._not_found(exc):
                raise

    def grant_index_role(self, role: str, backend_roles: Sequence[str]) -> None:
        """Fine-grained access control (managed domain, as the master user): ``role`` may use this
        index only, and the IAM roles ``backend_roles`` (the application signs with SigV4) get it."""
        security = self.client.security
        self._call("create role", security.create_role, role=role, body=app_role_body(self.index))
        self._call("map role", security.create_role_mapping, role=role, body={"backend_roles": list(backend_roles)})

    def refresh(self) -> None:
        if self.serverless:
            return  # Serverless has no _refresh; documents become searchable on their own
        try:
            self._call("refresh", self.client.indices.refresh, index=self.index)
        except Exception as exc:
            if not self._not_found(exc):
                raise

    # -- writes -------------------------------------------------------------------------
    def upsert(self, chunks: Sequence[ChunkRecord]) -> UpsertResult:
        result = UpsertResult()
        latest: dict[str, ChunkRecord] = {}
        for chunk in chunks:
            if not chunk.embedding:
                result.errors.append({"chunk_id": chunk.chunk_id, "status": None, "error": "chunk has no embedding"})
                continue
            latest[document_id(chunk)] = chunk  # the same chunk twice in one call: the last one wins
        if not latest:
            return result
        # Checked on every call (one small GET): a bulk into a missing index would make OpenSearch
        # auto-create it with a dynamic mapping (vectors as plain floats), breaking k-NN for good.
        if self.index_dimension() is None:
            self.ensure_index(len(next(iter(latest.values())).embedding or []))
        if self.serverless:
            self._delete_ids(self._ids_for_chunks(list(latest.values())))
        items: list[tuple[str, str]] = []
        for doc_id, chunk in latest.items():
            meta: dict[str, Any] = {"_index": self.index}
            if not self.serverless:
                meta["_id"] = doc_id
            action = json.dumps({"index": meta}, separators=(",", ":"))
            source = json.dumps(_document(chunk), separators=(",", ":"), default=str)
            items.append((chunk.chunk_id, f"{action}\n{source}\n"))
        ok, errors = self._bulk(items)
        result.upserted = ok
        result.errors.extend(errors)
        if self.refresh_writes:
            self.refresh()
        return result

    def _batches(self, items: Sequence[tuple[str, str]]) -> Iterator[list[tuple[str, str]]]:
        """Group NDJSON items into request bodies of at most ``bulk_max_bytes``."""
        batch: list[tuple[str, str]] = []
        size = 0
        for item in items:
            n = len(item[1].encode("utf-8"))
            if batch and size + n > self.settings.bulk_max_bytes:
                yield batch
                batch, size = [], 0
            batch.append(item)  # an item larger than the limit still goes, alone
            size += n
        if batch:
            yield batch

    def _bulk(self, items: Sequence[tuple[str, str]]) -> tuple[int, list[dict[str, Any]]]:
        """Send ``(key, ndjson)`` items; retry rejected items; return (ok count, per-item errors)."""
        ok = 0
        errors: list[dict[str, Any]] = []
        for batch in self._batches(items):
            sent, failed = self._bulk_batch(batch)
            ok += sent
            errors.extend(failed)
        return ok, errors

    def _bulk_batch(self, batch: list[tuple[str, str]]) -> tuple[int, list[dict[str, Any]]]:
        ok = 0
        errors: list[dict[str, Any]] = []
        pending = batch

        def send() -> None:
            """One bulk request for what is still pending; rejected items stay pending."""
            nonlocal ok, pending
            response = self._call("bulk", self.client.bulk, body="".join(p[1] for p in pending))
            retry: list[tuple[str, str]] = []
            last_status: int | None = None
            for (key, ndjson), outcome in zip(pending, response["items"], strict=True):
                op = next(iter(outcome.values()))
                status = int(op.get("status", 500))
                if status < 300:
                    ok += 1
                elif status == 404 and "delete" in outcome:
                    pass  # already gone: what a delete wants
                elif status in RETRY_STATUSES:
                    retry.append((key, ndjson))
                    last_status = status
                else:
                    errors.append({"chunk_id": key, "status": status, "error": op.get("error")})
            pending = retry
            if retry:
                raise _ItemsRejected(last_status)

        def on_retry(exc: BaseException, _retry: int, delay: float) -> None:
            log.warning("OpenSearch bulk: %d items rejected (%s), retrying in %.2fs", len(pending), exc, delay)

        try:
            # The same policy as whole requests, applied to the items a full write queue rejected.
            self.retry_policy.call(send, retry_after=lambda exc: isinstance(exc, _ItemsRejected), sleep=self._sleep,
                                   clock=self._clock, rng=self._rng, on_retry=on_retry)
        except _ItemsRejected as exc:
            errors.extend({"chunk_id": key, "status": exc.status, "error": "rejected after retries"} for key, _ in pending)
        return ok, errors

    def _query_all(self, query: dict[str, Any], *, source: Any, page_size: int = 500) -> Iterator[dict[str, Any]]:
        """Every matching hit, paged with ``search_after`` on a unique, stable sort."""
        search_after: list[Any] | None = None
        while True:
            body: dict[str, Any] = {
                "size": max(1, min(page_size, 10_000)),
                "query": query,
                "sort": [{"source_uri": "asc"}, {"chunk_index": "asc"}, {"chunk_id": "asc"}, {"tenant": "asc"}],
                "_source": source,
            }
            if search_after is not None:
                body["search_after"] = search_after
            try:
                response = self._call("search", self.client.search, index=self.index, body=body)
            except Exception as exc:
                if self._not_found(exc):
                    return
                raise
            hits = response["hits"]["hits"]
            yield from hits
            if len(hits) < body["size"]:
                return
            search_after = hits[-1]["sort"]

    def _ids_for_chunks(self, chunks: Sequence[ChunkRecord]) -> list[str]:
        """Generated ``_id`` of the documents that hold these chunks now (Serverless upsert)."""
        groups: dict[tuple[str, str], list[str]] = {}
        for chunk in chunks:
            groups.setdefault((chunk.tenant, chunk.collection), []).append(chunk.chunk_id)
        ids: list[str] = []
        for (tenant, collection), chunk_ids in groups.items():
            for start in range(0, len(chunk_ids), 500):
                query = {
                    "bool": {
                        "filter": [
                            {"term": {"tenant": tenant}},
                            {"term": {"collection": collection}},
                            {"terms": {"chunk_id": chunk_ids[start : start + 500]}},
                        ]
                    }
                }
                ids.extend(hit["_id"] for hit in self._query_all(query, source=False))
        return ids

    def _delete_ids(self, ids: Sequence[str]) -> int:
        items = [
            (doc_id, json.dumps({"delete": {"_index": self.index, "_id": doc_id}}, separators=(",", ":")) + "\n")
            for doc_id in ids
        ]
        ok, errors = self._bulk(items)
        if errors:
            raise VectorStoreError(f"could not delete {len(errors)} documents: {errors[:3]}")
        return ok

    def _delete_matching(self, query: dict[str, Any]) -> int:
        if self.serverless:
            deleted = self._delete_ids([hit["_id"] for hit in self._query_all(query, source=False)])
            return deleted
        # Delete-by-query only sees refreshed documents: refresh first, so chunks indexed a
        # moment ago are deleted too, and refresh after, so the deletion is visible at once.
        self.refresh()
        try:
            response = self._call(
                "delete by query",
                self.client.delete_by_query,
                index=self.index,
                body={"query": query},
                params={"refresh": "true", "conflicts": "proceed"},
            )
        except Exception as exc:
            if self._not_found(exc):
                return 0
            raise
        if response.get("failures"):
            raise VectorStoreError(f"delete by query failed: {response['failures'][:3]}")
        return int(response.get("deleted", 0))

    def delete_source(
        self, collection: str, source_uri: str, *, keep_version: str | None = None, tenant: str | None = None
    ) -> int:
        query: dict[str, Any] = {"bool": {"filter": _source_terms(collection, source_uri, tenant)}}
        if keep_version is not None:
            query["bool"]["must_not"] = [{"term": {"source_version": keep_version}}]
        return self._delete_matching(query)

    def delete_source_except(
        self, collection: str, source_uri: str, keep_chunk_ids: Sequence[str], *, tenant: str | None = None
    ) -> int:
        keep = sorted(set(keep_chunk_ids))
        if len(keep) > MAX_TERMS:
            raise VectorStoreError(f"a source with more than {MAX_TERMS} chunks cannot be swapped by id set")
        query: dict[str, Any] = {"bool": {"filter": _source_terms(collection, source_uri, tenant)}}
        if keep:
            query["bool"]["must_not"] = [{"terms": {"chunk_id": keep}}]
        return self._delete_matching(query)

    def delete_collection(self, collection: str) -> int:
        return self._delete_matching({"bool": {"filter": [{"term": {"collection": collection}}]}})

    # -- reads --------------------------------------------------------------------------
    def _search(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        try:
            return self._call("search", self.client.search, index=self.index, body=body)["hits"]["hits"]
        except Exception as exc:
            if self._not_found(exc):
                return []
            raise

    def search(self, vector: Sequence[float], k: int = 5, filters: SearchFilter | None = None) -> list[SearchHit]:
        if k <= 0:
            return []
        clauses = _filter_clauses(filters)
        knn: dict[str, Any] = {"vector": [float(x) for x in vector], "k": k}
        if self.settings.engine == "nmslib":
            # nmslib cannot filter inside the graph search: post-filter a deeper candidate list.
            knn["k"] = max(k * 10, 100) if clauses else k
            query: dict[str, Any] = {"bool": {"must": [{"knn": {VECTOR_FIELD: knn}}], "filter": clauses}}
        else:
            # faiss / lucene: efficient filtering inside the k-NN search (exact when selective).
            if clauses:
                knn["filter"] = {"bool": {"filter": clauses}}
            query = {"knn": {VECTOR_FIELD: knn}}
        body = {"size": k, "query": query, "_source": {"excludes": SOURCE_EXCLUDES}}
        return [
            _hit(h["_source"], cosine_from_score(float(h["_score"]), self.settings.space_type))
            for h in self._search(body)
        ]

    def search_text(self, text: str, k: int = 5, filters: SearchFilter | None = None) -> list[SearchHit]:
        """BM25 over chunk text; scores are OpenSearch's raw BM25 scores."""
        if k <= 0 or not text.strip():
            return []
        body = {
            "size": k,
            "query": {"bool": {"must": [{"match": {"text": {"query": text}}}], "filter": _filter_clauses(filters)}},
            "_source": {"excludes": SOURCE_EXCLUDES},
        }
        return [_hit(h["_source"], float(h["_score"])) for h in self._search(body)]

    def count(self, collection: str | None = None, source_uri: str | None = None) -> int:
        clauses: list[dict[str, Any]] = []
        if collection is not None:
            clauses.append({"term": {"collection": collection}})
        if source_uri is not None:
            clauses.append({"term": {"source_uri": source_uri}})
        body = {"query": {"bool": {"filter": clauses}}} if clauses else None
        try:
            response = self._call("count", self.client.count, index=self.index, body=body)
        except Exception as exc:
            if self._not_found(exc):
                return 0
            raise
        return int(response["count"])

    def iter_chunks(
        self,
        collection: str,
        tenant: str | None = None,
        batch_size: int = 500,
        *,
        with_embeddings: bool = False,
    ) -> Iterator[ChunkRecord]:
        clauses = _filter_clauses(SearchFilter(collection=collection, tenant=tenant))
        source: Any = True if with_embeddings else {"excludes": SOURCE_EXCLUDES}
        for hit in self._query_all({"bool": {"filter": clauses}}, source=source, page_size=batch_size):
            yield _record(hit["_source"])

    def health(self) -> dict[str, Any]:
        info: dict[str, Any] = {
            "backend": "opensearch",
            "url": self.settings.url,
            "index": self.index,
            "service": self.settings.service,
        }
        try:
            exists = bool(self._call("index exists", self.client.indices.exists, index=self.index))
            info.update(ok=True, exists=exists, chunks=self.count() if exists else 0)
        except Exception as exc:  # noqa: BLE001 - health reports, it never raises
            info.update(ok=False, error=str(exc))
        return info

    def close(self) -> None:
        close = getattr(self.client, "close", None)
        if callable(close):
            close()
