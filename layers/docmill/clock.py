"""The one clock of the library: UTC wall time for records, reports and metadata."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    return datetime.now(UTC)


def utc_iso(*, zulu: bool = False) -> str:
    """Now to the second: ``2026-01-02T03:04:05+00:00``, or ``...05Z`` with ``zulu``."""
    now = utc_now()
    return now.strftime("%Y-%m-%dT%H:%M:%SZ") if zulu else now.isoformat(timespec="seconds")
