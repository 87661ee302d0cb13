"""One writer per home: ``docmill ingest`` holds an exclusive lock on ``<home>/.lock``.

Two runs writing the same home at once would race on the same state files and index rows; the
second run stops at once with a clear message instead. ``flock`` locks belong to the open file,
so the kernel drops the lock when its holder dies, even on ``kill -9``: a stale lock file never
blocks the next run.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

from docmill.errors import DocmillError

LOCK_NAME = ".lock"


class HomeLocked(DocmillError):
    """Another docmill process holds the home's lock."""

    code = "HomeLocked"


@contextlib.contextmanager
def home_lock(home: str | os.PathLike[str], *, command: str = "docmill") -> Iterator[Path]:
    """Hold ``<home>/.lock`` for the ``with`` block; raise ``HomeLocked`` if another run has it."""
    root = Path(home).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    path = root / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            raise HomeLocked(
                f"another run holds HOME {root.resolve()} ({holder}); wait for it to finish, or use "
                "another --home"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "command": command, "since": time.time()}).encode(), 0)
        yield path
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
        since = time.strftime("%H:%M:%S", time.localtime(float(info["since"])))
        return f"{info.get('command', 'docmill')}, pid {int(info['pid'])}, since {since}"
    except (ValueError, KeyError, TypeError, OSError):
        return "holder unknown"
