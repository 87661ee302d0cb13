"""Two runs, one home: the second ``docmill ingest`` stops with "another run holds HOME"
(nothing written), and a holder killed with -9 leaves no stale lock."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from docmill.cli.app import app

REPO = Path(__file__).resolve().parents[2]
HOLDER = """
import sys, time
from docmill.lock import home_lock
with home_lock(sys.argv[1], command="docmill ingest"):
    print("locked", flush=True)
    time.sleep(600)
"""


def test_a_second_run_on_the_same_home_is_refused_until_the_first_is_gone(tmp_path):
    home = tmp_path / "home"
    (tmp_path / "doc.txt").write_text("A document about valves.\n")
    args = ["ingest", str(tmp_path / "doc.txt"), "--home", str(home), "--store", "none", "--json"]
    env = {**os.environ, "PYTHONPATH": str(REPO / "layers")}
    # Given another process holding the home (as a running ingest does)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(home)], env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        # When a second ingest starts on that home
        refused = CliRunner().invoke(app, args)
        # Then it stops at once with a clear message and writes nothing
        assert refused.exit_code == 2
        assert "another run holds HOME" in refused.output and f"pid {holder.pid}" in refused.output
        assert not list(home.rglob("*.json"))
        # When the holder is killed with -9, Then the next run goes ahead (no stale lock)
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=30)
        done = CliRunner().invoke(app, args)
        assert done.exit_code == 0, done.output
        assert list(home.rglob("source.json"))
    finally:
        holder.kill()
        holder.wait(timeout=30)
