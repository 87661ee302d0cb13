"""Benchmark: LLM client throughput at the configured concurrency vs a sequential baseline,
and the requests/minute limiter holding under pressure.

An OpenAI-compatible test server on 127.0.0.1 (tests/support/openai_server.py) answers every
call after a fixed latency and records arrival times. One *record* is the chain docmill's
generation runs per question: question -> grounded answer -> judge, three dependent calls.
Clients are built by the real factory (``make_llm("openai:URL", LLMSettings(...))``), so the
limiter, semaphore and retry helper under test are the production ones.

Passes, in one run:
  1. baseline: concurrency 1 (records one after another);
  2. concurrent: the configured concurrency, requests/minute high enough not to bind;
     target: speed-up >= 0.8 x concurrency;
  3. rate-limited: a tight requests/minute limit with the same concurrency, run for longer
     than a minute (or a scaled window with --quick); target: no sliding window above the
     limit.

  4. local model (with --local): the embedded SmolLM2-135M-Instruct, the same greedy requests
     sent from --local-requests threads at once through the pre-batching single-stream path
     (``LocalLLM(batching=False)``: one ``generate`` at a time under a lock) and through the
     continuous batcher (``LocalLLM()``), in the same process; target: output tokens/s of the
     batcher >= 5x the single-stream path's. Both passes decode without repetition control
     (the single-stream path has none), so their greedy outputs must agree: the pass also
     counts identical replies.

Run:  PYTHONPATH=layers:. python bench/generate.py [--records 16] [--concurrency 8]
      [--latency-ms 300] [--tight-rpm 120] [--quick] [--json]
      [--local | --local-only] [--local-requests 16] [--local-max-tokens 48] [--local-rounds 1]
      [--local-threads N]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1] / "layers"), str(Path(__file__).resolve().parents[1])]

from docmill.config import LLMSettings  # noqa: E402
from docmill.llm.base import ChatMessage, GenerationParams, LLMClient  # noqa: E402
from docmill.llm.factory import make_llm  # noqa: E402
from tests.support.openai_server import FakeOpenAIServer  # noqa: E402

PARAMS = GenerationParams(temperature=0.0, max_tokens=64)
CHUNK = ("Refunds are issued within 30 days of purchase when the item is returned unused, "
         "with the original receipt, to any store or by post.")


def one_record(llm: LLMClient, index: int) -> None:
    """question -> answer -> judge, each call depending on the previous one's output."""
    question = llm.chat([ChatMessage(role="system", content="Write one question about the text."),
                         ChatMessage(role="user", content=f"[{index}] {CHUNK}")], PARAMS).text
    answer = llm.chat([ChatMessage(role="system", content="Answer from the context only."),
                       ChatMessage(role="user", content=f"Context: {CHUNK}\nQuestion: {question}")], PARAMS).text
    llm.chat([ChatMessage(role="system", content='Score as JSON {"relevance":1-5,...}.'),
              ChatMessage(role="user", content=f"Q: {question}\nA: {answer}")], PARAMS)


def run_pass(url: str, *, records: int, concurrency: int, rpm: int, tpm: int) -> dict:
    settings = LLMSettings(requests_per_minute=rpm, tokens_per_minute=tpm, concurrency=concurrency,
                           max_retries=0, temperature=0.0, max_tokens=64, model="bench")
    llm = make_llm(f"openai:{url}", settings)
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(lambda i: one_record(llm, i), range(records)))
    elapsed = time.perf_counter() - started
    return {"records": records, "calls": llm.accounting.calls, "failures": llm.accounting.failures,
            "concurrency": concurrency, "rpm_limit": rpm, "seconds": elapsed,
            "records_per_s": records / elapsed,
            "tokens": llm.accounting.input_tokens + llm.accounting.output_tokens}


LOCAL_TOPICS = [
    "Refunds are issued within 30 days of purchase when the item is returned unused, with the original receipt.",
    "The backup job runs every night at 02:00 and keeps fourteen daily snapshots in a separate region.",
    "Copper is a soft, malleable metal with very high thermal and electrical conductivity.",
    "The committee meets on the first Monday of each month; minutes are published within a week.",
    "Photosynthesis converts light energy into chemical energy stored in glucose.",
    "Employees accrue two days of paid leave per month, up to a maximum of thirty days.",
    "The bridge was closed for repairs after inspectors found corrosion in two of its cables.",
    "A vector index stores embeddings so that similar passages can be found by nearest-neighbour search.",
]
LOCAL_TASKS = [
    ("Write one question a reader could ask about the text.", "Text: {topic}"),
    ("Answer the question from the context only, in two sentences.",
     "Context: {topic}\nQuestion: What does the text say, and why does it matter?"),
]


def local_requests(count: int) -> list[list[ChatMessage]]:
    requests = []
    for i in range(count):
        system, user = LOCAL_TASKS[i % len(LOCAL_TASKS)]
        topic = LOCAL_TOPICS[(i // len(LOCAL_TASKS)) % len(LOCAL_TOPICS)]
        requests.append([ChatMessage(role="system", content=system),
                         ChatMessage(role="user", content=user.format(topic=topic))])
    return requests


def run_local_pass(llm: LLMClient, requests: list[list[ChatMessage]], params: GenerationParams) -> dict:
    started, cpu_started = time.perf_counter(), time.process_time()
    with ThreadPoolExecutor(max_workers=len(requests)) as pool:
        replies = list(pool.map(lambda messages: llm.chat(messages, params), requests))
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    return {"output_tokens": sum(r.usage.output_tokens for r in replies), "seconds": elapsed, "cpu_seconds": cpu,
            "texts": [r.text for r in replies]}


def local_pass(args: argparse.Namespace) -> dict:
    """Old single-stream path vs the continuous batcher, same requests, same process.

    Each round runs both passes back to back (alternating which goes first), so a machine
    whose load drifts (shared CI, other jobs) hurts both alike. Process CPU seconds are kept
    next to wall seconds: tokens per CPU-second does not depend on what else the machine runs.
    """
    import torch

    from docmill.llm.local import LocalLLM
    from docmill.llm.ratelimit import CallGuard

    if args.local_threads:
        torch.set_num_threads(args.local_threads)
    requests = local_requests(args.local_requests)
    # No repetition control in either pass: the single-stream path has none, and equal
    # decoding makes equal greedy replies a check of the batcher.
    params = GenerationParams(temperature=0.0, max_tokens=args.local_max_tokens, repetition_penalty=1.0,
                              no_repeat_ngram_size=0)
    single = LocalLLM(batching=False, cache_dir=args.local_cache_dir,
                      guard=CallGuard(concurrency=args.local_requests))
    started = time.perf_counter()
    single.loaded()
    load_s = time.perf_counter() - started
    batched = LocalLLM(batching=True, max_batch=args.local_requests, cache_dir=args.local_cache_dir,
                       guard=CallGuard(concurrency=args.local_requests))
    # Warm-up outside the timed passes (first-call allocations, the batcher thread).
    batched.chat(requests[0], GenerationParams(temperature=0.0, max_tokens=2))
    totals = {name: {"requests": 0, "output_tokens": 0, "seconds": 0.0, "cpu_seconds": 0.0}
              for name in ("single_stream", "batched")}
    same = 0
    for round_index in range(args.local_rounds):
        order = [("single_stream", single), ("batched", batched)]
        if round_index % 2:
            order.reverse()
        texts = {}
        for name, llm in order:
            result = run_local_pass(llm, requests, params)
            texts[name] = result.pop("texts")
            totals[name]["requests"] += len(requests)
            for key, value in result.items():
                totals[name][key] += value
        same += sum(a == b for a, b in zip(texts["single_stream"], texts["batched"], strict=True))
    for result in totals.values():
        result["tokens_per_s"] = result["output_tokens"] / result["seconds"]
        result["tokens_per_cpu_s"] = result["output_tokens"] / result["cpu_seconds"]
    old, new = totals["single_stream"], totals["batched"]
    return {"threads": torch.get_num_threads(), "load_s": load_s, "max_tokens": args.local_max_tokens,
            "concurrent_requests": args.local_requests, "rounds": args.local_rounds,
            "single_stream": old, "batched": new, "identical_replies": same,
            "ratio": new["tokens_per_s"] / old["tokens_per_s"],
            "cpu_ratio": new["tokens_per_cpu_s"] / old["tokens_per_cpu_s"]}


def print_local(local: dict) -> None:
    print(f"local model (SmolLM2-135M-Instruct, torch threads {local['threads']}, load {local['load_s']:.1f} s): "
          f"{local['concurrent_requests']} concurrent greedy requests, max_tokens {local['max_tokens']}, "
          f"{local['rounds']} round(s)")
    for name in ("single_stream", "batched"):
        r = local[name]
        print(f"{name:>14}: {r['output_tokens']} output tokens in {r['seconds']:.1f} s = "
              f"{r['tokens_per_s']:.2f} tokens/s ({r['cpu_seconds']:.1f} CPU s = "
              f"{r['tokens_per_cpu_s']:.2f} tokens/CPU-s)")
    print(f"identical greedy replies: {local['identical_replies']}/{local['batched']['requests']}")
    print(f"local throughput ratio: {local['ratio']:.2f}x wall, {local['cpu_ratio']:.2f}x per CPU-second "
          f"(target >= 5.00 wall) {'PASS' if local['ratio'] >= 5 else 'FAIL'}")


def max_in_window(times: list[float], window: float) -> int:
    """Most arrivals in any half-open window [t, t + window)."""
    times = sorted(times)
    best = lo = 0
    for hi, t in enumerate(times):
        while times[lo] <= t - window:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def window_checks(arrivals: list[float], rpm: int, windows: list[float]) -> list[dict]:
    checks = []
    for window in windows:
        limit = rpm * window / 60.0
        seen = max_in_window(arrivals, window)
        checks.append({"window_s": window, "max_requests": seen, "limit": limit, "ok": seen <= limit + 1e-9})
    return checks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=16, help="records (3 calls each) per throughput pass")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--latency-ms", type=float, default=300.0)
    parser.add_argument("--rpm", type=int, default=60_000, help="requests/minute of the throughput passes")
    parser.add_argument("--tpm", type=int, default=10_000_000, help="tokens/minute of every pass")
    parser.add_argument("--tight-rpm", type=int, default=120, help="requests/minute of the rate-limited pass")
    parser.add_argument("--quick", action="store_true",
                        help="rate-limited pass of ~20 s checked on scaled windows instead of > 1 minute")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--local", action="store_true", help="add the local-model pass (loads SmolLM2)")
    parser.add_argument("--local-only", action="store_true", help="run only the local-model pass")
    parser.add_argument("--local-requests", type=int, default=16, help="concurrent requests of the local pass")
    parser.add_argument("--local-max-tokens", type=int, default=48)
    parser.add_argument("--local-rounds", type=int, default=1, help="rounds of both local passes")
    parser.add_argument("--local-threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--local-cache-dir", type=Path, default=Path(__file__).resolve().parent / "out" / "llm-cache",
                        help="converted model cache (the first run de-quantises the GGUF into it)")
    args = parser.parse_args(argv)
    if args.local_only:
        local = local_pass(args)
        ok = local["ratio"] >= 5.0
        if args.json:
            print(json.dumps({"local": local, "ok": ok}, indent=2))
        else:
            print_local(local)
            print("RESULT:", "PASS" if ok else "FAIL")
        return 0 if ok else 1
    if args.records < args.concurrency:
        parser.error("--records must be at least --concurrency (fewer records cannot fill the slots)")

    with FakeOpenAIServer(latency_s=args.latency_ms / 1000.0) as server:
        baseline = run_pass(server.url, records=args.records, concurrency=1, rpm=args.rpm, tpm=args.tpm)
        mark = len(server.arrivals)
        concurrent = run_pass(server.url, records=args.records, concurrency=args.concurrency, rpm=args.rpm,
                              tpm=args.tpm)
        concurrent_arrivals = server.arrivals[mark:]
        # Tight pass: long enough that a full sliding minute exists (or ~20 s with --quick).
        seconds = 20.0 if args.quick else 75.0
        tight_records = max(1, math.ceil(args.tight_rpm * seconds / 60.0 / 3))
        mark = len(server.arrivals)
        tight = run_pass(server.url, records=tight_records, concurrency=args.concurrency, rpm=args.tight_rpm,
                         tpm=args.tpm)
        tight_arrivals = server.arrivals[mark:]

    speedup = concurrent["records_per_s"] / baseline["records_per_s"]
    ratio = speedup / args.concurrency
    windows = [5.0, 10.0, 30.0] + ([] if args.quick else [60.0])
    tight_checks = window_checks(tight_arrivals, args.tight_rpm, windows)
    concurrent_checks = window_checks(concurrent_arrivals, args.rpm, [1.0])
    span = tight_arrivals[-1] - tight_arrivals[0] if len(tight_arrivals) > 1 else 0.0
    tight["observed_rpm"] = (len(tight_arrivals) - 1) / span * 60.0 if span else 0.0
    ok = ratio >= 0.8 and all(c["ok"] for c in tight_checks + concurrent_checks) and not (
        baseline["failures"] or concurrent["failures"] or tight["failures"])
    local = local_pass(args) if args.local else None
    if local is not None:
        ok = ok and local["ratio"] >= 5.0

    if args.json:
        print(json.dumps({"baseline": baseline, "concurrent": concurrent, "speedup": speedup,
                          "ratio_to_concurrency": ratio, "rate_limited": tight, "rate_limited_windows": tight_checks,
                          "concurrent_windows": concurrent_checks, "local": local, "ok": ok}, indent=2))
        return 0 if ok else 1

    print(f"server latency {args.latency_ms:.0f} ms; 1 record = question -> answer -> judge (3 calls)")
    for name, result in (("baseline", baseline), ("concurrent", concurrent)):
        print(f"{name:>10}: concurrency {result['concurrency']}, {result['records']} records / {result['calls']} calls"
              f" in {result['seconds']:.2f} s = {result['records_per_s']:.2f} records/s")
    print(f"speed-up: {speedup:.2f}x at concurrency {args.concurrency}; "
          f"ratio to concurrency: {ratio:.2f} (target >= 0.80) {'PASS' if ratio >= 0.8 else 'FAIL'}")
    c = concurrent_checks[0]
    print(f"concurrent pass: max {c['max_requests']} requests in any 1 s window "
          f"(limit {args.rpm} req/min = {c['limit']:.0f}/s) {'PASS' if c['ok'] else 'FAIL'}")
    print(f"rate-limited pass: limit {args.tight_rpm} req/min, concurrency {args.concurrency}: "
          f"{tight['calls']} calls in {tight['seconds']:.1f} s, observed {tight['observed_rpm']:.1f} req/min "
          f"(ratio to limit {tight['observed_rpm'] / args.tight_rpm:.3f})")
    for check in tight_checks:
        print(f"  max requests in any {check['window_s']:.0f} s window: {check['max_requests']} "
              f"(limit {check['limit']:.1f}; ratio {check['max_requests'] / check['limit']:.3f}) "
              f"{'PASS' if check['ok'] else 'FAIL'}")
    if local is not None:
        print_local(local)
    print("RESULT:", "PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
