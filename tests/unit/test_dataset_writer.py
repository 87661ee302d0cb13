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
        with tarfile.open(tmp_path / "out" / f"ds-{fmt}.tar.gz") as tar:
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
    assert info == {
        "other": {"file_name": "other.json"},
        "ds-sft": {"file_name": "ds-sft/train.jsonl"},
        "ds-text": {"file_name": "ds-text/train.jsonl", "columns": {"prompt": "text"}},
    }
    lines = (tmp_path / "ds-sft" / "train.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(x)["id"] for x in lines] == ["r0", "r1", "r2"]


def test_jsonl_keeps_non_ascii_text_as_utf8(tmp_path):
    out = LocalStore(tmp_path)
    ex = [SplitExample(Example(id="u", instruction="Welche Größe hat das Ventil?", input="", chosen="Zwölf € pro Stück."), "test", False)]
    write_datasets(out, "ds", ["sft"], ex)
    raw = (tmp_path / "ds-sft" / "test.jsonl").read_bytes()
    assert "Größe".encode() in raw and b"\\u" not in raw


def test_a_format_without_records_writes_nothing_and_removes_an_earlier_runs_files(tmp_path):
    # Given an earlier run that wrote dpo, and a new run whose examples are no pairs
    out = LocalStore(tmp_path)
    write_datasets(out, "ds", ["sft", "dpo"], _examples())
    assert (tmp_path / "ds-dpo.tar.gz").is_file()
    no_pairs = [SplitExample(e.example, e.split, False) for e in _examples()]
    # When written again
    written = write_datasets(out, "ds", ["sft", "dpo"], no_pairs)
    # Then dpo has no file, no archive and no dataset_info entry; sft is intact
    assert written.empty_formats == ["dpo"] and "dpo" not in written.archives
    assert not (tmp_path / "ds-dpo").exists() and not (tmp_path / "ds-dpo.tar.gz").exists()
    assert set(json.loads((tmp_path / "dataset_info.json").read_text())) == {"ds-sft"}


def test_an_all_empty_dataset_writes_no_trainer_file(tmp_path):
    out = LocalStore(tmp_path / "out")
    no_pairs = [SplitExample(e.example, e.split, False) for e in _examples()]
    written = write_datasets(out, "ds", ["dpo", "preference"], no_pairs)
    assert written.archives == {} and written.empty_formats == ["dpo", "preference"]
    assert written.dataset_info is None
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_language_is_detected_from_the_records(tmp_path):
    ex = [
        SplitExample(Example(id=f"d{i}", instruction="Wie oft muss die Pumpe gewartet werden?", input="",
                             chosen="Die Pumpe wird alle zwei Wochen gewartet und gereinigt."), "train", False)
        for i in range(3)
    ]
    assert write_datasets(LocalStore(tmp_path), "ds", ["sft"], ex).language == "de"
    en = [
        SplitExample(Example(id=f"e{i}", instruction="How often must the pump be serviced?", input="",
                             chosen="The pump is serviced and cleaned every two weeks."), "train", False)
        for i in range(3)
    ]
    assert write_datasets(LocalStore(tmp_path), "en", ["sft"], en).language == "en"
