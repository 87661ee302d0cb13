"""Given the ingest workers' preload (what their fork server imports), When a worker partitions
documents, Then torch is never imported (spaCy's thinc would pull it in: ~400 MB and ~2 s per
worker) and the elements are exactly those of a process where torch is loaded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FILES = ("multi-column.pdf", "layout-parser-paper-fast.pdf", "fake.docx", "example-10k-1p.html", "fake-text.txt")

CODE = """
import json, sys
if sys.argv[1] == "torch-first":
    import torch  # noqa: F401 - a process that already holds torch, as the PyTorch embedder's would
import docmill.ingest.worker_preload  # noqa: F401
from unstructured.partition.auto import partition
out = {}
for path in sys.argv[2:]:
    out[path] = [e.to_dict() for e in partition(filename=path, strategy="fast", languages=["eng"])]
print(json.dumps({"torch": "torch" in sys.modules, "elements": out}))
"""


def _partition(mode: str, files: list[str]) -> dict:
    env = dict(os.environ, PYTHONPATH=f"{REPO / 'layers'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    out = subprocess.run(
        [sys.executable, "-c", CODE, mode, *files], capture_output=True, text=True, env=env, timeout=600, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_workers_partition_without_torch_and_get_the_same_elements(corpus_docs):
    files = [str(corpus_docs / name) for name in FILES if (corpus_docs / name).exists()]
    if len(files) < 2:
        pytest.skip("corpus files not found")

    # When a worker-like process partitions them, and one that loaded torch first does the same
    lean = _partition("lean", files)
    with_torch = _partition("torch-first", files)

    # Then the lean one never imported torch, and both have the same elements
    assert lean["torch"] is False and with_torch["torch"] is True
    for path in files:
        assert lean["elements"][path], path
        assert lean["elements"][path] == with_torch["elements"][path], path
