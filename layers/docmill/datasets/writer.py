"""Write datasets to a folder or S3 prefix (through ``ObjectStore``).

Layout under the output root (a folder, or ``s3://bucket/[prefix/]``)::

    <dataset>-<format>/train.jsonl, val.jsonl, test.jsonl
    <dataset>-<format>.tar.gz   # HF DatasetDict (train/val/test), save_to_disk, tarred
    dataset_info.json           # LLaMA-Factory entries (merged with other datasets' entries)
    README.md                   # dataset card (YAML configs: one per format)
    provenance.jsonl            # one line per record id
    run_report.json             # calls, tokens, drops, timings

The archive's inner path equals its key without ``.tar.gz`` (shared FORMATS.md): on S3 under a
prefix ``v2/``, ``v2/acme-sft.tar.gz`` holds ``v2/acme-sft/dataset_dict.json ...``, so the
brief's loader opens it by the name ``<bucket>/v2/acme-sft``; in a folder it holds
``acme-sft/...``. A format without records writes nothing (and its files of an earlier run go):
no file that a trainer would open and choke on. The caller decides what an all-empty result
means (``assemble`` raises ``EmptyDataset`` once the card and report say why).
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
    ALL_FORMATS,
    PREFERENCE_FORMATS,
    SPLITS,
    Example,
    archive_key,
    convert,
    dataset_dir_name,
    hf_features,
    llama_factory_entries,
)
from docmill.datasets.language import detect_language
from docmill.errors import StorageError
from docmill.storage import ObjectStore
from docmill.storage.base import is_s3_uri, parse_s3_uri


@dataclass
class SplitExample:
    example: Example
    split: str
    is_pair: bool  # goes into the preference formats too


@dataclass
class Archive:
    uri: str  # where the tar.gz lies
    inner_path: str  # the folder inside it: load_from_disk(<extract dir>/<inner_path>)
    loader_name: str | None  # "<bucket>/[prefix/]<dataset>-<format>" for the brief's S3 loader


@dataclass
class WrittenDatasets:
    paths: dict[str, dict[str, str]] = field(default_factory=dict)  # format -> {split|tar: uri}
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # format -> split -> n
    archives: dict[str, Archive] = field(default_factory=dict)  # format -> archive
    empty_formats: list[str] = field(default_factory=list)  # asked for, no record: nothing written
    language: str | None = None
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


def _hf_tarball(name: str, inner_path: str, fmt: str, rows: dict[str, list[dict[str, Any]]], with_system: bool) -> bytes:
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
            tar.add(str(target), arcname=inner_path)
        return buf.getvalue()


def _archive_root(out: ObjectStore) -> tuple[str | None, str]:
    """(bucket, prefix) of an S3 output root; (None, "") for a folder."""
    root = out.uri()
    if not is_s3_uri(root):
        return None, ""
    bucket, prefix = parse_s3_uri(root)
    return bucket, prefix.strip("/")


def write_datasets(
    out: ObjectStore,
    dataset: str,
    formats: Sequence[str],
    examples: Sequence[SplitExample],
    *,
    with_system: bool = False,
) -> WrittenDatasets:
    """JSONL per split, the HF archive per format, and the merged ``dataset_info.json``."""
    all_rows = {fmt: build_format_records(examples, fmt) for fmt in formats}
    written = WrittenDatasets()
    bucket, prefix = _archive_root(out)
    for fmt, rows in all_rows.items():
        name = dataset_dir_name(dataset, fmt)
        tar_key = archive_key(dataset, fmt)
        written.counts[fmt] = {split: len(rows[split]) for split in SPLITS}
        if not any(rows[split] for split in SPLITS):
            # No file a trainer could choke on; an earlier run's files of this format go too.
            written.empty_formats.append(fmt)
            out.delete_prefix(f"{name}/")
            if out.exists(tar_key):
                out.delete(tar_key)
            continue
        paths: dict[str, str] = {}
        for split in SPLITS:
            key = f"{name}/{split}.jsonl"
            out.write_bytes(key, _jsonl_bytes(rows[split]), content_type="application/x-ndjson")
            paths[split] = out.uri(key)
        inner_path = f"{prefix}/{name}" if prefix else name
        tarball = _hf_tarball(name, inner_path, fmt, rows, with_system and fmt == "sft")
        out.write_bytes(tar_key, tarball, content_type="application/gzip")
        paths["tar.gz"] = out.uri(tar_key)
        written.paths[fmt] = paths
        written.archives[fmt] = Archive(
            uri=out.uri(tar_key),
            inner_path=inner_path,
            loader_name=f"{bucket}/{inner_path}" if bucket else None,
        )

    written.language = detect_language(f"{item.example.question}\n{item.example.chosen}" for item in examples)
    entries = llama_factory_entries(dataset, list(formats), written.counts, with_system=with_system)
    info: dict[str, Any] = {}
    try:
        if out.exists("dataset_info.json"):
            existing = out.read_json("dataset_info.json")
            if isinstance(existing, dict):
                info = existing  # other datasets in the same folder keep their entries
    except (StorageError, json.JSONDecodeError):
        info = {}
    # Entries of an earlier run of this dataset (e.g. a -val split now empty) go away.
    names = tuple(dataset_dir_name(dataset, f) for f in ALL_FORMATS)
    info = {k: v for k, v in info.items() if not (k in names or k.startswith(tuple(n + "-" for n in names)))}
    info.update(entries)
    if info:
        out.write_json("dataset_info.json", info)
        written.dataset_info = out.uri("dataset_info.json") if entries else None
    elif out.exists("dataset_info.json"):
        out.delete("dataset_info.json")
    return written
