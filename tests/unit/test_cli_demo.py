"""``docmill demo`` wiring, with ingestion, index, model and embedder replaced by test doubles
(the real run is tests/e2e/test_generate_local_model.py plus the lead's ingest tests)."""

from __future__ import annotations

import importlib
import json
import sys
import types
from pathlib import Path

import pytest
from typer.testing import CliRunner

from docmill_devtools.scripted import ScriptedLLM
from tests.support.generation_doubles import FakeModel, HashingEmbedder, MemoryVectorStore, make_chunks


@pytest.fixture()
def demo_cli(monkeypatch):
    import docmill

    # See test_cli_generate: stand in for a command module not merged on this branch yet.
    if not (Path(docmill.__file__).parent / "cli" / "ingest.py").is_file():
        sys.modules.setdefault("docmill.cli.ingest", types.ModuleType("docmill.cli.ingest"))
    demo = importlib.import_module("docmill.cli.demo")
    from docmill.cli.app import app

    embedder = HashingEmbedder()
    store = MemoryVectorStore()
    ingested: list[list[str]] = []

    def fake_ingest(settings, inputs):
        ingested.append(inputs)
        store.upsert(make_chunks(2, 2, collection="demo", embedder=embedder))
        return types.SimpleNamespace(totals=types.SimpleNamespace(model_dump=lambda: {"chunks": 4}))

    monkeypatch.setattr(demo, "_ingest", fake_ingest)
    monkeypatch.setattr(demo, "_open_vector_store", lambda settings: store)
    monkeypatch.setattr(demo, "_make_llm", lambda spec, settings: ScriptedLLM(FakeModel()))
    monkeypatch.setattr(demo, "_embedder", lambda settings: embedder)
    return app, ingested


def test_demo_ingests_the_bundled_samples_and_shows_datasets_and_examples(demo_cli, tmp_path):
    app, ingested = demo_cli
    result = CliRunner().invoke(app, ["demo", "--home", str(tmp_path)])
    assert result.exit_code == 0, result.output
    samples = Path(ingested[0][0])
    assert samples.name == "samples" and len(list(samples.glob("*.md"))) >= 3
    assert f"Datasets are in {tmp_path / 'datasets' / 'demo'}" in result.output
    assert "demo-sft.tar.gz" in result.output and "Example sft record:" in result.output


def test_demo_json_reports_counts_paths_and_example_records(demo_cli, tmp_path):
    app, _ = demo_cli
    result = CliRunner().invoke(app, ["demo", "--home", str(tmp_path), "--json", "--max-chunks", "2", "-q", "1"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["records_kept"] == 2 and set(data["counts"]) == {"sft", "completion", "text", "dpo", "rlhf", "preference"}
    assert data["examples"]["sft"]["output"] and data["examples"]["dpo"]["chosen"]["from"] == "gpt"
