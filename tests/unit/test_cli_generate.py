"""``docmill generate`` through typer's CliRunner, with the store, LLM and embedder replaced by
test doubles at the command's seams."""

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


@pytest.fixture(scope="module")
def cli():
    # docmill.cli/__init__ imports every command module; on a branch where another command
    # (ingest) is not merged yet, stand in an empty module so this command can be tested alone.
    import docmill

    if not (Path(docmill.__file__).parent / "cli" / "ingest.py").is_file():
        sys.modules.setdefault("docmill.cli.ingest", types.ModuleType("docmill.cli.ingest"))
    generate = importlib.import_module("docmill.cli.generate")
    from docmill.cli.app import app

    return app, generate


@pytest.fixture()
def seams(cli, monkeypatch):
    _, generate = cli
    embedder = HashingEmbedder()
    store = MemoryVectorStore()
    store.upsert(make_chunks(3, 2, embedder=embedder))
    made = {}

    def make_llm(spec, settings):
        made["spec"] = spec
        made["concurrency"] = settings.llm.concurrency
        return ScriptedLLM(FakeModel())

    monkeypatch.setattr(generate, "_open_vector_store", lambda settings: store)
    monkeypatch.setattr(generate, "_make_llm", make_llm)
    monkeypatch.setattr(generate, "_embedder", lambda settings: embedder)
    return made


def invoke(app, *args):
    return CliRunner().invoke(app, ["generate", *args])


def test_dry_run_json_prints_the_plan_and_calls_no_model(cli, seams, tmp_path):
    app, _ = cli
    result = invoke(app, "--collection", "handbook", "--dataset", "hb", "--dry-run", "--json", "--home", str(tmp_path), "-q", "2")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["dry_run"] is True
    assert data["chunks_sampled"] == 6
    assert data["planned_calls"] == {"question": 6, "answer": 12, "rejected": 12, "judge": 24, "total": 54}
    assert data["estimated_tokens"]["total"] > 0
    assert "spec" not in seams  # no client was even created
    assert not (tmp_path / "datasets").exists()


def test_dry_run_text_output(cli, seams, tmp_path):
    app, _ = cli
    result = invoke(app, "--collection", "handbook", "--dataset", "hb", "--dry-run", "--home", str(tmp_path), "--max-chunks", "2")
    assert result.exit_code == 0, result.output
    assert "2 of 6 chunks" in result.output and "calls" in result.output and "estimated tokens" in result.output


def test_generate_json_writes_datasets_and_reports_paths_and_counts(cli, seams, tmp_path):
    app, _ = cli
    out = tmp_path / "ds"
    result = invoke(
        app, "--collection", "handbook", "--dataset", "hb", "--llm", "openai:http://127.0.0.1:9/v1",
        "--formats", "sft,dpo", "-f", "rlhf", "--out", str(out), "--json", "--home", str(tmp_path),
        "--concurrency", "3", "--seed", "5", "-q", "2",
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert seams == {"spec": "openai:http://127.0.0.1:9/v1", "concurrency": 3}
    assert set(data["counts"]) == {"sft", "dpo", "rlhf"}
    assert data["records_kept"] == 12 and sum(data["counts"]["sft"].values()) == 12
    assert data["paths"]["sft"]["tar.gz"] == str(out / "hb-sft.tar.gz")
    for key in ("card", "provenance", "report", "dataset_info"):
        assert (tmp_path / "ds" / data[key].rsplit("/", 1)[-1]).is_file()
    assert data["stopped"] is None


def test_generate_prints_a_summary_with_counts_and_default_out(cli, seams, tmp_path):
    app, _ = cli
    result = invoke(app, "--collection", "handbook", "--dataset", "hb", "--home", str(tmp_path), "-q", "1", "-f", "sft")
    assert result.exit_code == 0, result.output
    assert "kept 6" in result.output and "sft" in result.output
    assert (tmp_path / "datasets" / "hb" / "hb-sft" / "train.jsonl").is_file()


def test_unknown_format_and_empty_collection_are_clean_errors(cli, seams, tmp_path):
    app, _ = cli
    bad = invoke(app, "--collection", "handbook", "--dataset", "hb", "-f", "csv", "--json", "--home", str(tmp_path))
    assert bad.exit_code == 2
    assert json.loads(bad.output)["error"] == "ConfigurationError"
    empty = invoke(app, "--collection", "nothing-here", "--dataset", "hb", "--home", str(tmp_path))
    assert empty.exit_code == 2
    assert "no chunks" in empty.output


def test_generate_exits_non_zero_when_no_record_is_kept(cli, seams, tmp_path, monkeypatch):
    # Given a model whose answers never pass curation (its rejected-style reply everywhere)
    app, generate = cli
    monkeypatch.setattr(generate, "_make_llm", lambda spec, settings: ScriptedLLM(FakeModel({"answer": ["Maybe."] * 50})))
    result = invoke(app, "--collection", "handbook", "--dataset", "hb", "--home", str(tmp_path), "-q", "1", "-f", "sft",
                    "--judge", "none")
    # Then the exit status and the message say nothing was produced
    assert result.exit_code == 1, result.output
    assert "no record for any of the formats" in result.output


def test_generate_prints_the_quality_table_and_evaluate_reads_it_back(cli, seams, tmp_path):
    app, _ = cli
    out = tmp_path / "ds"
    result = invoke(app, "--collection", "handbook", "--dataset", "hb", "--home", str(tmp_path), "-q", "1",
                    "-f", "sft,dpo", "--out", str(out), "--judge", "none", "--answer-mode", "extractive")
    assert result.exit_code == 0, result.output
    assert "support mean" in result.output and "hit@4" in result.output
    ev = CliRunner().invoke(app, ["evaluate", str(out), "--json"])
    assert ev.exit_code == 0, ev.output
    data = json.loads(ev.output)
    assert list(data)[:7] == ["records", "pairs", "hit_at_k", "mrr", "support", "degenerate", "pair_support_gap"]
    assert data["records"] == 6 and set(data["support"]) >= {"mean", "p10"} and data["judged"] == 0
    table = CliRunner().invoke(app, ["evaluate", str(out), "--plots"])
    assert table.exit_code == 0 and "pair support gap" in table.output and "support.png" in table.output
    missing = CliRunner().invoke(app, ["evaluate", str(tmp_path / "nope"), "--json"])
    assert missing.exit_code == 2 and json.loads(missing.output)["error"] == "ConfigurationError"
