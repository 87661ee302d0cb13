"""Given a WorkerPool with per-task limits, When one task runs past its time or memory limit,
Then only that task fails with the reason, its worker (and the worker's children) is killed and
replaced, and the other tasks complete."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from docmill.errors import EmptyDocument, FileLimitExceeded
from docmill.ingest.workers import WorkerPool

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads memory from /proc")


def hog(mb: int) -> int:
    """Touch ``mb`` MB, 20 MB at a time, then hold it."""
    held = []
    for _ in range(mb // 20):
        held.append(bytearray(20 * 1024 * 1024))
        time.sleep(0.02)
    time.sleep(30)
    return len(held)


def sleeper_with_child(seconds: float) -> int:
    """Sleep in a child process, as a worker running tesseract would."""
    child = subprocess.Popen(["sleep", str(seconds)])
    child.wait()
    return child.pid


def answer(value: int) -> tuple[int, int]:
    return value, os.getpid()


def refuse() -> None:
    raise EmptyDocument("nothing in it")


def test_the_task_past_its_limits_fails_alone_and_the_pool_goes_on():
    # Given one worker, so every later task depends on the replacement
    with WorkerPool(1, timeout_s=3, memory_mb=150) as pool:
        first_pid = pool.submit(answer, 1).result(timeout=60)[1]
        # When a task grows past 150 MB, another outlives 3 s (in a child), another refuses its file
        started = time.monotonic()
        hogged = pool.submit(hog, 1000)
        slept = pool.submit(sleeper_with_child, 120)
        refused = pool.submit(refuse)
        after = pool.submit(answer, 2)
        # Then each fails alone, with its reason
        with pytest.raises(FileLimitExceeded, match=r"per-file memory limit \(150 MB\)"):
            hogged.result(timeout=60)
        with pytest.raises(FileLimitExceeded, match=r"per-file time limit \(3 s\)"):
            slept.result(timeout=60)
        with pytest.raises(EmptyDocument, match="nothing in it"):
            refused.result(timeout=60)
        # And the next task runs in a fresh worker
        value, pid = after.result(timeout=60)
        assert value == 2 and pid != first_pid
        assert time.monotonic() - started < 50  # not the 30 s hold plus the 120 s sleep
        # And the killed workers are gone: the first one, and the sleeper's child
        with pytest.raises(ProcessLookupError):
            os.kill(first_pid, 0)
        out = subprocess.run(["pgrep", "-f", "^sleep 120$"], capture_output=True, text=True).stdout.split()
        assert not [p for p in out if int(p) != os.getpid()]


def test_tasks_not_started_at_shutdown_are_cancelled_and_no_worker_survives():
    # Given a busy pool with a queue
    pool = WorkerPool(1)
    running = pool.submit(sleeper_with_child, 60)
    queued = pool.submit(answer, 3)
    time.sleep(0.5)
    pids = pool.pids
    # When it is shut down
    pool.shutdown()
    # Then what had not started is cancelled and every worker is gone
    assert queued.cancelled()
    assert running.done()
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
