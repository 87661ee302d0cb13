"""Given the packaged MiniLM converted to CTranslate2 (int8), When texts are embedded, Then long
texts run through the int8 encoder and short ones through float32, input order survives the
length-sorted batching, and the conversion is done once per cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from docmill.config import Settings
from docmill.embeddings import get_embedder
from docmill.embeddings.ct2 import SHORT_TOKENS, CTranslate2Embedder
from docmill.embeddings.export import ct2_model_path, ensure_ct2_model

pytestmark = pytest.mark.slow  # loads the PyTorch model to compare against

TEXTS = [
    "Invoice due.",  # a few tokens: the float32 path
    "The quarterly report covers revenue, costs and the outlook for the next two years in Europe and Asia. " * 3,
    "Where is the fire exit?",
    "Chunk " + "about the notice board and its pinned announcements " * 20,
]


@pytest.fixture(scope="module")
def cache_dir() -> Path:
    cache = Settings().model_cache
    ensure_ct2_model(cache)  # done by scripts/install.sh; converted here on a fresh machine
    return cache


def _cos(a, b) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def test_short_texts_run_in_float32_and_long_ones_in_int8(cache_dir, torch_embedder):
    # Given a fresh embedder (not the shared one, so its encoders start closed)
    embedder = CTranslate2Embedder(ct2_model_path(cache_dir), _model_dir())
    tokens = [len(embedder._tokenizer.encode(t).ids) for t in TEXTS]
    assert min(tokens) < SHORT_TOKENS <= max(tokens)

    # When only short texts are embedded
    short = [t for t, n in zip(TEXTS, tokens, strict=True) if n < SHORT_TOKENS]
    vectors = embedder.embed_documents(short)

    # Then only the float32 encoder was opened, and its vectors are PyTorch's to within float error
    assert set(embedder._encoders) == {"float32"}
    for a, b in zip(vectors, torch_embedder.embed_documents(short), strict=True):
        assert _cos(a, b) > 0.998

    # When long texts follow, Then the int8 encoder opens beside it
    embedder.embed_documents(TEXTS)
    assert set(embedder._encoders) == {"float32", "int8"}


def test_order_is_kept_across_batches_and_encoders(cache_dir):
    # Given batches of 3 over texts of mixed lengths (both encoders, sorted longest first)
    embedder = get_embedder("minilm", runtime="ctranslate2-int8", cache_dir=cache_dir, batch_size=3)

    # When they are embedded together and one by one
    together = embedder.embed_documents(TEXTS + TEXTS[::-1])
    alone = [embedder.embed_query(t) for t in TEXTS + TEXTS[::-1]]

    # Then each vector is its own text's: padded int8 batches round a little differently (0.9998
    # seen), while two different texts are far apart
    for a, b in zip(together, alone, strict=True):
        assert _cos(a, b) > 0.999
    assert _cos(together[0], together[1]) < 0.9


def test_thread_count_change_reopens_the_encoders(cache_dir):
    embedder = CTranslate2Embedder(ct2_model_path(cache_dir), _model_dir(), threads=1)
    first = embedder.embed_query(TEXTS[1])
    embedder.set_threads(2)
    assert embedder._encoders == {}
    assert _cos(embedder.embed_query(TEXTS[1]), first) > 0.9999


def test_conversion_is_reused_not_repeated(cache_dir):
    path = ct2_model_path(cache_dir)
    before = (path / "model.bin").stat().st_mtime_ns
    assert ensure_ct2_model(cache_dir) == path
    assert (path / "model.bin").stat().st_mtime_ns == before
    assert path.name.endswith("-int8")


def test_conversion_into_a_fresh_cache_leaves_no_temporary_folder(tmp_path):
    # When a new cache is filled
    path = ensure_ct2_model(tmp_path)

    # Then the model is complete and nothing half-written is left beside it
    assert (path / "model.bin").stat().st_size > 10_000_000
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    vector = get_embedder("minilm", runtime="ctranslate2-int8", cache_dir=tmp_path).embed_query("hello")
    assert len(vector) == 384


def _model_dir() -> Path:
    from docmill.embeddings.export import packaged_model_dir

    return packaged_model_dir()
