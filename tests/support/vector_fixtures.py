"""Fixtures for vector-store tests: synthetic chunks and a store per back end.

Import the fixtures you use into the test module (``from tests.support.vector_fixtures import
...``). The OpenSearch back end is the strict in-process double unless
``DOCMILL_TEST_OPENSEARCH_URL`` points at a real node (then the same tests run against it).
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from docmill.config import OpenSearchSettings
from docmill.models import ChunkRecord, chunk_id_for
from docmill.vectorstores.base import VectorStore
from tests.support.opensearch_double import OpenSearchDouble

DIM = 16
LIVE_URL = os.environ.get("DOCMILL_TEST_OPENSEARCH_URL")
BACKENDS = ["lancedb", "opensearch"]


def unit_vector(seed: int | str, dim: int = DIM) -> list[float]:
    """A deterministic random unit vector (same seed, same vector, in every process)."""
    if isinstance(seed, str):
        seed = int.from_bytes(hashlib.sha256(seed.encode("utf-8")).digest()[:8], "little")
    v = np.random.default_rng(seed).standard_normal(dim)
    return (v / np.linalg.norm(v)).astype(np.float32).tolist()


def make_chunk(
    source_uri: str,
    index: int,
    *,
    version: str | None = "v1",
    collection: str = "docs",
    tenant: str = "default",
    text: str | None = None,
    dim: int = DIM,
    pages: list[int] | None = None,
) -> ChunkRecord:
    text = text if text is not None else f"chunk {index} of {source_uri} at {version}"
    return ChunkRecord(
        chunk_id=chunk_id_for(f"{collection}\n{source_uri}\n{version}", text, index),
        collection=collection,
        tenant=tenant,
        text=text,
        embedding=unit_vector(f"{source_uri}|{version}|{index}|{text}", dim),
        source_uri=source_uri,
        source_version=version,
        source_sha256=f"sha-{version}",
        file_type="text/plain",
        page_numbers=pages if pages is not None else [index + 1],
        section_title=f"Section {index}",
        element_ids=[f"el-{index}"],
        chunk_index=index,
        char_count=len(text),
        embedding_model="test-random",
        docmill_version="0.1.0",
        metadata={"title": source_uri.rsplit("/", 1)[-1], "n": index},
    )


@pytest.fixture(scope="session")
def opensearch_server() -> Iterator[str]:
    """URL of an OpenSearch: the real one when configured, else the strict double."""
    if LIVE_URL:
        yield LIVE_URL
        return
    double = OpenSearchDouble()
    double.start()
    yield double.url
    double.stop()


def opensearch_store(url: str, **kwargs) -> VectorStore:
    from docmill.vectorstores.opensearch import OpenSearchStore

    settings = OpenSearchSettings(url=url, index=f"docmill-test-{uuid.uuid4().hex[:12]}", verify_certs=False)
    kwargs.setdefault("refresh_writes", True)
    return OpenSearchStore(settings, sleep=lambda _s: None, **kwargs)


@pytest.fixture(params=BACKENDS)
def store(request, tmp_path: Path) -> Iterator[VectorStore]:
    """One empty store of each back end (a fresh OpenSearch index per test)."""
    if request.param == "lancedb":
        from docmill.vectorstores.lancedb_store import LanceDBStore

        s: VectorStore = LanceDBStore(tmp_path / "vectors")
        yield s
        s.close()
    else:
        url = request.getfixturevalue("opensearch_server")
        s = opensearch_store(url)
        yield s
        s.drop_index()  # type: ignore[attr-defined]
        s.close()
