"""A small dataset written by docmill's own writer (every format), with provenance contexts.

``docmill generate`` writes provenance that *names* each record's context chunks (ids, in rank
order, with the collection and tenant) without their texts, which stay in the collection:
``inline_context=False`` writes that shape, and :func:`write_collection_chunks` puts the chunks
into a workspace the way ``docmill ingest`` leaves them. ``inline_context=True`` carries the
texts in the provenance lines themselves.
"""

from __future__ import annotations

from pathlib import Path

from docmill.datasets.formats import ALL_FORMATS, Example
from docmill.datasets.writer import SplitExample, write_datasets
from docmill.models import ChunkRecord
from docmill.names import collection_prefix
from docmill.storage import open_store

FACTS = [
    ("What does the warranty cover?", "The warranty covers parts and labour for two years.", "It covers nothing."),
    ("How do I reset the device?", "Hold the power button for ten seconds to reset the device.", "Shake it."),
    ("What is docmill for?", "docmill turns documents into datasets for fine-tuning.", "Cooking pasta."),
    ("Who answers support calls?", "The support team answers calls on weekdays.", "Nobody ever."),
]
COLLECTION = "manuals"
NOTES_CHUNK = "c-notes"  # ranked second in every record's context
NOTES = "Keep the receipt: repairs need proof of purchase."
RECORDS = 12


def chunk_texts() -> dict[str, str]:
    """chunk id -> text of every chunk the dataset's contexts name."""
    texts = {f"c{i}": FACTS[i % len(FACTS)][1] + " See the manual." for i in range(RECORDS)}
    return {**texts, NOTES_CHUNK: NOTES}


def write_docmill_dataset(
    root: Path,
    *,
    dataset: str = "acme",
    system: str | None = None,
    inline_context: bool = True,
    tenant: str = "default",
) -> Path:
    """8 train, 2 val, 2 test records from separate 'documents', as ``docmill generate`` lays them out."""
    examples = []
    provenance = []
    texts = chunk_texts()
    for i in range(RECORDS):
        question, answer, wrong = FACTS[i % len(FACTS)]
        split = "train" if i < 8 else ("val" if i < 10 else "test")
        rid = f"rec-{i:02d}"
        examples.append(
            SplitExample(Example(id=rid, instruction=question, input="", chosen=answer, rejected=wrong, system=system), split, True)
        )
        if inline_context:
            provenance.append({"id": rid, "split": split, "context": [{"chunk_id": f"c{i}", "text": texts[f"c{i}"]}]})
        else:
            ids = [f"c{i}", NOTES_CHUNK]
            provenance.append({
                "id": rid, "split": split, "collection": COLLECTION, "tenant": tenant,
                "context": [{"rank": r + 1, "chunk_id": cid, "score": 0.5, "source_uri": f"file:///{cid}.md"}
                            for r, cid in enumerate(ids)],
                "context_chunk_ids": ids,
            })
    out = open_store(str(root))
    write_datasets(out, dataset, list(ALL_FORMATS), examples, with_system=bool(system))
    out.write_jsonl("provenance.jsonl", provenance)
    return root


def write_collection_chunks(home: Path, *, tenant: str = "default", leave_out: tuple[str, ...] = ()) -> Path:
    """The dataset's chunks in ``<home>/<collection prefix>/sources/<doc>/chunks.jsonl``."""
    root = home / collection_prefix(COLLECTION, tenant) / "sources"
    for index, (cid, text) in enumerate(chunk_texts().items()):
        if cid in leave_out:
            continue
        chunk = ChunkRecord(
            chunk_id=cid, collection=COLLECTION, tenant=tenant, text=text, source_uri=f"file:///{cid}.md",
            source_sha256="0" * 64, file_type="md", chunk_index=index, char_count=len(text), docmill_version="test",
        )
        folder = root / f"{cid}.md-0000"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "chunks.jsonl").write_text(chunk.model_dump_json() + "\n", encoding="utf-8")
    return home
