"""The ``docmill`` command line. Each command lives in its own module and registers on ``app``."""

from __future__ import annotations

from docmill.cli.app import app

# Importing a command module registers its command(s) on ``app``.
from docmill.cli import ingest as _ingest  # noqa: E402,F401
from docmill.cli import sync as _sync  # noqa: E402,F401
from docmill.cli import generate as _generate  # noqa: E402,F401
from docmill.cli import demo as _demo  # noqa: E402,F401
from docmill.cli import evaluate as _evaluate  # noqa: E402,F401
from docmill.cli import search as _search  # noqa: E402,F401
from docmill.cli import dev as _dev  # noqa: E402,F401
from docmill.cli import workflow as _workflow  # noqa: E402,F401


def main() -> None:
    app()


__all__ = ["app", "main"]
