"""Record shapes of every dataset format docmill writes (see shared FORMATS.md).

Each converter takes one ``Example`` (a curated question with its chosen and, for preference
formats, rejected answer) and returns the JSON record of that format. Every record carries
``id`` (the generated record's id) so that it joins the provenance file.

- ``sft``: Alpaca ``{instruction, input, output}`` (+ ``system`` when configured)
- ``completion``: ``{prompt, completion}``; the prompt ends with "\\nAnswer:" and the completion
  starts with a space, so ``prompt + completion`` is the training text
- ``text``: ``{text}`` = prompt + completion
- ``dpo``: LLaMA-Factory sharegpt ranking ``{conversations, chosen, rejected}``
- ``rlhf``: Anthropic HH strings ``{chosen, rejected}`` sharing the dialogue prefix
- ``preference``: TRL conversational ``{prompt, chosen, rejected}``, all three message lists
  (``prompt`` holds the system turn when one is set, then the user turn): TRL decides
  "conversational or not" from one key, so a string prompt beside message answers breaks it
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

DatasetFormat = Literal["sft", "completion", "text", "dpo", "rlhf", "preference"]
ALL_FORMATS: tuple[DatasetFormat, ...] = ("sft", "completion", "text", "dpo", "rlhf", "preference")
PREFERENCE_FORMATS: frozenset[str] = frozenset({"dpo", "rlhf", "preference"})
SPLITS: tuple[str, ...] = ("train", "val", "test")

ANSWER_MARKER = "\nAnswer:"
HH_HUMAN = "\n\nHuman: "
HH_ASSISTANT = "\n\nAssistant: "


@dataclass(frozen=True)
class Example:
    id: str
    instruction: str
    input: str
    chosen: str
    rejected: str | None = None
    system: str | None = None

    @property
    def question(self) -> str:
        return f"{self.instruction}\n\n{self.input}" if self.input else self.instruction


def to_sft(ex: Example) -> dict[str, Any]:
    record: dict[str, Any] = {"id": ex.id, "instruction": ex.instruction, "input": ex.input, "output": ex.chosen}
    if ex.system:
        record["system"] = ex.system
    return record


def completion_prompt(ex: Example) -> str:
    head = f"{ex.system}\n\n" if ex.system else ""
    return f"{head}Question: {ex.question}{ANSWER_MARKER}"


def to_completion(ex: Example) -> dict[str, Any]:
    return {"id": ex.id, "prompt": completion_prompt(ex), "completion": " " + ex.chosen}


def to_text(ex: Example) -> dict[str, Any]:
    return {"id": ex.id, "text": completion_prompt(ex) + " " + ex.chosen}


def _need_rejected(ex: Example) -> str:
    if ex.rejected is None:
        raise ValueError(f"record {ex.id} has no rejected answer: not a preference pair")
    return ex.rejected


def to_dpo(ex: Example) -> dict[str, Any]:
    conversations = []
    if ex.system:
        conversations.append({"from": "system", "value": ex.system})
    conversations.append({"from": "human", "value": ex.question})
    return {
        "id": ex.id,
        "conversations": conversations,
        "chosen": {"from": "gpt", "value": ex.chosen},
        "rejected": {"from": "gpt", "value": _need_rejected(ex)},
    }


def hh_prefix(ex: Example) -> str:
    return f"{HH_HUMAN}{ex.question}{HH_ASSISTANT}"


def to_rlhf(ex: Example) -> dict[str, Any]:
    prefix = hh_prefix(ex)
    return {"id": ex.id, "chosen": prefix + ex.chosen, "rejected": prefix + _need_rejected(ex)}


def to_preference(ex: Example) -> dict[str, Any]:
    prompt = [{"role": "system", "content": ex.system}] if ex.system else []
    prompt.append({"role": "user", "content": ex.question})
    return {
        "id": ex.id,
        "prompt": prompt,
        "chosen": [{"role": "assistant", "content": ex.chosen}],
        "rejected": [{"role": "assistant", "content": _need_rejected(ex)}],
    }


CONVERTERS: dict[str, Callable[[Example], dict[str, Any]]] = {
    "sft": to_sft,
    "completion": to_completion,
    "text": to_text,
    "dpo": to_dpo,
    "rlhf": to_rlhf,
    "preference": to_preference,
}


def convert(fmt: str, ex: Example) -> dict[str, Any]:
    try:
        return CONVERTERS[fmt](ex)
    except KeyError:
        raise ValueError(f"unknown dataset format {fmt!r}; known: {', '.join(ALL_FORMATS)}") from None


def hf_features(fmt: str, *, with_system: bool = False) -> Any:
    """Explicit ``datasets.Features`` so that empty splits keep the same columns."""
    from datasets import Features, Value

    s = Value("string")
    if fmt == "sft":
        cols = {"id": s, "instruction": s, "input": s, "output": s}
        if with_system:
            cols["system"] = s
        return Features(cols)
    if fmt == "completion":
        return Features({"id": s, "prompt": s, "completion": s})
    if fmt == "text":
        return Features({"id": s, "text": s})
    if fmt == "dpo":
        turn = {"from": s, "value": s}
        return Features({"id": s, "conversations": [turn], "chosen": turn, "rejected": turn})
    if fmt == "rlhf":
        return Features({"id": s, "chosen": s, "rejected": s})
    if fmt == "preference":
        msg = {"role": s, "content": s}
        return Features({"id": s, "prompt": [msg], "chosen": [msg], "rejected": [msg]})
    raise ValueError(f"unknown dataset format {fmt!r}")


def dataset_dir_name(dataset: str, fmt: str) -> str:
    return f"{dataset}-{fmt}"


def archive_key(dataset: str, fmt: str) -> str:
    """Key of a format's ``DatasetDict`` archive, relative to the output root. The archive holds
    the folder ``[prefix/]<dataset>-<format>/``: its key without ``.tar.gz``, which is what the
    brief's S3 loader opens after extracting (``load_from_disk(DIR/<name>)``)."""
    return f"{dataset_dir_name(dataset, fmt)}.tar.gz"


#: Formats LLaMA-Factory's loader trains from. ``rlhf`` (HH strings holding the prompt inside
#: both answers) and ``preference`` (answers as message lists; its sharegpt ranking converter
#: wants one message dict) are not read correctly by it, so they are not registered.
LLAMA_FACTORY_FORMATS: tuple[str, ...] = ("sft", "completion", "text", "dpo")


def llama_factory_entries(
    dataset: str,
    formats: Sequence[str],
    split_counts: Mapping[str, Mapping[str, int]],
    *,
    with_system: bool = False,
) -> dict[str, Any]:
    """``dataset_info.json`` entries: sft and completion as ``alpaca`` (stage sft), text as
    pretraining (``columns: {prompt: text}``, stage pt), dpo as sharegpt ranking (stage rm/dpo).
    The train split is ``<dataset>-<format>``, val/test ``-val`` / ``-test``. Only splits with
    records are registered: LLaMA-Factory dies on an empty file with a bare ``StopIteration``."""
    entries: dict[str, Any] = {}
    for fmt in formats:
        if fmt not in LLAMA_FACTORY_FORMATS:
            continue
        name = dataset_dir_name(dataset, fmt)
        for split in SPLITS:
            if not split_counts.get(fmt, {}).get(split):
                continue
            key = name if split == "train" else f"{name}-{split}"
            entry: dict[str, Any] = {"file_name": f"{name}/{split}.jsonl"}
            if fmt == "sft" and with_system:
                # Without ``columns`` the alpaca defaults apply (as in LLaMA-Factory's demo); with
                # them every column must be named, as it resets the ones left out.
                entry["columns"] = {"prompt": "instruction", "query": "input", "response": "output", "system": "system"}
            elif fmt == "completion":
                entry["columns"] = {"prompt": "prompt", "response": "completion"}
            elif fmt == "text":
                entry["columns"] = {"prompt": "text"}
            elif fmt == "dpo":
                # The system turn, when set, is the first of ``conversations`` (role ``system``),
                # which LLaMA-Factory's sharegpt converter takes as the system prompt.
                entry.update(
                    {
                        "ranking": True,
                        "formatting": "sharegpt",
                        "columns": {"messages": "conversations", "chosen": "chosen", "rejected": "rejected"},
                    }
                )
            entries[key] = entry
    return entries
