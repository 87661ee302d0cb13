"""Splits are per source document: deterministic, leak-free, graceful with few sources."""

from __future__ import annotations

from collections import Counter

import pytest

from docmill.datasets.splits import assign_splits

RATIOS = {"train": 0.8, "val": 0.1, "test": 0.1}


def test_every_source_gets_exactly_one_split_and_seed_makes_it_repeatable():
    sizes = {f"doc-{i}": (i % 5) + 1 for i in range(40)}
    a = assign_splits(sizes, RATIOS, seed=7)
    assert set(a) == set(sizes)
    assert set(a.values()) == {"train", "val", "test"}
    assert a == assign_splits(dict(reversed(list(sizes.items()))), RATIOS, seed=7)
    assert a != assign_splits(sizes, RATIOS, seed=8)


def test_record_shares_follow_the_ratios_with_many_sources():
    sizes = {f"doc-{i}": 10 for i in range(50)}
    a = assign_splits(sizes, RATIOS, seed=1)
    records = Counter()
    for src, split in a.items():
        records[split] += sizes[src]
    assert records["train"] == 400 and records["val"] == 50 and records["test"] == 50


@pytest.mark.parametrize(
    ("n", "expected"),
    [(1, {"train"}), (2, {"train", "test"}), (3, {"train", "val", "test"})],
)
def test_few_sources_fill_train_then_test_then_val(n, expected):
    a = assign_splits({f"doc-{i}": 5 for i in range(n)}, RATIOS, seed=0)
    assert set(a.values()) == expected


def test_a_zero_ratio_split_gets_no_source():
    a = assign_splits({f"doc-{i}": 3 for i in range(10)}, {"train": 0.9, "val": 0.0, "test": 0.1}, seed=0)
    assert "val" not in a.values()
    assert "test" in a.values()


def test_all_zero_ratios_are_rejected():
    with pytest.raises(ValueError):
        assign_splits({"a": 1}, {"train": 0, "val": 0, "test": 0})
