"""Given the packaged MiniLM converted to CTranslate2 (int8, and float32 for texts of few distinct
tokens), When texts are embedded, Then each runs through the right model and matches PyTorch,
input order survives the length-sorted batching, and each conversion is done once per cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from docmill.config import Settings
from docmill.embeddings import get_embedder
from docmill.embeddings.ct2 import FLOAT_UNDER_DISTINCT_TOKENS, CTranslate2Embedder
from docmill.embeddings.export import ct2_model_path, ensure_ct2_model, packaged_model_dir

pytestmark = pytest.mark.slow  # loads the PyTorch model to compare against

TEXTS = [
    "Invoice due.",  # a few tokens: the float32 model
    "The quarterly report covers revenue, costs and the outlook for the next two years in Europe and Asia; "
    "staff numbers grew by nine percent while travel spending fell after the new remote-work policy.",
    "Where is the fire exit?",
    "Notice board rules: announcements stay pinned for fourteen days, then move to the archive. Only "
    "editors may change a pinned post; anyone in the organisation can comment, react or subscribe. "
    "Posts about building maintenance, parking, canteen menus and safety drills go to facilities, "
    "and everything on payroll or holidays belongs in the human-resources channel instead.",
]
# A table-of-contents leader line: long, but one token over and over, so int8 noise does not
# average out (cosine 0.980 in int8, 0.987 with int8 weights alone).
DOTS = "Introduction " + "." * 600 + " 7"


@pytest.fixture(scope="module")
def cache_dir() -> Path:
    cache = Settings().model_cache
    ensure_ct2_model(cache)  # done by scripts/install.sh; converted here on a fresh machine
    ensure_ct2_model(cache, "float32")
    return cache


def _fresh(cache_dir: Path, **kwargs) -> CTranslate2Embedder:
    # Not the shared instance, so its encoders start closed.
    return CTranslate2Embedder(
        ct2_model_path(cache_dir), ct2_model_path(cache_dir, "float32"), packaged_model_dir(), **kwargs
    )


def _cos(a, b) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def _distinct(embedder: CTranslate2Embedder, text: str) -> int:
    return len(set(embedder._tokenizer.encode(text).ids))


def test_texts_of_few_distinct_tokens_run_in_float32_and_match_pytorch(cache_dir, torch_embedder):
    # Given short texts and a long line of one repeated token
    embedder = _fresh(cache_dir)
    few = [TEXTS[0], TEXTS[2], DOTS]
    assert all(_distinct(embedder, t) < FLOAT_UNDER_DISTINCT_TOKENS for t in few)
    assert len(embedder._tokenizer.encode(DOTS).ids) > 200

    # When they are embedded
    vectors = embedder.embed_documents(few)

    # Then only the float32 model was opened, and its vectors are PyTorch's
    assert set(embedder._encoders) == {"float32"}
    for text, a, b in zip(few, vectors, torch_embedder.embed_documents(few), strict=True):
        assert _cos(a, b) > 0.9999, text[:30]


def test_texts_of_many_distinct_tokens_run_in_int8_within_cosine_0_99(cache_dir, torch_embedder):
    embedder = _fresh(cache_dir)
    many = [TEXTS[1], TEXTS[3]]
    assert all(_distinct(embedder, t) >= FLOAT_UNDER_DISTINCT_TOKENS for t in many)

    vectors = embedder.embed_documents(many)

    assert set(embedder._encoders) == {"int8"}
    for a, b in zip(vectors, torch_embedder.embed_documents(many), strict=True):
        assert 0.99 <= _cos(a, b) < 0.99999  # close, and not the float32 model


def test_order_is_kept_across_batches_and_models(cache_dir):
    # Given batches of 3 over texts of mixed lengths (both models, sorted longest first)
    embedder = get_embedder("minilm", runtime="ctranslate2-int8", cache_dir=cache_dir, batch_size=3)
    texts = [*TEXTS, DOTS, *TEXTS[::-1]]

    # When they are embedded together and one by one
    together = embedder.embed_documents(texts)
    alone = [embedder.embed_query(t) for t in texts]

    # Then each vector is its own text's: padded int8 batches round a little differently (0.9998
    # seen), while two different texts are far apart
    for a, b in zip(together, alone, strict=True):
        assert _cos(a, b) > 0.999
    assert _cos(together[0], together[1]) < 0.9


def test_thread_count_change_reopens_the_encoders(cache_dir):
    embedder = _fresh(cache_dir, threads=1)
    first = embedder.embed_query(TEXTS[1])
    embedder.set_threads(2)
    assert embedder._encoders == {}
    assert _cos(embedder.embed_query(TEXTS[1]), first) > 0.9999


@pytest.mark.parametrize("quantization", ["int8", "float32"])
def test_conversion_is_reused_not_repeated(cache_dir, quantization):
    path = ct2_model_path(cache_dir, quantization)
    before = (path / "model.bin").stat().st_mtime_ns
    assert ensure_ct2_model(cache_dir, quantization) == path
    assert (path / "model.bin").stat().st_mtime_ns == before
    assert path.name.endswith(f"-{quantization}")


def test_conversion_into_a_fresh_cache_leaves_no_temporary_folder(tmp_path):
    # When a new cache is filled on first use
    vector = get_embedder("minilm", runtime="ctranslate2-int8", cache_dir=tmp_path).embed_query("hello")

    # Then both models are complete (int8 about a quarter of float32) and nothing half-written is left
    assert len(vector) == 384
    int8, float32 = ((ct2_model_path(tmp_path, q) / "model.bin").stat().st_size for q in ("int8", "float32"))
    assert 10_000_000 < int8 < float32 / 3
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
