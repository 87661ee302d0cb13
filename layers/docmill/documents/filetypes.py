"""Decide what a file is and refuse, with a clear reason, what docmill cannot or must not parse.

Checks run on the bytes before Unstructured sees them, so an encrypted, empty, truncated or
mis-encoded file fails fast with a reason a person can act on instead of a stack trace or,
worse, a silent zero-element result. Files built to hurt the parser are refused here too, from
what they declare, before anything is inflated: ZIP bombs disguised as Office or EPUB files (on
the sizes their central directory declares, which is all Python's ``zipfile`` will ever inflate),
XML entity declarations inside a package, and files whose bytes say they are something other
than their extension claims.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import IO
from xml.parsers import expat

from docmill.config import PartitionOptions
from docmill.errors import (
    CorruptDocument,
    DocumentTooLarge,
    EmptyDocument,
    EncodingProblem,
    EncryptedDocument,
    UnsafeDocument,
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
ZIP_TYPES = OOXML_TYPES | {"odt", "epub"}
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
ARCHIVES = {".zip", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".7z", ".rar"}

# Leading bytes of formats a file may really be when its extension says otherwise. Only
# signatures of four bytes or more: shorter ones ("MZ", "BM") start ordinary text too.
MAGIC: list[tuple[bytes, str]] = [
    (b"%PDF", "a PDF"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"PK\x03\x04", "a ZIP archive"),
    (OLE_MAGIC, "an OLE file (old binary Office or Outlook)"),
    (b"\x1f\x8b\x08", "a gzip archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!\x1a\x07", "a RAR archive"),
    (b"\x7fELF", "an executable (ELF)"),
]
IMAGE_MAGIC = {"a PNG image", "a JPEG image", "a GIF image", "a TIFF image"}
# Members a package parser reads as XML: their prolog is checked for entity declarations.
XML_MEMBER_SUFFIXES = (".xml", ".rels", ".xhtml", ".xht", ".html", ".htm", ".opf", ".ncx", ".svg")
# A member only counts as a decompression bomb by ratio once it is this large inflated: tiny
# runs of repeated XML compress well and are harmless.
RATIO_MIN_BYTES = 1024 * 1024
# The XML prolog (declaration, comments, DOCTYPE) ends at the root element; one longer than
# this is not an Office or EPUB part.
PROLOG_MAX_BYTES = 1024 * 1024
_UTF8_MULTIBYTE = re.compile(rb"[\xc2-\xf4][\x80-\xbf]+")


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


def sniff(data: bytes) -> str | None:
    """What the leading bytes say the file is ("a PNG image"), when they name a known format."""
    for magic, what in MAGIC:
        if data.startswith(magic):
            return what
    return None


def detect(name: str, data: bytes, limits: PartitionOptions | None = None) -> FileKind:
    """Classify ``data`` (the file's bytes) named ``name``, or raise a ``DocumentError``.

    ``limits`` bound what a ZIP package may declare (its defaults when not given)."""
    limits = limits or PartitionOptions()
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
        _check_not_binary(data, kind)
        _check_text(data, kind)
    elif file_type in ZIP_TYPES:
        _check_package(data, kind, limits)
    elif file_type == "pdf" and not data.lstrip()[:5].startswith(b"%PDF"):
        raise CorruptDocument(_mislabeled(data, kind) or "not a PDF: the '%PDF' header is missing")
    elif file_type == "image" and sniff(data) not in (None, *IMAGE_MAGIC):
        raise CorruptDocument(_mislabeled(data, kind) or "not an image")
    elif file_type == "msg":
        _check_msg(data)
    return kind


def _mislabeled(data: bytes, kind: FileKind) -> str | None:
    what = sniff(data)
    if what is None:
        return None
    return f"the file is really {what}, not {kind.file_type.upper()} (its '{kind.extension}' extension is wrong)"


def _check_not_binary(data: bytes, kind: FileKind) -> None:
    what = sniff(data)
    if what is not None:
        raise CorruptDocument(
            f"the file is really {what}, not {kind.file_type} text (its '{kind.extension}' extension is wrong)"
        )


def _decode_text(data: bytes) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    if b"\x00" in data:
        if _looks_like_utf16(data[:4096]):
            # UTF-16 without a byte-order mark: every other byte of ASCII text is NUL.
            raise EncodingProblem(
                "the text looks like UTF-16 without a byte-order mark; re-save it as UTF-8 (or UTF-16 with a BOM)"
            )
        # Stray NULs: binary data, or a file damaged by a crash. Text tools stop at them, and
        # chunk stores refuse them, so the file is refused rather than indexed in pieces.
        raise EncodingProblem(
            f"the text holds {data.count(0)} NUL byte(s), the first at offset {data.index(0)}: "
            "binary data or a damaged file; remove them or re-export the text"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if _UTF8_MULTIBYTE.search(data):
            # Valid UTF-8 sequences beside bytes UTF-8 does not allow: text pasted together
            # from sources in different encodings. No single decoding reads it right.
            raise EncodingProblem(
                f"the text mixes encodings: it holds valid UTF-8 characters, yet byte 0x{data[exc.start]:02x} "
                f"at offset {exc.start} is not UTF-8 (Latin-1 or Windows-1252?); re-save it all as UTF-8"
            ) from exc
        guess = _guess_encoding(data)
        raise EncodingProblem(
            f"the text is not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start}"
            f"{'; it looks like ' + guess if guess else ''}); re-save it as UTF-8"
        ) from exc


def _looks_like_utf16(head: bytes) -> bool:
    """Many bytes at even (big-endian) or odd (little-endian) offsets are NUL, and almost none
    at the others (a run of NULs has them at both)."""
    half = max(1, len(head) // 2)
    even, odd = head[0::2].count(0), head[1::2].count(0)
    return max(even, odd) >= 0.3 * half and min(even, odd) <= 0.05 * half


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


def _check_package(data: bytes, kind: FileKind, limits: PartitionOptions) -> None:
    """A ZIP package (DOCX, XLSX, PPTX, ODT, EPUB): what it declares is checked before any
    member is inflated (sizes, ratio, entity declarations in its XML), then its integrity."""
    label = kind.file_type.upper()
    if data.startswith(OLE_MAGIC) and kind.file_type in OOXML_TYPES:
        if _ole_is_encrypted(data):
            raise EncryptedDocument(f"the {label} file is password-protected")
        raise CorruptDocument(f"the file is an old binary Office file, not {label}")
    if not data.startswith(b"PK") and (mislabeled := _mislabeled(data, kind)):
        raise CorruptDocument(mislabeled)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            infos = zf.infolist()
            _check_declared_sizes(infos, label, limits)
            _check_xml_prologs(zf, infos, kind)
            bad = zf.testzip()
            names = set(zf.namelist())
    except zipfile.BadZipFile as exc:
        raise CorruptDocument(f"the {label} container is not a valid ZIP package: {exc}") from exc
    if bad is not None:
        raise CorruptDocument(f"the {label} package has a damaged part: {bad}")
    if kind.file_type in OOXML_TYPES and "[Content_Types].xml" not in names:
        raise CorruptDocument(f"the {label} package has no [Content_Types].xml")


def _check_declared_sizes(infos: list[zipfile.ZipInfo], label: str, limits: PartitionOptions) -> None:
    mb = 1024 * 1024
    if len(infos) > limits.max_zip_members:
        raise UnsafeDocument(
            f"the {label} package has {len(infos)} members, over the limit of {limits.max_zip_members}"
        )
    total = sum(info.file_size for info in infos)
    if total > limits.max_unzipped_bytes:
        raise DocumentTooLarge(
            f"the {label} package expands to {total / mb:.0f} MB, over the limit of "
            f"{limits.max_unzipped_bytes / mb:.0f} MB (a ZIP bomb, or raise --max-unzipped-mb)"
        )
    for info in infos:
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size >= RATIO_MIN_BYTES and ratio > limits.max_zip_ratio:
            raise UnsafeDocument(
                f"'{info.filename[:100]}' in the {label} package expands {ratio:.0f} times "
                f"({info.compress_size / mb:.1f} MB to {info.file_size / mb:.0f} MB), over the limit of "
                f"{limits.max_zip_ratio:g} times: a decompression bomb (or raise --max-zip-ratio)"
            )


def _check_xml_prologs(zf: zipfile.ZipFile, infos: list[zipfile.ZipInfo], kind: FileKind) -> None:
    """No DTD in Office/ODF XML (their formats never use one) and no entity declarations in
    EPUB XHTML (whose DOCTYPE may name the XHTML DTD): declared entities are how a few hundred
    bytes expand to gigabytes ("billion laughs") or pull in files from outside ("XXE")."""
    allow_doctype = kind.file_type == "epub"
    for info in infos:
        if info.is_dir() or not info.filename.lower().endswith(XML_MEMBER_SUFFIXES):
            continue
        with zf.open(info) as stream:
            problem = _xml_prolog_problem(stream, allow_doctype=allow_doctype)
        if problem:
            raise UnsafeDocument(f"'{info.filename[:100]}' in the {kind.file_type.upper()} package {problem}")


class _PrologDone(Exception):
    pass


def _xml_prolog_problem(stream: IO[bytes], *, allow_doctype: bool) -> str | None:
    """Read an XML member up to its root element; what is wrong with its prolog, if anything."""
    found: list[str] = []

    def doctype(_name: str, _sysid: str | None, _pubid: str | None, internal_subset: int) -> None:
        if not allow_doctype:
            found.append("declares a DTD (<!DOCTYPE>), which these formats never use; refused as a possible XML bomb")
            raise _PrologDone

    def entity(name: str, *_args: object) -> None:
        found.append(f"declares the XML entity '{name[:40]}': entity expansion (XML bombs, external entities) is refused")
        raise _PrologDone

    def root(_name: str, _attrs: object) -> None:
        raise _PrologDone

    parser = expat.ParserCreate()
    parser.StartDoctypeDeclHandler = doctype
    parser.EntityDeclHandler = entity
    parser.StartElementHandler = root
    read = 0
    try:
        while True:
            block = stream.read(4096 if read == 0 else 65536)
            if not block:
                parser.Parse(b"", True)
                return None
            read += len(block)
            parser.Parse(block, False)
            if read > PROLOG_MAX_BYTES:
                return f"has no root element in its first {PROLOG_MAX_BYTES // 1024} KB"
    except _PrologDone:
        return found[0] if found else None
    except expat.ExpatError:
        return None  # malformed XML: the integrity check or the parser reports it


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
