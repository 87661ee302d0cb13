"""One bad folder entry never kills the run, and odd names are ordinary files: dangling
symlinks, symlink loops, links escaping the folder, FIFOs, 250-byte names, ``?``, newlines,
quotes, ``..``, leading dashes, NFC/NFD twins. Every entry gets a result, the manifest is
written, and nothing lands outside the output folder."""

from __future__ import annotations

import json
import os
import unicodedata
from pathlib import Path

from docmill.config import IngestOptions
from docmill.ingest import Ingestor
from docmill.storage import LocalStore

ODD_NAMES = [
    "what?.txt",
    "line\nbreak.txt",
    "quo\"te's.txt",
    "report..final.txt",
    "-leading-dash.txt",
    unicodedata.normalize("NFC", "café.txt"),
    unicodedata.normalize("NFD", "café.txt"),
    "x" * 246 + ".txt",  # 250 bytes: its sidecar name would overflow NAME_MAX
]


def _hostile_folder(tmp_path: Path) -> tuple[Path, Path]:
    src, outside = tmp_path / "src", tmp_path / "outside"
    src.mkdir()
    outside.mkdir()
    (outside / "secret.txt").write_text("TOP-SECRET-OUTSIDE-THE-FOLDER payroll numbers.\n")
    for i, name in enumerate(ODD_NAMES):
        (src / name).write_text(f"Document {i} explains how valve {i} is serviced every week.\n")
    (src / "dangling.txt").symlink_to(tmp_path / "no-such-target.txt")
    (src / "self-loop.txt").symlink_to(src / "self-loop.txt")
    (src / "loop-a.txt").symlink_to(src / "loop-b.txt")
    (src / "loop-b.txt").symlink_to(src / "loop-a.txt")
    (src / "escape.txt").symlink_to(outside / "secret.txt")
    (src / "sub").mkdir()
    (src / "sub" / "inner.txt").write_text("An inner document about pumps.\n")
    (src / "sub" / "up").symlink_to(src, target_is_directory=True)  # a folder loop
    (src / "inside-link.txt").symlink_to(src / "sub" / "inner.txt")
    os.mkfifo(src / "pipe.txt")  # opening it would block for ever
    return src, outside


def test_every_entry_gets_a_result_and_nothing_escapes(tmp_path):
    src, outside = _hostile_folder(tmp_path)
    home = tmp_path / "home"
    # When the folder is ingested
    report = Ingestor(output=LocalStore(home), collection="c", options=IngestOptions(workers=1)).run([str(src)])
    by_name = {Path(f.source).name: f for f in report.files}
    from urllib.parse import quote

    def result(name: str):
        return by_name[quote(name)] if quote(name) in by_name else by_name[name]

    # Then each odd name is an ordinary, ingested file
    for name in ODD_NAMES:
        assert result(name).status == "ok", (name, result(name).reason)
    assert result("inner.txt").status == "ok" and result("inside-link.txt").status == "ok"
    # And each bad entry is a failed file with its reason, not a crash
    reasons = {n: result(n).reason or "" for n in ("dangling.txt", "self-loop.txt", "loop-a.txt", "escape.txt", "pipe.txt")}
    assert reasons["dangling.txt"].startswith("broken symlink")
    assert reasons["self-loop.txt"].startswith("symlink loop") and reasons["loop-a.txt"].startswith("symlink loop")
    assert "outside the folder" in reasons["escape.txt"]
    assert "not a regular file" in reasons["pipe.txt"]
    assert report.totals.files == len(ODD_NAMES) + 2 + 6  # the folder loop is not entered
    # The manifest is written, the secret was never read, nothing was written outside home
    manifests = list(home.rglob("runs/*.json"))
    assert len(manifests) == 1 and json.loads(manifests[0].read_text())["totals"]["failed"] == 6
    assert not any("TOP-SECRET" in p.read_text(errors="replace") for p in home.rglob("*") if p.is_file())
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]
    assert not list(src.rglob("*.json"))


def test_the_cli_reports_bad_entries_and_exits_1_without_a_traceback(tmp_path):
    from typer.testing import CliRunner

    from docmill.cli.app import app

    src, _ = _hostile_folder(tmp_path)
    result = CliRunner().invoke(app, ["ingest", str(src), "--home", str(tmp_path / "home"), "--store", "none", "--json"])
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["totals"]["failed"] == 6 and summary["totals"]["ok"] == len(ODD_NAMES) + 2
