"""What users run: ``docmill tenants create`` and ``docmill serve --json`` as processes, from
another directory, against an OpenAI-compatible test server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx

from tests.support.openai_server import FakeOpenAIServer

REPO = Path(__file__).resolve().parents[2]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": f"{REPO / 'layers'}{os.pathsep}{REPO}", "HF_HUB_OFFLINE": "1"}


def test_tenants_create_and_serve_json(tmp_path: Path) -> None:
    home = tmp_path / "home"
    cmd = [sys.executable, "-m", "docmill"]
    out = subprocess.run([*cmd, "tenants", "create", "acme", "--json", "--home", str(home)], cwd=tmp_path,
                         env=_env(), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    created = json.loads(out.stdout)
    assert created["tenant"] == "acme" and created["api_key"].startswith("dmk_")
    assert created["api_key"] not in (home / "api" / "tenants.json").read_text()  # stored hashed
    again = subprocess.run([*cmd, "tenants", "create", "acme", "--home", str(home)], cwd=tmp_path, env=_env(),
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 2 and "exists" in again.stderr

    web = tmp_path / "web"
    web.mkdir()
    (web / "index.html").write_text("<html>docmill web</html>")
    with FakeOpenAIServer() as llm:
        proc = subprocess.Popen([*cmd, "serve", "--port", "0", "--json", "--home", str(home), "--llm",
                                 f"openai:{llm.url}", "--web-dir", str(web)],
                                cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            first = json.loads(proc.stdout.readline())
            url = first["url"]
            assert url.startswith("http://127.0.0.1:")
            assert httpx.get(f"{url}/api/v1/health", timeout=30).json()["status"] == "ok"
            assert httpx.get(f"{url}/api/v1/me", timeout=30).status_code == 401
            me = httpx.get(f"{url}/api/v1/me", headers={"Authorization": f"Bearer {created['api_key']}"}, timeout=30)
            assert me.json() == {"tenant": "acme", "user": None, "admin": True}
            # The web app at /, its client-side routes too; unknown API paths stay JSON 404s
            assert "docmill web" in httpx.get(f"{url}/", timeout=30).text
            assert "docmill web" in httpx.get(f"{url}/chat/some-conversation", timeout=30).text
            missing = httpx.get(f"{url}/api/v1/nothing", timeout=30)
            assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
        finally:
            proc.terminate()
            proc.wait(timeout=30)
