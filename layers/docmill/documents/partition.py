"""Partition one file with Unstructured, choosing the strategy by type."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from docmill.config import PartitionOptions
from docmill.documents.filetypes import FileKind
from docmill.documents.unstructured_setup import configure_unstructured, tesseract_available
from docmill.errors import DocumentError, DocumentTooLarge, EmptyDocument, EncryptedDocument, OcrUnavailable, PartitionFailed

_TEXT_CATEGORIES_IGNORED_FOR_EMPTINESS = {"PageBreak", "PageNumber", "Header", "Footer", "Image"}


def partition_file(
    path: Path, kind: FileKind, options: PartitionOptions, *, name: str, pages: int | None = None
) -> tuple[list[Any], str]:
    """Return (elements, strategy used). Raises ``DocumentError`` with a readable reason.

    ``pages`` (a PDF's page count, from the checks) lets OCR be refused beyond ``max_ocr_pages``."""
    configure_unstructured()
    if kind.file_type == "image":
        return _partition_image(path, options, name=name), "ocr_only"
    if kind.file_type == "pdf":
        return _partition_pdf(path, options, name=name, pages=pages)
    elements = call_partition(path, name=name, strategy="fast", options=options)
    return elements, "fast"


def call_partition(path: Path, *, name: str, strategy: str, options: PartitionOptions, **extra: Any) -> list[Any]:
    from unstructured.partition.auto import partition

    try:
        return partition(
            filename=str(path),
            metadata_filename=name,
            strategy=strategy,
            languages=[options.ocr_languages],
            include_page_breaks=False,
            **extra,
        )
    except DocumentError:
        raise
    except Exception as exc:
        raise _translate(exc) from exc


def has_text(elements: list[Any]) -> bool:
    return any(
        (e.text or "").strip() and e.category not in _TEXT_CATEGORIES_IGNORED_FOR_EMPTINESS for e in elements
    )


def _partition_pdf(path: Path, options: PartitionOptions, *, name: str, pages: int | None) -> tuple[list[Any], str]:
    if options.pdf_strategy == "ocr_only":
        _require_ocr("the PDF strategy is ocr_only")
        _within_ocr_limit(pages, options, "the strategy is ocr_only")
        return call_partition(path, name=name, strategy="ocr_only", options=options), "ocr_only"
    elements = call_partition(path, name=name, strategy="fast", options=options)
    if has_text(elements) or options.pdf_strategy == "fast":
        return elements, "fast"
    # No text layer: a scanned PDF.
    _require_ocr("the PDF has no text layer (scanned pages)")
    _within_ocr_limit(pages, options, "the PDF has no text layer")
    return call_partition(path, name=name, strategy="ocr_only", options=options), "ocr_only"


def _within_ocr_limit(pages: int | None, options: PartitionOptions, why: str) -> None:
    if pages and pages > options.max_ocr_pages:
        from docmill.documents.pdf import ocr_limit_reason

        raise DocumentTooLarge(ocr_limit_reason(pages, options.max_ocr_pages, why))


def _require_ocr(why: str) -> None:
    if not tesseract_available():
        raise OcrUnavailable(f"{why}; install tesseract (apt-get install tesseract-ocr) to read it with OCR")


def _partition_image(path: Path, options: PartitionOptions, *, name: str) -> list[Any]:
    _require_ocr("images are read with OCR")
    elements = call_partition(path, name=name, strategy="ocr_only", options=options)
    if has_text(elements):
        return elements
    # A photo with no text: index what is known about it rather than nothing, so it can still
    # be found by name, date or camera.
    return [_image_description(path, name)]


def _image_description(path: Path, name: str) -> Any:
    from PIL import ExifTags, Image
    from unstructured.documents.elements import ElementMetadata, NarrativeText

    with Image.open(path) as im:
        width, height = im.size
        exif = {ExifTags.TAGS.get(k, str(k)): v for k, v in im.getexif().items()}
    parts = [f"Image {name} ({width}x{height} pixels)."]
    taken = exif.get("DateTimeOriginal") or exif.get("DateTime")
    if taken:
        parts.append(f"Taken {str(taken).replace(':', '-', 2)}.")
    camera = " ".join(str(exif[k]).strip() for k in ("Make", "Model") if exif.get(k))
    if camera:
        parts.append(f"Camera: {camera}.")
    for key in ("ImageDescription", "Artist", "Copyright"):
        if exif.get(key):
            parts.append(f"{key}: {str(exif[key]).strip()}.")
    parts.append("OCR found no text in this image.")
    return NarrativeText(
        text=" ".join(parts),
        metadata=ElementMetadata(filename=name, page_number=1, filetype="image"),
    )


def _translate(exc: Exception) -> DocumentError:
    text = f"{type(exc).__name__}: {exc}"
    low = text.lower()
    if "password" in low or "encrypt" in low:
        return EncryptedDocument(_first_line(str(exc)) or "the file is password-protected")
    if isinstance(exc, MemoryError):
        return PartitionFailed("ran out of memory; lower --max-pages / --max-file-mb or use the large-file path")
    return PartitionFailed(_first_line(text))


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return re.sub(r"\s+", " ", line)[:300]


def ensure_not_empty(elements: list[Any]) -> None:
    if not has_text(elements):
        raise EmptyDocument("no text could be extracted from the file")
