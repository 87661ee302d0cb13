"""Record shapes checked field by field against shared/FORMATS.md and the reference files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from docmill.datasets.formats import (
    ALL_FORMATS,
    Example,
    convert,
    hf_features,
    llama_factory_entries,
    to_completion,
    to_dpo,
    to_preference,
    to_rlhf,
    to_sft,
    to_text,
)

FORMATS_DIR = Path("/work/shared/formats")
needs_refs = pytest.mark.skipif(not FORMATS_DIR.is_dir(), reason="shared reference formats not on this machine")

EX = Example(id="r1", instruction="What is the pump interval?", input="", chosen="Every 2 weeks.", rejected="Monthly, probably.")
EX_INPUT = Example(id="r2", instruction="List the deadlines.", input="Receipts within 30 days.", chosen="- 30 days", rejected="None.")


def _shape(value):
    """Type skeleton of a JSON value: dict keys -> shapes, list -> shape of first element."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(value[0])] if value else []
    return type(value).__name__


@needs_refs
def test_sft_matches_alpaca_reference_fields():
    reference = json.loads((FORMATS_DIR / "alpaca_en_demo.json").read_text(encoding="utf-8"))[0]
    record = to_sft(EX)
    assert {k: v for k, v in _shape(record).items() if k != "id"} == _shape(reference)
    assert record == {"id": "r1", "instruction": EX.instruction, "input": "", "output": "Every 2 weeks."}
    assert to_sft(EX_INPUT)["input"] == "Receipts within 30 days."


def test_sft_carries_system_only_when_configured():
    with_system = Example(**{**EX.__dict__, "system": "You answer HR questions."})
    assert to_sft(with_system)["system"] == "You answer HR questions."
    assert "system" not in to_sft(EX)


@needs_refs
def test_dpo_matches_llama_factory_sharegpt_reference():
    reference = json.loads((FORMATS_DIR / "dpo_en_demo.json").read_text(encoding="utf-8"))
    record = to_dpo(EX)
    ref_single = next(r for r in reference if len(r["conversations"]) == 1)
    assert {k: v for k, v in _shape(record).items() if k != "id"} == _shape(ref_single)
    assert record["conversations"] == [{"from": "human", "value": EX.question}]
    assert record["chosen"] == {"from": "gpt", "value": "Every 2 weeks."}
    assert record["rejected"] == {"from": "gpt", "value": "Monthly, probably."}
    # With a system prompt the first turn is a system turn, as in the reference's second record.
    with_system = to_dpo(Example(**{**EX.__dict__, "system": "Be brief."}))
    ref_system = next(r for r in reference if r["conversations"][0]["from"] == "system")
    assert [t["from"] for t in with_system["conversations"]] == [t["from"] for t in ref_system["conversations"]][:2]


def test_hh_strings_share_prefix_and_differ_only_in_last_assistant_turn():
    for ex in (EX, EX_INPUT):
        record = to_rlhf(ex)
        prefix = f"\n\nHuman: {ex.question}\n\nAssistant: "
        assert record["chosen"] == prefix + ex.chosen
        assert record["rejected"] == prefix + ex.rejected
        # the last "\n\nAssistant: " starts the only differing turn
        cut = record["chosen"].rfind("\n\nAssistant: ")
        assert record["chosen"][:cut] == record["rejected"][:cut]
        assert record["chosen"].count("\n\nHuman: ") == record["rejected"].count("\n\nHuman: ") == 1


def test_completion_prompt_ends_where_the_answer_starts_and_text_is_the_concatenation():
    record = to_completion(EX_INPUT)
    assert set(record) == {"id", "prompt", "completion"}
    assert record["prompt"].endswith("\nAnswer:")
    assert record["completion"] == " - 30 days"
    assert "Receipts within 30 days." in record["prompt"]
    assert to_text(EX_INPUT) == {"id": "r2", "text": record["prompt"] + record["completion"]}


def test_preference_is_message_lists_in_all_three_fields():
    # Given a pair without a system prompt, When converted, Then prompt is the user turn as a list
    record = to_preference(EX)
    assert record["prompt"] == [{"role": "user", "content": EX.question}]
    assert record["chosen"] == [{"role": "assistant", "content": "Every 2 weeks."}]
    assert record["rejected"] == [{"role": "assistant", "content": "Monthly, probably."}]


def test_preference_prompt_starts_with_the_system_turn_when_one_is_set():
    record = to_preference(Example(**{**EX.__dict__, "system": "Be brief."}))
    assert record["prompt"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": EX.question}]


def test_preference_formats_refuse_records_without_a_rejected_answer():
    lone = Example(id="x", instruction="q", input="", chosen="a")
    for fmt in ("dpo", "rlhf", "preference"):
        with pytest.raises(ValueError):
            convert(fmt, lone)
    assert convert("sft", lone)["output"] == "a"


def test_hf_features_cover_every_field_of_every_format():
    for fmt in ALL_FORMATS:
        record = convert(fmt, EX)
        assert set(hf_features(fmt)) == set(record), fmt


@needs_refs
def test_dataset_info_entries_match_the_llama_factory_example():
    example = json.loads((FORMATS_DIR / "dataset_info.example.json").read_text(encoding="utf-8"))
    counts = {"sft": {"train": 3, "val": 1, "test": 0}, "dpo": {"train": 2, "val": 0, "test": 1}}
    entries = llama_factory_entries("hb", ["sft", "rlhf", "preference", "dpo"], counts)
    assert entries["hb-sft"] == {"file_name": "hb-sft/train.jsonl"}
    assert set(entries["hb-sft"]) == set(example["alpaca_en_demo"])
    dpo = dict(entries["hb-dpo"])
    assert dpo.pop("file_name") == "hb-dpo/train.jsonl"
    ref = dict(example["dpo_en_demo"])
    ref.pop("file_name")
    assert dpo == ref
    # non-empty evaluation splits get their own entries; empty ones do not
    assert set(entries) == {"hb-sft", "hb-sft-val", "hb-dpo", "hb-dpo-test"}


def test_dataset_info_registers_every_trainable_non_empty_format_with_the_system_column():
    # Given counts where completion has only train and preference/rlhf have records
    counts = {f: {"train": 2, "val": 0, "test": 1} for f in ALL_FORMATS}
    # When entries are built with a system prompt set
    entries = llama_factory_entries("hb", list(ALL_FORMATS), counts, with_system=True)
    # Then sft maps every alpaca column plus system, completion is alpaca prompt/response,
    # text is pretraining, and no empty split nor an untrainable format is registered
    assert entries["hb-sft"]["columns"] == {"prompt": "instruction", "query": "input", "response": "output", "system": "system"}
    assert entries["hb-completion"]["columns"] == {"prompt": "prompt", "response": "completion"}
    assert entries["hb-text"] == {"file_name": "hb-text/train.jsonl", "columns": {"prompt": "text"}}
    assert set(entries) == {f"hb-{f}{s}" for f in ("sft", "completion", "text", "dpo") for s in ("", "-test")}
    assert llama_factory_entries("hb", ["sft"], {"sft": {"train": 0, "val": 0, "test": 0}}) == {}
