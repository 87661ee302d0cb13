"""The notice board web app as a person uses it: ``docmill serve`` (a subprocess, the embedded
store and model) serving the web build, driven by Debian's Chromium through Playwright
(``frontend/e2e/run.mjs``). The LLM is a scripted OpenAI-compatible server on 127.0.0.1 (no
model server can run on the CI machine): it answers with the first retrieved passage and cites it.

Screenshots and axe reports of every screen land in ``test-results/web-e2e/`` (gitignored).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.openai_server import FakeOpenAIServer

REPO = Path(__file__).resolve().parents[2]
FRONTEND = REPO / "frontend"
OUT = REPO / "test-results" / "web-e2e"
CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
HANDBOOK = (
    "# Oakridge office handbook\n\n"
    "## Canteen\n\n"
    "The Oakridge canteen closes at 15:30 on Fridays so the kitchen can be deep-cleaned.\n\n"
    "## Parking\n\n"
    "Visitors park in bays 40 to 48 and sign in at reception before 09:00.\n"
)


def cite_first_passage(body: dict[str, Any]) -> str:
    """The scripted model: repeats passage [1] of the retrieved context and cites it."""
    system = body["messages"][0]["content"]
    first = re.search(r"\[1\] \([^)]*\)\n(.*?)(?:\n\n\[2\] |\Z)", system, re.S)
    if not first:
        return "The documents do not cover this."
    return "According to the handbook: " + " ".join(first.group(1).split()) + " [1]"


def _skip_unless_installed() -> None:
    missing = [what for what, ok in (
        ("frontend/node_modules (scripts/install.sh runs npm ci)", (FRONTEND / "node_modules" / "playwright-core").is_dir()),
        ("frontend/dist (scripts/install.sh runs expo export)", (FRONTEND / "dist" / "index.html").is_file()),
        ("chromium (apt-get install chromium)", CHROMIUM is not None),
        ("node", shutil.which("node") is not None),
    ) if not ok]
    if missing:
        pytest.skip("web e2e needs: " + ", ".join(missing))


@pytest.mark.slow  # a docmill subprocess with the real embedder, and a browser
def test_web_app_sign_in_notice_upload_chat_citation(tmp_path: Path) -> None:
    _skip_unless_installed()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "layers"), str(REPO)]),
           "OMP_NUM_THREADS": "1", "DOCMILL_HOME": str(tmp_path / "home")}
    doc = tmp_path / "oakridge-handbook.md"
    doc.write_text(HANDBOOK)
    created = subprocess.run([sys.executable, "-m", "docmill", "tenants", "create", "oakridge", "--json"],
                             env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600, check=True)
    api_key = json.loads(created.stdout.strip().splitlines()[-1])["api_key"]

    with FakeOpenAIServer(reply=cite_first_passage) as llm:
        server_err = tmp_path / "serve.err"
        with server_err.open("wb") as err:
            serve = subprocess.Popen(
                [sys.executable, "-m", "docmill", "serve", "--port", "0", "--json",
                 "--llm", f"openai:{llm.url}", "--web-dir", str(FRONTEND / "dist")],
                env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=err, text=True)
        try:
            line = serve.stdout.readline() if serve.stdout else ""
            assert line, server_err.read_text()[-3000:]
            url = json.loads(line)["url"]
            if OUT.exists():
                shutil.rmtree(OUT)
            run = subprocess.run(
                ["node", "e2e/run.mjs"], cwd=FRONTEND, capture_output=True, text=True, timeout=1200,
                env={**os.environ, "DOCMILL_URL": url, "DOCMILL_API_KEY": api_key, "DOC_PATH": str(doc),
                     "QUESTION": "When does the canteen close on Fridays?", "EXPECT": "15:30",
                     "OUT_DIR": str(OUT), "CHROMIUM": CHROMIUM or ""})
        finally:
            serve.send_signal(signal.SIGINT)
            try:
                serve.wait(timeout=30)
            except subprocess.TimeoutExpired:
                serve.kill()
    assert run.returncode == 0, f"{run.stdout[-4000:]}\n{run.stderr[-4000:]}\nserver: {server_err.read_text()[-3000:]}"
    # The model saw the uploaded passage as context, so the answer came from retrieval.
    assert any("15:30" in b["messages"][0]["content"] for b in llm.bodies)
    report = json.loads((OUT / "report.json").read_text())
    assert [s["name"] for s in report["screens"]] == [
        "01-sign-in", "02-documents", "03-notice-form", "04-notices", "05-chat", "06-citation-source", "07-jobs"]
    for screen in report["screens"]:
        assert (OUT / f"{screen['name']}.png").stat().st_size > 1000
