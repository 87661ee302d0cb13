"""Judge and answer modes through a whole run with the scripted model: ``auto`` distrusts a
model too small to judge (no judge calls, extractive answers), ``llm`` forces the judge,
template questions stand in for unusable model questions, and every record carries its
LLM-free quality signals into provenance and the quality report."""

from __future__ import annotations

import json

import pytest
from docmill.generation import GenerationConfig, run_generation
from docmill_devtools.scripted import ScriptedLLM
from docmill.storage import LocalStore

from tests.support.generation_doubles import (
    FakeModel,
    HashingEmbedder,
    MemoryVectorStore,
    make_chunks,
    stage_of,
)


@pytest.fixture(scope="module")
def embedder():
    return HashingEmbedder()


@pytest.fixture(scope="module")
def chunks(embedder):
    return make_chunks(3, 2, embedder=embedder)


def run(tmp_path, chunks, embedder, llm, **kw):
    store = MemoryVectorStore()
    store.upsert(chunks)
    cfg = GenerationConfig(collection="handbook", dataset="hb", tenant="default", questions_per_chunk=2,
                           formats=["sft", "dpo"], **kw)
    out = LocalStore(tmp_path)
    return run_generation(chunks, cfg, llm=llm, store=store, embedder=embedder, out=out), out


def provenance(out):
    return [json.loads(x) for x in (out.root / "provenance.jsonl").read_text().splitlines() if x.strip()]


def stages_called(llm):
    return {stage_of(call) for call in llm.calls}


def test_auto_with_a_small_model_skips_the_judge_and_answers_from_the_context(tmp_path, chunks, embedder):
    # Given a model that declares itself too small to judge
    llm = ScriptedLLM(FakeModel())
    llm.too_small_to_judge = True
    # When generating with the defaults (judge auto, answer mode auto)
    result, out = run(tmp_path, chunks, embedder, llm)
    # Then the model only writes questions and rejected answers
    assert stages_called(llm) == {"question", "rejected"}
    rows = provenance(out)
    assert result.assembled["records_kept"] == 12 and result.assembled["preference_pairs"] == 12
    for row in rows:
        q = row["quality"]
        assert row["judge"] == {"chosen": None, "rejected": None} and row["answer_mode"] == "extractive"
        # extractive answers are context sentences: fully supported; the rejected one is not
        assert q["support_chosen"] >= 0.95 and q["support_rejected"] < 0.3 and q["support_gap"] > 0.6
        assert q["source_rank"] == 1 and q["source_share"] == 1.0 and not q["degenerate_chosen"]
    quality = json.loads((out.root / "quality.json").read_text())
    assert quality["records"] == 12 and quality["pairs"] == 12 and quality["hit_at_k"] == 1.0 and quality["mrr"] == 1.0
    assert quality["judged"] == 0 and quality["degenerate"] == 0
    card = (out.root / "README.md").read_text()
    assert "## Quality (measured without an LLM)" in card and "![support](quality/support.png)" in card
    assert (out.root / "quality" / "support.png").read_bytes()[:4] == b"\x89PNG"


def test_judge_llm_forces_the_judge_even_for_a_small_model(tmp_path, chunks, embedder):
    llm = ScriptedLLM(FakeModel())
    llm.too_small_to_judge = True
    _, out = run(tmp_path, chunks, embedder, llm, judge="llm", answer_mode="generative")
    assert stages_called(llm) == {"question", "answer", "rejected", "judge"}
    assert all(row["judge"]["chosen"] for row in provenance(out))


def test_judge_none_with_a_capable_model_keeps_generative_answers(tmp_path, chunks, embedder):
    llm = ScriptedLLM(FakeModel())
    _, out = run(tmp_path, chunks, embedder, llm, judge="none")
    assert stages_called(llm) == {"question", "answer", "rejected"}
    rows = provenance(out)
    assert rows and all(r["answer_mode"] == "generative" and r["judge"]["chosen"] is None for r in rows)
    assert all(r["quality"]["support_chosen"] > 0.5 for r in rows)


def test_unusable_model_questions_are_replaced_by_labelled_template_questions(tmp_path, chunks, embedder):
    # Given a model whose questions are statements, not questions
    bad = json.dumps([{"type": "factual", "instruction": "The pump is good.", "input": "", "output": "x"}] * 2)
    llm = ScriptedLLM(FakeModel({"question": [bad] * 6}))
    llm.too_small_to_judge = True
    result, out = run(tmp_path, chunks, embedder, llm, concurrency=1)
    rows = provenance(out)
    assert rows and all(r["question_source"] == "template" for r in rows)
    assert all(r["quality"]["question_problems"] for r in rows)
    assert result.assembled["drops"]["question_rejected:not_a_question"] == 12
    assert json.loads((out.root / "quality.json").read_text())["question_sources"] == {"template": len(rows)}


def test_a_small_model_gets_no_corrective_retry_and_its_chunk_falls_back_to_templates(tmp_path, chunks, embedder):
    # Given a small model whose question reply is not JSON at all
    llm = ScriptedLLM(FakeModel({"question": ["The 2019 season saw the first of five cap titles."] * 6}))
    llm.too_small_to_judge = True
    result, out = run(tmp_path, chunks, embedder, llm, concurrency=1)
    report = json.loads((out.root / "run_report.json").read_text())
    # Then each chunk cost one question call, and its questions are templates
    assert report["stages"]["question"]["calls"] == 6 and report["stages"]["question"]["corrective_retries"] == 0
    assert result.assembled["drops"]["question_json_invalid"] == 6
    rows = provenance(out)
    assert rows and all(r["question_source"] == "template" for r in rows)
