"""Run Lambda functions of the local emulator (moto) as in-process Python handlers.

moto executes a Lambda function by starting its code in a Docker container; this machine, CI
and most laptops running ``docmill dev`` have no Docker daemon. Every Lambda call in moto -
``lambda:Invoke`` from our route step, and the Step Functions interpreter's Lambda tasks, which
call the same ``Invoke`` API - ends in ``moto.awslambda.models.LambdaFunction.invoke``. Patching
that one method (only for the functions registered here; others keep moto's behaviour) binds
the synthesised state machine's task ARNs and the process function to the real handlers in
functions/, which then run with the same event shapes, return values and error names
(``errorType`` = exception class name, which the Retry/Catch rules match) as on AWS.

Asynchronous invocations (``InvocationType=Event``) follow Lambda's contract: up to
``retries`` further attempts, then the on-failure destination receives the event and the error
(the events DLQ in ``docmill dev``).
"""

from __future__ import annotations

import io
import json
import logging
import threading
import time
import traceback
import uuid
import zipfile
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import datetime, UTC
from typing import Any

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any], Any], Any]

LOCAL_ROLE_NAME = "docmill-local-lambda"
_ASSUME = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}


@dataclass
class LocalContext:
    """The Lambda context object the handlers (Powertools) read."""

    function_name: str
    function_arn: str
    memory_limit_in_mb: int = 1024
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = ""
    timeout_ms: int = 900_000

    @property
    def invoked_function_arn(self) -> str:
        return self.function_arn

    def get_remaining_time_in_millis(self) -> int:
        return self.timeout_ms


@dataclass
class LocalFunction:
    name: str
    handler: Handler
    retries: int = 2
    on_failure: Callable[[dict[str, Any]], None] | None = None
    arn: str = ""


class LocalFunctions:
    """Registry + moto patch. Use as a context manager (or ``install``/``uninstall``)."""

    def __init__(self, *, async_executor: Executor | None = None, retry_delay: float = 0.0) -> None:
        self._functions: dict[str, LocalFunction] = {}
        self._executor = async_executor
        self._retry_delay = retry_delay
        self._original: Any = None
        self.invocations: list[tuple[str, str]] = []  # (function, invocation type), for logs/tests
        self._lock = threading.Lock()

    def register(
        self,
        name: str,
        handler: Handler,
        *,
        retries: int = 2,
        on_failure: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self._functions[name] = LocalFunction(name=name, handler=handler, retries=retries, on_failure=on_failure)

    def create_in(self, lambda_client: Any, iam_client: Any) -> dict[str, str]:
        """Create each registered function in the emulator (a placeholder zip; the code that
        runs is the bound handler). Returns name -> ARN."""
        try:
            role = iam_client.create_role(RoleName=LOCAL_ROLE_NAME, AssumeRolePolicyDocument=json.dumps(_ASSUME))
            role_arn = role["Role"]["Arn"]
        except iam_client.exceptions.EntityAlreadyExistsException:
            role_arn = iam_client.get_role(RoleName=LOCAL_ROLE_NAME)["Role"]["Arn"]
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr("README.txt", "bound in-process by docmill_devtools.local_lambda\n")
        arns = {}
        for fn in self._functions.values():
            try:
                resp = lambda_client.create_function(
                    FunctionName=fn.name,
                    Runtime="python3.11",
                    Role=role_arn,
                    Handler="handler.handler",
                    Code={"ZipFile": buf.getvalue()},
                    Timeout=900,
                )
                fn.arn = resp["FunctionArn"]
            except lambda_client.exceptions.ResourceConflictException:
                fn.arn = lambda_client.get_function(FunctionName=fn.name)["Configuration"]["FunctionArn"]
            arns[fn.name] = fn.arn
        return arns

    # -- the patch ----------------------------------------------------------------------------

    def install(self) -> LocalFunctions:
        from moto.awslambda.models import LambdaFunction

        if self._original is not None:
            return self
        original = LambdaFunction.invoke
        registry = self

        def invoke(fn_self: Any, body: Any, request_headers: Any, response_headers: Any) -> Any:
            bound = registry._functions.get(fn_self.function_name)
            if bound is None:
                return original(fn_self, body, request_headers, response_headers)
            return registry._invoke(bound, fn_self, body, request_headers, response_headers)

        self._original = original
        LambdaFunction.invoke = invoke
        return self

    def uninstall(self) -> None:
        from moto.awslambda.models import LambdaFunction

        if self._original is not None:
            LambdaFunction.invoke = self._original
            self._original = None

    def __enter__(self) -> LocalFunctions:
        return self.install()

    def __exit__(self, *exc: object) -> None:
        self.uninstall()

    # -- invocation ---------------------------------------------------------------------------

    def _invoke(self, fn: LocalFunction, moto_fn: Any, body: Any, request_headers: Any, response_headers: Any) -> Any:
        if isinstance(body, bytes):
            body = body.decode("utf-8")
        event = json.loads(body) if body else {}
        inv_type = request_headers.get("x-amz-invocation-type") or request_headers.get("X-Amz-Invocation-Type") or "RequestResponse"
        arn = fn.arn or moto_fn.function_arn
        with self._lock:
            self.invocations.append((fn.name, inv_type))
        if inv_type == "Event":
            if self._executor is not None:
                self._executor.submit(self._run_async, fn, arn, event)
            else:
                self._run_async(fn, arn, event)
            return ""
        try:
            result = fn.handler(event, LocalContext(function_name=fn.name, function_arn=arn))
        except Exception as exc:  # noqa: BLE001 - reported to the caller like Lambda does
            response_headers["x-amz-function-error"] = "Unhandled"
            return json.dumps(_error_payload(exc)).encode("utf-8")
        return json.dumps(result).encode("utf-8")

    def _run_async(self, fn: LocalFunction, arn: str, event: dict[str, Any]) -> None:
        attempts = fn.retries + 1
        error: BaseException | None = None
        for attempt in range(1, attempts + 1):
            try:
                fn.handler(event, LocalContext(function_name=fn.name, function_arn=arn))
                return
            except Exception as exc:  # noqa: BLE001 - retried, then sent to the destination
                error = exc
                log.warning("%s attempt %d/%d failed: %s", fn.name, attempt, attempts, exc)
                if attempt < attempts and self._retry_delay:
                    time.sleep(self._retry_delay)
        if fn.on_failure is not None and error is not None:
            fn.on_failure(on_failure_record(arn, event, error, attempts))


def _error_payload(exc: BaseException) -> dict[str, Any]:
    return {
        "errorType": type(exc).__name__,
        "errorMessage": str(exc),
        "stackTrace": traceback.format_exception(exc)[-5:],
    }


def on_failure_record(function_arn: str, event: dict[str, Any], exc: BaseException, attempts: int) -> dict[str, Any]:
    """The record Lambda sends to an asynchronous invocation's on-failure destination."""
    return {
        "version": "1.0",
        "timestamp": datetime.now(UTC).isoformat(),
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "functionArn": f"{function_arn}:$LATEST",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": attempts,
        },
        "requestPayload": event,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": _error_payload(exc),
    }
