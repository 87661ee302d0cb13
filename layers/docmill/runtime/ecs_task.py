"""ECS Fargate entry point: process one object version, then exit.

    python -m docmill.runtime.ecs_task [--bucket B --key K [--version-id V]]

Without arguments the object comes from ``DOCMILL_OBJECT_BUCKET``, ``DOCMILL_OBJECT_KEY`` and
``DOCMILL_OBJECT_VERSION_ID`` (what the route step's ``run_task`` container overrides and the
large-file state machine set). Exit code 0: processed, skipped or permanently failed (the
failure is recorded); 1: a retryable failure (the caller may run the task again); 2: bad usage.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Mapping, Sequence

from docmill.errors import TransientError


def parse_request(argv: Sequence[str], environ: Mapping[str, str]):  # noqa: ANN201
    from docmill.runtime.process import ProcessRequest

    parser = argparse.ArgumentParser(prog="python -m docmill.runtime.ecs_task", description=__doc__.split("\n\n")[0])
    parser.add_argument("--bucket", default=environ.get("DOCMILL_OBJECT_BUCKET"))
    parser.add_argument("--key", default=environ.get("DOCMILL_OBJECT_KEY"))
    parser.add_argument("--version-id", default=environ.get("DOCMILL_OBJECT_VERSION_ID") or None)
    args = parser.parse_args(list(argv))
    if not args.bucket or not args.key:
        parser.error("the object is missing: pass --bucket/--key or set DOCMILL_OBJECT_BUCKET/DOCMILL_OBJECT_KEY")
    return ProcessRequest(bucket=args.bucket, key=args.key, version_id=args.version_id or None, event_name="ecs-task")


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    from docmill.runtime import context
    from docmill.runtime.environment import ProcessEnvironment
    from docmill.runtime.process import process_object

    environ = os.environ if environ is None else environ
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        request = parse_request(sys.argv[1:] if argv is None else argv, environ)
    except SystemExit as exc:
        return int(exc.code or 2)
    runtime = context.current(ProcessEnvironment, environ)
    try:
        outcome = process_object(runtime, request)
    except TransientError as exc:
        print(json.dumps({"status": "failed", "retryable": True, "error": exc.code, "reason": exc.message}))
        return 1
    print(outcome.model_dump_json())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
