"""Given the corpus PDFs (and the first pages of the large one), When they are partitioned with
the page-batched spaCy classification and without it, Then every element is the same: the same
type, text and page, in the same order.

Each side runs in a fresh interpreter of the installed package: the batching patches
Unstructured for the life of a process, and the unpatched side must not inherit it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


from tests.conftest import CORPUS

PARTITION = r"""
import json, sys
from docmill.documents.unstructured_setup import configure_unstructured
configure_unstructured(batch_nlp=sys.argv[1] == "batched")
import unstructured.partition.pdf as pdf
from unstructured.partition.pdf import partition_pdf
if sys.argv[1] == "batched":  # installing twice must not wrap twice (every page batched twice)
    from docmill.documents import nlp_batch
    first = pdf.open_pdfminer_pages_generator
    nlp_batch.install()
    assert pdf.open_pdfminer_pages_generator is first
out = {}
for path in sys.argv[2:]:
    out[path] = [[type(e).__name__, e.text, e.metadata.page_number] for e in partition_pdf(path, strategy="fast", languages=["eng"])]
print(json.dumps(out))
"""


def _partition(files: list[str], mode: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", PARTITION, mode, *files], capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_given_the_corpus_pdfs_when_pages_are_classified_in_batches_then_the_elements_are_the_same(
    corpus_docs, tmp_path
):
    # Given every PDF of the corpus, and 12 pages of the large one (titles, lists, tables)
    import pikepdf

    files = sorted(str(p) for p in corpus_docs.glob("*.pdf"))
    large = CORPUS / "large" / "DA-619p.pdf"
    if large.exists():
        with pikepdf.open(large) as src, pikepdf.new() as dst:
            dst.pages.extend(src.pages[100:112])
            dst.save(tmp_path / "da-12p.pdf")
        files.append(str(tmp_path / "da-12p.pdf"))
    # When both sides partition them
    single, batched = _partition(files, "single"), _partition(files, "batched")
    # Then every file yields the same elements, and the comparison was not vacuous
    assert sum(len(v) for v in single.values()) > 300
    for path in files:
        assert batched[path] == single[path], Path(path).name

