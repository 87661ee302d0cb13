"""``docmill generate``: fine-tuning datasets from an indexed collection."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from docmill.cli.app import CollectionOption, HomeOption, JsonOption, app
from docmill.errors import ConfigurationError, DocmillError

FORMATS_HELP = "formats to write, comma-separated or repeated: sft,completion,text,dpo,rlhf,preference (default all)"


# Seams for the heavy or remote pieces, imported lazily (and replaced in tests).
def _open_vector_store(settings: Any) -> Any:
    from docmill.vectorstores.factory import open_vector_store

    return open_vector_store(settings)


def _make_llm(spec: str, settings: Any) -> Any:
    from docmill.llm.factory import make_llm

    # The local model's de-quantised weights are kept under the home: later runs load in seconds.
    return make_llm(spec, settings.llm, local_cache_dir=settings.home / "cache" / "llm")


def _embedder(settings: Any) -> Any:
    from docmill.embeddings import embedder_for

    return embedder_for(settings)


def _parse_formats(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    from docmill.datasets.formats import ALL_FORMATS

    out: list[str] = []
    for value in values:
        for part in value.split(","):
            part = part.strip().lower()
            if not part:
                continue
            if part == "all":
                out.extend(f for f in ALL_FORMATS if f not in out)
                continue
            if part not in ALL_FORMATS:
                raise ConfigurationError(f"unknown format {part!r}; choose from {', '.join(ALL_FORMATS)}")
            if part not in out:
                out.append(part)
    return out or None


def _print_plan(summary: dict[str, Any]) -> None:
    calls = summary["planned_calls"]
    tokens = summary["estimated_tokens"]
    typer.echo(
        f"Plan for dataset {summary['dataset']!r} from collection {summary['collection']!r}: "
        f"{summary['chunks_sampled']} of {summary['chunks_available']} chunks "
        f"({summary['chunks_skipped_short']} too short) from {summary['sources']} sources, "
        f"{summary['questions_per_chunk']} questions each, {summary['batches']} batch(es)"
    )
    typer.echo(
        "  LLM calls: "
        + ", ".join(f"{k} {v}" for k, v in calls.items() if k != "total")
        + f" = {calls['total']} calls"
    )
    typer.echo(
        f"  estimated tokens (upper bound): {tokens['input']:,} in + {tokens['output']:,} out = {tokens['total']:,}"
    )
    if summary.get("budget_tokens"):
        typer.echo(f"  budget: {summary['budget_tokens']:,} tokens")


def _print_summary(result: dict[str, Any]) -> None:
    a = result["assembled"]
    typer.echo(
        f"Generated {a['records_generated']} records; kept {a['records_kept']} "
        f"({a['preference_pairs']} preference pairs) -> {a['out']}"
    )
    if result.get("stopped"):
        typer.echo(f"Stopped early: {result['stopped']} (what was finished is written)")
    typer.echo(f"  {'format':<12}{'train':>8}{'val':>8}{'test':>8}")
    for fmt, counts in a["counts"].items():
        typer.echo(f"  {fmt:<12}{counts['train']:>8}{counts['val']:>8}{counts['test']:>8}")
    if a.get("archives"):
        typer.echo("  archives (DatasetDict; inner folder = key without .tar.gz):")
        for fmt, arch in a["archives"].items():
            name = f"  loader name: {arch['loader_name']}" if arch.get("loader_name") else ""
            typer.echo(f"    {fmt:<12}{arch['uri']}{name}")
    if a["drops"]:
        typer.echo("  dropped / not a pair:")
        for reason, n in sorted(a["drops"].items(), key=lambda kv: (-kv[1], kv[0])):
            typer.echo(f"    {reason}: {n}")
    if a.get("quality"):
        from docmill.quality.report import render_table

        typer.echo("")
        typer.echo(render_table(a["quality"]))
        typer.echo("")
    typer.echo(f"  card: {a['card']}")
    typer.echo(f"  provenance: {a['provenance']}  report: {a['report']}")
    if a.get("dataset_info"):
        typer.echo(f"  dataset_info.json: {a['dataset_info']}")


@app.command("generate")
def generate(
    collection: CollectionOption,
    dataset: Annotated[str, typer.Option("--dataset", "-d", help="dataset name (folder prefix <dataset>-<format>)")],
    llm: Annotated[
        str | None, typer.Option("--llm", help="local | openai:URL | sagemaker:ENDPOINT (env DOCMILL_LLM__SPEC)")
    ] = None,
    questions_per_chunk: Annotated[int, typer.Option("--questions-per-chunk", "-q", min=1, max=20)] = 3,
    formats: Annotated[list[str] | None, typer.Option("--formats", "-f", help=FORMATS_HELP)] = None,
    out: Annotated[
        str | None, typer.Option("--out", "-o", help="folder or s3://bucket/prefix (default <home>/datasets/<dataset>)")
    ] = None,
    max_chunks: Annotated[int | None, typer.Option("--max-chunks", min=1, help="sample at most this many chunks")] = None,
    budget_tokens: Annotated[
        int | None, typer.Option("--budget-tokens", min=1, help="stop cleanly after this many tokens")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="print planned calls and a token estimate, call nothing")] = False,
    json_out: JsonOption = False,
    home: HomeOption = None,
    concurrency: Annotated[int | None, typer.Option("--concurrency", min=1, max=256, help="parallel LLM calls")] = None,
    seed: Annotated[int, typer.Option("--seed", help="sampling, split and strategy seed")] = 0,
    prompts: Annotated[
        Path | None, typer.Option("--prompts", help="folder of prompt overrides (question/answer/rejected/judge.yaml)")
    ] = None,
    top_k: Annotated[int, typer.Option("--top-k", min=1, max=50, help="chunks retrieved per question")] = 4,
    min_margin: Annotated[
        float | None, typer.Option("--min-margin", min=0, max=4, help="judge margin a preference pair needs")
    ] = None,
    judge: Annotated[
        str, typer.Option("--judge", help="auto (LLM judge unless the model is too small to judge) | llm | none")
    ] = "auto",
    answer_mode: Annotated[
        str,
        typer.Option("--answer-mode", help="auto (extractive for small models) | generative | extractive"),
    ] = "auto",
    min_support: Annotated[
        float | None, typer.Option("--min-support", min=0, max=1, help="support by context a chosen answer needs")
    ] = None,
    min_support_gap: Annotated[
        float | None, typer.Option("--min-support-gap", min=0, max=1, help="chosen - rejected support of a pair")
    ] = None,
    max_source_rank: Annotated[
        int | None, typer.Option("--max-source-rank", min=1, help="drop questions whose search ranks their source lower")
    ] = None,
    license_id: Annotated[
        str, typer.Option("--license", help="license written to the dataset card (hub identifier, e.g. cc-by-4.0)")
    ] = "other",
    restart: Annotated[
        bool,
        typer.Option("--restart", help="discard the shards of an earlier run into the same --out instead of resuming it"),
    ] = False,
) -> None:
    """Generate fine-tuning datasets (sft, completion, text, dpo, rlhf, preference) from a collection."""
    from docmill.config import load_settings
    from docmill.generation import GenerationConfig, collection_chunks, load_prompts, plan, run_generation
    from docmill.generation.models import CurationConfig
    from docmill.generation.prompts import collection_prompts_dir

    try:
        settings = load_settings(home=home)
        if concurrency is not None:
            settings.llm.concurrency = concurrency
        if prompts is not None and not prompts.is_dir():
            raise ConfigurationError(f"--prompts {prompts} is not a folder")
        fmt_list = _parse_formats(formats)
        thresholds = {
            "min_margin": min_margin,
            "min_support": min_support,
            "min_support_gap": min_support_gap,
            "max_source_rank": max_source_rank,
        }
        curation = CurationConfig(**{k: v for k, v in thresholds.items() if v is not None})
        if judge not in ("auto", "llm", "none"):
            raise ConfigurationError(f"--judge must be auto, llm or none, not {judge!r}")
        if answer_mode not in ("auto", "generative", "extractive"):
            raise ConfigurationError(f"--answer-mode must be auto, generative or extractive, not {answer_mode!r}")
        config = GenerationConfig(
            collection=collection,
            dataset=dataset,
            tenant=settings.tenant,
            questions_per_chunk=questions_per_chunk,
            max_chunks=max_chunks,
            seed=seed,
            top_k=top_k,
            license=license_id,
            concurrency=settings.llm.concurrency,
            budget_tokens=budget_tokens,
            curation=curation,
            judge=judge,
            answer_mode=answer_mode,
            **({"formats": fmt_list} if fmt_list else {}),
        )
        prompt_set = load_prompts([prompts, collection_prompts_dir(settings.home, collection)])
        store = _open_vector_store(settings)
        if store is None:
            raise ConfigurationError("generation retrieves context from a vector index: set DOCMILL_STORE to local or opensearch")
        chunks = list(collection_chunks(store, collection, tenant=settings.tenant, home=settings.home))
        if not chunks:
            raise ConfigurationError(f"collection {collection!r} has no chunks: run `docmill ingest` first")

        if dry_run:
            summary = plan(chunks, config, prompts=prompt_set).summary()
            if json_out:
                typer.echo(json.dumps({"dry_run": True, **summary}, ensure_ascii=False))
            else:
                _print_plan(summary)
            return

        from docmill.storage import open_store

        out_location = out or str(Path(settings.home) / "datasets" / dataset)
        out_store = open_store(out_location)
        client = _make_llm(llm or settings.llm.spec, settings)
        embedder = _embedder(settings)
        result = _run_with_progress(
            run_generation,
            chunks=chunks,
            config=config,
            llm=client,
            store=store,
            embedder=embedder,
            out=out_store,
            prompts=prompt_set,
            show=not json_out,
            resume=not restart,
        )
    except (DocmillError, ValueError) as exc:
        message = exc.message if isinstance(exc, DocmillError) else str(exc)
        code = exc.code if isinstance(exc, DocmillError) else "ValueError"
        if json_out:
            typer.echo(json.dumps({"error": code, "message": message}, ensure_ascii=False))
        else:
            typer.echo(f"error: {message}", err=True)
        raise typer.Exit(2 if isinstance(exc, (ConfigurationError, ValueError)) else 1) from None

    data = result.model_dump()
    if json_out:
        a = data["assembled"]
        typer.echo(
            json.dumps(
                {
                    "dataset": a["dataset"],
                    "run_id": a["run_id"],
                    "out": a["out"],
                    "stopped": data["stopped"],
                    "records_generated": a["records_generated"],
                    "records_kept": a["records_kept"],
                    "preference_pairs": a["preference_pairs"],
                    "counts": a["counts"],
                    "drops": a["drops"],
                    "paths": a["paths"],
                    "archives": a["archives"],
                    "dataset_info": a["dataset_info"],
                    "card": a["card"],
                    "provenance": a["provenance"],
                    "report": a["report"],
                    "plan": data["plan"],
                    "quality": a["quality"],
                },
                ensure_ascii=False,
            )
        )
    else:
        _print_summary(data)
    if not data["assembled"]["records_kept"]:
        if not json_out:
            typer.echo("error: no record was kept: every dataset is empty (see the drops above and the run report)", err=True)
        raise typer.Exit(1)


def _run_with_progress(run: Any, *, show: bool, **kwargs: Any) -> Any:
    if not show:
        return run(**kwargs)
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    with Progress(
        TextColumn("chunks"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[records]} records"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as bar:
        task = bar.add_task("generate", total=None, records=0)

        def on_plan(p: Any) -> None:
            bar.update(task, total=p.chunks_sampled)
            console.print(
                f"planned {p.chunks_sampled} chunks, {p.estimate.total_calls} calls, "
                f"~{p.estimate.total_tokens:,} tokens at most"
            )

        def progress(done: int, total: int, records: int) -> None:
            bar.update(task, completed=done, total=total, records=records)

        return run(progress=progress, on_plan=on_plan, **kwargs)
