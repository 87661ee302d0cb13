"""Benchmark: dataset quality with the embedded model on documents docmill has never seen.

Ingests a few documents of the shared corpus (none of the bundled demo samples) into a fresh
home, runs ``docmill generate`` with the embedded SmolLM2 model as a user would (a subprocess
of the real CLI), and reads the figures back from what it wrote (quality.json,
provenance.jsonl, run_report.json). Issue #10's targets for 12 questions:

  >= 6 records kept, >= 3 preference pairs, mean content-word share of chosen answers in their
  source chunk >= 0.6, no looping answer, chosen better supported than rejected, generation
  under 10 minutes on 2 cores.

With ``--baseline`` the same plan is also run the pre-#10 way (``--judge llm --answer-mode
generative``) in the same process run, for comparison.

Run:  PYTHONPATH=layers:. python bench/quality.py [--docs a.txt,b.pdf] [--max-chunks 4] [-q 3]
      [--baseline] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPUS = Path("/work/shared/corpus/docs")
DEFAULT_DOCS = (
    "norwich-city.txt", "book-war-and-peace-1p.txt", "example-10k-1p.html", "handbook-1p.docx",
    "README.rst", "ideas-page.html",
)
TARGETS = {"records": 6, "pairs": 3, "source_share": 0.6, "degenerate": 0, "minutes": 10.0}


def docmill(*args: str, home: Path, timeout: int = 3600) -> tuple[subprocess.CompletedProcess[str], float]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "layers"), "DOCMILL_HOME": str(home)}
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "docmill", *args], cwd=home.parent, env=env, capture_output=True,
                          text=True, timeout=timeout, check=False)
    return proc, time.perf_counter() - started


def run_pass(name: str, home: Path, extra: list[str], max_chunks: int, q: int) -> dict:
    out = home.parent / f"out-{name}"
    proc, seconds = docmill("generate", "-c", "unseen", "-d", f"unseen-{name}", "--llm", "local", "--max-chunks",
                            str(max_chunks), "-q", str(q), "--out", str(out), "--json", *extra, home=home)
    if proc.returncode not in (0, 1):
        raise SystemExit(f"generate ({name}) failed: {proc.stderr[-2000:]}")
    quality = json.loads((out / "quality.json").read_text())
    rows = [json.loads(x) for x in (out / "provenance.jsonl").read_text().splitlines() if x.strip()]
    report = json.loads((out / "run_report.json").read_text())
    pairs = [r for r in rows if r.get("pair")]
    return {
        "pass": name,
        "questions": report["totals"]["questions"],
        "records": quality["records"],
        "pairs": quality["pairs"],
        "source_share": quality["source_share"],
        "support_chosen": quality["support"]["mean"],
        "support_rejected": quality["support_rejected"]["mean"],
        "pair_support_gap": quality["pair_support_gap"],
        "chosen_better_in_every_pair": all(r["quality"]["support_gap"] > 0 for r in pairs),
        "degenerate": quality["degenerate"],
        "hit_at_k": quality["hit_at_k"],
        "mrr": quality["mrr"],
        "question_sources": quality["question_sources"],
        "generate_seconds": round(seconds, 1),
        "generation_seconds": report.get("generation_seconds"),
        "output_tokens": (report.get("llm_client") or {}).get("output_tokens"),
        "drops": report["drops"],
        "exit_code": proc.returncode,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", default=",".join(DEFAULT_DOCS))
    ap.add_argument("--max-chunks", type=int, default=4)
    ap.add_argument("-q", "--questions-per-chunk", type=int, default=3)
    ap.add_argument("--baseline", action="store_true", help="also run --judge llm --answer-mode generative")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    docs = [CORPUS / d for d in args.docs.split(",") if d]
    missing = [str(d) for d in docs if not d.is_file()]
    if missing:
        raise SystemExit(f"missing documents: {missing}")
    with tempfile.TemporaryDirectory(prefix="docmill-bench-quality-") as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        proc, ingest_s = docmill("ingest", *map(str, docs), "-c", "unseen", "--json", home=home)
        if proc.returncode != 0:
            raise SystemExit(f"ingest failed: {proc.stderr[-2000:]}")
        passes = [run_pass("quality", home, [], args.max_chunks, args.questions_per_chunk)]
        if args.baseline:
            passes.append(run_pass("baseline", home, ["--judge", "llm", "--answer-mode", "generative"],
                                   args.max_chunks, args.questions_per_chunk))
    main_pass = passes[0]
    checks = {
        "records>=6": main_pass["records"] >= TARGETS["records"],
        "pairs>=3": main_pass["pairs"] >= TARGETS["pairs"],
        "source_share>=0.6": (main_pass["source_share"] or 0) >= TARGETS["source_share"],
        "no_looping": main_pass["degenerate"] == 0,
        "chosen_better_supported": main_pass["chosen_better_in_every_pair"]
        and (main_pass["support_chosen"] or 0) > (main_pass["support_rejected"] or 0),
        "under_10_min": (main_pass["generation_seconds"] or main_pass["generate_seconds"]) < TARGETS["minutes"] * 60,
    }
    result = {"docs": [d.name for d in docs], "ingest_seconds": round(ingest_s, 1), "passes": passes, "checks": checks,
              "cpus": os.cpu_count(), "load_avg": os.getloadavg()}
    if args.json:
        print(json.dumps(result, indent=2))
        return
    for p in passes:
        print(f"[{p['pass']}] {p['questions']} questions -> {p['records']} kept, {p['pairs']} pairs; "
              f"source share {p['source_share']}, support chosen {p['support_chosen']} vs rejected "
              f"{p['support_rejected']}, degenerate {p['degenerate']}, hit@k {p['hit_at_k']}, MRR {p['mrr']}, "
              f"{p['generation_seconds']} s generation, questions {p['question_sources']}")
    print("checks:", ", ".join(f"{k} {'ok' if v else 'FAIL'}" for k, v in checks.items()))
    print(f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs: timings on a shared machine run long)")


if __name__ == "__main__":
    main()
