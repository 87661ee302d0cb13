"""Dataset validation and format mapping for fine-tuning (no training, no model)."""

from __future__ import annotations

from pathlib import Path

import pytest

from docmill.errors import ConfigurationError, DatasetInvalid, FinetuneError
from docmill.finetune.data import detect_format, load_training_data, to_trl
from docmill.finetune.evaluate import answer_support
from docmill.finetune.jobs import JobStore
from docmill.finetune.service import LocalFinetuner, collection_lookup, open_dataset
from docmill.finetune.train import FinetuneParams
from docmill.quality.signals import support
from docmill.storage import open_store
from tests.support.finetune_data import NOTES, chunk_texts, write_collection_chunks, write_docmill_dataset


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_docmill_dataset(tmp_path_factory.mktemp("ds"), system="Answer from the manual.")


def test_given_the_output_root_when_loaded_by_method_then_the_matching_format_is_chosen(dataset: Path) -> None:
    sft = load_training_data(open_store(str(dataset)), method="sft")
    dpo = load_training_data(open_store(str(dataset)), method="dpo")
    assert (sft.format, sft.method, sft.counts) == ("sft", "sft", {"train": 8, "val": 2, "test": 2})
    assert (dpo.format, dpo.method) == ("preference", "dpo")
    # Then the test questions carry their source context from provenance.jsonl
    assert [i.id for i in sft.eval_items] == ["rec-10", "rec-11"]
    assert sft.eval_items[0].context == ("docmill turns documents into datasets for fine-tuning. See the manual.",)


def test_given_provenance_as_docmill_writes_it_when_loaded_then_contexts_come_from_the_collection(tmp_path: Path) -> None:
    # Given a dataset whose provenance names its context chunks (ids, collection, tenant) but not
    # their texts, and the workspace the collection was ingested into
    dataset = write_docmill_dataset(tmp_path / "ds", inline_context=False, tenant="acme")
    home = write_collection_chunks(tmp_path / "home", tenant="acme")
    # When it is loaded with the workspace's chunk lookup (the root or one format folder)
    data = open_dataset(str(dataset), FinetuneParams(), collection_lookup(None, home))
    folder = open_dataset(str(dataset / "acme-sft"), FinetuneParams(), collection_lookup(None, home))
    # Then every test question carries its context passages, in rank order
    texts = chunk_texts()
    assert [i.context for i in data.eval_items] == [(texts["c10"], NOTES), (texts["c11"], NOTES)]
    assert folder.eval_items == data.eval_items
    # And without a lookup there is no context to score against
    assert [i.context for i in open_dataset(str(dataset), FinetuneParams()).eval_items] == [(), ()]


def test_given_a_context_chunk_missing_from_the_collection_then_that_record_has_no_context(tmp_path: Path) -> None:
    dataset = write_docmill_dataset(tmp_path / "ds", inline_context=False)
    home = write_collection_chunks(tmp_path / "home", leave_out=("c11",))
    data = open_dataset(str(dataset), FinetuneParams(), collection_lookup(None, home))
    # A partial context would understate the support: the record is left out of the score instead
    assert [bool(i.context) for i in data.eval_items] == [True, False]


def test_given_a_vector_store_that_lists_chunks_or_a_collection_that_is_gone_when_looked_up(tmp_path: Path) -> None:
    home = write_collection_chunks(tmp_path / "home")
    from docmill.generation.pipeline.planning import collection_chunks

    chunks = list(collection_chunks(None, "manuals", home=home))

    class ListingStore:  # what collection_chunks asks of a vector store
        def iter_chunks(self, collection: str, tenant: str | None = None):
            return iter([c for c in chunks if c.collection == collection])

    found = collection_lookup(lambda: ListingStore(), None)("manuals", None, ["c1", "c-notes", "c-missing"])
    assert found == {"c1": chunk_texts()["c1"], "c-notes": NOTES}
    # A collection that was never ingested (or deleted) finds nothing instead of failing the fine-tune
    assert collection_lookup(None, home)("gone", None, ["c1"]) == {}

    def unreachable() -> None:
        raise ConfigurationError("no vector store configured")

    assert collection_lookup(unreachable, None)("manuals", None, ["c1"]) == {}
    # An index that cannot be read (or lacks the chunks) leaves them to the ingested files
    assert collection_lookup(unreachable, home)("manuals", None, ["c1"]) == {"c1": chunk_texts()["c1"]}


@pytest.mark.parametrize("fmt", ["sft", "completion", "text", "dpo", "rlhf", "preference"])
def test_given_each_format_folder_when_loaded_then_rows_have_trl_shapes(dataset: Path, fmt: str) -> None:
    data = open_dataset(str(dataset / f"acme-{fmt}"), FinetuneParams())
    row = data.splits["train"][0]
    assert data.format == fmt
    if fmt == "text":
        assert set(row) == {"text"}
    elif fmt in ("sft", "completion"):
        assert row["completion"] == [{"role": "assistant", "content": "The warranty covers parts and labour for two years."}]
        assert row["prompt"][-1] == {"role": "user", "content": "What does the warranty cover?"}
    else:
        assert row["chosen"][-1]["content"] == "The warranty covers parts and labour for two years."
        assert row["rejected"][-1]["content"] == "It covers nothing."
        assert all(isinstance(m, dict) for m in row["prompt"])  # never a bare string (issue #12)
    # Then a format folder still finds the run's provenance one level up
    if fmt != "text":
        assert data.eval_items and data.eval_items[0].context


def test_given_a_string_preference_prompt_when_mapped_then_it_becomes_a_user_turn() -> None:
    row = to_trl("preference", {"prompt": "Q?", "chosen": [{"role": "assistant", "content": "A"}],
                                "rejected": [{"role": "assistant", "content": "B"}]})
    assert row["prompt"] == [{"role": "user", "content": "Q?"}]
    assert detect_format({"prompt": "Q", "chosen": [], "rejected": []}) == "preference"
    assert detect_format({"conversations": [], "chosen": {}, "rejected": {}}) == "dpo"


def test_given_a_folder_without_train_split_when_loaded_then_clear_error(tmp_path: Path) -> None:
    folder = tmp_path / "x-sft"
    folder.mkdir()
    (folder / "test.jsonl").write_text('{"id": "1", "instruction": "q", "input": "", "output": "a"}\n')
    with pytest.raises(DatasetInvalid, match="no train split"):
        open_dataset(str(folder), FinetuneParams())


def test_given_an_empty_train_or_test_split_when_loaded_then_clear_error(tmp_path: Path) -> None:
    folder = tmp_path / "x-sft"
    folder.mkdir()
    record = '{"id": "1", "instruction": "q", "input": "", "output": "a"}\n'
    (folder / "train.jsonl").write_text("")
    (folder / "test.jsonl").write_text(record)
    with pytest.raises(DatasetInvalid, match="train split .* is empty"):
        open_dataset(str(folder), FinetuneParams())
    (folder / "train.jsonl").write_text(record)
    (folder / "test.jsonl").write_text("")
    with pytest.raises(DatasetInvalid, match="test split .* is empty"):
        open_dataset(str(folder), FinetuneParams())


def test_given_a_folder_with_no_splits_when_loaded_then_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetInvalid, match="holds no dataset splits"):
        open_dataset(str(tmp_path), FinetuneParams())
    with pytest.raises(FinetuneError, match="does not exist"):
        open_dataset(str(tmp_path / "missing"), FinetuneParams())


def test_given_a_format_that_does_not_match_the_method_then_clear_error(dataset: Path) -> None:
    with pytest.raises(DatasetInvalid, match="format 'preference' does not match method 'sft'"):
        open_dataset(str(dataset), FinetuneParams(format="preference", method="sft"))
    with pytest.raises(DatasetInvalid, match="format 'completion' does not match method 'dpo'"):
        open_dataset(str(dataset / "acme-completion"), FinetuneParams(method="dpo"))


def test_given_bad_input_when_a_job_is_started_then_no_record_and_no_output(dataset: Path, tmp_path: Path) -> None:
    jobs = JobStore(open_store(str(tmp_path / "jobs")))
    service = LocalFinetuner(jobs, models_root=str(tmp_path / "models"), work_root=tmp_path / "work")
    with pytest.raises(FinetuneError, match="base model .* not found"):
        service.start("acme", str(dataset), FinetuneParams(base=str(tmp_path / "no-such-model")))
    with pytest.raises(DatasetInvalid):
        service.start("acme", str(dataset), FinetuneParams(format="rlhf", method="sft"))
    assert jobs.list("acme") == []
    assert not (tmp_path / "models").exists() and not (tmp_path / "work").exists()


def test_given_answers_when_scored_then_support_is_the_dataset_quality_signal() -> None:
    context = ("The warranty covers parts and labour for two years.", NOTES)
    assert answer_support("The warranty covers parts and labour.", context) == 1.0
    assert answer_support("Bananas are yellow fruit.", context) == 0.0
    assert 0 < answer_support("The warranty covers bananas.", context) < 1
    assert answer_support("", context) == 0.0
    # One definition: the score generation curation keeps records by (here without an embedder)
    answer = "The warranty covers bananas. Keep the receipt."
    assert answer_support(answer, context) == support(answer, context).score
