"""PDF checks that run before partitioning: encryption, page limits, structural damage."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

from docmill.errors import CorruptDocument, DocumentTooLarge, EncryptedDocument

_STARTXREF = re.compile(rb"startxref\s+(\d+)\s+%%EOF", re.S)


@dataclass(frozen=True)
class PdfInfo:
    pages: int


def inspect_pdf(data: bytes, *, max_pages: int, strict: bool = True) -> PdfInfo:
    """Page count, or a ``DocumentError`` for encrypted, damaged or over-long PDFs.

    ``strict`` refuses files whose structure readers must repair (a trailer without its
    ``startxref`` offset, damaged streams): their text may come out incomplete or in the
    wrong order, and a dataset built on it cannot be trusted. Turn it off to ingest what can be
    recovered.
    """
    import pikepdf

    try:
        pdf = pikepdf.open(io.BytesIO(data))
    except pikepdf.PasswordError as exc:
        raise EncryptedDocument("the PDF needs a password to open") from exc
    except pikepdf.PdfError as exc:
        raise CorruptDocument(f"the PDF cannot be read: {_short(exc)}") from exc
    with pdf:
        if pdf.is_encrypted:
            raise EncryptedDocument(
                "the PDF is encrypted with an owner password (copy protection); docmill does not bypass it"
            )
        pages = len(pdf.pages)
        if pages > max_pages:
            raise DocumentTooLarge(f"{pages} pages is over the limit of {max_pages} (raise --max-pages)")
        if strict:
            _check_structure(data, pdf)
    if pages == 0:
        raise CorruptDocument("the PDF has no pages")
    return PdfInfo(pages=pages)


def _check_structure(data: bytes, pdf) -> None:  # noqa: ANN001 - pikepdf.Pdf
    tail = data[-2048:]
    if b"startxref" in tail and not _STARTXREF.search(tail):
        raise CorruptDocument(
            "invalid PDF structure: the trailer's 'startxref' has no offset, so the cross-reference table "
            "cannot be found; re-export the PDF (or use --lenient-pdf to ingest what can be recovered)"
        )
    problems = [str(p) for p in pdf.check_pdf_syntax()]
    serious = [p for p in problems if "handled correctly" not in p]
    if serious:
        raise CorruptDocument(
            f"damaged PDF: {_short(serious[0])}; re-export the PDF (or use --lenient-pdf to ingest what can be recovered)"
        )


def _short(exc: object) -> str:
    text = str(exc)
    # qpdf prefixes messages with the file name, which is a temp path here.
    text = re.sub(r"^(WARNING: )?(stream )?(<[^>]*>|\S+?)\s*(\((offset \d+)\))?:\s*", r"\5: ", text).lstrip(": ")
    return text[:200]
