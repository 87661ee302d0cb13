"""``docmill dev``: run the event-driven pipeline locally against an emulated AWS (no Docker)."""

from __future__ import annotations

import contextlib
import json
import signal
import sys
import threading
from typing import Annotated

import typer

from docmill.cli.app import HomeOption, JsonOption, app


@app.command("dev")
def dev(
    port: Annotated[int, typer.Option("--port", help="port of the local AWS endpoint (0: a free one)")] = 4599,
    host: Annotated[str, typer.Option("--host", help="address to listen on")] = "127.0.0.1",
    endpoint_url: Annotated[
        str | None,
        typer.Option(
            "--endpoint-url",
            envvar="AWS_ENDPOINT_URL",
            help="use this S3/SQS/Step Functions endpoint (LocalStack, ...) instead of starting moto",
            show_default=False,
        ),
    ] = None,
    prefix: Annotated[str, typer.Option("--prefix", help="name prefix of the buckets and queues")] = "docmill-dev",
    llm: Annotated[
        str | None, typer.Option("--llm", help="LLM of the generation tasks: local | openai:URL | sagemaker:ENDPOINT")
    ] = None,
    workflow: Annotated[
        bool, typer.Option("--workflow/--no-workflow", help="create the generation state machine (the stack's definition)")
    ] = True,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Start a local AWS (S3, SQS, Step Functions, Lambda) with the docmill pipeline wired in.

    Files uploaded to the raw bucket under <tenant>/<collection>/ are routed and processed;
    the generation state machine writes datasets to the datasets bucket."""
    from docmill.config import load_settings

    try:
        from docmill_devtools.dev import DevEnvironment, DevNames, example_commands
    except ImportError as exc:  # a Lambda layer or container image: the dev tooling is not there
        raise typer.BadParameter(f"docmill dev needs the docmill_devtools package ({exc})") from exc

    settings = load_settings(home=home)
    if llm:
        settings = settings.model_copy(update={"llm": settings.llm.model_copy(update={"spec": llm})})
    env = DevEnvironment(
        settings=settings,
        names=DevNames(prefix),
        host=host,
        port=port,
        endpoint_url=endpoint_url,
        generation=workflow,
    )
    # Ctrl+C / SIGTERM from here on means "stop cleanly", also while starting up.
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    # Nothing may reach stdout before the --json line: start-up chatter goes to stderr.
    try:
        with contextlib.redirect_stdout(sys.stderr):
            info = env.start()
    except BaseException:
        env.stop()
        raise
    if as_json:
        sys.stdout.write(json.dumps(info) + "\n")
    else:
        lines = [
            f"docmill dev: local AWS at {info['endpoint']} (region {info['region']})",
            f"  raw bucket:        {info['buckets']['raw']}   (upload to <tenant>/<collection>/<file>)",
            f"  processed bucket:  {info['buckets']['processed']}",
            f"  datasets bucket:   {info['buckets']['datasets']}",
            f"  events queue:      {info['queues']['events']}",
            f"  dead-letter queue: {info['queues']['dlq']}",
            f"  state machine:     {info['state_machine_arn'] or '(none: --no-workflow or an external endpoint)'}",
            "Try (credentials: any, e.g. AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test):",
            *(f"  {c}" for c in example_commands(info)),
            "Press Ctrl+C to stop.",
        ]
        sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()
    try:
        while not stop.wait(0.5):
            pass
    finally:
        env.stop()
