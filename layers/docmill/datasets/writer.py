"""Write datasets to a folder or S3 prefix (through ``ObjectStore``).

Layout under the output root::

    <dataset>-<format>/train.jsonl, val.jsonl, test.jsonl
    <dataset>-<format>/<dataset>-<format>.tar.gz   # HF DatasetDict (train/val/test), save_to_disk, tarred
    dataset_info.json                              # LLaMA-Factory entries for sft and dpo (merged)
    README.md                                      # dataset card
    provenance.jsonl                               # one line per record id
    run_report.json                                # calls, tokens, drops, timings

The tarball holds one top-level folder ``<dataset>-<format>/`` (the ``save_to_disk`` output),
so ``datasets.load_from_disk(<extract dir>/<dataset>-<format>)`` loads it back.
"""

from __future__ import annotations

import io
import json
import tarfile
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from docmill.datasets.formats import (
    PREFERENCE_FORMATS,
    SPLITS,
    Example,
    convert,
    dataset_dir_name,
    hf_features,
    llama_factory_entries,
)
from docmill.errors import StorageError
from docmill.storage import ObjectStore


@dataclass
class SplitExample:
    example: Example
    split: str
    is_pair: bool  # goes into the preference formats too


@dataclass
class WrittenDatasets:
    paths: dict[str, dict[str, str]] = field(default_factory=dict)  # format -> {split|tar: uri}
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # format -> split -> n
    dataset_info: str | None = None


def build_format_records(examples: Sequence[SplitExample], fmt: str) -> dict[str, list[dict[str, Any]]]:
    rows: dict[str, list[dict[str, Any]]] = {s: [] for s in SPLITS}
    for item in examples:
        if fmt in PREFERENCE_FORMATS and not item.is_pair:
            continue
        rows[item.split].append(convert(fmt, item.example))
    return rows


def _jsonl_bytes(records: Sequence[Mapping[str, Any]]) -> bytes:
    if not records:
        return b""
    return ("\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n").encode("utf-8")


@contextmanager
def _quiet_datasets() -> Iterator[None]:
    """No per-split progress bars in CLI output or logs."""
    from datasets import utils as ds_utils

    was_disabled = ds_utils.are_progress_bars_disabled()
    ds_utils.disable_progress_bars()
    try:
        yield
    finally:
        if not was_disabled:
            ds_utils.enable_progress_bars()


def _hf_tarball(name: str, fmt: str, rows: dict[str, list[dict[str, Any]]], with_system: bool) -> bytes:
    from datasets import Dataset, DatasetDict

    features = hf_features(fmt, with_system=with_system)
    def split_dataset(records: list[dict[str, Any]]) -> Dataset:
        if not records:  # from_list([]) would drop the columns; an empty split keeps them
            return Dataset.from_dict({name: [] for name in features}, features=features)
        return Dataset.from_list(records, features=features)

    dd = DatasetDict({split: split_dataset(rows[split]) for split in SPLITS})
    with tempfile.TemporaryDirectory(prefix="docmill-hf-") as tmp:
        target = Path(tmp) / name
        with _quiet_datasets():
            # An empty split would be saved with no data file, which load_from_disk cannot read
            # back (datasets 5.x): one (empty) shard keeps it loadable.
            dd.save_to_disk(str(target), num_shards={split: 1 for split in SPLITS if not rows[split]})
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tar:
            tar.add(str(target), arcname=name)
        return buf.getvalue()


def write_datasets(
    out: ObjectStore,
    dataset: str,
    formats: Sequence[str],
    examples: Sequence[SplitExample],
    *,
    with_system: bool = False,
) -> WrittenDatasets:
    """JSONL per split, the HF tarball per format, and the merged ``dataset_info.json``."""
    written = WrittenDatasets()
    for fmt in formats:
        name = dataset_dir_name(dataset, fmt)
        rows = build_format_records(examples, fmt)
        paths: dict[str, str] = {}
        for split in SPLITS:
            key = f"{name}/{split}.jsonl"
            out.write_bytes(key, _jsonl_bytes(rows[split]), content_type="application/x-ndjson")
            paths[split] = out.uri(key)
        tar_key = f"{name}/{name}.tar.gz"
        out.write_bytes(tar_key, _hf_tarball(name, fmt, rows, with_system and fmt == "sft"), content_type="application/gzip")
        paths["tar.gz"] = out.uri(tar_key)
        written.paths[fmt] = paths
        written.counts[fmt] = {split: len(rows[split]) for split in SPLITS}

    entries = llama_factory_entries(dataset, list(formats), written.counts)
    if entries:
        info: dict[str, Any] = {}
        try:
            if out.exists("dataset_info.json"):
                existing = out.read_json("dataset_info.json")
                if isinstance(existing, dict):
                    info = existing  # other datasets in the same folder keep their entries
        except (StorageError, json.JSONDecodeError):
            info = {}
        # Entries of an earlier run of this dataset (e.g. a -val split now empty) go away.
        prefixes = tuple(dataset_dir_name(dataset, f) for f in ("sft", "dpo"))
        info = {k: v for k, v in info.items() if not (k in prefixes or k.startswith(tuple(p + "-" for p in prefixes)))}
        info.update(entries)
        out.write_json("dataset_info.json", info)
        written.dataset_info = out.uri("dataset_info.json")
    return written
