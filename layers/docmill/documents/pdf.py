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


def inspect_pdf(
    data: bytes, *, max_pages: int, strict: bool = True, max_ocr_pages: int | None = None, strategy: str = "auto"
) -> PdfInfo:
    """Page count, or a ``DocumentError`` for encrypted, damaged or over-long PDFs.

    ``max_ocr_pages`` refuses, before any page is rendered, a PDF that would need OCR on more
    pages than that: one read with the ``ocr_only`` strategy, or one with no font at all (no
    text layer can exist without one), such as thousands of blank pages.

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
        try:
            pages = len(pdf.pages)
        except pikepdf.PdfError as exc:  # e.g. a /Pages tree whose /Kids lead back to itself
            raise CorruptDocument(f"the PDF's page tree is damaged: {_short(exc)}") from exc
        if pages > max_pages:
            raise DocumentTooLarge(f"{pages} pages is over the limit of {max_pages} (raise --max-pages)")
        if max_ocr_pages is not None and pages > max_ocr_pages and strategy != "fast":
            if strategy == "ocr_only":
                raise DocumentTooLarge(ocr_limit_reason(pages, max_ocr_pages, "the strategy is ocr_only"))
            if not _has_fonts(pdf):
                raise DocumentTooLarge(ocr_limit_reason(pages, max_ocr_pages, "the PDF has no fonts, so no text layer"))
        if strict:
            _check_structure(data, pdf)
    if pages == 0:
        raise CorruptDocument("the PDF has no pages")
    return PdfInfo(pages=pages)


def ocr_limit_reason(pages: int, max_ocr_pages: int, why: str) -> str:
    return (
        f"{why}: reading it needs OCR of {pages} pages, over the limit of {max_ocr_pages} "
        "(raise --max-ocr-pages)"
    )


def _has_fonts(pdf) -> bool:  # noqa: ANN001 - pikepdf.Pdf
    """Whether any object is a font or names one in its resources (pages, inherited
    resources, form XObjects). Text is drawn only with a font, so without one there is none."""
    import pikepdf

    for obj in pdf.objects:
        if not isinstance(obj, (pikepdf.Dictionary, pikepdf.Stream)):
            continue
        if obj.get("/Type") == pikepdf.Name.Font:
            return True
        resources = obj.get("/Resources")
        if isinstance(resources, pikepdf.Dictionary):
            fonts = resources.get("/Font")
            if isinstance(fonts, pikepdf.Dictionary) and len(fonts.keys()) > 0:
                return True
    return False


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
    text = re.sub(r"^(WARNING: )?(stream )?(<[^>]*>|\S+?)\s*(\((offset \d+|object \d+ \d+)\))?:\s*", r"\5: ", text).lstrip(": ")
    return text[:200]
