"""Benchmark: docmill's own overhead per chat, and 50 concurrent chats for a minute.

Everything runs on 127.0.0.1: an OpenAI-compatible LLM test server (tests/support/
openai_server.py, in its own process) answers after a fixed latency; ``docmill serve`` runs as a
process of its own, exactly as users start it (``--llm openai:URL``), on the embedded store
and the real MiniLM embedder, with a few documents uploaded through the API and indexed.

Passes, in one run:
  1. baseline: the LLM round trip alone, called from this process with the same client;
  2. sequential chats: per chat, docmill's overhead = end-to-end latency - the baseline's
     median LLM round trip; also docmill's own view from the Server-Timing header
     (total - llm: retrieval (embed + k-NN), prompt, conversation bookkeeping);
     target: overhead p95 < 50 ms;
  3. load: N client threads each chatting in a loop for D seconds (bounded by the deadline);
     target: zero errors.

Run:  PYTHONPATH=layers:. python bench/chat.py [--latency-ms 200] [--chats 100]
      [--concurrency 50] [--duration 60] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "layers"), str(REPO)]

import httpx  # noqa: E402

QUESTIONS = [
    "What does docmill turn documents into?",
    "Which dataset formats can be generated?",
    "How are train, validation and test splits made?",
    "What happens to a file that fails to parse?",
    "How is the vector index searched?",
    "Who operates the pipeline and how is it monitored?",
]
LLM_SERVER = """
import sys, time
sys.path[:0] = [{layers!r}, {repo!r}]
from tests.support.openai_server import FakeOpenAIServer
with FakeOpenAIServer(latency_s={latency}, reply=lambda body: "Per the documents, this is covered [1].") as s:
    print(s.url, flush=True)
    sys.stdin.read()
"""


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def summary(values: list[float]) -> dict[str, float]:
    return {"p50": round(pct(values, 50), 1), "p95": round(pct(values, 95), 1), "p99": round(pct(values, 99), 1),
            "mean": round(statistics.fmean(values), 1), "n": len(values)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--latency-ms", type=float, default=200.0, help="the LLM test server's fixed latency")
    ap.add_argument("--chats", type=int, default=100, help="sequential chats for the overhead figures")
    ap.add_argument("--concurrency", type=int, default=50)
    ap.add_argument("--duration", type=float, default=60.0, help="seconds of concurrent load")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'layers'}{os.pathsep}{REPO}", "HF_HUB_OFFLINE": "1",
           # The LLM client must not be the bottleneck under test: room for every concurrent chat.
           "DOCMILL_LLM__CONCURRENCY": str(args.concurrency + 8), "DOCMILL_LLM__REQUESTS_PER_MINUTE": "1000000",
           "DOCMILL_LLM__TOKENS_PER_MINUTE": "1000000000"}
    home = Path(tempfile.mkdtemp(prefix="docmill-bench-chat-"))
    llm_proc = subprocess.Popen([sys.executable, "-c", LLM_SERVER.format(layers=str(REPO / "layers"), repo=str(REPO),
                                                                           latency=args.latency_ms / 1000)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    llm_url = llm_proc.stdout.readline().strip()
    created = json.loads(subprocess.run([sys.executable, "-m", "docmill", "tenants", "create", "bench", "--json",
                                         "--home", str(home)], env=env, capture_output=True, text=True,
                                        check=True).stdout)
    serve = subprocess.Popen([sys.executable, "-m", "docmill", "serve", "--port", "0", "--json", "--home", str(home),
                              "--llm", f"openai:{llm_url}", "--rate-limit", "0"], env=env, stdout=subprocess.PIPE,
                             text=True)
    result: dict[str, object] = {"cores": len(os.sched_getaffinity(0)), "llm_latency_ms": args.latency_ms,
                                 "load_average_at_start": os.getloadavg()[0]}
    try:
        url = json.loads(serve.stdout.readline())["url"]
        headers = {"Authorization": f"Bearer {created['api_key']}"}
        client = httpx.Client(base_url=url, headers=headers, timeout=120)
        ids = []
        for path in sorted((REPO / "layers" / "docmill" / "demo" / "samples").glob("*.md")):
            ids.append(client.post("/api/v1/documents", files={"file": (path.name, path.read_bytes())}).json()["id"])
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            states = [client.get(f"/api/v1/documents/{i}").json()["status"] for i in ids]
            if serve.poll() is not None:
                raise SystemExit(f"docmill serve exited with {serve.returncode}")
            if all(s in ("indexed", "failed") for s in states):
                break
            time.sleep(0.5)
        result["documents"] = dict(zip(ids, states, strict=False))
        for q in QUESTIONS[:3]:  # warm-up: model loads, first search, connection pools
            client.post("/api/v1/chat", json={"message": q}).raise_for_status()

        # 1. baseline: the LLM round trip alone, the same client docmill uses
        from docmill.config import LLMSettings
        from docmill.llm.base import ChatMessage, GenerationParams
        from docmill.llm.factory import make_llm

        llm = make_llm(f"openai:{llm_url}", LLMSettings(requests_per_minute=1_000_000, concurrency=4))
        base = []
        for i in range(min(args.chats, 50)):
            t = time.perf_counter()
            llm.chat([ChatMessage(role="user", content=QUESTIONS[i % len(QUESTIONS)])], GenerationParams(max_tokens=64))
            base.append((time.perf_counter() - t) * 1000)
        base_p50 = statistics.median(base)
        result["baseline_llm_ms"] = summary(base)

        # 2. sequential chats
        end_to_end, server_side, embed_ms, citations = [], [], [], 0
        for i in range(args.chats):
            t = time.perf_counter()
            r = client.post("/api/v1/chat", json={"message": QUESTIONS[i % len(QUESTIONS)]})
            end_to_end.append((time.perf_counter() - t) * 1000)
            r.raise_for_status()
            citations += bool(r.json()["citations"])
            timing = dict(part.strip().split(";dur=") for part in r.headers["server-timing"].split(","))
            server_side.append(float(timing["total"]) - float(timing.get("llm", 0.0)))
            embed_ms.append(float(timing["embed"]))
        result["sequential"] = {
            "end_to_end_ms": summary(end_to_end),
            "overhead_ms": summary([e - base_p50 for e in end_to_end]),
            "overhead_server_timing_ms": summary(server_side),
            # the query's embedding (MiniLM forward pass on the CPU), part of the overhead above
            "embed_ms": summary(embed_ms),
            "overhead_without_embedding_ms": summary([o - e for o, e in zip(server_side, embed_ms, strict=False)]),
            "answers_with_citations": citations,
        }

        # 3. concurrent load, bounded by the deadline
        stop_at = time.monotonic() + args.duration
        latencies: list[float] = []
        errors: list[str] = []
        lock = threading.Lock()

        def worker(n: int) -> None:
            with httpx.Client(base_url=url, headers=headers, timeout=60) as c:
                i = n
                while time.monotonic() < stop_at:
                    t = time.perf_counter()
                    try:
                        r = c.post("/api/v1/chat", json={"message": QUESTIONS[i % len(QUESTIONS)]})
                        ok, what = r.status_code == 200, f"HTTP {r.status_code}: {r.text[:120]}"
                    except httpx.HTTPError as exc:
                        ok, what = False, f"{type(exc).__name__}: {exc}"
                    with lock:
                        (latencies.append((time.perf_counter() - t) * 1000) if ok else errors.append(what))
                    i += 1

        started = time.monotonic()
        threads = [threading.Thread(target=worker, args=(n,)) for n in range(args.concurrency)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(timeout=args.duration + 120)
        elapsed = time.monotonic() - started
        result["concurrent"] = {
            "clients": args.concurrency, "seconds": round(elapsed, 1), "chats": len(latencies), "errors": len(errors),
            "error_samples": errors[:5], "chats_per_second": round(len(latencies) / elapsed, 1),
            "latency_ms": summary(latencies) if latencies else None,
        }
        result["target_overhead_p95_lt_50ms"] = result["sequential"]["overhead_ms"]["p95"] < 50  # type: ignore[index]
        result["target_zero_errors"] = not errors
    finally:
        serve.terminate()
        serve.wait(timeout=30)
        llm_proc.stdin.close()  # type: ignore[union-attr]
        llm_proc.wait(timeout=30)
    if args.json:
        print(json.dumps(result))
    else:
        print(json.dumps(result, indent=2))
    return 0 if result.get("target_zero_errors") else 1


if __name__ == "__main__":
    raise SystemExit(main())
