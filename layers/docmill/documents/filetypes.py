"""Decide what a file is and refuse, with a clear reason, what docmill cannot or must not parse.

Checks run on the bytes before Unstructured sees them, so an encrypted, empty, truncated or
mis-encoded file fails fast with a reason a person can act on instead of a stack trace or,
worse, a silent zero-element result.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import PurePosixPath

from docmill.errors import (
    CorruptDocument,
    EmptyDocument,
    EncodingProblem,
    EncryptedDocument,
    UnsupportedFileType,
)

# extension -> (docmill file type, paged?)
SUPPORTED: dict[str, tuple[str, bool]] = {
    ".pdf": ("pdf", True),
    ".docx": ("docx", True),
    ".doc": ("doc", True),
    ".odt": ("odt", True),
    ".rtf": ("rtf", False),
    ".pptx": ("pptx", True),
    ".ppt": ("ppt", True),
    ".xlsx": ("xlsx", True),
    ".xls": ("xls", True),
    ".csv": ("csv", False),
    ".tsv": ("tsv", False),
    ".html": ("html", False),
    ".htm": ("html", False),
    ".xml": ("xml", False),
    ".md": ("md", False),
    ".markdown": ("md", False),
    ".txt": ("txt", False),
    ".text": ("txt", False),
    ".log": ("txt", False),
    ".rst": ("rst", False),
    ".org": ("org", False),
    ".json": ("json", False),
    ".ndjson": ("ndjson", False),
    ".jsonl": ("ndjson", False),
    ".eml": ("eml", False),
    ".msg": ("msg", False),
    ".epub": ("epub", False),
    ".png": ("image", False),
    ".jpg": ("image", False),
    ".jpeg": ("image", False),
    ".tif": ("image", False),
    ".tiff": ("image", False),
    ".bmp": ("image", False),
    ".heic": ("image", False),
}

TEXT_TYPES = {"txt", "md", "rst", "org", "csv", "tsv", "html", "xml", "json", "ndjson"}
OOXML_TYPES = {"docx", "pptx", "xlsx"}
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
ARCHIVES = {".zip", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".7z", ".rar"}


@dataclass(frozen=True)
class FileKind:
    file_type: str
    extension: str
    paged: bool

    @property
    def is_text(self) -> bool:
        return self.file_type in TEXT_TYPES


def extension_of(name: str) -> str:
    """The lower-case suffix; a ``?`` is part of a file name or S3 key (``report?.pdf``), and
    only cut as a query string when the whole name has no known suffix."""
    ext = PurePosixPath(name).suffix.lower()
    if "?" in name and ext not in SUPPORTED and ext not in ARCHIVES:
        return PurePosixPath(name.split("?")[0]).suffix.lower()
    return ext


def detect(name: str, data: bytes) -> FileKind:
    """Classify ``data`` (the file's bytes) named ``name``, or raise a ``DocumentError``."""
    ext = extension_of(name)
    if not data:
        raise EmptyDocument("the file is 0 bytes")
    if ext in ARCHIVES:
        raise UnsupportedFileType(f"'{ext}' archives are not ingested; extract the files and ingest those")
    if ext not in SUPPORTED:
        shown = f"'{ext}'" if ext else "a file with no extension"
        raise UnsupportedFileType(
            f"{shown} is not a supported document type (supported: {', '.join(sorted({v[0] for v in SUPPORTED.values()}))})"
        )
    file_type, paged = SUPPORTED[ext]
    kind = FileKind(file_type, ext, paged)
    if kind.is_text:
        _check_text(data, kind)
    elif file_type in OOXML_TYPES:
        _check_ooxml(data, kind)
    elif file_type == "pdf" and not data.lstrip()[:5].startswith(b"%PDF"):
        raise CorruptDocument("not a PDF: the '%PDF' header is missing")
    elif file_type == "msg":
        _check_msg(data)
    return kind


def _decode_text(data: bytes) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    if b"\x00" in data[:4096]:
        # UTF-16 without a byte-order mark: every other byte of ASCII text is NUL.
        raise EncodingProblem(
            "the text looks like UTF-16 without a byte-order mark; re-save it as UTF-8 (or UTF-16 with a BOM)"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        guess = _guess_encoding(data)
        raise EncodingProblem(
            f"the text is not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start}"
            f"{'; it looks like ' + guess if guess else ''}); re-save it as UTF-8"
        ) from exc


def _guess_encoding(data: bytes) -> str | None:
    try:
        from charset_normalizer import from_bytes

        best = from_bytes(data).best()
        return best.encoding if best else None
    except Exception:  # noqa: BLE001 - a guess only improves the message
        return None


def _check_text(data: bytes, kind: FileKind) -> None:
    text = _decode_text(data)
    if not text.strip():
        raise EmptyDocument("the file holds only whitespace")
    stripped = text.lstrip()
    if kind.file_type == "json" or (kind.file_type == "txt" and stripped[:1] in "{["):
        try:
            json.loads(text)
        except json.JSONDecodeError as exc:
            if kind.file_type == "json" or _looks_like_truncated_json(text):
                raise CorruptDocument(
                    f"malformed JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}); the file looks truncated"
                ) from exc


def _looks_like_truncated_json(text: str) -> bool:
    """A '.txt' that opens like a JSON document but never closes it: a cut-off export."""
    opens = text.count("{") + text.count("[")
    closes = text.count("}") + text.count("]")
    return opens > closes


def _check_ooxml(data: bytes, kind: FileKind) -> None:
    if data.startswith(OLE_MAGIC):
        if _ole_is_encrypted(data):
            raise EncryptedDocument(f"the {kind.file_type.upper()} file is password-protected")
        raise CorruptDocument(f"the file is an old binary Office file, not {kind.file_type.upper()}")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            bad = zf.testzip()
            names = set(zf.namelist())
    except zipfile.BadZipFile as exc:
        raise CorruptDocument(f"the {kind.file_type.upper()} container is not a valid ZIP package: {exc}") from exc
    if bad is not None:
        raise CorruptDocument(f"the {kind.file_type.upper()} package has a damaged part: {bad}")
    if "[Content_Types].xml" not in names:
        raise CorruptDocument(f"the {kind.file_type.upper()} package has no [Content_Types].xml")


def _ole_is_encrypted(data: bytes) -> bool:
    try:
        import msoffcrypto

        return bool(msoffcrypto.OfficeFile(io.BytesIO(data)).is_encrypted())
    except Exception:  # noqa: BLE001 - fall back to the stream name every encrypted package has
        return b"E\x00n\x00c\x00r\x00y\x00p\x00t\x00e\x00d\x00P\x00a\x00c\x00k\x00a\x00g\x00e" in data


def _check_msg(data: bytes) -> None:
    if not data.startswith(OLE_MAGIC):
        raise CorruptDocument("not an Outlook message: the OLE header is missing")
    try:
        from oxmsg import Message

        msg = Message.load(io.BytesIO(data))
        content_type = msg.message_headers.get("Content-Type", "")
        message_class = (msg.message_class or "").upper()
    except Exception as exc:
        raise CorruptDocument(f"the Outlook message cannot be read: {exc}") from exc
    if "encrypted" in content_type or "pkcs7-mime" in content_type or message_class.startswith("IPM.NOTE.SMIME"):
        raise EncryptedDocument("the email is encrypted (PGP/S-MIME); its body cannot be read without the key")
