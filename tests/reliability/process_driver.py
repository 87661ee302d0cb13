"""The process_document Lambda's library call in a process of its own, so a test can kill it.

    python -m tests.reliability.process_driver EVENT-JSON

Does what ``functions/process_document/handler.py`` does without Powertools' decorators: the
runtime from the process environment validated against ``ProcessEnvironment``, the event parsed
as a ``ProcessRequest``, one ``process_object`` call; prints the outcome as JSON. Exit code 1
when the library raises ``TransientError`` (Lambda would retry the invocation).
"""

from __future__ import annotations

import os
import sys

from docmill.errors import TransientError
from docmill.runtime import context
from docmill.runtime.environment import ProcessEnvironment
from docmill.runtime.process import ProcessRequest, process_object


def main(argv: list[str]) -> int:
    request = ProcessRequest.model_validate_json(argv[0])
    try:
        outcome = process_object(context.current(ProcessEnvironment, os.environ), request)
    except TransientError as exc:
        print(exc.message, file=sys.stderr)
        return 1
    print(outcome.model_dump_json())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
