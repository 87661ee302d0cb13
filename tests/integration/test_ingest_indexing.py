"""Given docmill ingesting into each vector back end, When files are ingested, re-ingested,
changed, re-chunked, broken and deleted, Then the index holds exactly the chunks of the current
versions: the same ids as the chunks files say."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from docmill.config import IngestOptions
from docmill.ingest import Ingestor
from docmill.ingest.sources import source_id_for
from docmill.storage import LocalStore
from docmill.vectorstores import SearchFilter
from tests.support.vector_fixtures import opensearch_server, store  # noqa: F401


def _ingestor(home: Path, store, embedder, **options) -> Ingestor:
    return Ingestor(
        output=LocalStore(home), collection="c", options=IngestOptions(workers=1, **options), embedder=embedder, vector_store=store
    )


def _expected_ids(home: Path, sources: list[Path]) -> set[str]:
    ids = set()
    for path in sources:
        chunks = home / "collections/c/sources" / source_id_for(path.resolve().as_uri()) / "chunks.jsonl"
        if chunks.exists():
            ids |= {json.loads(line)["chunk_id"] for line in chunks.read_text().splitlines()}
    return ids


def _indexed_ids(store) -> set[str]:
    return {c.chunk_id for c in store.iter_chunks("c")}


def test_index_tracks_current_versions_through_a_file_lifecycle(store, tmp_path, corpus_docs, embedder):
    src, home = tmp_path / "src", tmp_path / "home"
    src.mkdir()
    notes, memo = src / "notes.txt", src / "memo.pdf"
    shutil.copy(corpus_docs / "fake-text.txt", notes)
    shutil.copy(corpus_docs / "fake-memo.pdf", memo)

    # Given both files ingested
    _ingestor(home, store, embedder).run([str(src)])
    assert _indexed_ids(store) == _expected_ids(home, [notes, memo]) != set()

    # When they are ingested again unchanged, Then nothing moves
    _ingestor(home, store, embedder).run([str(src)])
    assert store.count(collection="c") == len(_expected_ids(home, [notes, memo]))

    # When one changes, Then its old chunks are gone and the new ones searchable
    notes.write_text("Norwich City play at Carrow Road.\n\nThe club was founded in 1902.\n")
    _ingestor(home, store, embedder).run([str(src)])
    assert _indexed_ids(store) == _expected_ids(home, [notes, memo])
    hit = store.search(embedder.embed_query("When was the club founded?"), k=1, filters=SearchFilter(collection="c"))[0]
    assert "1902" in hit.text

    # When the settings change (same file versions), Then the re-chunked set replaces the old
    _ingestor(home, store, embedder, chunking={"strategy": "basic", "max_characters": 60, "new_after_n_chars": 60}).run([str(src)])
    assert _indexed_ids(store) == _expected_ids(home, [notes, memo])

    # When one breaks, Then its chunks leave the index
    notes.write_bytes(b"")
    _ingestor(home, store, embedder).run([str(src)])
    assert _indexed_ids(store) == _expected_ids(home, [memo])

    # When the other is deleted from docmill, Then the index is empty
    _ingestor(home, store, embedder).delete_source(memo.resolve().as_uri())
    assert _indexed_ids(store) == set()
