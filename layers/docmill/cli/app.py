from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from docmill import __version__

app = typer.Typer(
    name="docmill",
    help="Turn documents into a RAG-ready vector index and LLM fine-tuning datasets.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Shared option types, so every command spells them the same way.
HomeOption = Annotated[
    Path | None,
    typer.Option("--home", help="workspace folder (env DOCMILL_HOME, default ./.docmill)", show_default=False),
]
JsonOption = Annotated[bool, typer.Option("--json", help="print one JSON object for scripts")]
CollectionOption = Annotated[str, typer.Option("--collection", "-c", help="collection name")]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"docmill {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True)] = False,
) -> None:
    """docmill command line."""
