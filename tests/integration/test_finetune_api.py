"""Fine-tunes over the HTTP API (uvicorn on 127.0.0.1): started and listed per tenant, and a
tuned adapter answering chat as ``"model": "<job_id>"``. A tiny random Llama is the base model."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from docmill.api.tenants import TenantRegistry
from docmill.api.wiring import build_local_services, registry_path
from docmill.config import load_settings
from docmill.finetune.service import workspace_finetuner
from docmill.finetune.serving import LocalFinetuneService, tenant_datasets
from docmill_devtools.scripted import ScriptedLLM
from tests.support.api_server import ApiServer, ChatModel, wait_for_status
from tests.support.finetune_data import write_docmill_dataset
from tests.support.tiny_lm import build_tiny_llama

FAST = {"max_steps": 2, "eval_samples": 1, "lora_r": 4}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, embedder) -> Iterator[ApiServer]:
    home = tmp_path_factory.mktemp("ft-api-home")
    tiny = build_tiny_llama(home / "tiny-llama")
    write_docmill_dataset(home / "tenants" / "acme" / "datasets" / "handbook")
    settings = load_settings(home=home)
    finetune = LocalFinetuneService(workspace_finetuner(home), datasets_root=tenant_datasets(home), base=str(tiny))
    services = build_local_services(settings, llm=ScriptedLLM(ChatModel(), model_id="scripted-chat"),
                                    embedder=lambda: embedder, finetune=finetune)
    with ApiServer(services) as srv:
        yield srv


@pytest.fixture(scope="module")
def clients(server: ApiServer) -> Iterator[dict[str, httpx.Client]]:
    registry = TenantRegistry(registry_path(Path(server.services.documents.intake.raw_root).parent))
    out = {}
    for name in ("acme", "globex"):
        _, key = registry.create(name)
        out[name] = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=120)
    yield out
    for c in out.values():
        c.close()


def test_a_tenant_fine_tunes_its_dataset_and_chats_with_the_adapter(server: ApiServer, clients) -> None:
    acme, globex = clients["acme"], clients["globex"]
    # Given acme's indexed document (chat only calls a model when retrieval finds something)
    doc = acme.post("/api/v1/documents", files={"file": ("warranty.md", b"# Warranty\n\nThe warranty covers parts "
                                                 b"and labour for two years from the date of purchase.\n")})
    assert doc.status_code == 202, doc.text
    assert wait_for_status(acme, doc.json()["id"])["status"] == "indexed"

    # When acme starts a fine-tune on its own dataset
    started = acme.post("/api/v1/fine-tunes", json={"dataset": "handbook", "format": "sft", **FAST})
    assert started.status_code == 202, started.text
    job_id = started.json()["id"]
    assert started.json()["status"] == "queued" and started.json()["dataset"]["counts"]["test"] == 2
    # Then another tenant can neither use acme's dataset nor see the job
    assert globex.post("/api/v1/fine-tunes", json={"dataset": "handbook"}).status_code == 404
    assert globex.get(f"/api/v1/fine-tunes/{job_id}").status_code == 404
    assert globex.get("/api/v1/fine-tunes").json() == {"fine_tunes": []}
    # and bad requests are refused before any job exists
    bad = acme.post("/api/v1/fine-tunes", json={"dataset": "handbook", "format": "preference", "method": "sft"})
    assert bad.status_code == 422 and "does not match method" in bad.json()["error"]["message"]
    assert acme.post("/api/v1/fine-tunes", json={"dataset": "../globex"}).status_code == 422

    server.services.finetune.drain()
    job = acme.get(f"/api/v1/fine-tunes/{job_id}").json()
    assert job["status"] == "completed", job
    assert set(job["metrics"]["tuned"]) >= {"test_loss", "support"} and job["adapter"].endswith("/adapter")
    assert [j["id"] for j in acme.get("/api/v1/fine-tunes").json()["fine_tunes"]] == [job_id]

    # When acme chats with "model": <job_id>, the tuned adapter answers
    chat = acme.post("/api/v1/chat", json={"message": "What does the warranty cover?", "model": job_id})
    assert chat.status_code == 200, chat.text
    assert chat.json()["model"] == job_id
    # Another tenant naming that model gets "not found", never acme's adapter
    other = globex.post("/api/v1/chat", json={"message": "What does the warranty cover?", "model": job_id})
    assert other.status_code == 404
