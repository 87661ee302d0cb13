"""``docmill evaluate``: the quality report of a generated dataset, measured without an LLM."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from docmill.cli.app import JsonOption, app
from docmill.errors import ConfigurationError, DocmillError

JSON_KEYS = ("records", "pairs", "hit_at_k", "mrr", "support", "degenerate", "pair_support_gap")


@app.command("evaluate")
def evaluate(
    dataset: Annotated[str, typer.Argument(help="dataset folder or s3://bucket/prefix that `docmill generate` wrote")],
    plots: Annotated[bool, typer.Option("--plots", help="also write the PNG plots (quality/*.png) there")] = False,
    json_out: JsonOption = False,
) -> None:
    """Quality of a dataset: retrieval hit@k and MRR, support of answers by their context, pair
    support gap, looping answers; from its provenance.jsonl, no LLM involved."""
    from docmill.quality.report import evaluate as run_evaluate
    from docmill.quality.report import render_table
    from docmill.storage import open_store

    try:
        metrics = run_evaluate(open_store(dataset), plots=plots)
    except (DocmillError, ValueError) as exc:
        message = exc.message if isinstance(exc, DocmillError) else str(exc)
        if json_out:
            typer.echo(json.dumps({"error": getattr(exc, "code", "ValueError"), "message": message}))
        else:
            typer.echo(f"error: {message}", err=True)
        raise typer.Exit(2 if isinstance(exc, (ConfigurationError, ValueError)) else 1) from None
    if json_out:
        head = {k: metrics[k] for k in JSON_KEYS}  # the documented keys first, in this order
        typer.echo(json.dumps({**head, **{k: v for k, v in metrics.items() if k not in head}}, ensure_ascii=False))
        return
    typer.echo(render_table(metrics))
    for path in metrics.get("plots", []):
        typer.echo(f"plot: {path}")
