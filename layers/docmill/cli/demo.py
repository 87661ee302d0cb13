"""``docmill demo``: offline, no AWS: ingest the bundled sample documents, generate every
dataset format with the embedded model, show where they are and a few records."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import typer

from docmill.cli.app import HomeOption, JsonOption, app
from docmill.cli.generate import _embedder, _make_llm, _open_vector_store
from docmill.errors import ConfigurationError, DocmillError

DEMO_COLLECTION = "demo"
DEMO_DATASET = "demo"


def samples_dir() -> Path:
    """The sample documents shipped inside the package (``docmill/demo/samples``)."""
    path = Path(str(resources.files("docmill.demo").joinpath("samples")))
    if not path.is_dir():
        raise ConfigurationError(f"demo samples missing at {path}")
    return path


def _ingest(settings: Any, inputs: list[str]) -> Any:
    from docmill.cli.ingest import build_ingestor

    ingestor = build_ingestor(settings, collection=DEMO_COLLECTION, out=None, store=None)
    return ingestor.run(inputs)


def _first_record(paths: dict[str, str]) -> dict[str, Any] | None:
    for split in ("train", "val", "test"):
        location = paths.get(split)
        if location and not location.startswith("s3://") and Path(location).is_file():
            for line in Path(location).read_text(encoding="utf-8").splitlines():
                if line.strip():
                    return json.loads(line)
    return None


@app.command("demo")
def demo(
    home: HomeOption = None,
    out: Annotated[str | None, typer.Option("--out", "-o", help="datasets folder (default <home>/datasets/demo)")] = None,
    llm: Annotated[str | None, typer.Option("--llm", help="model (default: the embedded local model)")] = "local",
    max_chunks: Annotated[int, typer.Option("--max-chunks", min=1, help="chunks to generate from")] = 4,
    questions_per_chunk: Annotated[int, typer.Option("--questions-per-chunk", "-q", min=1, max=10)] = 1,
    json_out: JsonOption = False,
) -> None:
    """Ingest the bundled sample documents and generate every dataset format, offline."""
    from docmill.config import load_settings
    from docmill.generation import GenerationConfig, collection_chunks, load_prompts, run_generation
    from docmill.generation.models import StageParams
    from docmill.storage import open_store

    say = (lambda *_: None) if json_out else typer.echo
    try:
        settings = load_settings(home=home)
        samples = samples_dir()
        say(f"1/2 ingesting the sample documents in {samples} into collection '{DEMO_COLLECTION}' ...")
        ingest_report = _ingest(settings, [str(samples)])
        store = _open_vector_store(settings)
        if store is None:
            raise ConfigurationError("the demo needs a vector index: set DOCMILL_STORE=local")
        chunks = list(collection_chunks(store, DEMO_COLLECTION, tenant=settings.tenant, home=settings.home))
        if not chunks:
            raise ConfigurationError("ingesting the samples produced no chunks")
        say(f"    {len(chunks)} chunks indexed")
        config = GenerationConfig(
            collection=DEMO_COLLECTION,
            dataset=DEMO_DATASET,
            tenant=settings.tenant,
            questions_per_chunk=questions_per_chunk,
            max_chunks=max_chunks,
            concurrency=settings.llm.concurrency,
            min_chunk_chars=80,
            # Short outputs keep the CPU model to a few minutes; a real endpoint uses the defaults.
            stage_params=(
                {
                    "question": StageParams(max_tokens=256),
                    "answer": StageParams(max_tokens=160),
                    "rejected": StageParams(max_tokens=96),
                    "judge": StageParams(max_tokens=96),
                }
                if (llm or "local") == "local"
                else {}
            ),
        )
        out_location = out or str(Path(settings.home) / "datasets" / DEMO_DATASET)
        say(f"2/2 generating datasets with '{llm or settings.llm.spec}' (this takes a few minutes on a CPU) ...")
        client = _make_llm(llm or settings.llm.spec, settings)
        result = run_generation(
            chunks,
            config,
            llm=client,
            store=store,
            embedder=_embedder(settings),
            out=open_store(out_location),
            prompts=load_prompts(),
            progress=(None if json_out else (lambda done, total, records: typer.echo(f"    chunk {done}/{total}, {records} records"))),
        )
    except (DocmillError, ValueError) as exc:
        message = exc.message if isinstance(exc, DocmillError) else str(exc)
        if json_out:
            typer.echo(json.dumps({"error": getattr(exc, "code", "ValueError"), "message": message}))
        else:
            typer.echo(f"error: {message}", err=True)
        raise typer.Exit(2 if isinstance(exc, (ConfigurationError, ValueError)) else 1) from None

    a = result.assembled
    examples = {fmt: _first_record(a["paths"][fmt]) for fmt in ("sft", "dpo", "rlhf") if fmt in a["paths"]}
    if json_out:
        typer.echo(
            json.dumps(
                {
                    "ingest": ingest_report.totals.model_dump() if hasattr(ingest_report, "totals") else None,
                    "out": a["out"],
                    "records_generated": a["records_generated"],
                    "records_kept": a["records_kept"],
                    "preference_pairs": a["preference_pairs"],
                    "counts": a["counts"],
                    "drops": a["drops"],
                    "paths": a["paths"],
                    "card": a["card"],
                    "examples": examples,
                },
                ensure_ascii=False,
            )
        )
        return
    typer.echo("")
    typer.echo(f"Datasets are in {a['out']}:")
    for fmt, counts in a["counts"].items():
        if fmt not in a["paths"]:
            typer.echo(f"  {fmt}: no records, not written")
            continue
        typer.echo(f"  {a['paths'][fmt]['tar.gz']}  (train {counts['train']}, val {counts['val']}, test {counts['test']})")
    typer.echo(f"  dataset card: {a['card']}")
    typer.echo(
        f"{a['records_generated']} records generated, {a['records_kept']} kept, {a['preference_pairs']} preference pairs"
    )
    if a["drops"]:
        typer.echo("  dropped: " + ", ".join(f"{k} {v}" for k, v in sorted(a["drops"].items())))
    for fmt, record in examples.items():
        if record:
            typer.echo(f"\nExample {fmt} record:")
            typer.echo(json.dumps(record, ensure_ascii=False, indent=2)[:1500])
    if not any(examples.values()):
        typer.echo(
            "\nThe small offline model produced no record that passed curation this time; see the "
            "dataset card and run_report.json (parse_failure_samples). Try --max-chunks 8, or a "
            "bigger model with --llm openai:URL."
        )
