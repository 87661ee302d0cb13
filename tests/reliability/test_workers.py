"""No worker outlives its parent: kill -9 of ``docmill ingest`` alone (not its process group)
takes its partition workers with it, even while they are busy."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.reliability.hostile import blank_pdf
REPO = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal is Linux only")
def test_kill_9_of_the_ingest_process_takes_its_busy_workers_with_it(tmp_path):
    # Given an ingest with two workers busy OCR-ing blank PDFs (minutes of work)
    src = tmp_path / "src"
    src.mkdir()
    for name in ("a.pdf", "b.pdf"):
        blank_pdf(src / name, 40)
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'layers'}{os.pathsep}{REPO}"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "docmill", "ingest", str(src), "--workers", "2", "--store", "none",
         "--home", str(tmp_path / "home")],
        env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    workers: list[psutil.Process] = []
    started: list[psutil.Process] = []  # the workers and the fork server they come from
    try:
        parent = psutil.Process(proc.pid)
        deadline = time.monotonic() + 240  # start + imports on a loaded 2-core machine
        while time.monotonic() < deadline and len(workers) < 2:
            time.sleep(0.5)
            started = [c for c in parent.children(recursive=True) if "resource_tracker" not in " ".join(c.cmdline())]
            # a forked worker's command line is its fork server's: tell them apart by parent
            workers = [c for c in started if c.ppid() != proc.pid or "forkserver" not in " ".join(c.cmdline())]
        assert len(workers) >= 2, "the workers never started"
        # Busy: a worker has started OCR (a tesseract child) or is burning CPU on its pages
        def busy() -> bool:
            return any(w.children() or w.cpu_times().user > 2.0 for w in workers if w.is_running())

        while time.monotonic() < deadline and not busy():
            time.sleep(0.3)
        assert busy(), "no worker got busy"
        # When only the main process is killed
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        # Then every worker is gone within seconds
        gone, alive = psutil.wait_procs(started, timeout=15)
        assert not alive, f"workers outlived their parent: {[(p.pid, p.name()) for p in alive]}"
    finally:
        for worker in started:  # what this test started, if the fix failed
            with contextlib.suppress(psutil.NoSuchProcess):
                worker.kill()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # clean up whatever the test itself started
