"""Ingestion construct: route Lambda on the queue, container Lambda and ECS task from one image."""

from __future__ import annotations

import json

from infra import paths
from tests.infra.conftest import Synth


def _fn(synth: Synth, prefix: str) -> dict:
    fns = {lid: r for lid, r in synth.resources("AWS::Lambda::Function").items() if lid.startswith(prefix)}
    assert len(fns) == 1, list(fns)
    return next(iter(fns.values()))


def test_route_is_a_small_zip_function_with_the_library_layer(synth: Synth) -> None:
    route = _fn(synth, "IngestionRoute")["Properties"]
    assert route["Runtime"] == "python3.11"
    assert route["Handler"] == "handler.handler"
    assert route["MemorySize"] == 512 and route["Timeout"] == 60
    (layer,) = route["Layers"]
    assert layer["Ref"].startswith("CodeLibraryLayer")
    assert route["TracingConfig"] == {"Mode": "Active"}
    env = route["Environment"]["Variables"]
    for key in (
        "DOCMILL_AWS__RAW_BUCKET",
        "DOCMILL_AWS__PROCESS_FUNCTION",
        "DOCMILL_AWS__INGEST_STATE_MACHINE_ARN",
        "DOCMILL_AWS__LARGE_FILE_BYTES",
        "DOCMILL_OPENSEARCH__URL",
    ):
        assert key in env, key
    # With the large-file workflow on, route starts the state machine and never runs ECS itself.
    assert not [k for k in env if k.startswith("DOCMILL_AWS__ECS_")]
    assert env["DOCMILL_AWS__LARGE_FILE_BYTES"] == str(50 * 1024 * 1024)


def test_route_consumes_the_queue_with_partial_batch_failures(synth: Synth) -> None:
    (mapping,) = synth.resources("AWS::Lambda::EventSourceMapping").values()
    props = mapping["Properties"]
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert props["BatchSize"] == 10
    assert props["EventSourceArn"]["Fn::GetAtt"][0].startswith("StorageEvents")
    assert props["FunctionName"]["Ref"].startswith("IngestionRoute")


def test_process_is_the_container_image_sized_for_parsing(synth: Synth) -> None:
    process = _fn(synth, "IngestionProcess")["Properties"]
    assert process["PackageType"] == "Image"
    assert process["MemorySize"] == 6144
    assert process["EphemeralStorage"] == {"Size": 4096}
    assert process["Timeout"] == 900
    assert process["ImageConfig"]["Command"] == [paths.PROCESS_DOCUMENT_CMD]
    assert process["ReservedConcurrentExecutions"] == 10
    assert process["VpcConfig"]["SubnetIds"]


def test_failed_async_process_invocations_land_in_the_dlq(synth: Synth) -> None:
    configs = [
        c
        for c in synth.resources("AWS::Lambda::EventInvokeConfig").values()
        if c["Properties"]["FunctionName"]["Ref"].startswith("IngestionProcess")
    ]
    (config,) = configs
    assert config["Properties"]["MaximumRetryAttempts"] == 2
    dest = config["Properties"]["DestinationConfig"]["OnFailure"]["Destination"]
    assert dest["Fn::GetAtt"][0].startswith("StorageEventsDlq")


def test_ecs_task_runs_the_same_image_with_the_task_module(synth: Synth) -> None:
    (task,) = synth.resources("AWS::ECS::TaskDefinition").values()
    props = task["Properties"]
    assert props["RequiresCompatibilities"] == ["FARGATE"]
    assert (props["Cpu"], props["Memory"]) == ("4096", "16384")
    assert props["EphemeralStorage"] == {"SizeInGiB": 50}
    (container,) = props["ContainerDefinitions"]
    assert container["EntryPoint"] == ["python3", "-m"]
    assert container["Command"] == [paths.ECS_TASK_MODULE]
    assert container["LogConfiguration"]["LogDriver"] == "awslogs"
    # One image asset: the Lambda and the task pull the same tag (the asset hash) from the same repository.
    process = _fn(synth, "IngestionProcess")["Properties"]
    lambda_tag = json.dumps(process["Code"]["ImageUri"]).rsplit(":", 1)[-1].strip('"]}')
    task_tag = json.dumps(container["Image"]).rsplit(":", 1)[-1].strip('"]}')
    assert lambda_tag == task_tag and len(lambda_tag) == 64
    assert len(synth.resources("AWS::ECS::Cluster")) == 1


def test_large_files_go_through_a_choice_to_ecs_run_task_sync(synth: Synth) -> None:
    machines = {
        lid: r
        for lid, r in synth.resources("AWS::StepFunctions::StateMachine").items()
        if lid.startswith("IngestionLargeFileWorkflow")
    }
    (machine,) = machines.values()
    text = "".join(
        p if isinstance(p, str) else "<ref>" for p in machine["Properties"]["DefinitionString"]["Fn::Join"][1]
    )
    asl = json.loads(text)
    choice = asl["States"]["BySize"]
    assert choice["Type"] == "Choice"
    assert choice["Choices"][0]["Next"] == "ProcessInEcs" and choice["Default"] == "ProcessInLambda"
    assert choice["Choices"][0]["Or"][0] == {"Variable": "$.size", "NumericGreaterThanEquals": 52428800}
    ecs = asl["States"]["ProcessInEcs"]
    assert ecs["Resource"].endswith(":states:::ecs:runTask.sync")
    env = {
        e["Name"]: e["Value.$"]
        for e in ecs["Parameters"]["Overrides"]["ContainerOverrides"][0]["Environment"]
    }
    assert env == {
        "DOCMILL_OBJECT_BUCKET": "$.bucket",
        "DOCMILL_OBJECT_KEY": "$.key",
        "DOCMILL_OBJECT_VERSION_ID": "$.version_id",
    }
    assert machine["Properties"]["TracingConfiguration"] == {"Enabled": True}


def test_the_image_is_built_with_the_extras_pyproject_defines(synth: Synth) -> None:
    from infra.constructs.runtime_code import image_extras

    assets = json.loads((synth.outdir / "docmill-dev.assets.json").read_text())
    (docker,) = assets["dockerImages"].values()
    assert docker["source"]["dockerFile"] == paths.DOCKERFILE
    assert docker["source"]["dockerBuildArgs"] == {"DOCMILL_EXTRAS": image_extras()}
    assert docker["source"]["platform"] == "linux/amd64"
