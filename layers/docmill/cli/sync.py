"""``docmill sync CONFIG.yaml``: pull documents from configured sources into the raw bucket or a folder."""

from __future__ import annotations

import json
import os
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from docmill.cli.app import HomeOption, JsonOption, app
from docmill.connectors.config import load_sync_config
from docmill.connectors.sync import SyncReport, run_sync
from docmill.errors import DocmillError


def _print_table(report: SyncReport, console: Console) -> None:
    table = Table(title="docmill sync")
    for col in ("source", "type", "added", "updated", "deleted", "unchanged", "failed", "seconds"):
        table.add_column(col, justify="right" if col not in ("source", "type") else "left")
    for s in report.sources:
        table.add_row(s.source, s.type, str(s.added), str(s.updated), str(s.deleted), str(s.unchanged),
                      str(s.failed), f"{s.seconds:.1f}")
    console.print(table)
    for s in report.sources:
        console.print(f"[dim]{s.source}: {s.destination} (state {s.state})[/dim]")
        if s.error:
            console.print(f"[red]{s.source}: stopped: {s.error} (nothing was deleted)[/red]")
        for d in s.documents:
            if d.status == "failed":
                console.print(f"[red]{s.source}: {d.id}: {d.reason}[/red]")


@app.command("sync")
def sync_command(
    config: Annotated[str, typer.Argument(help="sync config YAML: a local path or s3://bucket/key")],
    json_out: JsonOption = False,
    home: HomeOption = None,
    source: Annotated[
        list[str] | None, typer.Option("--source", "-s", help="sync only this source (repeatable)")
    ] = None,
) -> None:
    """Sync documents from the configured sources; only changes move, deletions propagate."""
    try:
        cfg = load_sync_config(config)
        # The CLI is the edge: it hands the environment to credential resolution explicitly.
        report = run_sync(cfg, environ=dict(os.environ), home=home, only=source)
    except DocmillError as exc:
        if json_out:
            typer.echo(json.dumps({"error": exc.message, "code": exc.code}))
        else:
            typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2) from exc
    if json_out:
        typer.echo(json.dumps(report.summary(), ensure_ascii=False))
    else:
        _print_table(report, Console())
    raise typer.Exit(0 if report.ok else 1)
