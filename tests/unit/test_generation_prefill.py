"""Given a model that continues an assistant message (like the local SmolLM2), When docmill
generates, Then the question and judge replies are primed with the start of their JSON and the
parser reads prefill + continuation; a model that cannot continue never gets a primed turn."""

from __future__ import annotations

from docmill.generation import GenerationConfig, run_generation
from docmill_devtools.scripted import ScriptedLLM
from docmill.storage import LocalStore
from tests.support.generation_doubles import FakeModel, HashingEmbedder, MemoryVectorStore, make_chunks


class ContinuingModel:
    """Answers like FakeModel, but when the conversation ends with an assistant turn it returns
    only what follows that turn's text: what a model continuing a prefill produces."""

    def __init__(self) -> None:
        self.fake = FakeModel()
        self.primed: dict[str, int] = {}

    def __call__(self, messages):
        if messages[-1].role != "assistant":
            return self.fake(messages)
        prefill = messages[-1].content
        full = self.fake(messages[:-1])
        assert full.startswith(prefill), (prefill, full[:80])
        stage = "judge" if prefill.startswith('{"relevance"') else "question"
        self.primed[stage] = self.primed.get(stage, 0) + 1
        return full[len(prefill):]


def _run(tmp_path, llm):
    embedder = HashingEmbedder()
    chunks = make_chunks(2, 2, embedder=embedder)
    store = MemoryVectorStore()
    store.upsert(chunks)
    cfg = GenerationConfig(collection="handbook", dataset="hb", tenant="default", questions_per_chunk=1, formats=["sft"])
    return run_generation(chunks, cfg, llm=llm, store=store, embedder=embedder, out=LocalStore(tmp_path))


def test_prefill_capable_model_gets_primed_question_and_judge_turns(tmp_path):
    model = ContinuingModel()
    llm = ScriptedLLM(model)
    llm.supports_prefill = True

    result = _run(tmp_path, llm)

    assert model.primed == {"question": 4, "judge": 8}
    assert result.assembled["records_kept"] == 4


def test_model_without_prefill_support_never_sees_a_primed_turn(tmp_path):
    llm = ScriptedLLM(FakeModel())

    result = _run(tmp_path, llm)

    assert all(call[-1].role == "user" for call in llm.calls)
    assert result.assembled["records_kept"] == 4
