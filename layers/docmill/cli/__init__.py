"""The ``docmill`` command line. Each command lives in its own module and registers on ``app``."""

from __future__ import annotations

from docmill.cli.app import app

# Importing a command module registers its command(s) on ``app``.
from docmill.cli import ingest as _ingest  # noqa: F401
from docmill.cli import sync as _sync  # noqa: F401
from docmill.cli import generate as _generate  # noqa: F401
from docmill.cli import demo as _demo  # noqa: F401
from docmill.cli import search as _search  # noqa: F401
from docmill.cli import dev as _dev  # noqa: F401
from docmill.cli import workflow as _workflow  # noqa: F401
from docmill.cli import serve as _serve  # noqa: F401
from docmill.cli import finetune as _finetune  # noqa: F401


def main() -> None:
    app()


__all__ = ["app", "main"]
