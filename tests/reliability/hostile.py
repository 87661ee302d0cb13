"""Hostile and unlucky inputs, built by the tests themselves (nothing checked in)."""

from __future__ import annotations

from pathlib import Path


def blank_pdf(path: Path, pages: int) -> Path:
    """A PDF of blank pages: no text layer, so docmill would OCR every page."""
    from pypdf import PdfWriter

    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=612, height=792)
    with path.open("wb") as fh:
        writer.write(fh)
    return path
