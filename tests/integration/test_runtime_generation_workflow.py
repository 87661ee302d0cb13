"""The generation state machine synthesised from infra/, executed by moto's Step Functions
interpreter, with its Lambda tasks bound to the real handlers in functions/generation.

The stage config is the dev stage of cdk.json with short retry intervals (moto really sleeps
them). A scripted test-double LLM plays every stage; it throttles one batch once (Retry must
absorb it) and another batch on every attempt (the Catch must record it and the run go on).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from docmill.errors import LLMThrottled
from docmill_devtools.scripted import ScriptedLLM
from docmill_devtools.dev import create_state_machine
from infra.asl_export import generation_asl
from tests.support.generation_doubles import FakeModel, HashingEmbedder, make_chunks, stage_of
from tests.support.runtime_env import RuntimeEnv, runtime_env

RETRY_ATTEMPTS = 2


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    from infra.app import cdk_json_context
    from infra.asl_export import synthesize_template

    stages = cdk_json_context()["docmill:stages"]
    dev = json.loads(json.dumps(stages["dev"]))
    dev["generation"].update(retry_interval_seconds=1, retry_max_attempts=RETRY_ATTEMPTS, retry_max_delay_seconds=2)
    return synthesize_template(context={"docmill:stages": {**stages, "dev": dev}})


@pytest.fixture(autouse=True)
def _aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)


class ThrottlingModel:
    """FakeModel, except for question calls about two marked chunks: one is throttled on its
    first attempt only, the other on every attempt."""

    def __init__(self, once: str, always: str) -> None:
        self.model = FakeModel()
        self.once, self.always = once, always
        self.throttled: dict[str, int] = {once: 0, always: 0}

    def __call__(self, messages: list) -> str:
        if stage_of(messages) == "question":
            text = messages[-1].content
            for marker in (self.once, self.always):
                if marker in text and (marker == self.always or self.throttled[marker] == 0):
                    self.throttled[marker] += 1
                    raise LLMThrottled("429 Too Many Requests")
        return self.model(messages)


@pytest.fixture
def llm_model() -> ThrottlingModel:
    return ThrottlingModel(once="unit 0 in building 0", always="unit 1 in building 1")


@pytest.fixture
def env(tmp_path: Path, llm_model: ThrottlingModel) -> Iterator[RuntimeEnv]:
    with runtime_env(
        tmp_path / "home", generation=True, llm_factory=lambda: ScriptedLLM(llm_model, model_id="scripted")
    ) as e:
        seed_collection(e, make_chunks(n_sources=3, per_source=1, collection="handbook", embedder=HashingEmbedder(64)))
        yield e


def seed_collection(env: RuntimeEnv, chunks: list) -> None:
    """What ingestion leaves behind: chunks in the index and chunks.jsonl per source in the
    processed bucket (which the plan step reads)."""
    from docmill.ingest.sources import source_id_for

    store = env.runtime.vector_store()
    store.ensure_index(64)
    store.upsert(chunks)
    processed = env.runtime.processed_store()
    by_source: dict[str, list] = {}
    for c in chunks:
        by_source.setdefault(c.source_uri, []).append(c)
    for uri, members in by_source.items():
        processed.write_jsonl(
            f"collections/{members[0].collection}/sources/{source_id_for(uri)}/chunks.jsonl",
            [c.model_dump(mode="json") for c in members],
        )


def run_execution(env: RuntimeEnv, arn: str, payload: dict[str, Any], timeout: float = 90.0) -> dict[str, Any]:
    sfn = env.clients["stepfunctions"]
    execution = sfn.start_execution(stateMachineArn=arn, name="run-1", input=json.dumps(payload))["executionArn"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        described = sfn.describe_execution(executionArn=execution)
        if described["status"] != "RUNNING":
            return described
        time.sleep(0.1)
    raise AssertionError(f"execution still running after {timeout} s")


def test_synthesised_workflow_writes_datasets_retries_a_throttled_batch_and_records_a_failed_one(
    env: RuntimeEnv, template: dict[str, Any], llm_model: ThrottlingModel
) -> None:
    asl = generation_asl(template, datasets_bucket=env.names.datasets)
    arn = create_state_machine(env.clients, asl)

    described = run_execution(
        env,
        arn,
        {"collection": "handbook", "tenant": "default", "dataset": "qa", "questions_per_chunk": 1,
         "batch_size": 1, "formats": ["sft", "dpo"], "run_id": "run-1"},
    )

    assert described["status"] == "SUCCEEDED", described
    output = json.loads(described["output"])
    assert output["plan"]["batches"] == 3
    result = output["datasets"]
    # The once-throttled batch was retried and made it; the always-throttled one was retried to
    # the limit, then recorded. Lambda delivers at least once (and moto's interpreter has been
    # seen to invoke once more under load), so the always-throttled count is a lower bound.
    assert llm_model.throttled["unit 0 in building 0"] == 1
    assert llm_model.throttled["unit 1 in building 1"] >= RETRY_ATTEMPTS + 1
    assert len(result["failed_batches"]) == 1
    assert result["records_kept"] == 2
    s3 = env.s3
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=env.names.datasets).get("Contents", [])}
    assert {"qa-sft.tar.gz", "qa-dpo.tar.gz", "dataset_info.json"} <= keys
    records = [
        json.loads(line)
        for split in ("train", "val", "test")
        for line in s3.get_object(Bucket=env.names.datasets, Key=f"qa-sft/{split}.jsonl")["Body"].read().decode().splitlines()
        if line.strip()
    ]
    assert len(records) == 2 and all(r["instruction"] and r["output"] for r in records)


def test_plan_fails_the_execution_for_a_collection_without_chunks(env: RuntimeEnv, template: dict[str, Any]) -> None:
    asl = generation_asl(template, datasets_bucket=env.names.datasets)
    arn = create_state_machine(env.clients, asl)

    described = run_execution(env, arn, {"collection": "nothing-here", "dataset": "qa"})

    assert described["status"] == "FAILED"
    assert described["error"] == "ConfigurationError"


def test_docmill_workflow_command_runs_generation_through_the_state_machine(
    tmp_path: Path, template: dict[str, Any]
) -> None:
    from typer.testing import CliRunner

    from docmill.cli import app

    with runtime_env(
        tmp_path / "home", generation=True, llm_factory=lambda: ScriptedLLM(FakeModel(), model_id="scripted")
    ) as env:
        seed_collection(env, make_chunks(n_sources=2, per_source=1, collection="handbook", embedder=HashingEmbedder(64)))
        arn = create_state_machine(
            env.clients, generation_asl(template, datasets_bucket=env.names.datasets)
        )

        result = CliRunner().invoke(
            app,
            ["workflow", "--collection", "handbook", "--dataset", "qa", "--questions-per-chunk", "1",
             "--formats", "sft", "--state-machine-arn", arn, "--name", "cli-run", "--timeout", "60", "--json"],
        )

        assert result.exit_code == 0, result.output
        outcome = json.loads(result.output.strip().splitlines()[-1])
        assert outcome["status"] == "SUCCEEDED" and outcome["execution_arn"].endswith(":cli-run")
        assert outcome["output"]["datasets"]["records_kept"] == 2
        assert env.s3.head_object(Bucket=env.names.datasets, Key="qa-sft.tar.gz")
