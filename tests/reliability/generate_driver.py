"""``docmill generate`` in a process of its own, with the CLI's seams (vector store, LLM,
embedder) replaced by the deterministic test doubles, so a test can kill it with SIGKILL.

    python -m tests.reliability.generate_driver CALLS_LOG MODE -- GENERATE-ARGS...

MODE: ``ok`` (FakeModel, 20 ms a call, so a run lasts seconds) or ``fail`` (every call raises
``LLMUnavailable``). Each LLM call appends one line to CALLS_LOG, so the test counts the calls
a run made. The collection is rebuilt identically every time (4 sources x 20 chunks: 4 batches
of the planner's 25 chunks), as an index would be between two runs.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

from docmill_devtools.scripted import ScriptedLLM
from tests.support.generation_doubles import FakeModel, HashingEmbedder, MemoryVectorStore, make_chunks

SOURCES, PER_SOURCE = 4, 20


def main(argv: list[str]) -> None:
    calls_log, mode = argv[0], argv[1]
    args = argv[argv.index("--") + 1 :]

    import docmill.cli.generate as generate
    from docmill.cli.app import app
    from docmill.errors import LLMUnavailable

    embedder = HashingEmbedder()
    store = MemoryVectorStore()
    store.upsert(make_chunks(SOURCES, PER_SOURCE, embedder=embedder))
    fake = FakeModel()
    lock = threading.Lock()
    log = open(calls_log, "a", buffering=1)  # noqa: SIM115 - open for the life of the process

    def reply(messages: Any) -> str:
        with lock:
            log.write("call\n")
        if mode == "fail":
            raise LLMUnavailable("scripted outage: the endpoint answers 503")
        return fake(messages)

    generate._open_vector_store = lambda settings: store  # type: ignore[attr-defined]
    generate._make_llm = lambda spec, settings: ScriptedLLM(reply, latency_s=0.02 if mode == "ok" else 0.0)
    generate._embedder = lambda settings: embedder  # type: ignore[attr-defined]
    app(["generate", *args], prog_name="docmill")


if __name__ == "__main__":
    main(sys.argv[1:])
