"""Writers: JSONL per split, HF tarballs that load back (empty splits included), dataset_info merge."""

from __future__ import annotations

import json
import tarfile

from docmill.datasets.formats import Example
from docmill.datasets.writer import SplitExample, write_datasets
from docmill.storage import LocalStore


def _examples():
    return [
        SplitExample(Example(id=f"r{i}", instruction=f"Question {i}?", input="", chosen=f"Answer {i}.", rejected="Dunno."), "train", i % 2 == 0)
        for i in range(3)
    ]


def test_empty_splits_and_non_pairs_still_load_back_from_the_tarball(tmp_path):
    from datasets import load_from_disk

    out = LocalStore(tmp_path / "out")
    written = write_datasets(out, "ds", ["sft", "dpo"], _examples())
    # all records are in train; only the two pairs go to dpo
    assert written.counts == {"sft": {"train": 3, "val": 0, "test": 0}, "dpo": {"train": 2, "val": 0, "test": 0}}
    assert (tmp_path / "out" / "ds-sft" / "val.jsonl").read_bytes() == b""
    for fmt in ("sft", "dpo"):
        with tarfile.open(tmp_path / "out" / f"ds-{fmt}" / f"ds-{fmt}.tar.gz") as tar:
            names = tar.getnames()
            tar.extractall(tmp_path / "x", filter="data")
        assert all(n == f"ds-{fmt}" or n.startswith(f"ds-{fmt}/") for n in names)  # one top-level folder
        dd = load_from_disk(str(tmp_path / "x" / f"ds-{fmt}"))
        assert {s: dd[s].num_rows for s in dd} == written.counts[fmt]
        assert dd["val"].column_names == dd["train"].column_names


def test_dataset_info_merges_with_other_datasets_and_drops_stale_entries(tmp_path):
    out = LocalStore(tmp_path)
    out.write_json("dataset_info.json", {"other": {"file_name": "other.json"}, "ds-sft-test": {"file_name": "stale"}})
    write_datasets(out, "ds", ["sft", "text"], _examples())
    info = json.loads((tmp_path / "dataset_info.json").read_text())
    assert info == {"other": {"file_name": "other.json"}, "ds-sft": {"file_name": "ds-sft/train.jsonl"}}
    lines = (tmp_path / "ds-sft" / "train.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(x)["id"] for x in lines] == ["r0", "r1", "r2"]


def test_jsonl_keeps_non_ascii_text_as_utf8(tmp_path):
    out = LocalStore(tmp_path)
    ex = [SplitExample(Example(id="u", instruction="Welche Größe hat das Ventil?", input="", chosen="Zwölf € pro Stück."), "test", False)]
    write_datasets(out, "ds", ["sft"], ex)
    raw = (tmp_path / "ds-sft" / "test.jsonl").read_bytes()
    assert "Größe".encode() in raw and b"\\u" not in raw
