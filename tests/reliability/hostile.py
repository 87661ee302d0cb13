"""Hostile and unlucky inputs, built by the tests themselves (nothing checked in)."""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
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


# -- ZIP bombs: a member that inflates to ~1 GB, written without ever holding 1 GB ------------


@dataclass(frozen=True)
class Deflated:
    """A raw DEFLATE stream with what a ZIP entry declares about it."""

    data: bytes
    size: int
    crc: int


def deflate_repeated(head: bytes, unit: bytes, repeat: int, tail: bytes) -> Deflated:
    """``head + unit * repeat + tail`` deflated, in time and memory proportional to ``unit``.

    After a full flush the compressor forgets its window, so ``unit`` compresses to the same
    bytes every time: the stream is that block repeated. The CRC still walks every byte."""
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = comp.compress(head) + comp.flush(zlib.Z_FULL_FLUSH)
    block = comp.compress(unit) + comp.flush(zlib.Z_FULL_FLUSH)
    last = comp.compress(tail) + comp.flush()
    crc = zlib.crc32(head)
    for _ in range(repeat):
        crc = zlib.crc32(unit, crc)
    crc = zlib.crc32(tail, crc)
    data = first + block * repeat + last
    return Deflated(data=data, size=len(head) + len(unit) * repeat + len(tail), crc=crc & 0xFFFFFFFF)


def write_zip(path: Path, members: dict[str, bytes | Deflated]) -> Path:
    """A ZIP file of ``members`` (deflated), written by hand so a member can be pre-deflated."""
    out = bytearray()
    central = bytearray()
    for name, content in members.items():
        if isinstance(content, bytes):
            comp = zlib.compressobj(6, zlib.DEFLATED, -15)
            content = Deflated(comp.compress(content) + comp.flush(), len(content), zlib.crc32(content) & 0xFFFFFFFF)
        raw = name.encode()
        offset = len(out)
        fields = (20, 0, 8, 0, 0x21, content.crc, len(content.data), content.size, len(raw), 0)
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, *fields) + raw + content.data
        central += struct.pack("<IH", 0x02014B50, 20) + struct.pack("<HHHHHIIIHH", *fields)
        central += struct.pack("<HHHII", 0, 0, 0, 0, offset) + raw
    start = len(out)
    out += central
    out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(central), start, 0)
    path.write_bytes(bytes(out))
    return path


CONTENT_TYPES = (
    b'<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    b'<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    b'<Default Extension="xml" ContentType="application/xml"/>'
    b'<Override PartName="/word/document.xml" '
    b'ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>'
)
RELS = (
    b'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    b'<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
    b'Target="word/document.xml"/></Relationships>'
)
W_NS = b'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
GIB = 1 << 30


def docx_package(path: Path, document_xml: bytes | Deflated) -> Path:
    return write_zip(path, {"[Content_Types].xml": CONTENT_TYPES, "_rels/.rels": RELS, "word/document.xml": document_xml})


def docx_bomb(path: Path, size: int = GIB) -> Path:
    """A DOCX whose word/document.xml inflates to ``size`` bytes of paragraphs (a few MB stored)."""
    unit = b"<w:p><w:r><w:t>lol</w:t></w:r></w:p>" * 28_000  # ~1 MB
    head = b'<?xml version="1.0" encoding="UTF-8"?><w:document ' + W_NS + b"><w:body>"
    return docx_package(path, deflate_repeated(head, unit, max(1, size // len(unit)), b"</w:body></w:document>"))


def xlsx_bomb(path: Path, rows: int = 3_000_000) -> Path:
    """An XLSX with ``rows`` rows in one sheet (a few hundred KB stored)."""
    row = b'<row><c t="inlineStr"><is><t>x</t></is></c></row>'
    per = 20_000
    head = b'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
    sheet = deflate_repeated(head, row * per, max(1, rows // per), b"</sheetData></worksheet>")
    return write_zip(path, {"[Content_Types].xml": CONTENT_TYPES, "_rels/.rels": RELS, "xl/worksheets/sheet1.xml": sheet})


def pptx_bomb(path: Path, size: int = GIB) -> Path:
    unit = b"<a:p><a:r><a:t>lol</a:t></a:r></a:p>" * 28_000
    head = b'<?xml version="1.0"?><p:sld xmlns:p="http://schemas.openxmlformats.org/presentationml/2006/main"><p:cSld>'
    slide = deflate_repeated(head, unit, max(1, size // len(unit)), b"</p:cSld></p:sld>")
    return write_zip(path, {"[Content_Types].xml": CONTENT_TYPES, "_rels/.rels": RELS, "ppt/slides/slide1.xml": slide})


def epub_bomb(path: Path, size: int = GIB) -> Path:
    unit = b"<p>lol lol lol lol</p>" * 48_000
    head = b'<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml"><body>'
    chapter = deflate_repeated(head, unit, max(1, size // len(unit)), b"</body></html>")
    return write_zip(path, {
        "mimetype": b"application/epub+zip",
        "META-INF/container.xml": b'<?xml version="1.0"?><container version="1.0" '
        b'xmlns="urn:oasis:names:tc:opendocument:xmlns:container"><rootfiles><rootfile '
        b'full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/></rootfiles></container>',
        "OEBPS/chapter1.xhtml": chapter,
    })


def billion_laughs_docx(path: Path) -> Path:
    """The classic entity bomb (10 levels of 10 references: 10^9 'lol's) in word/document.xml."""
    entities = b'<!ENTITY lol0 "lol">' + b"".join(
        b"<!ENTITY lol%d \"%s\">" % (i, b"&lol%d;" % (i - 1) * 10) for i in range(1, 10)
    )
    xml = (
        b'<?xml version="1.0"?><!DOCTYPE w:document [' + entities + b"]><w:document " + W_NS
        + b"><w:body><w:p><w:r><w:t>&lol9;</w:t></w:r></w:p></w:body></w:document>"
    )
    return docx_package(path, xml)


# -- PDFs written as raw syntax ----------------------------------------------------------------


def raw_pdf(path: Path, objects: list[bytes]) -> Path:
    """A PDF of ``objects`` (object 1 the catalog) with a correct cross-reference table."""
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    path.write_bytes(bytes(out))
    return path


def blank_pages_pdf(path: Path, pages: int) -> Path:
    """``pages`` distinct blank pages (no fonts, no images): a valid PDF of a few bytes a page."""
    kids = b" ".join(b"%d 0 R" % (3 + i) for i in range(pages))
    page = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << >> >>"
    return raw_pdf(path, [b"<< /Type /Catalog /Pages 2 0 R >>",
                          b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, pages), *[page] * pages])


def looping_pdf(path: Path) -> Path:
    """A /Pages node that lists itself among its kids: a reader that follows it never ends."""
    return raw_pdf(path, [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R 2 0 R] /Count 2 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>",
    ])


def png_bytes() -> bytes:
    """A real 4x4 PNG image."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    pixels = zlib.compress(b"".join(b"\x00" + b"\xff\x00\x00" * 4 for _ in range(4)))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 4, 4, 8, 2, 0, 0, 0)) + chunk(
        b"IDAT", pixels
    ) + chunk(b"IEND", b"")
