"""``docmill workflow``: run dataset generation through the Step Functions state machine
(deployed, or the one ``docmill dev`` serves) instead of in this process."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from docmill.cli.app import CollectionOption, JsonOption, app

DEV_STATE_MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:docmill-generation"


@app.command("workflow")
def workflow(
    collection: CollectionOption,
    dataset: Annotated[str, typer.Option("--dataset", "-d", help="dataset name")],
    tenant: Annotated[str | None, typer.Option("--tenant", help="only this tenant's chunks")] = None,
    questions_per_chunk: Annotated[int | None, typer.Option("--questions-per-chunk", min=1)] = None,
    max_chunks: Annotated[int | None, typer.Option("--max-chunks", min=1)] = None,
    formats: Annotated[str | None, typer.Option("--formats", help="comma-separated dataset formats")] = None,
    state_machine_arn: Annotated[
        str,
        typer.Option("--state-machine-arn", envvar="DOCMILL_STATE_MACHINE_ARN", help="generation state machine"),
    ] = DEV_STATE_MACHINE,
    name: Annotated[str | None, typer.Option("--name", help="execution name (default: generated)")] = None,
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="wait for the execution to end")] = True,
    timeout: Annotated[float, typer.Option("--timeout", help="seconds to wait at most")] = 3600.0,
    as_json: JsonOption = False,
) -> None:
    """Start the generation workflow and report its outcome (endpoint: AWS_ENDPOINT_URL for
    ``docmill dev``, else your AWS account)."""
    from docmill.errors import DocmillError
    from docmill.runtime.workflow import start_generation

    request: dict = {"collection": collection, "dataset": dataset}
    for key, value in (("tenant", tenant), ("questions_per_chunk", questions_per_chunk), ("max_chunks", max_chunks)):
        if value is not None:
            request[key] = value
    if formats:
        request["formats"] = [f.strip() for f in formats.split(",") if f.strip()]
    try:
        result = start_generation(state_machine_arn, request, name=name, wait=wait, timeout_s=timeout)
    except (DocmillError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    if as_json:
        typer.echo(result.model_dump_json())
    else:
        typer.echo(f"{result.status}: {result.execution_arn}")
        datasets = (result.output or {}).get("datasets") or {}
        if datasets:
            typer.echo(f"  {datasets.get('records_kept', 0)} records kept -> {datasets.get('out')}")
            for fmt, counts in (datasets.get("counts") or {}).items():
                typer.echo(f"  {fmt}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
            if datasets.get("failed_batches"):
                typer.echo(f"  failed batches: {json.dumps(datasets['failed_batches'])}")
        if result.error:
            typer.echo(f"  error: {result.error}: {result.cause}")
    if result.status not in ("SUCCEEDED", "RUNNING"):
        raise typer.Exit(1)
