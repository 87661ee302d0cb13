from __future__ import annotations

import json
import sys
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from docmill.cli.app import CollectionOption, HomeOption, JsonOption, app
from docmill.config import ChunkingOptions, IngestOptions, PartitionOptions, Settings, load_settings
from docmill.errors import DocmillError
from docmill.models import FileResult, IngestReport
from docmill.storage import open_store

T = TypeVar("T")

if TYPE_CHECKING:  # the pipeline imports the heavy stack; commands that do not ingest skip it
    from docmill.ingest import Ingestor
    from docmill.ingest.pipeline import IngestProgress


class RichProgress:
    """A progress bar over files (and pages once known) on a terminal; silent otherwise."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[pages]} pages"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
            disable=not console.is_terminal,
        )
        self.task: TaskID | None = None
        self.pages = 0

    def __enter__(self) -> RichProgress:
        self.bar.__enter__()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.bar.__exit__(exc_type, exc, tb)

    def started(self, total_files: int) -> None:
        self.task = self.bar.add_task("ingesting", total=total_files, pages=0)

    def file_started(self, source: str) -> None:
        pass

    def file_finished(self, result: FileResult) -> None:
        self.pages += result.pages or 0
        if self.task is not None:
            self.bar.update(self.task, advance=1, pages=self.pages, description=Path(result.source).name[:40])


def build_ingestor(
    settings: Settings,
    *,
    collection: str,
    out: str | None,
    store: str | None,
    progress: IngestProgress | None = None,
    lenient_pdf: bool = False,
    embed: bool = True,
) -> Ingestor:
    """Wire an Ingestor from settings: output location, embedder, vector store."""
    from docmill.embeddings import embedder_for, model_id_for
    from docmill.ingest import Ingestor

    output = open_store(out) if out else open_store(str(settings.home))
    vector_store = None
    store_kind = store or settings.store
    if store_kind != "none":
        from docmill.vectorstores.factory import open_vector_store

        vector_store = open_vector_store(settings.model_copy(update={"store": store_kind}))
    return Ingestor(
        output=output,
        collection=collection,
        tenant=settings.tenant,
        options=settings.ingest,
        # Loaded on first use: a run that skips every file never loads the model.
        embedder=(lambda: embedder_for(settings, batch_size=settings.ingest.embed_batch_size)) if embed else None,
        embedding_model_id=model_id_for(settings.embedder) if embed else None,
        vector_store=vector_store,
        progress=progress,
        lenient_pdf=lenient_pdf,
    )


def print_summary(console: Console, report: IngestReport) -> None:
    table = Table(title=f"docmill ingest: collection '{report.collection}'", show_lines=False)
    for col in ("file", "status", "type", "pages", "elements", "chunks", "seconds", "reason"):
        table.add_column(col, overflow="fold")
    styles = {"ok": "green", "failed": "red", "skipped": "yellow"}
    for f in report.files:
        table.add_row(
            Path(f.source).name,
            f"[{styles[f.status]}]{f.status}[/]",
            f.file_type or "",
            str(f.pages or ""),
            str(f.elements),
            str(f.chunks),
            f"{f.seconds:.1f}",
            f.reason or "",
        )
    console.print(table)
    t = report.totals
    console.print(
        f"[bold]{t.files}[/] files: [green]{t.ok} ok[/], [yellow]{t.skipped} skipped[/], [red]{t.failed} failed[/]; "
        f"{t.pages} pages, {t.elements} elements, {t.chunks} chunks in {t.seconds:.1f} s"
    )
    if report.pruned:
        console.print(f"pruned {len(report.pruned)} sources no longer present: " + ", ".join(report.pruned))


def _given(value: T | None, default: T) -> T:
    return default if value is None else value


@app.command()
def ingest(
    inputs: Annotated[list[str], typer.Argument(help="files, folders (walked recursively), s3://bucket/key or prefix")],
    collection: CollectionOption = "default",
    home: HomeOption = None,
    out: Annotated[str | None, typer.Option("--out", help="write outputs here: a folder or s3://bucket/prefix")] = None,
    store: Annotated[str | None, typer.Option("--store", help="vector index: local | opensearch | none")] = None,
    chunking: Annotated[str, typer.Option("--chunking", help="by_title | basic")] = "by_title",
    max_characters: Annotated[int, typer.Option(help="hard chunk size limit")] = 1000,
    new_after_n_chars: Annotated[int, typer.Option(help="soft limit: start a new chunk after this")] = 800,
    overlap: Annotated[int, typer.Option(help="characters of overlap between split chunks")] = 0,
    combine_under: Annotated[int, typer.Option("--combine-under", help="merge sections shorter than this (by_title)")] = 200,
    pdf_strategy: Annotated[str, typer.Option(help="auto (fast, OCR if no text layer) | fast | ocr_only")] = "auto",
    max_file_mb: Annotated[float, typer.Option(help="refuse files larger than this")] = 200.0,
    max_pages: Annotated[int, typer.Option(help="refuse documents with more pages than this")] = 5000,
    max_ocr_pages: Annotated[
        int | None, typer.Option(help="refuse PDFs that would need OCR on more pages than this (default 100)")
    ] = None,
    max_unzipped_mb: Annotated[
        float | None, typer.Option(help="refuse DOCX/XLSX/PPTX/ODT/EPUB declaring more than this unzipped (default 512)")
    ] = None,
    max_zip_ratio: Annotated[
        float | None, typer.Option(help="refuse a package member that inflates more times than this (default 100)")
    ] = None,
    file_timeout: Annotated[
        float | None, typer.Option("--file-timeout", help="seconds one file may take in its worker (0 = no limit; default 600)")
    ] = None,
    file_memory_mb: Annotated[
        int | None, typer.Option(help="MB one file may add to its worker (0 = no limit; default 1024)")
    ] = None,
    workers: Annotated[int, typer.Option(help="parallel partition processes (0 = one per core)")] = 0,
    batch_size: Annotated[int, typer.Option(help="embedding batch size (1, the default, is fastest on a CPU)")] = 1,
    embed_runtime: Annotated[
        str | None, typer.Option("--embed-runtime", help="ctranslate2-int8 | onnx-int8 | onnx | torch (env DOCMILL_EMBED_RUNTIME; default ctranslate2-int8)")
    ] = None,
    lenient_pdf: Annotated[bool, typer.Option("--lenient-pdf", help="ingest what can be recovered from damaged PDFs")] = False,
    force: Annotated[bool, typer.Option("--force", help="re-process unchanged files too")] = False,
    prune: Annotated[
        bool, typer.Option("--prune", help="forget sources under the given folders/prefixes that no longer exist")
    ] = False,
    tenant: Annotated[str | None, typer.Option(help="tenant id stored with every chunk")] = None,
    as_json: JsonOption = False,
) -> None:
    """Partition, clean, chunk and embed documents; write chunks with lineage; index them."""
    console = Console(stderr=as_json)
    try:
        # Limits not given here come from the environment (DOCMILL_INGEST__FILE_TIMEOUT_S, ...).
        env = load_settings().ingest
        options = IngestOptions(
            partition=PartitionOptions(
                pdf_strategy=pdf_strategy,
                max_file_bytes=int(max_file_mb * 1024 * 1024),
                max_pages=max_pages,
                max_ocr_pages=_given(max_ocr_pages, env.partition.max_ocr_pages),
                max_unzipped_bytes=int(_given(max_unzipped_mb, env.partition.max_unzipped_bytes / (1024 * 1024)) * 1024 * 1024),
                max_zip_ratio=_given(max_zip_ratio, env.partition.max_zip_ratio),
                max_zip_members=env.partition.max_zip_members,
            ),
            chunking=ChunkingOptions(
                strategy=chunking,
                max_characters=max_characters,
                new_after_n_chars=new_after_n_chars,
                overlap=overlap,
                combine_text_under_n_chars=combine_under,
            ),
            workers=workers,
            embed_batch_size=batch_size,
            force=force,
            file_timeout_s=_given(file_timeout, env.file_timeout_s),
            file_memory_mb=_given(file_memory_mb, env.file_memory_mb),
        )
        settings = load_settings(home=home, tenant=tenant, ingest=options, embed_runtime=embed_runtime)
        from docmill.lock import home_lock

        # One ingest per home at a time: the second one stops here with "another run holds HOME".
        with home_lock(settings.home, command="docmill ingest"), RichProgress(console) as progress:
            ingestor = build_ingestor(settings, collection=collection, out=out, store=store, progress=progress, lenient_pdf=lenient_pdf)
            report = ingestor.run(inputs, prune=prune)
    except (DocmillError, ValueError) as exc:
        console.print(f"[red]error:[/] {getattr(exc, 'message', exc)}")
        raise typer.Exit(2) from exc
    if as_json:
        sys.stdout.write(json.dumps(report.summary_json(), ensure_ascii=False) + "\n")
    else:
        print_summary(console, report)
    raise typer.Exit(0 if report.all_ok else 1)
