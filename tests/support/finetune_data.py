"""A small dataset written by docmill's own writer (every format), with provenance contexts."""

from __future__ import annotations

from pathlib import Path

from docmill.datasets.formats import ALL_FORMATS, Example
from docmill.datasets.writer import SplitExample, write_datasets
from docmill.storage import open_store

FACTS = [
    ("What does the warranty cover?", "The warranty covers parts and labour for two years.", "It covers nothing."),
    ("How do I reset the device?", "Hold the power button for ten seconds to reset the device.", "Shake it."),
    ("What is docmill for?", "docmill turns documents into datasets for fine-tuning.", "Cooking pasta."),
    ("Who answers support calls?", "The support team answers calls on weekdays.", "Nobody ever."),
]


def write_docmill_dataset(root: Path, *, dataset: str = "acme", system: str | None = None) -> Path:
    """8 train, 2 val, 2 test records from separate 'documents', as ``docmill generate`` lays them out."""
    examples = []
    provenance = []
    for i in range(12):
        question, answer, wrong = FACTS[i % len(FACTS)]
        split = "train" if i < 8 else ("val" if i < 10 else "test")
        rid = f"rec-{i:02d}"
        examples.append(
            SplitExample(Example(id=rid, instruction=question, input="", chosen=answer, rejected=wrong, system=system), split, True)
        )
        provenance.append({"id": rid, "split": split, "context": [{"chunk_id": f"c{i}", "text": answer + " See the manual."}]})
    out = open_store(str(root))
    write_datasets(out, dataset, list(ALL_FORMATS), examples, with_system=bool(system))
    out.write_jsonl("provenance.jsonl", provenance)
    return root
