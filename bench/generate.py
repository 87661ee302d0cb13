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

Run:  PYTHONPATH=layers:. python bench/generate.py [--records 16] [--concurrency 8]
      [--latency-ms 300] [--tight-rpm 120] [--quick] [--json]
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
    args = parser.parse_args(argv)
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

    if args.json:
        print(json.dumps({"baseline": baseline, "concurrent": concurrent, "speedup": speedup,
                          "ratio_to_concurrency": ratio, "rate_limited": tight, "rate_limited_windows": tight_checks,
                          "concurrent_windows": concurrent_checks, "ok": ok}, indent=2))
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
    print("RESULT:", "PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
