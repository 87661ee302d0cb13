"""Test-only pause points for the entry-point crash tests, patched into a child process.

A crash test must kill an entry point at a known step of one object's ingest, not after a
guessed number of seconds (on a loaded machine a guess lands anywhere). ``install(phase,
marker)`` wraps the library function that starts that step: the first time it is reached, the
process writes ``marker`` and waits there for the test's SIGKILL. The library itself is not
touched; the test puts a ``sitecustomize`` on the child's ``PYTHONPATH`` that calls
``install_from_env()``, so the ECS task runs as its own unmodified ``python -m`` command.

Phases, in the order one ingest reaches them (every later one after the earlier ones' effects):

    partition    before the document is partitioned (downloaded, nothing else done)
    embed        before the chunks are embedded (partitioned and chunked in memory)
    write        before chunks.jsonl is written (elements.json already written)
    index        before the chunks are upserted (both outputs written)
    index-stale  before the previous version's chunks are deleted (new chunks upserted)
    commit       before source.json, the commit marker, is written (index complete)
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

PHASES = ("partition", "embed", "write", "index", "index-stale", "commit")
PHASE_VARIABLE = "CRASHTEST_PAUSE_AT"  # not DOCMILL_: the ECS task's environment contract refuses those
MARKER_VARIABLE = "CRASHTEST_MARKER"


def install_from_env() -> None:
    phase = os.environ.get(PHASE_VARIABLE)
    if phase:
        install(phase, Path(os.environ[MARKER_VARIABLE]))


def install(phase: str, marker: Path) -> None:
    if phase not in PHASES:
        raise ValueError(f"unknown phase {phase!r}: one of {', '.join(PHASES)}")
    import docmill.ingest.pipeline as pipeline
    from docmill.runtime.context import Runtime
    from docmill.storage import S3Store
    from docmill.vectorstores.lancedb_store import LanceDBStore

    reached = False

    def pause() -> None:
        nonlocal reached
        if reached:
            return
        reached = True
        marker.write_text(f"{phase} {os.getpid()}\n")
        while True:  # until the test's SIGKILL
            time.sleep(60)

    def before(fn: Callable[..., Any], when: Callable[..., bool] = lambda *a, **k: True) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if when(*args, **kwargs):
                pause()
            return fn(*args, **kwargs)

        return wrapper

    def key_ends(suffix: str) -> Callable[..., bool]:
        return lambda _store, key, *a, **k: str(key).endswith(suffix)

    if phase == "partition":
        pipeline.process_file = before(pipeline.process_file)  # type: ignore[attr-defined]
    elif phase == "embed":
        build = Runtime.embedder

        def embedder(self: Runtime) -> Any:
            model = build(self)
            if not getattr(model, "_crashtest_wrapped", False):
                model.embed_documents = before(model.embed_documents)
                model._crashtest_wrapped = True
            return model

        Runtime.embedder = embedder  # type: ignore[method-assign]
    elif phase == "write":
        S3Store.write_bytes = before(S3Store.write_bytes, key_ends("/chunks.jsonl"))  # type: ignore[method-assign]
    elif phase == "index":
        LanceDBStore.upsert = before(LanceDBStore.upsert)  # type: ignore[method-assign]
    elif phase == "index-stale":
        LanceDBStore.delete_source_except = before(LanceDBStore.delete_source_except)  # type: ignore[method-assign]
    elif phase == "commit":
        S3Store.write_bytes = before(S3Store.write_bytes, key_ends("/source.json"))  # type: ignore[method-assign]
