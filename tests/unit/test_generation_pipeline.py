"""The generation pipeline driven by the ScriptedLLM test double (deterministic, no model)."""

from __future__ import annotations

import json
import tarfile
from collections import defaultdict

import pytest

from docmill.errors import LLMThrottled, LLMTimeout
from docmill.generation import GenerationConfig, assemble, generate_batch, plan, run_generation
from docmill.generation.pipeline import collection_chunks, sample_chunks
from docmill.llm.ratelimit import CallGuard
from docmill.retry import RetryPolicy
from docmill_devtools.scripted import ScriptedLLM
from docmill.storage import LocalStore
from tests.support.generation_doubles import FakeModel, HashingEmbedder, MemoryVectorStore, make_chunks

SPLITS = ("train", "val", "test")


@pytest.fixture(scope="module")
def embedder():
    return HashingEmbedder()


@pytest.fixture(scope="module")
def chunks(embedder):
    return make_chunks(4, 3, embedder=embedder)


@pytest.fixture()
def store(chunks, embedder):
    s = MemoryVectorStore()
    s.upsert(chunks)
    # Noise the filters must keep out: another collection and another tenant.
    s.upsert(make_chunks(1, 2, collection="other", embedder=embedder))
    s.upsert([c.model_copy(update={"chunk_id": "t2-" + c.chunk_id, "tenant": "acme"}) for c in chunks[:3]])
    return s


def config(**kw) -> GenerationConfig:
    # Two formats keep most tests fast; the first test writes all six.
    base = {"collection": "handbook", "dataset": "hb", "tenant": "default", "questions_per_chunk": 2, "concurrency": 4,
            "formats": ["sft", "rlhf"]}
    return GenerationConfig(**{**base, **kw})


def run(tmp_path, store, embedder, chunks, llm, cfg=None, name="out", **kw):
    out = LocalStore(tmp_path / name)
    result = run_generation(chunks, cfg or config(), llm=llm, store=store, embedder=embedder, out=out, **kw)
    return result, out


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_full_run_writes_every_format_split_by_source_with_provenance(tmp_path, store, embedder, chunks):
    # Given a 12-chunk collection over 4 documents and a model that answers every stage
    progress = []
    cfg = config(formats=["sft", "completion", "text", "dpo", "rlhf", "preference"])
    result, out = run(tmp_path, store, embedder, chunks, ScriptedLLM(FakeModel()), cfg, progress=lambda *a: progress.append(a))
    root = out.root
    a = result.assembled
    # Then every chunk gave 2 records and all survive curation as preference pairs
    assert a["records_generated"] == 24 and a["records_kept"] == 24 and a["preference_pairs"] == 24
    assert progress[-1] == (12, 12, 24)
    provenance = {p["id"]: p for p in read_jsonl(root / "provenance.jsonl")}
    assert len(provenance) == 24
    split_sources: dict[str, set[str]] = defaultdict(set)
    for fmt in ("sft", "completion", "text", "dpo", "rlhf", "preference"):
        folder = root / f"hb-{fmt}"
        total = 0
        for split in SPLITS:
            records = read_jsonl(folder / f"{split}.jsonl")
            assert len(records) == a["counts"][fmt][split]
            total += len(records)
            for rec in records:
                prov = provenance[rec["id"]]  # every record joins its provenance line
                assert prov["split"] == split
                assert fmt in prov["formats"]
                split_sources[split].add(prov["source"]["source_uri"])
        assert total == 24
        assert (root / f"hb-{fmt}.tar.gz").is_file()
    # No source document in two splits
    assert not (split_sources["train"] & split_sources["val"])
    assert not (split_sources["train"] & split_sources["test"])
    assert not (split_sources["val"] & split_sources["test"])
    # Citations are stripped from dataset answers but kept raw in provenance
    sft = read_jsonl(root / "hb-sft" / "train.jsonl")[0]
    assert "[1]" not in sft["output"] and "[1]" in provenance[sft["id"]]["answer_raw"]
    prov = provenance[sft["id"]]
    assert prov["model_id"] == "scripted-test-double"
    assert prov["prompts"]["answer"] == {"id": "grounded-answer", "version": "1"}
    assert prov["judge"]["chosen"]["score"] > prov["judge"]["rejected"]["score"]
    assert prov["source"]["source_version"] and prov["context_chunk_ids"] and prov["context_pages"]
    assert prov["params"]["judge"]["temperature"] == 0.0
    # dataset_info.json, card and run report
    info = json.loads((root / "dataset_info.json").read_text())
    assert info["hb-sft"] == {"file_name": "hb-sft/train.jsonl"}
    assert info["hb-dpo"]["ranking"] is True
    card = (root / "README.md").read_text()
    assert "| sft | `hb-sft/` | " in card and "## Sources" in card and "s3://raw/handbook/doc-0.pdf" in card
    report = json.loads((root / "run_report.json").read_text())
    assert report["stages"]["question"]["calls"] == 12
    assert report["stages"]["judge_chosen"]["calls"] == report["stages"]["judge_rejected"]["calls"] == 24
    assert report["llm_client"]["calls"] == 12 + 24 * 4
    assert report["plan"]["planned_calls"]["total"] == 12 + 24 * 4
    assert len(report["calls"]) == 12 + 24 * 4 and all(c["ok"] for c in report["calls"])


def test_tarballs_load_back_with_load_from_disk(tmp_path, store, embedder, chunks):
    from datasets import load_from_disk

    cfg = config(formats=["sft", "dpo", "preference"])
    result, out = run(tmp_path, store, embedder, chunks, ScriptedLLM(FakeModel()), cfg)
    for fmt in ("sft", "dpo", "preference"):
        with tarfile.open(out.root / f"hb-{fmt}.tar.gz") as tar:
            tar.extractall(tmp_path / "x", filter="data")
        dd = load_from_disk(str(tmp_path / "x" / f"hb-{fmt}"))
        assert set(dd) == set(SPLITS)
        for split in SPLITS:
            assert dd[split].num_rows == result.assembled["counts"][fmt][split]
            lines = read_jsonl(out.root / f"hb-{fmt}" / f"{split}.jsonl")
            assert dd[split].to_list() == lines  # same records, field for field
    assert not (out.root / "hb-rlhf").exists()


def test_retrieval_is_filtered_to_collection_and_tenant_and_records_source_hits(tmp_path, store, embedder, chunks):
    result, out = run(tmp_path, store, embedder, chunks, ScriptedLLM(FakeModel()))
    assert store.filters_seen and all(f.collection == "handbook" and f.tenant == "default" for f in store.filters_seen)
    ids = {c.chunk_id for c in chunks}
    for prov in read_jsonl(out.root / "provenance.jsonl"):
        assert set(prov["context_chunk_ids"]) <= ids
        # questions quote their chunk, so the source chunk is retrieved first
        assert prov["source_in_top_k"] and prov["source_rank"] == 1
        assert prov["cited_chunk_ids"] == [prov["source"]["chunk_id"]]


def test_repairable_question_json_is_used_without_a_retry(tmp_path, store, embedder, chunks):
    fenced = "```json\n[{'type': 'factual', 'instruction': 'How often is the pump unit inspected by the team?', 'input': '',},]\n```"
    llm = ScriptedLLM(FakeModel({"question": [fenced]}))
    result, out = run(tmp_path, store, embedder, chunks, llm, config(concurrency=1, question_fallback=False))
    stats = json.loads((out.root / "run_report.json").read_text())["stages"]["question"]
    assert stats["repaired"] == 1 and stats["corrective_retries"] == 0 and stats["calls"] == 12
    # the repaired reply had one item instead of two
    assert result.assembled["records_generated"] == 23


def test_unusable_judge_json_is_retried_once_with_a_corrective_message(tmp_path, store, embedder, chunks):
    model = FakeModel({"judge": ["I think this answer is quite good overall."]})
    llm = ScriptedLLM(model)
    result, out = run(tmp_path, store, embedder, chunks, llm, config(concurrency=1, max_chunks=2))
    stats = json.loads((out.root / "run_report.json").read_text())["stages"]["judge_chosen"]
    assert stats["parse_failures"] == 1 and stats["corrective_retries"] == 1 and stats["dropped"] == 0
    assert result.assembled["records_generated"] == 4
    corrective = [c for c in llm.calls if c[-1].content.startswith("Your previous reply could not be used")]
    assert len(corrective) == 1
    assert corrective[0][-2].role == "assistant" and "quite good" in corrective[0][-2].content


def test_judge_json_failing_twice_is_counted_and_dropped_and_the_run_goes_on(tmp_path, store, embedder, chunks):
    llm = ScriptedLLM(FakeModel({"judge": ["nope", "still nope"], "question": ["{}", "[]"]}))
    result, out = run(tmp_path, store, embedder, chunks, llm, config(concurrency=1, max_chunks=3, question_fallback=False))
    drops = result.assembled["drops"]
    assert drops["judge_chosen_json_invalid"] == 1
    assert drops["question_json_invalid"] == 1  # the first chunk's questions failed twice
    # 3 chunks x 2 questions, minus the first chunk (no questions) and one failed judge
    assert result.assembled["records_generated"] == 3
    samples = json.loads((out.root / "run_report.json").read_text())["parse_failure_samples"]
    assert [(x["stage"], x["reply"]) for x in samples] == [
        ("question", "{}"), ("question", "[]"), ("judge_chosen", "nope"), ("judge_chosen", "still nope")
    ]


def test_injected_throttling_and_timeouts_are_retried_by_the_client(tmp_path, store, embedder, chunks):
    guard = CallGuard(limiter=None, retry=RetryPolicy(max_retries=3, base_delay=0.0), concurrency=2, sleep=lambda s: None)
    llm = ScriptedLLM(FakeModel(), failures={0: LLMThrottled, 4: LLMTimeout, 5: LLMThrottled}, guard=guard)
    result, out = run(tmp_path, store, embedder, chunks, llm, config(max_chunks=3))
    assert result.assembled["records_generated"] == 6
    assert llm.accounting.retries == 3 and llm.accounting.failures == 0
    report = json.loads((out.root / "run_report.json").read_text())
    assert report["llm_client"]["retries"] == 3


def test_calls_failing_after_all_retries_are_dropped_not_fatal(tmp_path, store, embedder, chunks):
    guard = CallGuard(limiter=None, retry=RetryPolicy(max_retries=1, base_delay=0.0), concurrency=1, sleep=lambda s: None)
    # The first logical call (a question call) fails on both of its attempts.
    llm = ScriptedLLM(FakeModel(), failures={0: LLMThrottled, 1: LLMThrottled}, guard=guard)
    result, out = run(tmp_path, store, embedder, chunks, llm, config(concurrency=1, max_chunks=3, question_fallback=False))
    assert result.assembled["drops"]["llm_error:question:LLMThrottled"] == 1
    assert result.assembled["records_generated"] == 4
    report = json.loads((out.root / "run_report.json").read_text())
    assert report["stages"]["question"]["failures"] == 1
    assert [c for c in report["calls"] if not c["ok"]][0]["error"].startswith("LLMThrottled")


def test_budget_stops_cleanly_and_writes_what_is_done(tmp_path, store, embedder, chunks):
    # Given the tokens a full run needs
    full, _ = run(tmp_path, store, embedder, chunks, ScriptedLLM(FakeModel()), config(concurrency=2), name="full")
    full_report = json.loads((tmp_path / "full" / "run_report.json").read_text())
    budget = int(full_report["tokens_used"] * 0.4)
    # When the budget is 40% of that
    llm = ScriptedLLM(FakeModel())
    result, out = run(tmp_path, store, embedder, chunks, llm, config(concurrency=2, budget_tokens=budget), name="cut")
    report = json.loads((out.root / "run_report.json").read_text())
    # Then the run stops with budget as its reason, under the budget, with finished records written
    assert result.stopped == "budget" and report["stopped"] == "budget"
    assert report["tokens_used"] <= budget
    assert 0 < result.assembled["records_generated"] < full.assembled["records_generated"]
    assert sum(result.assembled["counts"]["sft"].values()) == result.assembled["records_kept"]
    assert any(k.endswith("budget_exhausted") or k == "chunk_not_started_budget" for k in result.assembled["drops"])
    assert "stopped early" in (out.root / "README.md").read_text()


def test_unanswerable_questions_are_dropped_by_curation(tmp_path, store, embedder, chunks):
    llm = ScriptedLLM(FakeModel(unanswerable_marker="Question 1 "))
    result, out = run(tmp_path, store, embedder, chunks, llm)
    assert result.assembled["drops"]["unanswerable"] == 12
    assert result.assembled["records_kept"] == 12


def test_plan_batches_and_assemble_as_separate_steps_match_the_in_process_run(tmp_path, store, embedder, chunks):
    cfg = config(batch_size=5, seed=3)
    full, full_out = run(tmp_path, store, embedder, chunks, ScriptedLLM(FakeModel()), cfg, name="inproc")
    # Workflow style: plan -> one task per batch (fresh client each, as separate Lambdas) -> assemble
    work = LocalStore(tmp_path / "work")
    p = plan(chunks, cfg, work=work, model_id="scripted-test-double")
    assert [b.batch_id for b in p.batches] == ["b00000", "b00001", "b00002"]
    assert [len(b.chunk_ids) for b in p.batches] == [5, 5, 2]
    for spec in p.batches:
        res = generate_batch(work, spec.batch_id, llm=ScriptedLLM(FakeModel()), store=store, embedder=embedder)
        assert res.complete and res.records == 2 * len(spec.chunk_ids)
        assert work.exists(f"shards/{spec.batch_id}.jsonl")
    # A retried map task finds its complete shard and makes no call
    again = ScriptedLLM(FakeModel())
    res = generate_batch(work, "b00001", llm=again, store=store, embedder=embedder)
    assert res.reused and res.records == 10 and again.attempts == 0
    out = LocalStore(tmp_path / "distributed")
    assembled = assemble(work, out)
    assert assembled.counts == full.assembled["counts"]
    for fmt in ("sft", "rlhf"):
        for split in SPLITS:
            assert read_jsonl(out.root / f"hb-{fmt}" / f"{split}.jsonl") == read_jsonl(full_out.root / f"hb-{fmt}" / f"{split}.jsonl")


def test_assemble_reports_missing_shards_instead_of_failing(tmp_path, store, embedder, chunks):
    work = LocalStore(tmp_path / "work")
    p = plan(chunks, config(batch_size=6), work=work)
    generate_batch(work, p.batches[0].batch_id, llm=ScriptedLLM(FakeModel()), store=store, embedder=embedder)
    assembled = assemble(work, LocalStore(tmp_path / "out"))
    assert assembled.missing_shards == ["b00001"]
    assert assembled.records_generated == 12


def test_dry_run_plan_counts_calls_and_estimates_tokens_without_writing(chunks):
    short = chunks[0].model_copy(update={"chunk_id": "tiny", "text": "Too short."})
    p = plan([*chunks, short], config(questions_per_chunk=3, max_chunks=8))
    assert p.chunks_available == 13 and p.chunks_skipped_short == 1 and p.chunks_sampled == 8
    assert p.sources == 4  # sampling spreads over every document
    assert p.estimate.calls == {"question": 8, "answer": 24, "rejected": 24, "judge": 48}
    assert p.estimate.total_calls == 104
    assert p.estimate.input_tokens > 8 * 500 and p.estimate.output_tokens > 0
    assert p.summary()["estimated_tokens"]["total"] == p.estimate.total_tokens


def test_sampling_is_seeded_and_round_robins_over_sources(chunks):
    a = sample_chunks(chunks, 4, seed=1)
    assert a == sample_chunks(list(reversed(chunks)), 4, seed=1)
    assert len({c.source_uri for c in a}) == 4
    assert [c.chunk_id for c in a] != [c.chunk_id for c in sample_chunks(chunks, 4, seed=2)]


def test_collection_chunks_reads_the_store_or_falls_back_to_ingested_files(tmp_path, store, chunks):
    assert {c.chunk_id for c in collection_chunks(store, "handbook", tenant="default")} == {c.chunk_id for c in chunks}
    folder = tmp_path / "home" / "collections" / "handbook" / "sources" / "s1"
    folder.mkdir(parents=True)
    folder.joinpath("chunks.jsonl").write_text("\n".join(c.model_dump_json() for c in chunks[:2]) + "\n")
    from_files = list(collection_chunks(None, "handbook", home=tmp_path / "home"))
    assert [c.chunk_id for c in from_files] == [c.chunk_id for c in chunks[:2]]


def test_calls_run_concurrently_up_to_the_configured_limit(tmp_path, store, embedder, chunks):
    import threading
    import time

    model = FakeModel()
    lock = threading.Lock()
    active = {"now": 0, "max": 0}

    def reply(messages):
        with lock:
            active["now"] += 1
            active["max"] = max(active["max"], active["now"])
        time.sleep(0.02)  # long enough for the other workers to start their calls
        with lock:
            active["now"] -= 1
        return model(messages)

    result, _ = run(tmp_path, store, embedder, chunks, ScriptedLLM(reply), config(concurrency=3))
    assert result.assembled["records_generated"] == 24
    assert active["max"] == 3


def test_distractors_come_from_other_documents(chunks):
    import random

    from docmill.generation.pipeline.planning import pick_distractors as _pick_distractors

    rng = random.Random(0)
    for chunk in chunks:
        picked = _pick_distractors(chunk, chunks, rng)
        assert len(picked) == 2 and len({d.chunk_id for d in picked}) == 2
        assert all(d.source_uri != chunk.source_uri for d in picked)
    # one document only: other chunks of it are the fallback; a lone chunk gets none
    one_doc = [c for c in chunks if c.source_uri == chunks[0].source_uri]
    assert all(d.chunk_id != one_doc[0].chunk_id for d in _pick_distractors(one_doc[0], one_doc, rng))
    assert _pick_distractors(one_doc[0], one_doc[:1], rng) == []
