"""Worker processes that never outlive the process that started them.

A ``kill -9`` of ``docmill ingest`` cannot run any clean-up, and a worker busy with a large
document would keep running (and holding its memory) until the document is done. On Linux the
kernel sends the worker SIGKILL when its parent dies (``PR_SET_PDEATHSIG``); the parent id is
checked again afterwards because the parent may already have died while the worker started.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int) -> None:
    """Process-pool initializer: ``ProcessPoolExecutor(initializer=die_with_parent,
    initargs=(os.getpid(),))``. A no-op where the kernel offers no parent-death signal."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent_pid:
        os._exit(1)  # the parent is already gone
