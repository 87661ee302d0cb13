"""Given the packaged MiniLM exported to ONNX and converted to CTranslate2, When texts are embedded
through ONNX Runtime or CTranslate2, Then the vectors match the PyTorch model's (cosine >= 0.99),
in input order, and a process that only embeds queries never imports torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from docmill.config import Settings
from docmill.embeddings import get_embedder
from docmill.embeddings.export import ensure_ct2_model, ensure_onnx_model, onnx_model_path

pytestmark = pytest.mark.slow  # loads the PyTorch model to compare against

REPO = Path(__file__).resolve().parents[2]
SAMPLE = [
    "Dogs are the best animals.",
    "How many international caps did Iwan Roberts win for Wales?",
    "",  # an empty chunk still gets a unit vector
    "Ünïcödé, émojis 🙂 and ‘quotes’ — tokenised like the PyTorch path.",
    "Table: revenue | 2023 | 2024\nEurope | 1.2 | 1.4\nAsia | 0.9 | 1.1",
    # longer than the 256-token window: truncated the same way
    " ".join(f"word{i} of a very long paragraph" for i in range(400)),
    "A medium paragraph about ingestion. " * 12,
]


@pytest.fixture(scope="module")
def cache_dir() -> Path:
    cache = Settings().model_cache
    # Done by scripts/install.sh; exported here on a fresh machine.
    ensure_onnx_model(cache)
    ensure_ct2_model(cache)
    return cache


@pytest.fixture(scope="module")
def onnx_embedder(cache_dir):
    # Batches of 4 (the default is 1): the length-sorted batching path is what is tested below.
    return get_embedder("minilm", runtime="onnx", cache_dir=cache_dir, batch_size=4)


def _cos(a, b) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize(
    ("runtime", "at_least"), [("onnx", 0.999), ("onnx-int8", 0.99), ("ctranslate2-int8", 0.99)]
)
def test_runtime_vectors_match_pytorch_on_a_sample(runtime, at_least, cache_dir, torch_embedder):
    # When the same texts go through an optimised runtime (every corpus chunk is checked for the
    # default one in tests/integration/test_ingest_corpus.py) and PyTorch
    ours = get_embedder("minilm", runtime=runtime, cache_dir=cache_dir).embed_documents(SAMPLE)
    theirs = torch_embedder.embed_documents(SAMPLE)

    # Then every vector is unit length, 384-dimensional and (nearly) the PyTorch one
    for text, a, b in zip(SAMPLE, ours, theirs, strict=True):
        assert len(a) == 384
        assert abs(_cos(a, a) - 1.0) < 1e-4
        assert _cos(a, b) >= at_least, text[:40]


def test_onnx_keeps_input_order_across_length_sorted_batches(onnx_embedder):
    together = onnx_embedder.embed_documents(SAMPLE)
    alone = [onnx_embedder.embed_query(text) for text in SAMPLE]
    for a, b in zip(together, alone, strict=True):
        assert _cos(a, b) > 0.9999


def test_export_is_reused_not_repeated(cache_dir):
    path = onnx_model_path(cache_dir)
    before = path.stat().st_mtime_ns
    assert ensure_onnx_model(cache_dir) == path
    assert path.stat().st_mtime_ns == before


@pytest.mark.parametrize("runtime", ["ctranslate2-int8", "onnx-int8"])
def test_query_embedding_from_a_cold_process_does_not_import_torch(runtime, cache_dir):
    # Given a fresh interpreter, When it embeds a query the way `docmill search` does
    code = (
        "import json, sys\n"
        "from docmill.config import load_settings\n"
        "from docmill.embeddings import embedder_for\n"
        "vector = embedder_for(load_settings()).embed_query('which animals are the best?')\n"
        "print(json.dumps({'dim': len(vector), 'torch': 'torch' in sys.modules,"
        " 'st': 'sentence_transformers' in sys.modules}))\n"
    )
    env = dict(os.environ, PYTHONPATH=f"{REPO / 'layers'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    env["DOCMILL_MODEL_CACHE"] = str(cache_dir)
    env["DOCMILL_EMBED_RUNTIME"] = runtime
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300, check=True)

    # Then it gets a vector without ever importing torch or sentence-transformers
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"dim": 384, "torch": False, "st": False}


def test_int8_graph_quantises_the_weight_matmuls_and_keeps_the_outlier_one_in_float(cache_dir):
    import onnx

    # Given the int8 export
    graph = onnx.load(str(ensure_onnx_model(cache_dir, int8=True))).graph
    weights = {i.name for i in graph.initializer}
    float_weight_matmuls = [n.name for n in graph.node if n.op_type == "MatMul" and n.input[1] in weights]

    # Then the 36 weight projections but one run as integer MatMuls, behind smoothing Muls
    assert sum(n.op_type == "MatMulInteger" for n in graph.node) == 35
    assert float_weight_matmuls == ["/inner/encoder/layer.0/output/dense/MatMul"]
    assert sum(n.name.endswith("_SmoothMul") for n in graph.node) == 18  # QKV, FFN up, FFN down x 6 layers


def test_int8_calibration_uses_only_texts_that_ship_with_the_install():
    from docmill.embeddings.export import packaged_model_dir
    from docmill.embeddings.quantize import calibration_texts

    # When the calibration set is built
    texts = calibration_texts(packaged_model_dir())

    # Then it is paragraph pieces of the model card and demo samples: none from the test corpus
    corpus = REPO.parent / "shared" / "corpus" / "docs"
    assert len(texts) >= 8 and all(t.strip() for t in texts)
    if corpus.is_dir():
        corpus_text = " ".join(p.read_text(errors="ignore") for p in corpus.glob("*.md"))
        assert not any(t[:200] in corpus_text for t in texts)


def test_int8_export_is_built_from_the_float_file_and_reused(cache_dir):
    path = ensure_onnx_model(cache_dir, int8=True)
    before = path.stat().st_mtime_ns
    assert path.name.endswith("-fused-int8-s3.onnx") and path != onnx_model_path(cache_dir)
    assert ensure_onnx_model(cache_dir, int8=True) == path
    assert path.stat().st_mtime_ns == before
