"""Hostile input, bounded resources: files built to exhaust memory or time, and files that lie
about what they are, each end as a per-file failure with a reason, in one run with a good
document that is still indexed; the run manifest is written, the run ends in bounded time, and
the bombs cost the process tree well under a gigabyte over a benign run with the same workers.

The corpus is built here, small on disk: ZIP bombs disguised as DOCX/XLSX/PPTX/EPUB (~1 GB of
XML each, a few MB stored), a billion-laughs DOCX, a 3000-blank-page PDF and a PDF whose page
tree loops (raw PDF syntax), a PNG named .pdf, text with NUL bytes and mixed UTF-8/Latin-1;
and two that get past every pre-parse check on purpose, so that only the worker limits stop
them: a DOCX of 200 MB of XML stored at ~80:1 (memory) and a text of 20,000 one-line
paragraphs, which Unstructured classifies one by one at several ms each (time).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import threading
import time
from pathlib import Path

import psutil
import pytest

from docmill.config import IngestOptions, PartitionOptions
from docmill.ingest import Ingestor
from docmill.models import IngestReport
from docmill.storage import LocalStore
from tests.reliability import hostile
from docmill.vectorstores.base import VectorStore
from docmill.vectorstores.lancedb_store import LanceDBStore
from tests.support.generation_doubles import HashingEmbedder

TIMEOUT_S = 20.0  # a good file takes 1-3 s in a warm worker; 20 s leaves room for a busy machine
# Two workers may each grow this much: both at once stay under the 1 GB the test allows.
MEMORY_MB = 400
MB = 1024 * 1024
LIMITS = IngestOptions(
    workers=2,
    file_timeout_s=TIMEOUT_S,
    file_memory_mb=MEMORY_MB,
    partition=PartitionOptions(max_ocr_pages=10, max_unzipped_bytes=256 * MB),
)


class TreePeak:
    """Peak resident memory of this process and all its descendants, sampled every 50 ms."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> int:
        me = psutil.Process()
        total = me.memory_info().rss
        for child in me.children(recursive=True):
            with contextlib.suppress(psutil.NoSuchProcess):
                total += child.memory_info().rss
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._sample())
            self._stop.wait(0.05)

    def __enter__(self) -> TreePeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _good_docx(path: Path) -> Path:
    import docx

    document = docx.Document()
    document.add_heading("Pump maintenance", level=1)
    document.add_paragraph("The centrifugal pump is serviced every week: check the seals and the bearings.")
    document.save(str(path))
    return path


def _dense_docx(path: Path, size: int = 200 * MB) -> Path:
    """200 MB of XML stored at ~80:1: within the test's ratio and size limits, so only the
    worker's memory limit stands between it and a parse that takes gigabytes."""
    rng = random.Random(7)
    words = [" ".join(rng.choice(["valve", "pump", "seal", "rotor", "gasket", "flange"]) for _ in range(6))
             for _ in range(300)]
    block = "".join(f"<w:p><w:r><w:t>{w} {rng.random()}</w:t></w:r></w:p>" for w in words).encode()
    unit = block * max(1, MB // len(block))  # repeats within DEFLATE's 32 KB window: ~80:1
    head = b'<?xml version="1.0" encoding="UTF-8"?><w:document ' + hostile.W_NS + b"><w:body>"
    return hostile.docx_package(path, hostile.deflate_repeated(head, unit, size // len(unit), b"</w:body></w:document>"))


def _hostile_corpus(src: Path) -> dict[str, tuple[str, str]]:
    """Write the corpus; return {file name: (expected error code, phrase in the reason)}."""
    hostile.docx_bomb(src / "bomb.docx")
    hostile.xlsx_bomb(src / "rows.xlsx")
    hostile.pptx_bomb(src / "bomb.pptx")
    hostile.epub_bomb(src / "bomb.epub")
    hostile.billion_laughs_docx(src / "laughs.docx")
    hostile.blank_pages_pdf(src / "blank-3000.pdf", 3000)
    hostile.looping_pdf(src / "loop.pdf")
    (src / "image.pdf").write_bytes(hostile.png_bytes())
    (src / "nul.txt").write_bytes(b"A log line before the crash.\n" + b"\x00" * 64 + b"And after it.\n")
    (src / "mixed.txt").write_bytes("Café au lait, in UTF-8; ".encode() + "then café in Latin-1.\n".encode("latin-1"))
    _dense_docx(src / "dense.docx")
    (src / "paragraphs.txt").write_text("".join(f"Valve {i} is checked weekly by the crew\n\n" for i in range(20_000)))
    return {
        "bomb.docx": ("DocumentTooLarge", "expands to 1024 MB"),
        "rows.xlsx": ("UnsafeDocument", "decompression bomb"),
        "bomb.pptx": ("DocumentTooLarge", "expands to 1024 MB"),
        "bomb.epub": ("DocumentTooLarge", "expands to 10"),
        "laughs.docx": ("UnsafeDocument", "DTD"),
        "blank-3000.pdf": ("DocumentTooLarge", "OCR of 3000 pages, over the limit of 10"),
        "loop.pdf": ("CorruptDocument", "Loop detected in /Pages"),
        "image.pdf": ("CorruptDocument", "really a PNG image"),
        "nul.txt": ("EncodingProblem", "64 NUL byte(s)"),
        "mixed.txt": ("EncodingProblem", "mixes encodings"),
        "dense.docx": ("FileLimitExceeded", f"per-file memory limit ({MEMORY_MB} MB)"),
        "paragraphs.txt": ("FileLimitExceeded", f"per-file time limit ({TIMEOUT_S:g} s)"),
    }


def _ingest(src: Path, home: Path, store: VectorStore) -> tuple[IngestReport, float, int]:
    ingestor = Ingestor(
        output=LocalStore(home), collection="c", options=LIMITS, embedder=HashingEmbedder(), vector_store=store
    )
    with TreePeak() as peak:
        started = time.monotonic()
        report = ingestor.run([str(src)])
        elapsed = time.monotonic() - started
    return report, elapsed, peak.peak


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="the pool reads memory from /proc")
def test_hostile_files_fail_one_by_one_within_the_limits_and_the_good_one_is_indexed(tmp_path):
    # Given a benign run with the same settings: what two warm workers cost on this machine
    benign = tmp_path / "benign"
    benign.mkdir()
    _good_docx(benign / "good.docx")
    (benign / "notes.md").write_text("# Notes\n\nThe rotor is balanced after every repair.\n")
    before = {c.pid for c in psutil.Process().children(recursive=True)}
    _, benign_seconds, benign_peak = _ingest(benign, tmp_path / "benign-home", LanceDBStore(tmp_path / "benign-index"))
    # And the hostile corpus beside the same good document
    src = tmp_path / "src"
    src.mkdir()
    expected = _hostile_corpus(src)
    _good_docx(src / "good.docx")
    assert sum(f.stat().st_size for f in src.iterdir()) < 20 * MB  # small on disk

    # When they are ingested in one run
    store = LanceDBStore(tmp_path / "index")
    report, elapsed, peak = _ingest(src, tmp_path / "home", store)

    # Then every hostile file is a per-file failure with its reason
    by_name = {Path(f.source).name: f for f in report.files}
    print(f"\nbenign run {benign_seconds:.1f} s, peak {benign_peak / MB:.0f} MB; "
          f"hostile run {elapsed:.1f} s, peak {peak / MB:.0f} MB (+{(peak - benign_peak) / MB:.0f} MB)")
    for name, f in sorted(by_name.items()):
        print(f"  {name}: {f.status} {f.error_code} {f.seconds:.1f} s  {f.reason}")
    for name, (code, phrase) in expected.items():
        result = by_name[name]
        assert result.status == "failed", name
        assert result.error_code == code, (name, result.reason)
        assert phrase in (result.reason or ""), (name, result.reason)
    # And the good document is indexed, its chunks searchable
    good = by_name["good.docx"]
    assert good.status == "ok" and good.chunks >= 1, good.reason
    assert store.count("c", source_uri=good.source) == good.chunks
    # And the manifest is written, with every file in it
    manifest = json.loads((tmp_path / "home" / "collections" / "c" / "runs" / f"{report.run_id}.json").read_text())
    assert {Path(f["source"]).name for f in manifest["files"]} == set(expected) | {"good.docx"}
    # And the run ends in bounded time (unbounded, the bombs ran for many minutes at GBs)
    assert elapsed < benign_seconds + 2 * TIMEOUT_S + 60
    # And the bombs cost the process tree well under 1 GB over the benign run's peak
    assert peak - benign_peak < 1024 * MB
    # And no worker is left behind (other tests in this process may have helpers of their own)
    # (the fork server the workers come from stays for the life of this process, idle)
    def workers() -> set[int]:
        me = os.getpid()
        return {c.pid for c in psutil.Process().children(recursive=True)
                if c.pid not in before and "resource_tracker" not in " ".join(c.cmdline())
                and not (c.ppid() == me and "forkserver" in " ".join(c.cmdline()))}

    deadline = time.monotonic() + 10
    while workers() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not workers()


def test_limits_come_from_the_command_line_or_else_the_environment(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from docmill.cli.app import app

    # Given a DOCX that expands to 64 MB, and limits off so that it runs in-process (no spawn)
    src = tmp_path / "src"
    src.mkdir()
    hostile.docx_bomb(src / "big.docx", 64 * MB)
    base = ["ingest", str(src), "--store", "none", "--json", "--max-zip-ratio", "1000",
            "--file-timeout", "0", "--file-memory-mb", "0"]
    monkeypatch.setenv("DOCMILL_INGEST__PARTITION__MAX_UNZIPPED_BYTES", str(16 * MB))

    def reason(home: Path, *extra: str) -> str:
        result = CliRunner().invoke(app, [*base, "--home", str(home), *extra])
        assert result.exit_code == 1, result.output
        (manifest,) = (home / "collections" / "default" / "runs").glob("*.json")
        return json.loads(manifest.read_text())["files"][0]["reason"]

    # When the limit is given on the command line, Then it wins over the environment
    assert "over the limit of 32 MB" in reason(tmp_path / "cli", "--max-unzipped-mb", "32")
    # When it is not, Then the environment's applies
    assert "over the limit of 16 MB" in reason(tmp_path / "env")
