"""The embedded SmolLM2 model drives one real generation run end to end (slow: loads models).

The index is the in-memory test double (exact cosine) filled with MiniLM embeddings of real
corpus text, so this checks the model, the prompts, parsing and the writers together. A
135M model often fails the JSON contracts: the test asserts the run is whole and honest
(every call accounted for, every file well-formed), not that the tiny model is good.
"""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
from pathlib import Path

import pytest

from docmill.models import ChunkRecord, chunk_id_for

CORPUS = Path("/work/shared/corpus/docs")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (CORPUS / "norwich-city.txt").is_file(), reason="shared corpus not on this machine"),
]


def _chunks(embedder) -> list[ChunkRecord]:
    out = []
    for name in ("norwich-city.txt", "book-war-and-peace-1p.txt"):
        path = CORPUS / name
        text = path.read_text(encoding="utf-8", errors="ignore")
        para = next(p.strip() for p in text.split("\n\n") if len(p.strip()) > 200)[:600]
        out.append(
            ChunkRecord(
                chunk_id=chunk_id_for(str(path), para, 0),
                collection="demo",
                text=para,
                source_uri=str(path),
                source_sha256=hashlib.sha256(text.encode()).hexdigest(),
                file_type="txt",
                chunk_index=0,
                char_count=len(para),
                docmill_version="test",
            )
        )
    vectors = embedder.embed_documents([c.text for c in out])
    return [c.model_copy(update={"embedding": v}) for c, v in zip(out, vectors, strict=True)]


def test_local_model_generates_every_format_end_to_end(tmp_path):
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    from datasets import load_from_disk

    from docmill.config import LLMSettings
    from docmill.embeddings import get_embedder
    from docmill.generation import GenerationConfig, run_generation
    from docmill.generation.models import StageParams
    from docmill.llm.factory import make_llm
    from docmill.storage import LocalStore
    from tests.support.generation_doubles import MemoryVectorStore

    embedder = get_embedder("minilm")
    chunks = _chunks(embedder)
    store = MemoryVectorStore()
    store.upsert(chunks)
    llm = make_llm("local", LLMSettings(concurrency=1))
    cfg = GenerationConfig(
        collection="demo",
        dataset="demo",
        questions_per_chunk=1,
        max_chunks=1,
        concurrency=1,
        stage_params={
            "question": StageParams(max_tokens=200),
            "answer": StageParams(max_tokens=100),
            "rejected": StageParams(max_tokens=60),
            "judge": StageParams(max_tokens=60),
        },
    )
    from docmill.errors import EmptyDataset

    try:
        result = run_generation(chunks, cfg, llm=llm, store=store, embedder=embedder, out=LocalStore(tmp_path))
    except EmptyDataset:
        # A 135M model may produce nothing usable: then the run fails loudly, with the report
        # written and no trainer file
        result = None
        assert not list(tmp_path.glob("demo-*"))
    report = json.loads((tmp_path / "run_report.json").read_text())
    # The model was really called, and every call is accounted for
    assert report["stages"]["question"]["calls"] >= 1
    assert report["llm_client"]["calls"] == sum(s["calls"] for s in report["stages"].values())
    assert report["llm_client"]["failures"] == 0
    assert report["llm_client"]["output_tokens"] > 0
    assert report["model_id"].startswith("HuggingFaceTB/SmolLM2-135M-Instruct")
    if result is None:
        assert report["totals"]["records_kept"] == 0
        return
    # What was generated is either kept or counted as a drop
    a = result.assembled
    assert a["records_kept"] <= a["records_generated"] <= 1
    if a["records_generated"] == 0:
        assert sum(a["drops"].values()) >= 1
    # Every format is written, well-formed, and loads back
    for fmt in a["archives"]:
        folder = tmp_path / f"demo-{fmt}"
        rows = sum(
            len([json.loads(line) for line in (folder / f"{split}.jsonl").read_text().splitlines() if line])
            for split in ("train", "val", "test")
        )
        assert rows == sum(a["counts"][fmt].values())
        with tarfile.open(tmp_path / f"demo-{fmt}.tar.gz") as tar:
            tar.extractall(tmp_path / "x", filter="data")
        dd = load_from_disk(str(tmp_path / "x" / f"demo-{fmt}"))
        assert sum(dd[s].num_rows for s in dd) == rows
    assert (tmp_path / "README.md").read_text().startswith("---")
