"""Read a dataset docmill wrote (a folder or an S3 prefix) into the shapes TRL trains on.

A location is either the output root of ``docmill generate`` (``<dataset>-<format>/`` folders,
``provenance.jsonl``) or one ``<dataset>-<format>/`` folder. Every format is mapped to TRL's
conversational shapes so that the base model's own chat template frames prompt and answer:

- SFT (``sft``, ``completion``, ``text``): ``{"prompt": [messages], "completion": [messages]}``
  (``text`` has no prompt/answer boundary and trains as plain language modelling ``{"text"}``);
- DPO (``preference``, ``dpo``, ``rlhf``): ``{"prompt": [messages], "chosen": [...], "rejected": [...]}``.

Each test record also becomes an :class:`EvalItem` (question messages, reference answer and the
source context), the material of the before/after evaluation. ``provenance.jsonl`` names each
record's context chunks (``context[].chunk_id``, in rank order) and the collection/tenant they
belong to; docmill does not copy the chunk texts into it, so they are looked up in the
collection (a :data:`ChunkLookup`: the vector store or the ingested ``chunks.jsonl``). A context
entry that carries its own ``text`` is used as is. A record whose context cannot be found whole
gets no context and is left out of the support score (a partial context would understate it).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from docmill.datasets.formats import ALL_FORMATS, ANSWER_MARKER, HH_ASSISTANT, HH_HUMAN, SPLITS
from docmill.errors import DatasetInvalid
from docmill.storage import ObjectStore

SFT_FORMATS: tuple[str, ...] = ("sft", "completion", "text")
DPO_FORMATS: tuple[str, ...] = ("preference", "dpo", "rlhf")
METHOD_FORMATS: dict[str, tuple[str, ...]] = {"sft": SFT_FORMATS, "dpo": DPO_FORMATS}
Messages = list[dict[str, str]]
ChunkLookup = Callable[[str, str | None, Collection[str]], Mapping[str, str]]
"""(collection, tenant, chunk ids) -> {chunk id: text} for the chunks it finds."""


@dataclass(frozen=True)
class EvalItem:
    id: str
    prompt: Messages  # the question as the model is asked it
    reference: str  # the dataset's (chosen) answer
    context: tuple[str, ...]  # the passages the answer should be supported by (rank order; () when unknown)


@dataclass
class TrainingData:
    location: str
    format: str
    method: str
    splits: dict[str, list[dict[str, Any]]]  # TRL-shaped rows per split
    eval_items: list[EvalItem] = field(default_factory=list)  # from the test split
    source_ids: dict[str, list[str]] = field(default_factory=dict)  # split -> record ids

    @property
    def counts(self) -> dict[str, int]:
        return {split: len(rows) for split, rows in self.splits.items()}


def detect_format(record: dict[str, Any]) -> str:
    """A record's format from its keys (see FORMATS.md)."""
    keys = set(record)
    if {"instruction", "output"} <= keys:
        return "sft"
    if {"conversations", "chosen", "rejected"} <= keys:
        return "dpo"
    if {"prompt", "chosen", "rejected"} <= keys:
        return "preference"
    if {"chosen", "rejected"} <= keys:
        return "rlhf"
    if {"prompt", "completion"} <= keys:
        return "completion"
    if "text" in keys:
        return "text"
    raise DatasetInvalid(f"records with keys {sorted(keys)} are not a docmill dataset format")


def default_method(fmt: str) -> str:
    return "dpo" if fmt in DPO_FORMATS else "sft"


def check_method(fmt: str, method: str) -> None:
    if method not in METHOD_FORMATS:
        raise DatasetInvalid(f"unknown method {method!r}: use sft or dpo")
    if fmt not in METHOD_FORMATS[method]:
        raise DatasetInvalid(
            f"format {fmt!r} does not match method {method!r}: {method} trains on "
            f"{', '.join(METHOD_FORMATS[method])} (use --method {default_method(fmt)} for {fmt})"
        )


def _split_folders(store: ObjectStore) -> dict[str, set[str]]:
    """folder key ('' for the root itself) -> the split files it holds."""
    folders: dict[str, set[str]] = {}
    for info in store.list(""):
        parent, _, name = info.key.rpartition("/")
        stem = name.removesuffix(".jsonl")
        if name.endswith(".jsonl") and stem in SPLITS and parent.count("/") == 0:
            folders.setdefault(parent, set()).add(stem)
    return folders


def _folder_format(folder: str, store: ObjectStore) -> str | None:
    tail = folder.rsplit("-", 1)[-1] if folder else store.uri("").rstrip("/").rsplit("-", 1)[-1]
    return tail if tail in ALL_FORMATS else None


def choose_folder(store: ObjectStore, fmt: str | None, method: str | None) -> tuple[str, str]:
    """Which ``<dataset>-<format>`` folder of the location to train on, and its format."""
    folders = _split_folders(store)
    if not folders:
        raise DatasetInvalid(f"{store.uri('')} holds no dataset splits (train.jsonl, val.jsonl, test.jsonl)")
    candidates: dict[str, str] = {}
    for folder in folders:
        folder_fmt = _folder_format(folder, store)
        if folder_fmt is None:
            folder_fmt = detect_format(_first_record(store, folder, folders[folder]))
        candidates.setdefault(folder_fmt, folder)
    if fmt is not None:
        if fmt not in ALL_FORMATS:
            raise DatasetInvalid(f"unknown format {fmt!r}; known: {', '.join(ALL_FORMATS)}")
        if fmt not in candidates:
            raise DatasetInvalid(f"{store.uri('')} has no {fmt} dataset (it has: {', '.join(sorted(candidates))})")
        return candidates[fmt], fmt
    preferred = METHOD_FORMATS.get(method or "", SFT_FORMATS + DPO_FORMATS)
    for option in preferred:
        if option in candidates:
            return candidates[option], option
    found = sorted(candidates)
    if len(found) == 1:  # one format only: check_method names the mismatch
        return candidates[found[0]], found[0]
    raise DatasetInvalid(f"{store.uri('')} has no dataset for method {method!r} (it has: {', '.join(found)})")


def _first_record(store: ObjectStore, folder: str, splits: set[str]) -> dict[str, Any]:
    for split in SPLITS:
        if split in splits:
            rows = store.read_jsonl(_key(folder, f"{split}.jsonl"))
            if rows:
                return rows[0]
    raise DatasetInvalid(f"every split in {store.uri(folder)} is empty")


def _key(folder: str, name: str) -> str:
    return f"{folder}/{name}" if folder else name


def _user(text: str, system: str | None = None) -> Messages:
    prompt: Messages = [{"role": "system", "content": system}] if system else []
    return prompt + [{"role": "user", "content": text}]


def _assistant(text: str) -> Messages:
    return [{"role": "assistant", "content": text}]


def _as_messages(value: Any) -> Messages:
    if isinstance(value, str):
        return _user(value)
    return [{"role": str(m["role"]), "content": str(m["content"])} for m in value]


_SHAREGPT_ROLES = {"human": "user", "gpt": "assistant", "system": "system", "user": "user", "assistant": "assistant"}


def to_trl(fmt: str, record: dict[str, Any]) -> dict[str, Any]:
    """One docmill record in the TRL shape its method trains on."""
    if fmt == "sft":
        question = f"{record['instruction']}\n\n{record['input']}" if record.get("input") else record["instruction"]
        return {"prompt": _user(question, record.get("system")), "completion": _assistant(record["output"])}
    if fmt == "completion":
        # "[system\n\n]Question: ...\nAnswer:" (see formats.completion_prompt)
        head, marker, question = record["prompt"].removesuffix(ANSWER_MARKER).partition("Question: ")
        system = head.strip() or None if marker else None
        question = question if marker else head
        return {"prompt": _user(question, system), "completion": _assistant(record["completion"].strip())}
    if fmt == "text":
        return {"text": record["text"]}
    if fmt == "preference":
        # A string prompt beside message answers breaks TRL (issue #12): frame it as a user turn.
        return {
            "prompt": _as_messages(record["prompt"]),
            "chosen": _as_messages(record["chosen"]),
            "rejected": _as_messages(record["rejected"]),
        }
    if fmt == "dpo":
        prompt = [
            {"role": _SHAREGPT_ROLES.get(t["from"], "user"), "content": t["value"]} for t in record["conversations"]
        ]
        return {
            "prompt": prompt,
            "chosen": _assistant(record["chosen"]["value"]),
            "rejected": _assistant(record["rejected"]["value"]),
        }
    if fmt == "rlhf":
        chosen, rejected = record["chosen"], record["rejected"]
        cut = chosen.rfind(HH_ASSISTANT)
        if cut < 0 or chosen[:cut] != rejected[:cut]:
            raise DatasetInvalid(f"rlhf record {record.get('id')} has no shared Human/Assistant prefix")
        question = chosen[:cut].removeprefix(HH_HUMAN)
        start = cut + len(HH_ASSISTANT)
        return {"prompt": _user(question), "chosen": _assistant(chosen[start:]), "rejected": _assistant(rejected[start:])}
    raise DatasetInvalid(f"unknown dataset format {fmt!r}")


def _reference(row: dict[str, Any]) -> str:
    answer = row.get("completion") or row.get("chosen") or []
    return str(answer[-1]["content"]) if answer else ""


def _contexts(root: ObjectStore | None, wanted: Collection[str], chunks: ChunkLookup | None) -> dict[str, tuple[str, ...]]:
    """record id -> its context passages, for the ``wanted`` records of the run's provenance."""
    if root is None or not root.exists("provenance.jsonl"):
        return {}
    refs: dict[str, list[str]] = {}  # record id -> context keys in rank order
    texts: dict[str, str] = {}  # key -> text
    missing: dict[tuple[str, str | None], set[str]] = {}  # (collection, tenant) -> chunk ids
    for row in root.read_jsonl("provenance.jsonl"):
        rid = str(row.get("id"))
        if rid not in wanted:
            continue
        entries = [c for c in row.get("context") or [] if isinstance(c, dict)]
        if not entries:  # an older provenance line: only the ids
            entries = [{"chunk_id": cid} for cid in row.get("context_chunk_ids") or []]
        keys = []
        for i, entry in enumerate(entries):
            key = str(entry.get("chunk_id") or f"{rid}#{i}")
            keys.append(key)
            if entry.get("text"):
                texts[key] = str(entry["text"])
        refs[rid] = keys
        unknown = {k for k in keys if k not in texts}
        if unknown and row.get("collection"):
            missing.setdefault((str(row["collection"]), row.get("tenant")), set()).update(unknown)
    if chunks is not None:
        for (collection, tenant), ids in missing.items():
            found = chunks(collection, tenant, ids - texts.keys())
            texts.update({k: v for k, v in found.items() if k in ids and v})
    return {rid: tuple(texts[k] for k in keys) for rid, keys in refs.items() if keys and all(k in texts for k in keys)}


def load_training_data(
    store: ObjectStore,
    *,
    fmt: str | None = None,
    method: str | None = None,
    parent: ObjectStore | None = None,
    chunks: ChunkLookup | None = None,
) -> TrainingData:
    """Validate and read a dataset location. Raises :class:`DatasetInvalid` with the reason.

    ``parent`` is the run's output root when ``store`` is one ``<dataset>-<format>/`` folder
    (its ``provenance.jsonl`` names the source contexts); ``chunks`` finds their texts."""
    folder, chosen_fmt = choose_folder(store, fmt, method)
    method = method or default_method(chosen_fmt)
    check_method(chosen_fmt, method)
    splits: dict[str, list[dict[str, Any]]] = {}
    ids: dict[str, list[str]] = {}
    for split in SPLITS:
        key = _key(folder, f"{split}.jsonl")
        if not store.exists(key):
            if split == "train":
                raise DatasetInvalid(f"{store.uri(folder)} has no train split (train.jsonl)")
            splits[split], ids[split] = [], []
            continue
        try:
            records = store.read_jsonl(key)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise DatasetInvalid(f"{store.uri(key)} is not JSON Lines: {error}") from error
        try:
            splits[split] = [to_trl(chosen_fmt, r) for r in records]
        except (KeyError, TypeError) as error:
            raise DatasetInvalid(f"{store.uri(key)} has a record that is not {chosen_fmt}: missing {error}") from error
        ids[split] = [str(r.get("id", i)) for i, r in enumerate(records)]
    if not splits["train"]:
        raise DatasetInvalid(f"the train split of {store.uri(folder)} is empty: nothing to train on")
    if not splits["test"]:
        raise DatasetInvalid(
            f"the test split of {store.uri(folder)} is empty: the tuned model could not be evaluated on unseen documents"
        )
    contexts = _contexts(store if folder else parent, set(ids["test"]), chunks)
    eval_items = [
        EvalItem(id=rid, prompt=row["prompt"], reference=_reference(row), context=contexts.get(rid, ()))
        for rid, row in zip(ids["test"], splits["test"], strict=False)
        if "prompt" in row
    ]
    return TrainingData(
        location=store.uri(folder), format=chosen_fmt, method=method, splits=splits, eval_items=eval_items, source_ids=ids
    )


def sample(items: Sequence[EvalItem], n: int) -> list[EvalItem]:
    """The first ``n`` items: the order is the writer's, so base and tuned see the same ones."""
    return list(items[:n])
