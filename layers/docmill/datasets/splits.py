"""Train/val/test assignment per source document, never per record.

Sources are shuffled with the seed, then placed largest first into the split furthest below
its share of records (ratios are shares of records, not of sources). Every split with a
positive ratio gets at least one source when there are enough sources; with fewer sources
than such splits, train is filled first, then test, then val. The same seed and input always
give the same assignment.
"""

from __future__ import annotations

import random
from collections.abc import Mapping

from docmill.datasets.formats import SPLITS


def assign_splits(
    records_per_source: Mapping[str, int],
    ratios: Mapping[str, float],
    seed: int = 0,
) -> dict[str, str]:
    """Map each source to ``train``, ``val`` or ``test``."""
    total_ratio = sum(max(0.0, float(ratios.get(s, 0.0))) for s in SPLITS)
    if total_ratio <= 0:
        raise ValueError("split ratios must not all be 0")
    shares = {s: max(0.0, float(ratios.get(s, 0.0))) / total_ratio for s in SPLITS}
    positive = [s for s in ("train", "test", "val") if shares[s] > 0]

    sources = sorted(records_per_source)
    random.Random(seed).shuffle(sources)
    # Largest first packs better; the seeded shuffle breaks ties between equal sizes.
    sources.sort(key=lambda src: -records_per_source[src])

    total = sum(records_per_source.values()) or len(sources)
    target = {s: shares[s] * total for s in SPLITS}
    assigned_records = dict.fromkeys(SPLITS, 0.0)
    assigned_sources = dict.fromkeys(SPLITS, 0)
    result: dict[str, str] = {}

    if len(sources) <= len(positive):
        for src, split in zip(sources, positive, strict=False):
            result[src] = split
        return result

    for i, src in enumerate(sources):
        remaining = len(sources) - i
        empty = [s for s in positive if assigned_sources[s] == 0]
        if empty and remaining <= len(empty):
            # Just enough sources left to give every split one: smallest splits first.
            split = min(empty, key=lambda s: (shares[s], SPLITS.index(s)))
        else:
            split = max(
                positive,
                key=lambda s: ((target[s] - assigned_records[s]) / (target[s] or 1.0), -SPLITS.index(s)),
            )
        result[src] = split
        assigned_records[split] += records_per_source[src] or 1
        assigned_sources[split] += 1
    return result
