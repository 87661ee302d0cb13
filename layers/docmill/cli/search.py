"""``docmill search "query text" [--collection NAME]``: nearest chunks from the vector index (the
collection `docmill ingest` fills by default, "default", unless one is named)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from docmill.cli.app import CollectionOption, HomeOption, JsonOption, app
from docmill.errors import DocmillError

SNIPPET_CHARS = 160


def _snippet(text: str, limit: int = SNIPPET_CHARS) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def _display_source(uri: str) -> str:
    """The file name: full URIs are in ``--json``; a table column cannot hold them."""
    name = uri.rstrip("/").rsplit("/", 1)[-1]
    return name or uri


@app.command("search")
def search(
    query: Annotated[str, typer.Argument(help="what to look for, in plain words")],
    collection: CollectionOption = "default",
    k: Annotated[int, typer.Option("-k", "--k", min=1, max=1000, help="how many chunks")] = 5,
    json_output: JsonOption = False,
    home: HomeOption = None,
    store: Annotated[
        str | None, typer.Option("--store", help="local | opensearch (env DOCMILL_STORE)", show_default=False)
    ] = None,
    hybrid: Annotated[bool, typer.Option("--hybrid", help="combine BM25 keyword scores with k-NN")] = False,
    tenant: Annotated[str | None, typer.Option("--tenant", help="tenant (env DOCMILL_TENANT)")] = None,
) -> None:
    """Embed QUERY and print the nearest chunks with score, source, pages and a snippet."""
    from docmill.config import load_settings
    from docmill.embeddings import embedder_for
    from docmill.vectorstores import SearchFilter, open_vector_store

    if store is not None and store not in ("local", "opensearch"):
        raise typer.BadParameter("use local or opensearch", param_hint="--store")
    try:
        settings = load_settings(home=home, store=store, tenant=tenant)
        vector_store = open_vector_store(settings)
        if vector_store is None:
            raise DocmillError("no vector store is configured (store is 'none'): use --store local or opensearch")
        with vector_store:
            vector = embedder_for(settings).embed_query(query)
            filters = SearchFilter(collection=collection, tenant=settings.tenant)
            hits = (
                vector_store.search_hybrid(query, vector, k, filters)
                if hybrid
                else vector_store.search(vector, k, filters)
            )
    except DocmillError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(code=2) from exc

    if json_output:
        results: list[dict[str, Any]] = [
            {"chunk_id": h.chunk_id, "score": h.score, "source": h.source_uri, "pages": h.page_numbers, "text": h.text}
            for h in hits
        ]
        typer.echo(json.dumps({"results": results}, ensure_ascii=False))
        return

    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not hits:
        console.print(f"no chunks found in collection [bold]{collection}[/bold]")
        return
    table = Table(title=f"{len(hits)} nearest chunks in {collection}" + (" (hybrid)" if hybrid else ""))
    table.add_column("score", justify="right", style="cyan", no_wrap=True)
    table.add_column("source", style="green", overflow="fold")
    table.add_column("pages", justify="right", no_wrap=True)
    table.add_column("snippet")
    for hit in hits:
        pages = ",".join(str(p) for p in hit.page_numbers) or "-"
        table.add_row(f"{hit.score:.3f}", _display_source(hit.source_uri), pages, _snippet(hit.text))
    console.print(table)
