"""Ids of API records: time-ordered (list order = creation order in every store) and random.

``<prefix>_<12 hex: milliseconds, strictly increasing within a process><10 hex: random>``:
two records made in the same millisecond (a question and its answer) still sort in order.
"""

from __future__ import annotations

import re
import secrets
import threading
import time

_ID = re.compile(r"^[a-z]{1,4}_[0-9a-f]{12}[0-9a-f]{10}$")
_lock = threading.Lock()
_last = 0


def new_id(prefix: str) -> str:
    global _last
    with _lock:
        _last = max(_last + 1, time.time_ns() // 1_000_000)
        stamp = _last
    return f"{prefix}_{stamp:012x}{secrets.token_hex(5)}"


def is_id(value: str, prefix: str | None = None) -> bool:
    return bool(_ID.match(value)) and (prefix is None or value.startswith(prefix + "_"))
