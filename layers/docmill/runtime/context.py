"""The process-wide runtime of the handlers: settings plus lazily built heavy resources.

A Lambda container (or ECS task, or ``docmill dev``) builds these once and reuses them across
invocations: the embedder (model load), the vector store connection, the LLM client. Handlers
call ``current()``; the first call reads the settings from the environment (cold start). Tests
and the local runtime ``install`` a runtime with their own settings or test doubles instead.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from docmill.config import Settings, load_settings
from docmill.embeddings.base import Embedder
from docmill.runtime.environment import FunctionEnvironment, load_environment, settings_from
from docmill.storage import ObjectStore, S3Store, open_store
from docmill.vectorstores.base import VectorStore

_UNSET: Any = object()


@dataclass
class Runtime:
    settings: Settings
    embedder_factory: Callable[[], Embedder] | None = None
    vector_store_factory: Callable[[], VectorStore | None] | None = None
    llm_factory: Callable[[], Any] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    def _get(self, name: str, build: Callable[[], Any]) -> Any:
        with self._lock:
            if name not in self._cache:
                self._cache[name] = build()
            return self._cache[name]

    def embedder(self) -> Embedder:
        def build() -> Embedder:
            if self.embedder_factory is not None:
                return self.embedder_factory()
            from docmill.embeddings import embedder_for

            return embedder_for(self.settings, batch_size=self.settings.ingest.embed_batch_size)

        return self._get("embedder", build)

    def vector_store(self) -> VectorStore | None:
        def build() -> VectorStore | None:
            if self.vector_store_factory is not None:
                return self.vector_store_factory()
            from docmill.vectorstores.factory import open_vector_store

            return open_vector_store(self.settings)

        return self._get("vector_store", build)

    def llm(self) -> Any:
        def build() -> Any:
            if self.llm_factory is not None:
                return self.llm_factory()
            from docmill.llm.factory import make_llm

            return make_llm(self.settings.llm.spec, self.settings.llm,
                            local_cache_dir=self.settings.home / "cache" / "llm")

        return self._get("llm", build)

    def processed_store(self) -> ObjectStore:
        """Where per-source outputs go: the processed bucket, else the local workspace."""
        bucket = self.settings.aws.processed_bucket
        return S3Store(bucket, "") if bucket else open_store(str(self.settings.home))

    def datasets_store(self, prefix: str = "") -> ObjectStore:
        bucket = self.settings.aws.datasets_bucket
        if bucket:
            return S3Store(bucket, prefix)
        return open_store(str(self.settings.home / "datasets")).child(prefix) if prefix else open_store(
            str(self.settings.home / "datasets")
        )

    def close(self) -> None:
        store = self._cache.get("vector_store")
        if store is not None:
            store.close()


_current: Runtime | None = None
_current_lock = threading.Lock()


def current(
    contract: type[FunctionEnvironment] | None = None, environ: Mapping[str, str] | None = None
) -> Runtime:
    """The installed runtime, or one built on first use (cold start): from ``environ`` validated
    against the function's ``contract`` (a deployed handler: a bad environment fails the start
    with every problem named), else from the process settings (the CLI, scripts)."""
    global _current
    with _current_lock:
        if _current is None:
            if contract is not None:
                env = load_environment(contract, environ if environ is not None else {})
                _current = Runtime(settings=settings_from(env))
            else:
                _current = Runtime(settings=load_settings())
        return _current


def install(runtime: Runtime | None) -> Runtime | None:
    """Replace the process runtime (tests, ``docmill dev``); returns the previous one."""
    global _current
    with _current_lock:
        previous, _current = _current, runtime
    return previous
