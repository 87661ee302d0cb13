"""The synthesised generation ASL runs in moto's Step Functions emulator (what `docmill dev` uses).

moto runs Lambda code in Docker, which this machine lacks, so each Lambda task gets an S3 SDK
integration instead of its function ARN, keeping its Retry and Catch: the batch task copies an
object named by its item to ``_work/run-1/shards/<index>.json`` (a missing one fails the item).
Everything else (settings, ItemReader, ItemSelector, MaxConcurrency, the per-item Catch and the
ResultWriter) is the synthesised definition as is. The runtime issue's tests bind the real handlers.

What moto does not emulate (found here): ``InputType: JSONL`` (hence ``manifest_format: json``),
ToleratedFailurePercentage(Path) (ignored) and the ResultWriter's per-item result files (it writes
only manifest.json). Assemble therefore finds failed batches by comparing the plan's manifest with
the shards written, and reads error details from the result files where they exist (AWS).
"""

from __future__ import annotations

import json
import time

import boto3
from moto import mock_aws

from infra import asl_export
from tests.infra.conftest import Synth

BUCKET = "docmill-datasets"


def _bind_to_s3(asl: dict) -> dict:
    asl = json.loads(json.dumps(asl))
    states = asl["States"]
    plan = states["PlanBatches"]
    states["PlanBatches"] = {
        "Type": "Pass",
        "Parameters": {"manifest_key": "_work/run-1/manifest.json", "run_id": "run-1"},
        "ResultPath": plan["ResultPath"],
        "Next": plan["Next"],
    }
    task = states["GenerateBatches"]["ItemProcessor"]["States"]["GenerateBatch"]
    assert task["Catch"][0]["Next"] == "RecordFailedBatch"  # the synthesised Catch stays in place
    task["Resource"] = "arn:aws:states:::aws-sdk:s3:copyObject"
    task["Parameters"] = {
        "Bucket": BUCKET,
        "CopySource.$": f"States.Format('{BUCKET}/{{}}', $.batch.source)",
        "Key.$": "States.Format('_work/{}/shards/{}.json', $.run_id, $.index)",
    }
    assemble = states["AssembleDatasets"]
    states["AssembleDatasets"] = {
        "Type": "Pass",
        "ResultPath": assemble["ResultPath"],
        "Next": assemble["Next"],
    }
    return asl


def test_distributed_map_reads_the_manifest_fans_out_and_continues_past_a_failed_batch(synth: Synth) -> None:
    asl = asl_export.generation_asl(synth.template, datasets_bucket=BUCKET)
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key="chunks/a.json", Body=b"{}")
        # Batch 1 names an object that does not exist: its task fails, the Catch records it.
        batches = [
            {"source": "chunks/a.json"},
            {"source": "chunks/missing.json"},
            {"source": "chunks/a.json"},
        ]
        s3.put_object(Bucket=BUCKET, Key="_work/run-1/manifest.json", Body=json.dumps(batches).encode())
        sfn = boto3.client("stepfunctions", region_name="us-east-1")
        arn = sfn.create_state_machine(
            name="generation",
            definition=json.dumps(_bind_to_s3(asl)),
            roleArn="arn:aws:iam::123456789012:role/sfn",
        )["stateMachineArn"]
        execution = sfn.start_execution(stateMachineArn=arn, name="run-1", input="{}")["executionArn"]
        for _ in range(600):  # up to 30 s on a loaded CI machine
            described = sfn.describe_execution(executionArn=execution)
            if described["status"] != "RUNNING":
                break
            time.sleep(0.05)

        assert described["status"] == "SUCCEEDED", described
        shards = sorted(
            o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="_work/run-1/shards/")["Contents"]
        )
        assert shards == ["_work/run-1/shards/0.json", "_work/run-1/shards/2.json"]
        (run,) = sfn.list_map_runs(executionArn=execution)["mapRuns"]
        counts = sfn.describe_map_run(mapRunArn=run["mapRunArn"])["itemCounts"]
        # The failed batch counts as a succeeded item: the synthesised Catch recorded it (without
        # the Catch, moto reports succeeded 2 / failed 1).
        assert (counts["total"], counts["succeeded"], counts["failed"]) == (3, 3, 0)
        output = json.loads(described["output"])
        assert output["settings"]["batch_size"] == synth.stack.config.generation.batch_size
        details = output["map"]["ResultWriterDetails"]
        assert details["Bucket"] == BUCKET and details["Key"].startswith("_work/generation-results/")
