"""Given a file's name and bytes, When docmill classifies it, Then bad files fail with a reason a person can act on."""

from __future__ import annotations

import pytest

from docmill.documents.filetypes import detect
from docmill.errors import CorruptDocument, EmptyDocument, EncodingProblem, EncryptedDocument, UnsupportedFileType

EXPECTED_BAD = {
    "empty.txt": (EmptyDocument, "0 bytes"),
    "fake-text-all-whitespace.txt": (EmptyDocument, "whitespace"),
    "fake-incomplete-json.txt": (CorruptDocument, "malformed JSON"),
    "fake-text-utf-16-be.txt": (EncodingProblem, "UTF-16"),
    "umlauts-non-utf8.md": (EncodingProblem, "not valid UTF-8"),
    "file_we_dont_want_imported": (UnsupportedFileType, "no extension"),
    "simple.zip": (UnsupportedFileType, "archives"),
    "password_protected.xlsx": (EncryptedDocument, "password-protected"),
    "fake-encrypted.msg": (EncryptedDocument, "encrypted"),
}


@pytest.mark.parametrize("name", sorted(EXPECTED_BAD))
def test_bad_file_is_refused_with_a_specific_reason(corpus_bad, name):
    error_type, phrase = EXPECTED_BAD[name]
    data = (corpus_bad / name).read_bytes()

    with pytest.raises(error_type) as info:
        detect(name, data)

    assert phrase in info.value.reason
    assert info.value.reason.startswith(error_type.kind + ":")


@pytest.mark.parametrize(
    "name,expected",
    [("report.PDF", "pdf"), ("deck.pptx", "pptx"), ("notes.md", "md"), ("scan.jpeg", "image"), ("page.htm", "html")],
)
def test_extension_decides_the_type_case_insensitively(name, expected, corpus_docs):
    sample = {
        "pdf": corpus_docs / "fake-memo.pdf",
        "pptx": corpus_docs / "fake-power-point.pptx",
        "md": corpus_docs / "README.md",
        "image": corpus_docs / "example.jpg",
        "html": corpus_docs / "fake-html.html",
    }[expected]

    assert detect(name, sample.read_bytes()).file_type == expected


def test_text_with_a_utf8_bom_is_accepted():
    kind = detect("notes.txt", "\ufeffHello world".encode("utf-8"))

    assert kind.file_type == "txt"


def test_text_starting_with_a_brace_that_is_not_truncated_json_is_plain_text():
    # A note that happens to start with "{" is still prose, not a broken JSON export.
    kind = detect("notes.txt", b"{draft} The plan for next week.\n")

    assert kind.file_type == "txt"


def test_pdf_without_its_header_is_corrupt():
    with pytest.raises(CorruptDocument, match="%PDF"):
        detect("broken.pdf", b"this is not a pdf at all")


def test_docx_that_is_not_a_zip_package_is_corrupt():
    with pytest.raises(CorruptDocument, match="not a valid ZIP"):
        detect("broken.docx", b"PK\x03\x04 truncated")
