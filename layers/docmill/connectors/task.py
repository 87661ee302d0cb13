"""ECS task entry point for one scheduled sync: ``python -m docmill.connectors.task --config s3://...``.

EventBridge Scheduler starts this container with ``--config`` (the sync config in the
config bucket) and ``--source`` (the one source this schedule is for). It is the edge:
it reads the environment for credentials, logs the summary as one JSON line (CloudWatch Logs
picks it up), and exits non-zero when the source failed so the task shows as failed.
Options may also come from ``DOCMILL_SYNC_CONFIG`` / ``DOCMILL_SYNC_SOURCE``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

from docmill.connectors.config import load_sync_config
from docmill.connectors.sync import run_sync
from docmill.errors import DocmillError


def main(argv: Sequence[str] | None = None, *, environ: dict[str, str] | None = None) -> int:
    env = dict(os.environ if environ is None else environ)
    parser = argparse.ArgumentParser(prog="python -m docmill.connectors.task", description=__doc__)
    parser.add_argument("--config", default=env.get("DOCMILL_SYNC_CONFIG"), help="s3://bucket/key or path")
    parser.add_argument("--source", action="append", default=None, help="source name (repeatable)")
    args = parser.parse_args(argv)
    if not args.config:
        parser.error("--config (or DOCMILL_SYNC_CONFIG) is required")
    sources = args.source or ([env["DOCMILL_SYNC_SOURCE"]] if env.get("DOCMILL_SYNC_SOURCE") else None)
    try:
        config = load_sync_config(args.config)
        report = run_sync(config, environ=env, only=sources)
    except DocmillError as exc:
        print(json.dumps({"level": "ERROR", "message": "sync failed", "code": exc.code, "error": exc.message}))
        return 2
    summary = report.summary()
    documents = summary.pop("documents")  # one line per document would flood the log
    summary["failures"] = [d for d in documents if d["status"] == "failed"][:100]
    print(json.dumps({"level": "INFO" if report.ok else "ERROR", "message": "sync finished", **summary}))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
