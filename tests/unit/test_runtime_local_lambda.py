"""The in-process Lambda binding of the local runtime and the workflow's error names."""

from __future__ import annotations

import json

import pytest

from docmill.errors import ConfigurationError, LLMThrottled, LLMTimeout, LLMUnavailable, TransientError
from docmill_devtools.local_lambda import LocalFunctions, on_failure_record
from docmill.runtime.workflow import _raise_workflow_error


class _MotoFn:
    function_name = "docmill-thing"
    function_arn = "arn:aws:lambda:us-east-1:123456789012:function:docmill-thing"


def test_request_response_returns_the_handler_result_as_json() -> None:
    fns = LocalFunctions()
    fns.register("docmill-thing", lambda event, ctx: {"echo": event["x"], "fn": ctx.function_name})
    headers: dict[str, str] = {}

    body = fns._invoke(fns._functions["docmill-thing"], _MotoFn(), '{"x": 1}', {}, headers)

    assert json.loads(body) == {"echo": 1, "fn": "docmill-thing"} and "x-amz-function-error" not in headers


def test_a_raising_handler_reports_its_class_name_as_error_type() -> None:
    # Step Functions matches Retry/Catch on errorType: it must be the exception class name.
    def handler(event: dict, ctx: object) -> None:
        raise LLMThrottled("429")

    fns = LocalFunctions()
    fns.register("docmill-thing", handler)
    headers: dict[str, str] = {}

    body = json.loads(fns._invoke(fns._functions["docmill-thing"], _MotoFn(), "{}", {}, headers))

    assert headers["x-amz-function-error"] == "Unhandled"
    assert (body["errorType"], body["errorMessage"]) == ("LLMThrottled", "429")


def test_async_invocation_retries_twice_then_hands_event_and_error_to_the_destination() -> None:
    calls: list[dict] = []
    failures: list[dict] = []

    def handler(event: dict, ctx: object) -> None:
        calls.append(event)
        raise TransientError("index down")

    fns = LocalFunctions()
    fns.register("docmill-thing", handler, retries=2, on_failure=failures.append)

    out = fns._invoke(fns._functions["docmill-thing"], _MotoFn(), '{"key": "a.pdf"}', {"x-amz-invocation-type": "Event"}, {})

    assert out == "" and len(calls) == 3
    (record,) = failures
    assert record["requestPayload"] == {"key": "a.pdf"}
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["responsePayload"]["errorType"] == "TransientError"


def test_async_invocation_that_succeeds_on_retry_sends_nothing_to_the_destination() -> None:
    attempts = {"n": 0}
    failures: list[dict] = []

    def handler(event: dict, ctx: object) -> str:
        attempts["n"] += 1
        if attempts["n"] == 1:
            raise TransientError("blip")
        return "ok"

    fns = LocalFunctions()
    fns.register("docmill-thing", handler, on_failure=failures.append)
    fns._invoke(fns._functions["docmill-thing"], _MotoFn(), "{}", {"x-amz-invocation-type": "Event"}, {})

    assert attempts["n"] == 2 and failures == []


def test_on_failure_record_has_the_lambda_destination_shape() -> None:
    record = on_failure_record("arn:fn", {"a": 1}, ValueError("bad"), 3)

    assert set(record) == {"version", "timestamp", "requestContext", "requestPayload", "responseContext", "responsePayload"}
    assert record["requestContext"]["approximateInvokeCount"] == 3


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (LLMThrottled("429"), "LLMThrottled"),
        (LLMTimeout("slow"), "LLMTimeout"),
        (LLMUnavailable("503"), "TransientError"),  # a subclass name would not match the Retry
        (TransientError("s3 blip"), "TransientError"),
        (ConfigurationError("no plan"), "ConfigurationError"),  # not retried: the Catch records it
    ],
)
def test_workflow_errors_carry_the_names_the_retry_rules_match(raised: Exception, expected: str) -> None:
    with pytest.raises(Exception) as info:
        _raise_workflow_error(raised)

    assert type(info.value).__name__ == expected


def test_given_the_library_clock_when_a_generation_starts_then_its_execution_is_named_from_it(monkeypatch) -> None:
    from datetime import UTC, datetime

    from docmill import aws, clock
    from docmill.runtime.workflow import start_generation

    class StepFunctions:
        names: list[str] = []

        def start_execution(self, *, stateMachineArn: str, name: str, input: str) -> dict:  # noqa: N803 - boto3's names
            self.names.append(name)
            return {"executionArn": f"{stateMachineArn}:{name}"}

        def describe_execution(self, *, executionArn: str) -> dict:  # noqa: N803 - boto3's name
            return {"status": "SUCCEEDED", "output": "{}"}

    # Given the one clock says 2031-02-03 04:05:06 UTC
    monkeypatch.setattr(clock, "utc_now", lambda: datetime(2031, 2, 3, 4, 5, 6, tzinfo=UTC))
    sfn = StepFunctions()
    aws.set_client("stepfunctions", sfn)
    try:
        # When a generation starts without a name
        result = start_generation("arn:sm", {"collection": "c", "dataset": "d"}, wait=False)
    finally:
        aws.reset_clients()
    # Then its execution name carries that time
    assert sfn.names[0].startswith("gen-20310203T040506Z-")
    assert result.status == "SUCCEEDED"
