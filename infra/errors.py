"""Workflow Retry rules from the library's typed errors (layers/docmill/errors.py).

A Python Lambda that raises reports ``errorType`` = the exception's class name, which is each
docmill error's ``code``; Step Functions matches ``ErrorEquals`` exactly, not by subclass. So the
retry list is every TransientError subclass the library defines, read at synth time: a new
transient error in the library is retried by the workflows without touching infra/.
"""

from __future__ import annotations

import sys

from infra import paths

# Service-side errors of the Lambda integration worth retrying.
LAMBDA_TRANSIENT = [
    "Lambda.TooManyRequestsException",
    "Lambda.ServiceException",
    "Lambda.SdkClientException",
    "Lambda.AWSLambdaException",
]


def transient_error_codes() -> list[str]:
    """``code`` of docmill.errors.TransientError and all its subclasses, base first, then sorted."""
    if str(paths.LAYERS_DIR) not in sys.path:
        sys.path.insert(0, str(paths.LAYERS_DIR))
    from docmill import errors

    found: set[str] = set()
    stack = [errors.TransientError]
    while stack:
        cls = stack.pop()
        found.add(cls.code)
        stack.extend(cls.__subclasses__())
    base = errors.TransientError.code
    return [base, *sorted(found - {base})]


def task_retry_errors() -> list[str]:
    return [*transient_error_codes(), *LAMBDA_TRANSIENT]


def batch_retry_errors() -> list[str]:
    """Batches also retry a task timeout: an LLM call that hung is worth another go."""
    return [*task_retry_errors(), "States.Timeout"]
