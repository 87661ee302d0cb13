"""Generation workflow: plan -> Distributed Map (ItemReader, MaxConcurrency, Retry, Catch, ResultWriter)
-> assemble; logs and tracing; and the ASL export the local runtime loads."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout

import pytest

from infra import asl_export
from tests.infra.conftest import Synth


@pytest.fixture(scope="module")
def asl(synth: Synth) -> dict:
    return asl_export.generation_asl(synth.template, datasets_bucket="ds-bucket")


def test_settings_then_plan_then_map_then_assemble(asl: dict) -> None:
    states = asl["States"]
    assert asl["StartAt"] == "Settings"
    assert states["Settings"]["Next"] == "PlanBatches"
    assert states["Settings"]["Result"] == {
        "batch_size": 16,
        "manifest_format": "json",
        "tolerated_failure_percentage": 20,
        "results_prefix": "_work/generation-results/",
    }
    assert states["PlanBatches"]["Next"] == "GenerateBatches"
    assert states["GenerateBatches"]["Next"] == "AssembleDatasets"
    assert states["AssembleDatasets"]["Next"] == "Done" and states["Done"]["Type"] == "Succeed"
    assert states["AssembleDatasets"]["Parameters"]["results.$"] == "$.map.ResultWriterDetails"


def test_distributed_map_reads_the_jsonl_manifest_with_configured_concurrency(
    asl: dict, synth: Synth
) -> None:
    fan_out = asl["States"]["GenerateBatches"]
    assert fan_out["ItemProcessor"]["ProcessorConfig"]["Mode"] == "DISTRIBUTED"
    reader = fan_out["ItemReader"]
    assert reader["Resource"] == "arn:aws:states:::s3:getObject"
    assert reader["ReaderConfig"]["InputType"] == "JSON"  # manifest_format "json" (cdk.json default)
    assert reader["Parameters"] == {"Bucket": "ds-bucket", "Key.$": "$.plan.manifest_key"}
    assert fan_out["MaxConcurrency"] == synth.stack.config.generation.max_concurrency == 4
    assert fan_out["ToleratedFailurePercentagePath"] == "$.settings.tolerated_failure_percentage"
    writer = fan_out["ResultWriter"]
    assert writer["Parameters"] == {"Bucket": "ds-bucket", "Prefix": "_work/generation-results/"}


def test_batch_retries_throttling_and_transient_errors_with_backoff(asl: dict) -> None:
    batch = asl["States"]["GenerateBatches"]["ItemProcessor"]["States"]["GenerateBatch"]
    (retry,) = batch["Retry"]
    for error in ("TransientError", "LLMThrottled", "Lambda.TooManyRequestsException", "States.Timeout"):
        assert error in retry["ErrorEquals"], error
    assert retry["BackoffRate"] == 2 and retry["MaxAttempts"] == 6 and retry["JitterStrategy"] == "FULL"
    assert retry["MaxDelaySeconds"] == 300


def test_a_failed_batch_is_recorded_and_the_run_continues(asl: dict) -> None:
    processor = asl["States"]["GenerateBatches"]["ItemProcessor"]["States"]
    (catch,) = processor["GenerateBatch"]["Catch"]
    assert catch == {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "RecordFailedBatch"}
    record = processor["RecordFailedBatch"]
    assert record["Type"] == "Pass" and record["End"] is True
    assert record["Parameters"]["status"] == "failed" and record["Parameters"]["batch.$"] == "$.batch"


def test_tasks_are_bound_to_the_placeholder_arns(asl: dict) -> None:
    arns = asl_export.task_arns()
    assert asl["States"]["PlanBatches"]["Resource"] == arns["plan"]
    assert asl["States"]["AssembleDatasets"]["Resource"] == arns["assemble"]
    batch = asl["States"]["GenerateBatches"]["ItemProcessor"]["States"]["GenerateBatch"]
    assert (
        batch["Resource"]
        == arns["generate_batch"]
        == "arn:aws:lambda:us-east-1:123456789012:function:docmill-generate-batch"
    )


def test_state_machine_logs_all_events_and_traces(synth: Synth) -> None:
    machine = next(
        r
        for lid, r in synth.resources("AWS::StepFunctions::StateMachine").items()
        if lid.startswith("GenerationStateMachine")
    )
    props = machine["Properties"]
    assert props["LoggingConfiguration"]["Level"] == "ALL"
    assert props["LoggingConfiguration"]["Destinations"][0]["CloudWatchLogsLogGroup"]["LogGroupArn"][
        "Fn::GetAtt"
    ][0].startswith("GenerationWorkflowLogs")
    assert props["TracingConfiguration"] == {"Enabled": True}


def test_generate_batch_and_assemble_run_the_container_image(synth: Synth) -> None:
    fns = synth.resources("AWS::Lambda::Function")
    cmds = {
        lid.rstrip("0123456789ABCDEF"): r["Properties"].get("ImageConfig", {}).get("Command")
        for lid, r in fns.items()
        if lid.startswith("Generation")
    }
    assert cmds["GenerationGenerateBatch"] == ["functions.generation.generate_batch.handler"]
    assert cmds["GenerationAssemble"] == ["functions.generation.assemble.handler"]
    plan = next(r for lid, r in fns.items() if lid.startswith("GenerationPlan"))["Properties"]
    assert plan["Handler"] == "plan.handler" and plan["Layers"]


def test_function_overrides_and_unknown_references(synth: Synth) -> None:
    asl = asl_export.generation_asl(synth.template, functions={"plan": "arn:aws:lambda:eu-west-1:1:function:p"})
    assert asl["States"]["PlanBatches"]["Resource"] == "arn:aws:lambda:eu-west-1:1:function:p"
    broken = json.loads(json.dumps(synth.template))
    machine = next(
        r for r in broken["Resources"].values() if r.get("Metadata", {}).get(asl_export.METADATA_KEY)
    )
    machine["Metadata"][asl_export.METADATA_KEY]["tasks"].pop("plan")
    with pytest.raises(ValueError, match="no local binding"):
        asl_export.generation_asl(broken)


def test_command_line_prints_the_asl(synth: Synth, tmp_path) -> None:
    template = tmp_path / "t.json"
    template.write_text(json.dumps(synth.template))
    out = io.StringIO()
    with redirect_stdout(out):
        assert (
            asl_export.main(["--template", str(template), "--datasets-bucket", "b", "--region", "eu-west-1"])
            == 0
        )
    printed = json.loads(out.getvalue())
    assert printed["States"]["PlanBatches"]["Resource"].startswith("arn:aws:lambda:eu-west-1:")


def test_a_cached_template_is_reused_until_infra_changes(synth: Synth, tmp_path, monkeypatch) -> None:
    # A cache hit must not synthesise: make synthesis impossible and expect the cached template.
    cache = tmp_path / f"template-{asl_export._source_fingerprint()}.json"
    cache.write_text(json.dumps(synth.template))
    import infra.app

    monkeypatch.setattr(infra.app, "build_app", lambda *a, **k: pytest.fail("synthesised despite the cache"))
    asl = asl_export.generation_asl(cache_dir=tmp_path, datasets_bucket="cached")
    assert asl["States"]["GenerateBatches"]["ItemReader"]["Parameters"]["Bucket"] == "cached"
    assert len(asl_export._source_fingerprint()) == 16


def test_every_transient_library_error_is_retried(asl: dict) -> None:
    from docmill import errors

    transient = {
        cls.code
        for cls in vars(errors).values()
        if isinstance(cls, type) and issubclass(cls, errors.TransientError)
    }
    assert {"TransientError", "LLMThrottled", "LLMTimeout"} <= transient
    batch = asl["States"]["GenerateBatches"]["ItemProcessor"]["States"]["GenerateBatch"]
    assert transient <= set(batch["Retry"][0]["ErrorEquals"])
    assert transient <= set(asl["States"]["PlanBatches"]["Retry"][0]["ErrorEquals"])
    assert "States.Timeout" not in asl["States"]["PlanBatches"]["Retry"][0]["ErrorEquals"]
